"""The optimizer step as its implementation runs it: one fused multi-tensor kernel (the
default), multi-tensor ``foreach`` ops, or a Python loop over the parameter tensors.

* ``fused`` (``torch.optim.AdamW(fused=True)``, apex ``FusedAdam``): one memory-bound pass
  over the states, :data:`rigwise.model.memory.OPTIMIZER_STEP_BYTES_PER_PARAM`, one launch.
* ``foreach`` (``torch._foreach_*`` ops, PyTorch's default for CUDA tensors since 2.0):
  ``k`` multi-tensor ops, each a separate elementwise pass over the states (``bytes_per_param``
  counted from the source), each launched ``max(⌈T / tensors_per_launch⌉,
  ⌈P / elements_per_launch⌉)`` times (PyTorch ``MultiTensorApply.cuh``), at the device's
  launch cost per kernel.
* ``for-loop`` (``torch.optim.AdamW(foreach=False)``), ``transformers`` (Hugging Face
  ``AdamW`` with the Trainer's per-tensor clipping and ``zero_grad``), ``bertadam``
  (DeepLearningExamples BERT ``BertAdam``): ``k`` eager ops for each of the ``T`` parameter
  tensors, each costing the host ``t_op`` seconds of Python, dispatcher and launch (the data
  file's ``[host] eager_op_s``, from a published profile of the per-tensor Adam step). The
  GPU runs the queued kernels while the CPU issues the next ones, so the step takes
  ``max(k·T·t_op, P·bytes_per_param / (B·η))`` (roofline of the GPU part, as every
  memory-bound op): a bias or LayerNorm tensor's kernels take a few microseconds, less than
  the host needs to issue them, so the GPU waits; a weight matrix's take longer and the CPU
  runs ahead. The host time above the GPU's is reported as launch overhead. The training
  loops these rows come from synchronise with the host before the step (loss ``.item()``,
  GradScaler's inf check, the Trainer's NaN filter), so the step does not hide behind the
  backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rigwise.errors import InputError, UnsupportedError
from rigwise.model.efficiency import eager_op_s, optimizer_impl_values
from rigwise.model.memory import OPTIMIZER_STEP_BYTES_PER_PARAM
from rigwise.model.ops import memory
from rigwise.model.roofline import Device
from rigwise.model.step import TimeShares, time_ops
from rigwise.units import format_duration
from rigwise.workload.params import count_param_tensors
from rigwise.workload.schema import CnnShape, Model, TracedShape, TransformerShape

OPTIMIZER_IMPLS = ("fused", "foreach", "for-loop", "transformers", "bertadam")
"""Optimizer step implementations (``--optimizer-impl``)."""


@dataclass(frozen=True, slots=True)
class OptimizerStep:
    """Time of one optimizer step on one GPU. ``host_s``: CPU seconds spent issuing it (0 for
    ``fused``); ``tensors``: parameter tensors the step iterates over; ``ops_per_tensor``:
    eager ops per tensor (for-loop implementations; 0 otherwise)."""

    shares: TimeShares
    host_s: float = 0.0
    tensors: int = 0
    ops_per_tensor: float = 0.0


def check_impl(impl: str, optimizer: str) -> None:
    """Raise :class:`InputError` for an unknown implementation, :class:`UnsupportedError` for
    one with no data for ``optimizer`` (``transformers``/``bertadam`` are AdamW only)."""
    if impl not in OPTIMIZER_IMPLS:
        raise InputError(f"unknown optimizer implementation {impl!r}; choose one of "
                         f"{', '.join(OPTIMIZER_IMPLS)}")
    if impl != "fused" and optimizer_impl_values(impl, optimizer) is None:
        raise UnsupportedError(f"optimizer implementation {impl} is not modelled for "
                               f"{optimizer}; use --optimizer-impl fused")


def trainable_tensors(model: Model, *, task_head: bool, lora_matrices: int = 0) -> int:
    """Parameter tensors the optimizer steps: every tensor of the model
    (:func:`rigwise.workload.params.count_param_tensors`; CNNs: a weight per convolution and
    linear layer, a bias where it has one, scale and shift per batch norm), or with LoRA the
    ``A`` and ``B`` matrices of each of ``lora_matrices`` adapted matrices.

    Raises:
        UnsupportedError: a traced module or a DiT (no parameter list to count).
    """
    if lora_matrices:
        return 2 * lora_matrices
    shape = model.shape
    if isinstance(shape, CnnShape):
        return sum((1 + int(layer.bias)) if layer.kind in ("conv", "linear") else
                   2 if layer.kind == "bn" else 0 for layer in shape.layers)
    if isinstance(shape, TracedShape) or shape.family == "dit":
        raise UnsupportedError(f"the parameter tensors of {model.name} are not known; a "
                               "per-tensor optimizer cost needs them (use --optimizer-impl "
                               "fused)")
    return count_param_tensors(shape, task_head=task_head)


def lora_matrix_count(shape: TransformerShape, targets: str) -> int:
    """Adapted matrices of a LoRA setup: query and value per layer (``qv``) or every linear
    layer, all experts (``all``)."""
    mats = 3 if shape.ffn_kind == "swiglu" else 2
    per_layer = 2 if targets == "qv" else 4 + shape.n_experts * mats
    return shape.n_layers * per_layer


def optimizer_step(dev: Device, *, impl: str, optimizer: str, params: float, tensors: int,
                   shard: int = 1, fused_bytes: float | None = None) -> OptimizerStep:
    """Time of one optimizer step over ``params`` trainable parameters in ``tensors``
    tensors, sharded ``shard`` ways (module docstring for the three forms). ``fused_bytes``:
    bytes per parameter of the fused step (default: mixed precision's
    ``OPTIMIZER_STEP_BYTES_PER_PARAM``).

    Raises:
        InputError / UnsupportedError: as :func:`check_impl`.
    """
    check_impl(impl, optimizer)
    if impl == "fused":
        opt_bytes = (OPTIMIZER_STEP_BYTES_PER_PARAM[optimizer] if fused_bytes is None
                     else fused_bytes)
        op = memory("optimizer_step", params * opt_bytes * 0.6 / shard,
                    params * opt_bytes * 0.4 / shard, layer=False)
        return OptimizerStep(time_ops(dev, [op], dev.eff.launch_s))
    v = optimizer_impl_values(impl, optimizer)
    assert v is not None  # check_impl
    local = params / shard
    gpu = time_ops(dev, [memory("optimizer_step", local * v["bytes_per_param"], 0.0,
                                layer=False)], 0.0)
    if impl == "foreach":
        launches = max(math.ceil(tensors / v["tensors_per_launch"]),
                       math.ceil(local / v["elements_per_launch"]), 1)
        launch_s = v["ops"] * launches * dev.eff.launch_s
        return OptimizerStep(TimeShares(gpu.compute_s, gpu.memory_s, launch_s),
                             host_s=launch_s, tensors=tensors)
    host = tensors * v["ops_per_tensor"] * eager_op_s()
    waiting = max(0.0, host - gpu.compute_s - gpu.memory_s)
    return OptimizerStep(TimeShares(gpu.compute_s, gpu.memory_s, waiting), host_s=host,
                         tensors=tensors, ops_per_tensor=v["ops_per_tensor"])


def describe(step: OptimizerStep, impl: str) -> str:
    """One line for the assumptions: what the step's implementation costs on the host."""
    if impl == "foreach":
        return f"optimizer step as multi-tensor foreach ops over {step.tensors} tensors"
    return (f"optimizer step {impl}: {step.tensors} parameter tensors x "
            f"{step.ops_per_tensor:g} eager ops x {format_duration(eager_op_s())} of CPU = "
            f"{format_duration(step.host_s)} (--optimizer-impl)")
