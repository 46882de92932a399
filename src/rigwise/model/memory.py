"""Memory per GPU: weights, gradients, optimizer states, activations, KV cache, overheads.

Bytes per parameter (perf-models.md §7.4):
  * fp32 / tf32 training with AdamW: 4 (weights) + 4 (gradients) + 8 (m, v) = 16;
  * fp16 / bf16 mixed precision: fp32 weights 4 + a 16-bit working copy 2 + fp32 gradients 4
    + AdamW 8 = 18 (Megatron-LM's accounting, Narayanan et al. 2021; PyTorch AMP keeps fp32
    weights and caches the 16-bit casts); fp8 adds a 1-byte copy instead of 2;
  * optimizers: AdamW 8 (two fp32 moments), 8-bit AdamW 2 (Dettmers et al. 2022, "8-bit
    Optimizers via Block-wise Quantization"), SGD with momentum 4;
  * LoRA (Hu et al. 2021): frozen 16-bit base weights, ``r·(d_in + d_out)`` trainable
    parameters per adapted matrix at 16 B each (fp32 weight, gradient, AdamW moments);
  * QLoRA (Dettmers et al. 2023): linear weights in NF4 with double quantisation,
    4.127 bits/weight; without it (bitsandbytes ``compress_statistics=False``, LitGPT's
    ``bnb.nf4``) each 64-weight block keeps an fp32 absmax, 4 + 32/64 = 4.5 bits/weight
    (bitsandbytes ``functional.quantize_4bit``, blocksize 64); embeddings, head and norms stay
    16-bit. bitsandbytes' ``MatMul4Bit`` dequantises the weight for each GEMM and frees it
    (one matrix as a transient buffer); it saves the 16-bit input and the 4-bit weight for
    backward (``ctx.tensors = (A, B)``), as a LoRA layer's adapter needs that input anyway;
  * activations: the ``saved_bytes`` of the forward ops (Korthikanti et al. 2022); with full
    activation checkpointing only each layer's input stays, plus the larger of the head's
    saved tensors and one layer's activations while it is recomputed;
  * KV cache: ``2·L·g·d·bytes`` per token (perf-models.md §7.5);
  * framework: CUDA context and workspaces, and allocator slack (data file ``[memory]``);
  * pure 16-bit weights, the optimizer step inside backward and paged (CUDA managed memory)
    optimizer states: :mod:`rigwise.model.model_states`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigwise.model.efficiency import overheads
from rigwise.model.model_states import (
    PAGED_OPTIMIZERS,
    StateSetup,
    state_bytes_per_param,
    uses_states,
)
from rigwise.model.ops import Op
from rigwise.model.precision import NF4_BITS_PER_WEIGHT

NF4_BITS_NO_DOUBLE_QUANT = 4.5
"""NF4 without double quantisation: 4 bits + one fp32 absmax per 64-weight block
(bitsandbytes ``functional.quantize_4bit`` with ``blocksize=64, compress_statistics=False``)."""

OPTIMIZER_BYTES_PER_PARAM = {"adamw": 8.0, "adamw8bit": 2.0, "paged_adamw8bit": 2.0,
                             "sgd": 4.0}
"""Optimizer-state bytes per trainable parameter (fp32 AdamW moments, 8-bit AdamW paged or
not, momentum)."""

OPTIMIZER_STEP_BYTES_PER_PARAM = {"adamw": 32.0, "adamw8bit": 20.0, "paged_adamw8bit": 20.0,
                                  "sgd": 20.0}
"""Bytes the optimizer step reads and writes per trainable parameter, as one memory-bound pass
over the states (the same keys as :data:`OPTIMIZER_BYTES_PER_PARAM`):

* AdamW (Loshchilov & Hutter 2019; one fused kernel, as ``torch.optim.AdamW(fused=True)``):
  reads the fp32 weight, gradient and moments ``m``, ``v`` (4 x 4 = 16 B), writes weight,
  ``m`` and ``v`` (12 B), plus one read of the fp32 gradients for the global-norm clipping of
  LLM recipes (4 B): 32;
* 8-bit AdamW (Dettmers et al. 2022): the same with 1-byte moments (block scales negligible):
  reads 4 + 4 + 1 + 1, writes 4 + 1 + 1, clipping 4: 20 (paged or not: the same kernel);
