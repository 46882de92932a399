"""Operations of a forward pass, with their FLOPs, bytes moved and saved activations.

Counting rules (sources):
  * a GEMM of (M x K) by (K x N) costs ``2·M·N·K`` FLOP and moves its operands and result
    once, ``(M·K + K·N + M·N)`` elements, when tiles are reused on chip (NVIDIA DL
    Performance guide, "Matrix Multiplication Background");
  * fused attention (FlashAttention, Dao et al. 2022) costs ``4·b·s_q·s_kv·a·d`` FLOP forward
    (QKᵀ and AV), halved by a causal mask, and moves Q, K, V, O once;
  * elementwise, normalisation and softmax kernels are memory-bound: they read their inputs
    and write their outputs;
  * a convolution is an implicit GEMM with ``M = b·H_out·W_out, N = C_out, K = C_in·k²``;
  * activations saved for the backward pass follow Korthikanti et al. 2022, "Reducing
    Activation Recomputation in Large Transformer Models", §4.1: for a GPT layer with
    16-bit activations ``34·s·b·h`` bytes plus ``5·a·s²·b`` without fused attention
    (perf-models.md §7.3); we derive them op by op so that GQA, SwiGLU and
    dropout-free models come out right.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal

from rigwise.errors import InputError
from rigwise.model.litgpt import litgpt_kept_heads
from rigwise.workload.schema import CnnShape, TracedShape, TransformerShape

OpKind = Literal["gemm", "conv", "attention", "memory"]


@dataclass(frozen=True, slots=True)
class Op:
    """One kernel (repeated ``count`` times per pass).

    ``flop`` and ``bytes`` are per instance: FLOP, and bytes moved to and from device memory
    when nothing stays in cache. ``m, n, k``: GEMM sizes. ``saved_bytes``: activation bytes
    this op keeps for the backward pass. ``frozen``: a GEMM whose weight gets no gradient.
    ``layer``: True for ops inside the repeated layers (recomputed under checkpointing).
    """

    name: str
    kind: OpKind
    flop: float
    bytes: float
    count: int = 1
    m: int = 0
    n: int = 0
    k: int = 0
    saved_bytes: float = 0.0
    frozen: bool = False
    layer: bool = True
    weight_bytes: float = 0.0
    winograd: bool = False


def gemm(name: str, m: int, n: int, k: int, *, act_bytes: float, w_bytes: float,
         count: int = 1, saves_input: bool = True, frozen: bool = False,
         layer: bool = True) -> Op:
    """A GEMM ``(m x k) @ (k x n)`` with activations of ``act_bytes`` and weights of
    ``w_bytes`` bytes per element."""
    moved = (m * k + m * n) * act_bytes + k * n * w_bytes
    return Op(name, "gemm", 2.0 * m * n * k, moved, count, m, n, k,
              saved_bytes=m * k * act_bytes if saves_input else 0.0, frozen=frozen,
              layer=layer, weight_bytes=k * n * w_bytes)


def memory(name: str, read: float, write: float, *, count: int = 1, saved: float = 0.0,
           layer: bool = True) -> Op:
    """A memory-bound kernel reading ``read`` and writing ``write`` bytes."""
    return Op(name, "memory", 0.0, read + write, count, saved_bytes=saved, layer=layer)


@dataclass(frozen=True, slots=True)
class PassSpec:
    """What one forward pass processes.

    ``batch`` sequences of ``seq`` new tokens each, attending over ``context`` tokens
    (``context == seq`` for training and prefill; the KV-cache length for decode).
    ``lora_rank`` > 0 adds LoRA adapters to every linear layer of the layers, whose base
    weights are then frozen; ``dequant_bytes`` > 0 adds a dequantisation kernel per linear
    weight reading that many bytes per weight element (QLoRA NF4). ``loss_chunks`` > 0: the
    loss upcasts the logits to fp32 one token chunk at a time (torchtune's
    ``CEWithChunkedOutputLoss``, torchtune/modules/loss), so the 16-bit logits and one fp32
    chunk are held instead of an fp32 copy of all logits; 0 upcasts them all at once.
    Encoders in training predict only the masked tokens (:data:`MLM_MASKED_FRACTION`) through
    the vocabulary head; with ``task_head`` (fine-tuning) they have a small task head instead
    (:data:`TASK_HEAD_OUTPUTS` outputs per token) and no vocabulary logits. ``autocast``:
    16-bit compute by ``torch.autocast`` over an fp32 model, where layer norm, softmax and
    their inputs stay fp32 (:func:`transformer_layer`). ``litgpt``: the layer code of LitGPT
    (fused QKV projection, :func:`attention`, :func:`_linear`) instead of separate q, k, v
    projections (Hugging Face, torchtune). ``bnb_saves_input``: bitsandbytes before 0.43.2,
    whose ``MatMul4Bit`` keeps its input for backward although its weight is frozen (QLoRA).
    ``lora_head``: a LoRA adapter on the output head as well (LitGPT's ``lora_head``).
    """

    batch: int
    seq: int
    context: int
    act_bytes: float
    w_bytes: float
    kv_bytes: float = 2.0
    causal: bool = True
    training: bool = True
    fused_attention: bool = True
    lora_rank: int = 0
    dequant_bytes: float = 0.0
    frozen: bool = False
    loss_chunks: int = 0
    task_head: bool = False
    autocast: bool = False
    lora_targets: str = "all"
    lora_dropout: bool = False
    litgpt: bool = False
    bnb_saves_input: bool = False
    lora_head: bool = False


MLM_MASKED_FRACTION = 0.15
"""Share of tokens a masked-language-model loss predicts (Devlin et al. 2019, §3.1: 15 % of
WordPiece positions; NVIDIA DeepLearningExamples BERT gathers them before the output layer,
max_predictions_per_seq 20 of 128 and 80 of 512)."""

TASK_HEAD_OUTPUTS = 2
"""Outputs of a fine-tuning head on an encoder (SQuAD start/end logits; a binary classifier)."""


LORA_TARGETS = ("all", "qv")
"""Linear layers that get LoRA adapters: every one, or only the query and value projections
(the default of LitGPT's finetune_lora and of torchtune's Llama 3.1 LoRA configs)."""


def _linear(name: str, tokens: int, d_out: int, d_in: int, p: PassSpec, count: int, *,
            adapter_out: int | None = None, input_saved: bool = False,
            fused_of: int = 0) -> list[Op]:
    """A linear layer's forward ops: the GEMM, QLoRA's dequantisation and LoRA's adapters.

    What autograd keeps (checked with ``saved_tensors_hooks`` on PyTorch 2.13): a GEMM saves
    its input only when its weight needs a gradient (PyTorch's derivative formulas save
    ``self`` for ``mat2``'s gradient only), so a frozen base weight keeps nothing. So does
    bitsandbytes' ``MatMul4Bit`` (QLoRA) since 0.43.2; before it, it kept its input whenever
    that input needed a gradient (``ctx.tensors = (A, B)``; bitsandbytes PR #1270 and its
    0.43.2 changelog: "activations being unnecessary for frozen parameters, yet the memory for
    them was still erroneously allocated"), which ``p.bnb_saves_input`` models. A LoRA adapter
    saves its input ``x``. ``input_saved``: another op already keeps this input (the fused
    attention output). ``adapter_out``: the adapted output width (None: all of ``d_out``; 0:
    no adapter). With ``p.lora_dropout`` the adapter reads ``dropout(x)``, a new tensor it
    saves with the dropout mask. ``fused_of``: the width of LitGPT's fused QKV output when
    the adapter covers only part of it: LitGPT scatters the adapter output into a zero tensor
    of that width with ``index_copy_`` (``LoRAQKVLinear.zero_pad``), whose backward keeps its
    ``source``, the adapter output (``IndexCopyBackward0``, seen with ``saved_tensors_hooks``
    on litgpt 0.5.13 and PyTorch 2.13)."""
    saves = _keeps_input(p) and not input_saved
    ops = [gemm(name, tokens, d_out, d_in, act_bytes=p.act_bytes, w_bytes=p.w_bytes,
                count=count, frozen=p.frozen, saves_input=saves)]
    if p.dequant_bytes:
        ops.append(memory(f"{name}.dequant", d_in * d_out * p.dequant_bytes,
                          d_in * d_out * p.w_bytes, count=count))
    out = d_out if adapter_out is None else adapter_out
    if p.lora_rank and out:
        r = p.lora_rank
        if p.lora_dropout:  # dropout(x) feeds the adapter: its output and 1-byte mask are saved
            x = tokens * d_in
            ops.append(memory(f"{name}.lora_dropout", x * p.act_bytes, x * p.act_bytes,
                              count=count, saved=x))
        ops.append(gemm(f"{name}.lora_a", tokens, r, d_in, act_bytes=p.act_bytes, w_bytes=4.0,
                        count=count,
                        saves_input=p.lora_dropout or not (saves or input_saved)))
        lora_b = gemm(f"{name}.lora_b", tokens, out, r, act_bytes=p.act_bytes, w_bytes=4.0,
                      count=count)
        if fused_of and out < fused_of:  # LitGPT's zero_pad keeps the adapter output
            lora_b = replace(lora_b, saved_bytes=lora_b.saved_bytes + tokens * out * p.act_bytes)
        ops.append(lora_b)
    return ops


def _keeps_input(p: PassSpec) -> bool:
    """Whether a base linear layer keeps its input for backward (:func:`_linear`): its
    weight trains, or it is a 4-bit layer of bitsandbytes before 0.43.2."""
    return not p.frozen or (p.dequant_bytes > 0 and p.bnb_saves_input)


def _adapted(p: PassSpec, which: str, d_out: int, qv: int = 0) -> int:
    """Adapter output width of linear ``which`` under ``p.lora_targets``: ``d_out`` for every
    linear with ``all``; with ``qv`` only the query and value columns ``qv`` of ``qkv``."""
    if p.lora_targets == "all":
        return d_out
    return qv if which == "qkv" else 0


def transformer_layer(s: TransformerShape, p: PassSpec) -> list[Op]:
    """Forward ops of the ``s.n_layers`` transformer layers (each op has ``count = layers``).

    With ``p.autocast`` (``torch.autocast`` over an fp32 model, e.g. the Hugging Face Trainer's
    ``fp16=True``) layer norm is on autocast's float32 list (PyTorch docs, Automatic Mixed
    Precision, "CUDA Ops that can autocast to float32"), so its output, the residual stream it
    feeds (fp16 + fp32 promotes to fp32) and its saved input are fp32, and each linear layer
    reading it first casts it to 16 bit (post-LN BERT order and pre-LN alike: two norms,
    two residual adds, two casts per layer).
    """
    L, h, a, g, d = s.n_layers, s.hidden, s.n_heads, s.n_kv_heads, s.d_head
    t = p.batch * p.seq
    ab = p.act_bytes
    act = t * h * ab
    mask = t * h if (s.dropout and p.training) else 0.0
    autocast = p.autocast and s.family != "dit"
    stream = t * h * 4.0 if autocast else act  # the residual stream's bytes
    saved = stream if autocast else norm_saved(s, p, t)

    def norm(name: str) -> list[Op]:  # under autocast a cast feeds the next linear layer
        ops = [memory(name, stream, stream, count=L, saved=saved)]
        return [*ops, memory(f"cast{name[-1]}", stream, act, count=L)] if autocast else ops

    ops = norm("norm1")
    ops += _linear("qkv", t, (a + 2 * g) * d, h, p, L,
                   adapter_out=_adapted(p, "qkv", (a + 2 * g) * d, (a + g) * d),
                   fused_of=(a + 2 * g) * d if p.litgpt else 0)
    if s.position == "rope":
        ops.append(memory("rope", t * (a + g) * d * ab, t * (a + g) * d * ab, count=L))
    ops.append(attention(s, p))
    # the out-projection reads the attention output O, which fused attention keeps; LitGPT's
    # `y.reshape(B, T, C)` of O (laid out as its query, heads first) is a copy (attention())
    ops += _linear("out_proj", t, h, a * d, p, L, adapter_out=_adapted(p, "out_proj", h),
                   input_saved=p.fused_attention and not p.litgpt)
    ops.append(memory("residual1", act + stream + mask, stream, count=L, saved=mask))
    ops += norm("norm2")
    ops += _mlp(s, p)
    ops.append(memory("residual2", act + stream + mask, stream, count=L, saved=mask))
    if s.family == "dit":  # adaLN-Zero: per-sample modulation (6h) and its elementwise uses
        ops.append(gemm("adaln", p.batch, 6 * h, h, act_bytes=ab, w_bytes=p.w_bytes, count=L))
        ops.append(memory("modulate", 4 * act, 2 * act, count=L, saved=2 * act))
    return ops


def norm_saved(s: TransformerShape, p: PassSpec, tokens: int) -> float:
    """Bytes a normalisation layer saves for backward over ``tokens`` tokens.

    LayerNorm (``torch.nn.LayerNorm``) saves its 16-bit input (and per-token mean and rstd).
    The eager RMSNorm of Hugging Face Llama, torchtune and LitGPT computes in fp32: it saves the
    fp32 copy of its input (4 B per element) and, when its weight trains, the normalised 16-bit
    output (2 B) for the weight's gradient (checked with ``saved_tensors_hooks``, PyTorch 2.13).
    Fused RMSNorm kernels (Transformer Engine, Apex) would save 2 B; they are not modelled.
    """
    x = tokens * s.hidden
    if s.norm != "rmsnorm":
        return x * p.act_bytes
    return x * 4.0 + (0.0 if p.frozen else x * p.act_bytes)


def attention(s: TransformerShape, p: PassSpec) -> Op:
    """Scaled dot-product attention of one layer, fused (Flash / memory-efficient) or not.

    Forward FLOP ``4·b·s·ctx·a·d`` (halved by a causal mask over a square context). Fused
    kernels (SDPA, FlashAttention) save Q, K, V and their output O, which is also the
    out-projection's input (that linear then keeps nothing of its own); unfused attention saves
    Q, K, V, the scores and softmax output (``5·a·s²·b`` bytes, Korthikanti et al. 2022), and
    O is kept by the out-projection when its weight trains.

    LitGPT (``p.litgpt``; litgpt/model.py ``CausalSelfAttention.forward``, 2023 to 0.5.13) splits
    q, k and v as views of one fused QKV output; RoPE makes q and k new tensors, so with as
    many key/value heads as query heads the value SDPA keeps is a view that holds the whole
    fused output alive (q, k, the fused output and O: ``6·a·d`` elements per token); with
    fewer key/value heads (GQA) it repeats k and v to all heads before SDPA
    (``repeat_interleave``), which keeps q, the two repeated tensors and O (``4·a·d``).
    Measured on CPU with ``saved_tensors_hooks`` and a live-storage count on litgpt 0.5.13,
    PyTorch 2.13 (Llama-2-7B and Mistral-7B layers): per layer and token the kept bytes match
    these rules to within the CPU's 2-byte dropout mask (1 byte on CUDA).
    """
    a, g, d = s.n_heads, s.n_kv_heads, s.d_head
    b, sq, ctx = p.batch, p.seq, p.context
    flop = 4.0 * b * sq * ctx * a * d
    if p.causal and sq == ctx:
        flop *= 0.5
    q_o = 2 * b * sq * a * d * p.act_bytes
    kv = 2 * b * ctx * g * d * (p.kv_bytes if not p.training else p.act_bytes)
    # fused kernels (SDPA, FlashAttention) save Q, K, V and the output O (and a log-sum-exp)
    saved = b * sq * (2 * a + 2 * g) * d * p.act_bytes if p.training else 0.0
    if p.training and p.litgpt and p.fused_attention:
        saved = b * sq * litgpt_kept_heads(s) * d * p.act_bytes
    moved = q_o + kv
    if not p.fused_attention:
        if p.training:  # eager attention: O is the out-projection's input, saved there
            saved -= b * sq * a * d * p.act_bytes
        scores = b * a * sq * ctx
        moved += scores * _eager_score_bytes(s, p)
        if p.training:  # softmax output, and with dropout its mask and output
            sb = 4.0 if p.autocast else p.act_bytes
            drop = s.dropout
            saved += scores * (sb * (2 if drop else 1) + (1 if drop else 0)
                               + (p.act_bytes if p.autocast else 0.0))
    return Op("attention", "attention", flop, moved, s.n_layers, saved_bytes=saved)


def _eager_score_bytes(s: TransformerShape, p: PassSpec) -> float:
    """Bytes moved per attention-score element by eager attention, the op chain of Hugging Face
    BERT/GPT-2 (``BertSelfAttention``) and DeepLearningExamples BERT: the QK^T GEMM writes the
    scores; scaling by 1/sqrt(d) and adding the mask each read and write them; softmax reads
    and writes; dropout (training) reads, writes and stores a 1-byte mask; the PV GEMM reads the
    probabilities. Under autocast the fp32 mask promotes the scores to fp32 from the mask add
    on, and the probabilities are cast back to 16 bit for the PV GEMM."""
    ab = p.act_bytes
    sb = 4.0 if p.autocast else ab
    total = ab + 2 * ab + (ab + sb) + 2 * sb + ab  # QK^T, scale, mask, softmax, PV read
    if p.training and s.dropout:
        total += 2 * sb + 1
    if p.autocast:
        total += sb + ab
    return total


def _mlp(s: TransformerShape, p: PassSpec) -> list[Op]:
    L, h, f = s.n_layers, s.hidden, s.ffn_hidden
    t, ab = p.batch * p.seq, p.act_bytes
    ops: list[Op] = []
    if s.n_experts > 1:
        e, k = s.n_experts, s.experts_per_token
        ops.append(gemm("router", t, e, h, act_bytes=ab, w_bytes=p.w_bytes, count=L))
        ops.append(memory("permute", 2 * t * k * h * ab, t * k * h * ab, count=L))
        active = experts_touched(e, k, t)
        count = round(L * active)
        t_expert = max(1, round(t * k / active))
    else:
        count, t_expert = L, t
    up_n = 2 * f if s.ffn_kind == "swiglu" else f
    if s.ffn_kind == "swiglu" and p.litgpt:
        # LitGPT's LLaMAMLP: fc_1 and fc_2 are two linear layers reading the same input, each
        # with its own LoRA adapter (and dropout); a kept input is one tensor for both
        ops += _linear("mlp_up", t_expert, f, h, p, count, adapter_out=_adapted(p, "mlp_up", f))
        ops += _linear("mlp_up.fc_2", t_expert, f, h, p, count,
                       adapter_out=_adapted(p, "mlp_up", f), input_saved=_keeps_input(p))
    else:
        ops += _linear("mlp_up", t_expert, up_n, h, p, count,
                       adapter_out=_adapted(p, "mlp_up", up_n))
    tf_ = t_expert * f * ab
    if s.ffn_kind == "swiglu":  # silu(gate) * up saves gate, silu(gate) and up (eager PyTorch)
        ops.append(memory("swiglu", 2 * tf_, tf_, count=count, saved=3 * tf_))
    else:
        ops.append(memory("gelu", tf_, tf_, count=count, saved=tf_))
    ops += _linear("mlp_down", t_expert, h, f, p, count,
                   adapter_out=_adapted(p, "mlp_down", h))
    return ops


def experts_touched(n_experts: int, k: int, tokens: int) -> float:
    """Expected number of distinct experts a batch of ``tokens`` routes to, uniform routing:
    ``E·(1 − (1 − k/E)^tokens)``."""
    return n_experts * (1.0 - (1.0 - k / n_experts) ** tokens)


def transformer_forward(s: TransformerShape, p: PassSpec) -> list[Op]:
    """All forward ops of a transformer pass: embeddings, layers, final norm and head.

    Pure in its arguments (both are frozen), so built once per distinct pass: a search over
    GPUs repeats the same passes on every device. Raises nothing; sizes are assumed validated
    by the caller.
    """
    return list(_transformer_forward(s, p))


@functools.lru_cache(maxsize=4096)
def _transformer_forward(s: TransformerShape, p: PassSpec) -> tuple[Op, ...]:
    h, ab = s.hidden, p.act_bytes
    t = p.batch * p.seq
    act = t * h * ab
    out: list[Op] = []
    if s.family in ("vit", "dit"):
        assert s.channels and s.patch_size
        k = s.channels * s.patch_size**2
        out.append(gemm("patch_embed", t, h, k, act_bytes=ab, w_bytes=p.w_bytes, layer=False,
                        frozen=p.frozen))
    else:
        out.append(memory("embedding", act, act, layer=False))
    out += transformer_layer(s, p)
    out.append(memory("final_norm", act, act, saved=norm_saved(s, p, t), layer=False))
    if s.family == "vit":
        classes = s.num_classes or 1000
        out.append(gemm("classifier", p.batch, classes, h, act_bytes=ab, w_bytes=p.w_bytes,
                        layer=False))
    elif s.family == "dit":
        n_out = (s.patch_size or 2) ** 2 * 2 * (s.channels or 4)
        out.append(gemm("final_linear", t, n_out, h, act_bytes=ab, w_bytes=p.w_bytes,
                        layer=False))
    elif s.family == "encoder" and p.training and p.task_head:
        out.append(gemm("task_head", t, TASK_HEAD_OUTPUTS, h, act_bytes=ab, w_bytes=p.w_bytes,
                        layer=False))
    else:
        t_head = t if (p.training or p.seq == 1) else p.batch  # prefill: last token's logits
        if s.family == "encoder" and p.training:
            t_head = max(1, round(t * MLM_MASKED_FRACTION))
            out.append(memory("gather_masked", t_head * h * ab, t_head * h * ab, layer=False))
        if s.family == "encoder":
            out.append(gemm("mlm_transform", t_head, h, h, act_bytes=ab, w_bytes=p.w_bytes,
                            layer=False))
        # a frozen head keeps no input, except through LitGPT's quantised head under
        # bitsandbytes before 0.43.2 (Lightning's plugin quantises every nn.Linear)
        head_keeps = _keeps_input(p) and (not p.frozen or p.litgpt)
        head = gemm("lm_head", t_head, s.vocab, h, act_bytes=ab, w_bytes=p.w_bytes,
                    layer=False, frozen=p.frozen, saves_input=head_keeps)
        if p.training:  # logits kept in 16 bit and upcast to fp32 for the loss
            logits = t_head * s.vocab
            upcast = 4.0 / p.loss_chunks if p.loss_chunks else 4.0
            if p.litgpt:  # chunked_cross_entropy: log-softmax of the 16-bit chunks, 16 bit
                upcast = ab
            head = replace(head, saved_bytes=head.saved_bytes + logits * (ab + upcast))
            out.append(head)
            if p.lora_head and p.lora_rank:  # the head's adapter, as any linear layer's
                out += [replace(op, layer=False) for op in _linear(
                    "lm_head", t_head, s.vocab, h, p, 1, input_saved=head_keeps)
                    if ".lora" in op.name]
            out.append(memory("cross_entropy", logits * (ab + 4.0), logits * 4.0,
                              layer=False))
        else:
            out.append(head)
    return tuple(out)


MEMORY_FORMATS = ("channels_last", "nchw")
"""Activation layouts of a CNN: NHWC (``torch.channels_last``) or PyTorch's default NCHW."""

TRANSPOSE_SUFFIX = ".nchw-transpose"


def nchw_transposes(memory_format: str, tensor_cores: bool, passes: float) -> float:
    """Read+write passes over each convolution's input and output that layout transposes add
    to a training step: ``passes`` (the catalog's ``nchw_transpose_passes``) for NCHW
    activations on tensor cores, else 0.

    Tensor-core convolutions in cuDNN work on NHWC; given NCHW tensors, cuDNN transposes the
    operands to NHWC and the result back around each convolution (NVIDIA Deep Learning
    Performance guide, Convolutional Layers User's Guide, "Tensor Layouts In Memory: NCHW vs
    NHWC"; MosaicML Composer, Channels Last method card). FP32 (SIMT) kernels run NCHW
    natively.

    Raises:
        InputError: an unknown memory format.
    """
    if memory_format not in MEMORY_FORMATS:
        raise InputError(f"unknown memory format {memory_format!r}; choose one of "
                         f"{', '.join(MEMORY_FORMATS)}")
    return passes if memory_format == "nchw" and tensor_cores else 0.0


def cnn_forward(shape: CnnShape, batch: int, act_bytes: float, w_bytes: float,
                transposes: float = 0.0) -> list[Op]:
    """Forward ops of a CNN for ``batch`` images; each layer one op. ``transposes`` > 0
    (:func:`nchw_transposes`) adds a memory-bound op after each convolution moving
    ``transposes / 3 x (input + output)`` bytes; the backward pass moves twice that (the rule
    for memory-bound kernels), so a step moves ``transposes x (input + output)`` more.

    What PyTorch keeps for backward: batch norm its input, (in-place) ReLU its output, a
    linear layer its input. A convolution's input is the previous ReLU's saved output (or the
    image), so it adds nothing; adds and pools add nothing either.
    """
    ops: list[Op] = []
    for layer in shape.layers:
        out_b = batch * layer.out_elements * act_bytes
        in_b = batch * layer.c_in * layer.h_in * layer.w_in * act_bytes
        if layer.kind in ("conv", "linear"):
            m = batch * layer.h_out * layer.w_out
            k = layer.c_in // layer.groups * layer.kernel**2
            op = gemm(layer.name, m, layer.c_out, k, act_bytes=act_bytes, w_bytes=w_bytes)
            saved = in_b if layer.kind == "linear" else 0.0
            op = replace(op, bytes=in_b + out_b + op.weight_bytes, saved_bytes=saved,
                         kind="conv" if layer.kind == "conv" else "gemm",
                         winograd=layer.kind == "conv" and layer.kernel == 3
                         and layer.stride == 1 and layer.groups == 1)
            ops.append(op)
            if transposes and layer.kind == "conv":
                moved = transposes / 3.0 * (in_b + out_b)
                ops.append(memory(layer.name + TRANSPOSE_SUFFIX, moved / 2, moved / 2))
        elif layer.kind == "pool":
            ops.append(memory(layer.name, in_b, out_b, saved=0.0))
        elif layer.kind == "add":
            ops.append(memory(layer.name, 2 * out_b, out_b))
        else:  # bn, relu
            ops.append(memory(layer.name, out_b, out_b, saved=out_b))
    return ops


def traced_forward(shape: TracedShape, batch: int, act_bytes: float, w_bytes: float,
                   transposes: float = 0.0) -> list[Op]:
    """Forward ops of a traced module (:mod:`rigwise.workload.from_torch`) for ``batch``.

    The trace counts elements; ``act_bytes`` and ``w_bytes`` give their size in the
    precision of the run. All ops count as outside repeated layers (no recomputation).
    ``transposes``: NCHW convolutions on tensor cores, as :func:`cnn_forward`.
    """
    ops: list[Op] = []
    for t in shape.ops:
        count = max(1, round(t.count.at(batch)))
        weight = t.weight_elems * w_bytes / count
        is_gemm = t.kind in ("gemm", "conv")
        ops.append(Op(
            t.name, t.kind, t.flop.at(batch) / count,
            t.act_elems.at(batch) * act_bytes / count + weight, count,
            round(t.m.at(batch)) if is_gemm else 0, round(t.n.at(batch)) if is_gemm else 0,
            round(t.k.at(batch)) if is_gemm else 0,
            saved_bytes=t.saved_elems.at(batch) * act_bytes / count, frozen=t.frozen,
            layer=False, weight_bytes=weight))
        if transposes and t.kind == "conv":
            moved = transposes / 3.0 * t.act_elems.at(batch) * act_bytes / count
            ops.append(memory(t.name + TRANSPOSE_SUFFIX, moved / 2, moved / 2, count=count,
                              layer=False))
    return ops
