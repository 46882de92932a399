"""Model states beyond mixed precision: pure 16-bit training, the optimizer step inside the
backward pass, and paged (CUDA managed memory) optimizer states.

Each effect is one term (bytes per trainable parameter unless said otherwise):

* **Pure 16-bit** (``master_weights=False``): weights and gradients in the training dtype,
  2 B each, and no fp32 master copy (torchtune ``dtype: bf16``: the model is built in bf16
  and the optimizer updates the bf16 parameters). PyTorch's optimizers create their states
  with ``torch.zeros_like(param)``, so AdamW's two moments are 16-bit too (4 B) and SGD's
  momentum 2 B; bitsandbytes' 8-bit states stay 1 B per moment.
* **Optimizer step in backward** (``in_backward``): a post-accumulate-grad hook steps each
  parameter as soon as its gradient is complete and frees that gradient, so no full gradient
  buffer exists; the gradient memory is the largest single parameter tensor's gradient
  (PyTorch tutorial "How to save memory by fusing the optimizer step into the backward pass",
  ``register_post_accumulate_grad_hook``; torchtune ``optimizer_in_bwd``). A weight used by
  several chunks of a chunked loss (the LM head under torchtune's
  ``CEWithChunkedOutputLoss``) gets one gradient contribution per chunk; autograd's input
  buffer sums them, so the running sum and the newest contribution coexist: twice the
  tensor. Gradient clipping needs the norm of all gradients before any step and is not
  possible (the tutorial's caveat), so the step does not read the gradients a second time.
* **Paged optimizer states** (bitsandbytes ``PagedAdamW8bit``; docs "Paged optimizers"):
  states of tensors with at least 1e5 elements live in CUDA managed memory
  (``cudaMallocManaged``, bitsandbytes ``optim/optimizer.py`` ``get_state_buffer``); smaller
  ones are ordinary device tensors. Managed memory is not counted by PyTorch's caching
  allocator (``torch.cuda.max_memory_allocated``). It stays on the GPU while it fits beside
  the allocator's memory; otherwise the driver evicts pages to host memory to make room
  (CUDA driver API, ``cuMemPrefetchAsync``: "the Unified Memory driver may evict pages from
  other cuMemAllocManaged allocations"; device memory from ``cudaMalloc`` is never evicted).
  bitsandbytes prefetches each tensor's states before its update and synchronises the device
  after it (``Optimizer8bit.step``: ``prefetch_state``, ``update_step``,
  ``torch.cuda.synchronize()``), so the migration does not overlap the GPU's work. The
  states are visited in the same order every step; with less room than states, a
  least-recently-migrated eviction order keeps nothing for reuse (the cyclic-access case of
  LRU), so every paged byte ``S`` moves in and, written by the update, back out. Eviction
  (device to host) and prefetch (host to device) use opposite directions of the full-duplex
  PCIe link and separate copy engines; the step waits ``S / B`` with ``B`` the host link's
  pinned-copy rate per direction (:func:`host_copy_bytes_per_s`). Assumption, with its
  check: done one after the other (``2·S / B``) the torchtune Llama 3.1 8B full fine-tune on
  an RTX 4090 (15 GiB of paged states, 1650 tokens/s, 2.48 s per 4096-token step) would
  spend 1.27 s migrating, leaving 1.21 s for about 256 TFLOP of forward, recomputation and
  backward: above the card's 165 TFLOPS dense bf16 peak, so the directions overlap (or
  less moves); ``S / B`` is 0.64 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigwise.catalog.models import Gpu
from rigwise.errors import InputError
from rigwise.model.efficiency import overheads
from rigwise.model.step import pcie_lane_bytes_per_s
from rigwise.units import format_bytes
from rigwise.workload.params import attention_params, count_params, mlp_params, norm_params
from rigwise.workload.schema import CnnShape, TransformerShape

PAGED_MIN_ELEMENTS = 100_000
"""bitsandbytes pages only state buffers of tensors with at least 1e5 elements
(``Optimizer8bit.get_state_buffer``: ``p.numel() < 1e5`` gives an ordinary device tensor)."""

PAGED_OPTIMIZERS = ("paged_adamw8bit",)
"""Optimizer keys whose states are paged (CUDA managed memory)."""

PURE16_PRECISIONS = ("bf16", "fp16")
"""Precisions that can train without fp32 master weights."""


@dataclass(frozen=True, slots=True)
class TensorSizes:
    """Trainable parameters by tensor size (elements): ``total``; ``largest``, the largest
    single tensor; ``unpaged``, the parameters in tensors below :data:`PAGED_MIN_ELEMENTS`
    (norms, biases, small convolutions, LoRA adapters)."""

    total: float
    largest: float
    unpaged: float


@dataclass(frozen=True, slots=True)
class StateSetup:
    """How the model states are kept (see the module docstring): ``master_weights`` False
    is pure 16-bit; ``in_backward`` steps each parameter in backward; ``chunked_loss``: the
    LM head is applied per loss chunk; ``tensors`` is needed for ``in_backward`` and paged
    optimizers."""

    master_weights: bool = True
    in_backward: bool = False
    chunked_loss: bool = False
    tensors: TensorSizes | None = None


def check_options(*, master_weights: bool, in_backward: bool, optimizer: str, precision: str,
                  autocast: bool, gpus: int, traced: bool = False) -> None:
    """Reject combinations the model does not cover.

    Raises:
        InputError: pure 16-bit with a precision other than bf16/fp16 or with autocast; the
            step in backward, pure 16-bit or paged states on more than one GPU or for a
            traced module (whose tensor sizes are unknown).
    """
    if not master_weights and precision not in PURE16_PRECISIONS:
        raise InputError(f"training without master weights keeps weights in bf16 or fp16; "
                         f"got --precision {precision}")
    if not master_weights and autocast:
        raise InputError("--autocast runs over an fp32 model; it cannot train without "
                         "master weights")
    if uses_states(master_weights, in_backward, optimizer) and gpus > 1:
        raise InputError("pure 16-bit weights, the optimizer step in backward and paged "
                         "optimizer states are modelled on one GPU; use --gpus 1")
    if uses_states(master_weights, in_backward, optimizer) and traced:
        raise InputError("pure 16-bit weights, the optimizer step in backward and paged "
                         "optimizer states need a built-in model or a config.json, not a "
                         "traced module")


def uses_states(master_weights: bool, in_backward: bool, optimizer: str) -> bool:
    """True when a setup uses any term of this module (else mixed precision as before)."""
    return not master_weights or in_backward or optimizer in PAGED_OPTIMIZERS


def state_bytes_per_param(optimizer: str, master_weights: bool, table: dict[str, float]) -> float:
    """Optimizer-state bytes per parameter: ``table`` (fp32 states of mixed precision) with
    master weights; in pure 16-bit, PyTorch's AdamW and SGD keep their states in the
    parameter dtype (``zeros_like``): half the fp32 bytes; 8-bit states are unchanged."""
    fp32 = table[optimizer]
    if master_weights or optimizer not in ("adamw", "sgd"):
        return fp32
    return fp32 / 2.0


def step_bytes_per_param(optimizer: str, *, master_weights: bool, in_backward: bool,
                         table: dict[str, float], states: dict[str, float]) -> float:
    """Bytes the optimizer step moves per parameter: read weight, gradient and states, write
    weight and states, and (AdamW recipes) read the gradient again for the global-norm
    clipping. With master weights and no step in backward this is ``table``
    (:data:`rigwise.model.memory.OPTIMIZER_STEP_BYTES_PER_PARAM`), which the same accounting
    reproduces with 4-byte weights and gradients; pure 16-bit has 2-byte ones, and the step
    in backward cannot clip."""
    if master_weights and not in_backward:
        return table[optimizer]
    w = g = 4.0 if master_weights else 2.0
    s = state_bytes_per_param(optimizer, master_weights, states)
    clip = g if optimizer != "sgd" and not in_backward else 0.0
    return 2 * w + g + 2 * s + clip


def transformer_tensors(s: TransformerShape) -> TensorSizes:
    """Tensor sizes of a transformer's full parameter set: the largest of the embedding (and
    untied head), a learned position table, one MLP matrix and one attention projection;
    unpaged are the norms and biases (vectors of about ``hidden`` elements; every catalog
    model's are below 1e5)."""
    h, d = s.hidden, s.d_head
    largest = max(s.vocab * h, h * s.ffn_hidden, h * s.n_heads * d,
                  s.max_seq_len * h if s.position == "learned" else 0)
    mats = 3 if s.ffn_kind == "swiglu" else 2
    attn_w = 2 * h * s.n_heads * d + 2 * h * s.n_kv_heads * d
    per_layer = (2 * norm_params(s) + attention_params(s) - attn_w
                 + s.n_experts * (mlp_params(s) - mats * h * s.ffn_hidden)
                 + (6 * h if s.family == "dit" else 0))
    vectors = s.n_layers * per_layer + norm_params(s)
    return TensorSizes(float(count_params(s).total), float(largest), float(vectors))


def lora_tensors(s: TransformerShape, rank: int, targets: str, total: float,
                 head: bool = False) -> TensorSizes:
    """Tensor sizes of LoRA adapters (``A``: ``r x d_in``, ``B``: ``d_out x r``) on the query
    and value projections (``qv``) or every linear layer (``all``), and on the head with
    ``head``, as :func:`rigwise.model.estimate._lora_params` counts them."""
    h, d, a, g, f = s.hidden, s.d_head, s.n_heads, s.n_kv_heads, s.ffn_hidden
    if targets == "qv":
        dims = [(h, a * d), (h, g * d)]
    else:
        mlp = [(h, 2 * f), (f, h)] if s.ffn_kind == "swiglu" else [(h, f), (f, h)]
        dims = [(h, (a + 2 * g) * d), (a * d, h), *mlp]
    if head:
        dims.append((h, s.vocab))
    sizes = [rank * x for pair in dims for x in pair]
    small = total * sum(x for x in sizes if x < PAGED_MIN_ELEMENTS) / max(sum(sizes), 1)
    return TensorSizes(total, float(max(sizes)), small)


def cnn_tensors(s: CnnShape) -> TensorSizes:
    """Tensor sizes of a CNN: each conv/linear weight and bias, each batch norm's scale and
    shift."""
    sizes: list[int] = []
    for layer in s.layers:
        if layer.kind in ("conv", "linear"):
            k = layer.kernel ** 2 if layer.kind == "conv" else 1
            sizes.append(layer.c_in // layer.groups * layer.c_out * k)
            if layer.bias:
                sizes.append(layer.c_out)
        elif layer.kind == "bn":
            sizes += [layer.c_out, layer.c_out]
    return TensorSizes(float(sum(sizes)), float(max(sizes, default=0)),
                       float(sum(x for x in sizes if x < PAGED_MIN_ELEMENTS)))


def host_copy_bytes_per_s(gpu: Gpu) -> float:
    """Per-direction bytes/s of bulk copies between host memory and ``gpu``: the PCIe link's
    rate (catalog generation x lanes) times the pinned copy-engine efficiency of the data
    file (``[link] host_copy_efficiency``). Managed-memory prefetch and eviction move 2 MiB
    blocks with the copy engines; this rate is their upper bound (assumption: reached)."""
    gen, lanes = gpu.pcie_gen or 4, gpu.pcie_lanes or 16
    return pcie_lane_bytes_per_s(gen) * lanes * overheads().host_copy_efficiency


def paged_traffic_bytes(paged_bytes: float, host_bytes: float) -> float:
    """Bytes migrated per step in each direction of the host link: none while every paged
    byte stays on the GPU, else every paged byte (in, and back out; see the module
    docstring)."""
    return paged_bytes if host_bytes > 0 else 0.0


def paged_step(gpu: Gpu, paged_bytes: float, host_bytes: float) -> tuple[float, str | None]:
    """(seconds, note) of one step's paged-state migration on ``gpu``
    (:func:`paged_traffic_bytes` at :func:`host_copy_bytes_per_s`); no note without paged
    states."""
    if paged_bytes <= 0:
        return 0.0, None
    traffic = paged_traffic_bytes(paged_bytes, host_bytes)
    rate = host_copy_bytes_per_s(gpu)
    if traffic == 0:
        return 0.0, (f"paged optimizer states ({format_bytes(paged_bytes)}, CUDA managed "
                     "memory) stay on the GPU, outside the allocator's figure")
    return traffic / rate, (
        f"paged optimizer states ({format_bytes(paged_bytes)}) do not fit beside the rest "
        f"({format_bytes(host_bytes)} in host memory): every step moves them in and out "
        f"over PCIe, {format_bytes(traffic)} each way at up to {format_bytes(rate)}/s")