* SGD with momentum (the CNN recipes, no clipping): reads weight, gradient, momentum (12 B),
  writes weight and momentum (8 B): 20.
"""


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    """Bytes per GPU by kind; ``capacity_bytes`` is the device memory. ``paged_bytes``:
    optimizer states in CUDA managed memory (paged optimizers), outside the PyTorch
    allocator and not in :attr:`per_gpu_bytes` or :attr:`fits`: they use the GPU memory
    left free and live in host memory beyond it. ``held_bytes``: the part of
    ``activations_bytes`` that the previous micro-batch still holds (its graph outlives its
    backward; :func:`rigwise.model.litgpt.litgpt_qlora`); a step after a shorter
    micro-batch, or the first one, holds less."""

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    kv_cache_bytes: float
    overhead_bytes: float
    capacity_bytes: float
    paged_bytes: float = 0.0
    held_bytes: float = 0.0

    @property
    def per_gpu_bytes(self) -> float:
        """Total bytes one GPU needs."""
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
                + self.activations_bytes + self.kv_cache_bytes + self.overhead_bytes)

    @property
    def fits(self) -> bool:
        """True if the total fits in the device memory."""
        return self.per_gpu_bytes <= self.capacity_bytes

    @property
    def paged_resident_bytes(self) -> float:
        """Paged bytes that stay on the GPU: as much as the memory left free holds."""
        return min(self.paged_bytes, max(0.0, self.capacity_bytes - self.per_gpu_bytes))

    @property
    def paged_host_bytes(self) -> float:
        """Paged bytes that do not fit beside the rest and live in host memory between
        their uses."""
        return self.paged_bytes - self.paged_resident_bytes


def framework_overhead_bytes(activations: float, gradients: float) -> float:
    """The CUDA context and workspaces plus the caching allocator's slack, a fraction of the
    activations and gradients (the data file's ``[memory]``). Neither is counted by
    ``torch.cuda.max_memory_allocated``."""
    o = overheads()
    return o.cuda_context_bytes + o.fragmentation * (activations + gradients)


def weights_bytes_train(task: str, precision: str, params: float, linear_params: float,
                        lora_params: float, nf4_bits: float = NF4_BITS_PER_WEIGHT) -> float:
    """Bytes of model weights for training tasks (see the module docstring); ``nf4_bits``:
    bits per QLoRA base weight (4.127 with double quantisation, 4.5 without)."""
    if task in ("train", "finetune"):
        extra = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0}.get(precision, 0.0)
        return params * (4.0 + extra)
    base = 4.0 if precision in ("fp32", "tf32") else 2.0
    if task == "lora":
        return params * base + lora_params * 4.0
    # qlora: NF4 linear weights, the rest 16-bit
    nf4 = linear_params * nf4_bits / 8.0
    return nf4 + (params - linear_params) * base + lora_params * 4.0


def activation_bytes(forward: list[Op], *, checkpointing: bool, layer_input_bytes: float,
                     n_layers: int) -> float:
    """Activation bytes kept for backward from the forward ops.

    With checkpointing, layer ops keep only ``layer_input_bytes`` per layer; the backward pass
    first runs the head and loss (their saved tensors, e.g. the logits, are then freed) and
    only afterwards recomputes the layers one at a time, so the peak holds the layer inputs
    plus the larger of the head's saved tensors and one recomputed layer's activations
    (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost", §3: the peak of a
    checkpointed graph is the checkpoints plus the largest segment being recomputed).
    """
    outside = sum(op.saved_bytes * op.count for op in forward if not op.layer)
    inside = sum(op.saved_bytes * op.count for op in forward if op.layer)
    if not checkpointing:
        return outside + inside
    return layer_input_bytes * n_layers + max(outside, inside / max(n_layers, 1))


def train_memory(*, task: str, precision: str, optimizer: str, params: float,
                 linear_params: float, lora_params: float, forward: list[Op],
                 checkpointing: bool, layer_input_bytes: float, n_layers: int,
                 capacity_bytes: float, shard: int = 1, dequant_buffer_bytes: float = 0.0,
                 nf4_bits: float = NF4_BITS_PER_WEIGHT,
                 states: StateSetup | None = None, held_bytes: float = 0.0) -> MemoryBreakdown:
    """Memory of one GPU for a training step.

    ``held_bytes``: activation bytes of the previous micro-batch still held at this one's
    peak (LitGPT's QLoRA under bitsandbytes before 0.43.2,
    :func:`rigwise.model.litgpt.litgpt_qlora`).

    ``shard`` > 1 divides weights, gradients and optimizer states over that many GPUs (ZeRO-3 /
    FSDP; Rajbhandari et al. 2020), keeping one gathered layer as a buffer. ``states``: pure
    16-bit weights, the step in backward, paged states (:func:`_model_states`; one GPU).
    """
    trainable = lora_params if task in ("lora", "qlora") else params
    weights = weights_bytes_train(task, precision, params, linear_params, lora_params,
                                  nf4_bits)
    grads = trainable * 4.0
    opt = trainable * OPTIMIZER_BYTES_PER_PARAM[optimizer]
    paged = 0.0
    if states is not None and uses_states(states.master_weights, states.in_backward,
                                          optimizer):
        weights, grads, opt, paged = _model_states(
            task, optimizer, states, weights, trainable, params if task in ("train", "finetune")
            else lora_params)
    if shard > 1:
        gathered = weights / max(n_layers, 1) * 2  # current and prefetched layer
        weights, grads, opt = weights / shard + gathered, grads / shard, opt / shard
    acts = activation_bytes(forward, checkpointing=checkpointing,
                            layer_input_bytes=layer_input_bytes, n_layers=n_layers) + held_bytes
    overhead = framework_overhead_bytes(acts, grads) + dequant_buffer_bytes
    return MemoryBreakdown(weights, grads, opt, acts, 0.0, overhead, capacity_bytes, paged,
                           held_bytes)


def _model_states(task: str, optimizer: str, states: StateSetup, weights: float,
                  trainable: float, master_params: float) -> tuple[float, float, float, float]:
    """(weights, gradients, device optimizer states, paged states) bytes with the terms of
    :mod:`rigwise.model.model_states`: pure 16-bit drops the fp32 master copy (2 of the 6
    bytes of a mixed-precision weight; LoRA adapters 2 B instead of 4) and halves gradients
    and PyTorch optimizer states; the step in backward keeps only the largest tensor's
    gradient (twice for the LM head of a chunked loss); paged states of tensors of at
    least 1e5 elements leave the allocator."""
    pure = not states.master_weights
    if pure:
        weights -= master_params * (4.0 if task in ("train", "finetune") else 2.0)
    grad_bytes = 2.0 if pure else 4.0
    grads = trainable * grad_bytes
    tensors = states.tensors
    if states.in_backward:
        assert tensors is not None, "the step in backward needs the tensor sizes"
        grads = min(grads, tensors.largest * grad_bytes * (2.0 if states.chunked_loss
                                                            else 1.0))
    per_param = state_bytes_per_param(optimizer, states.master_weights,
                                      OPTIMIZER_BYTES_PER_PARAM)
    if optimizer not in PAGED_OPTIMIZERS:
        return weights, grads, trainable * per_param, 0.0
    assert tensors is not None, "paged states need the tensor sizes"
    unpaged = min(trainable, tensors.unpaged)
    return weights, grads, unpaged * per_param, (trainable - unpaged) * per_param


def kv_cache_bytes(*, n_layers: int, n_kv_heads: int, head_dim: int, tokens: float,
                   bytes_per_element: float) -> float:
    """KV-cache bytes for ``tokens`` cached tokens (all sequences): ``2·L·g·d·bytes·tokens``."""
    return 2.0 * n_layers * n_kv_heads * head_dim * bytes_per_element * tokens


def infer_memory(*, weights: float, kv_cache: float, peak_activation: float,
                 capacity_bytes: float) -> MemoryBreakdown:
    """Memory of one GPU for inference: weights, KV cache, the prefill's transient tensors."""
    o = overheads()
    overhead = o.cuda_context_bytes + o.fragmentation * peak_activation
    return MemoryBreakdown(weights, 0.0, 0.0, peak_activation, kv_cache, overhead,
                           capacity_bytes)
