"""Trace a PyTorch ``nn.Module`` on the meta device into a :class:`TracedShape`.

The module runs forward on ``meta`` tensors (shapes only: no memory is allocated and no
arithmetic is done), so a 70B-parameter model traces on a laptop. Three things are recorded:

* every ATen kernel the forward pass dispatches (a ``TorchDispatchMode``), classified as a
  GEMM (``mm``, ``addmm``, ``bmm``, ``baddbmm``), a convolution (implicit GEMM with
  ``M = N·H_out·W_out``, ``N = C_out/groups``, ``K = C_in/groups·k_h·k_w``; NVIDIA DL
  Performance guide, "Convolutional Layers"), fused attention (``_scaled_dot_product_*``), or
  a memory-bound kernel (everything else; views cost nothing);
* the FLOPs of the whole pass from ``torch.utils.flop_counter.FlopCounterMode``, PyTorch's own
  counter, which the per-kernel counts are checked against;
* the activations autograd saves for the backward pass (``torch.autograd.graph.
  saved_tensors_hooks``), excluding parameters.

The pass is traced at two batch sizes (2 and 3) and every quantity is stored as a linear function of
the batch, so an estimate at any batch size needs no torch. PyTorch is optional: importing
this module does not import torch; calling :func:`from_torch` does.
"""

from __future__ import annotations

import copy
import datetime as dt
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rigwise.errors import InputError, UnsupportedError
from rigwise.workload.schema import Lin, Model, ModelSource, TracedOp, TracedShape

_GEMMS = {"mm", "addmm", "bmm", "baddbmm", "_scaled_mm"}
_ATTENTION_PREFIX = "_scaled_dot_product_"
_FREE = {"_unsafe_view", "empty_like", "empty", "zeros_like", "detach", "lift_fresh",
         "alias", "_to_copy_meta"}


@dataclass
class _Raw:
    """One traced kernel at one batch size (element counts and FLOP)."""

    name: str
    kind: str
    flop: float
    act: float
    weight: float
    m: float = 0.0
    n: float = 0.0
    k: float = 0.0
    count: float = 1.0
    saved: float = 0.0
    frozen: bool = False


@dataclass
class _Trace:
    ops: list[_Raw] = field(default_factory=list)
    flop_counter: float = 0.0


def from_torch(module: Any, make_inputs: Callable[[int], Sequence[Any]] | Sequence[int], *,
               name: str, model_id: str | None = None, tokens_per_sample: int = 0) -> Model:
    """A :class:`Model` from a PyTorch module, traced on the meta device.

    Args:
        module: an ``nn.Module``. Build it under ``with torch.device("meta"):`` to avoid a
            copy; a module with real weights is deep-copied and the copy moved to meta.
        make_inputs: a function of the batch size returning the forward's positional inputs
            (create them on ``device="meta"``, e.g. ``torch.randint(0, V, (b, 512),
            device="meta")`` for token ids), or the shape of one float32 sample, e.g.
            ``(3, 224, 224)``.
        name: the name shown in reports; ``model_id`` defaults to it, lower-cased.
        tokens_per_sample: tokens per sample for language models (gives tokens/s).

    Returns:
        A model whose shape is a :class:`TracedShape`; parameters that do not require grad
        are frozen (no weight gradient, no optimizer state).

    Raises:
        UnsupportedError: PyTorch is not installed, or the forward pass changes its kernels
            with the batch size (data-dependent control flow).
        InputError: the module's forward fails on the given inputs.
    """
    try:
        with warnings.catch_warnings():  # torch warns when NumPy is absent; we do not use it
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
            import torch
    except ImportError:
        raise UnsupportedError("from_torch needs PyTorch: pip install torch==2.13.0") from None
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"from_torch takes an nn.Module, got {type(module).__name__}")
    meta = _on_meta(module, torch)
    inputs = _input_factory(make_inputs, torch)
    # batch 1 is special (its views are contiguous, so copies disappear); 2 and 3 are not
    one, two = _trace(meta, inputs, _B1, torch), _trace(meta, inputs, _B2, torch)
    if [o.name for o in one.ops] != [o.name for o in two.ops]:
        raise UnsupportedError(f"{name}: the forward pass runs different kernels at batch "
                               f"{_B1} and {_B2} (data-dependent control flow); it cannot be "
                               "traced")
    params = {id(p): p for p in meta.parameters()}.values()
    shape = TracedShape(
        ops=tuple(_linear(a, b) for a, b in zip(one.ops, two.ops, strict=True)),
        params=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        flop_counter=_lin(one.flop_counter, two.flop_counter),
        tokens_per_sample=tokens_per_sample)
    mid = model_id or name.lower().replace(" ", "-")
    return Model(id=mid, name=name, aliases=(), shape=shape,
                 source=ModelSource(title=f"traced nn.Module {type(module).__name__} "
                                    "(torch.utils.flop_counter on the meta device)",
                                    url="https://pytorch.org/docs/stable/meta.html",
                                    as_of=dt.date.today()))


def _on_meta(module: Any, torch: Any) -> Any:
    tensors = [*module.parameters(), *module.buffers()]
    if all(t.device.type == "meta" for t in tensors):
        return module
    return copy.deepcopy(module).to("meta")


def _input_factory(make_inputs: Callable[[int], Sequence[Any]] | Sequence[int],
                   torch: Any) -> Callable[[int], tuple[Any, ...]]:
    if callable(make_inputs):
        fn = make_inputs

        def call(b: int) -> tuple[Any, ...]:
            out = fn(b)
            return tuple(out) if isinstance(out, list | tuple) else (out,)
        return call
    sample = tuple(int(d) for d in make_inputs)
    if not sample or min(sample) <= 0:
        raise InputError(f"a sample shape needs positive sizes, got {sample}")
    return lambda b: (torch.empty((b, *sample), device="meta"),)


def _trace(module: Any, inputs: Callable[[int], tuple[Any, ...]], batch: int,
           torch: Any) -> _Trace:
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    trace = _Trace()
    param_ids = {id(p) for p in module.parameters()}
    frozen_ids = {id(p) for p in module.parameters() if not p.requires_grad}
    seen: set[int] = set()
    keep: list[Any] = []

    def is_param(t: Any) -> bool:
        while t is not None:
            if id(t) in param_ids:
                return True
            t = t._base
        return False

    def root(t: Any) -> Any:
        while t._base is not None:
            t = t._base
        return t

    suppress = [0]

    class Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            if not suppress[0]:
                raw = _classify(func, args, kwargs, out, is_param, frozen_ids, torch)
                if raw is not None:
                    trace.ops.append(raw)
            return out

    class FusedAttention(TorchFunctionMode):
        """Counts ``F.scaled_dot_product_attention`` as one fused kernel, as it runs on a
        GPU (FlashAttention keeps Q, K, V, O and the log-sum-exp, not the s² scores); on
        the meta device PyTorch would decompose it into its math path."""

        def __torch_function__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is not torch.nn.functional.scaled_dot_product_attention:
                return func(*args, **kwargs)
            suppress[0] += 1
            try:
                out = func(*args, **kwargs)
            finally:
                suppress[0] -= 1
            q, k, v = args[:3]
            causal = bool(kwargs.get("is_causal", args[5] if len(args) > 5 else False))
            flop = 4.0 * q[..., 0, 0].numel() * q.shape[-2] * k.shape[-2] * q.shape[-1]
            raw = _Raw("scaled_dot_product_attention", "attention",
                       flop / 2 if causal else flop,
                       float(q.numel() + k.numel() + v.numel() + out.numel()), 0.0)
            for t in (q, k, v, out):
                if id(root(t)) not in seen:
                    seen.add(id(root(t)))
                    keep.append(root(t))
                    raw.saved += root(t).numel()
            trace.ops.append(raw)
            return out

    def pack(t: Any) -> Any:
        if suppress[0] or is_param(t) or id(root(t)) in seen or not trace.ops:
            return t
        seen.add(id(root(t)))
        keep.append(root(t))
        trace.ops[-1].saved += root(t).numel()
        return t

    args = inputs(batch)
    counter = FlopCounterMode(display=False)
    try:
        with (counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
              FusedAttention(), Recorder()):  # type: ignore[no-untyped-call]
            module(*args)
    except Exception as exc:  # the user's forward failing is bad input, said in one line
        raise InputError(f"the module's forward failed on the example inputs at batch "
                         f"{batch}: {type(exc).__name__}: {exc}") from exc
    trace.flop_counter = float(counter.get_total_flops())
    return trace


def _elems(x: Any, torch: Any) -> float:
    if isinstance(x, torch.Tensor):
        return float(x.numel())
    if isinstance(x, list | tuple):
        return sum(_elems(y, torch) for y in x)
    return 0.0


def _classify(func: Any, args: Any, kwargs: Any, out: Any, is_param: Callable[[Any], bool],
              frozen_ids: set[int], torch: Any) -> _Raw | None:
    name = func.overloadpacket.__name__
    if func.is_view or name in _FREE:
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    weights = [t for t in tensors if is_param(t)]
    w = float(sum(t.numel() for t in weights))
    act = sum(_elems(t, torch) for t in tensors if not is_param(t)) + _elems(out, torch)
    frozen = bool(weights) and all(_root_id(t) in frozen_ids for t in weights)
    if name in _GEMMS:
        a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
        count = float(a.shape[0]) if a.dim() == 3 else 1.0
        m, k, n = float(a.shape[-2]), float(a.shape[-1]), float(b.shape[-1])
        return _Raw(name, "gemm", 2.0 * m * n * k * count, act, w, m, n, k, count,
                    frozen=frozen)
    if name == "convolution":
        wt, groups = args[1], int(args[8])
        o = out[0] if isinstance(out, tuple) else out
        m = float(o.shape[0] * o[0, 0].numel())
        n, k = float(wt.shape[0] // groups), float(wt[0].numel())
        return _Raw(name, "conv", 2.0 * m * n * k * groups, act, w, m, n, k, float(groups),
                    frozen=frozen)
    if name.startswith(_ATTENTION_PREFIX):
        q, key = args[0], args[1]
        heads, s_q, d = q.shape[-3], q.shape[-2], q.shape[-1]
        s_kv = key.shape[-2]
        flop = 4.0 * q.shape[0] * heads * s_q * s_kv * d
        if _argument(func, args, kwargs, "is_causal") is True:
            flop /= 2
        return _Raw(name, "attention", flop, act, w)
    return _Raw(name, "memory", 0.0, act, w, frozen=frozen)


def _argument(func: Any, args: Any, kwargs: Any, key: str) -> Any:
    """The value of the schema argument ``key`` of an ATen call, or None."""
    if kwargs and key in kwargs:
        return kwargs[key]
    names = [a.name for a in func._schema.arguments]
    return args[names.index(key)] if key in names and names.index(key) < len(args) else None


def _root_id(t: Any) -> int:
    while t._base is not None:
        t = t._base
    return id(t)


_B1, _B2 = 2, 3
"""The two batch sizes traced."""


def _lin(v1: float, v2: float) -> Lin:
    per = (v2 - v1) / (_B2 - _B1)
    return Lin(base=v1 - per * _B1, per_sample=per)


def _linear(a: _Raw, b: _Raw) -> TracedOp:
    return TracedOp(name=a.name, kind=a.kind,  # type: ignore[arg-type]
                    flop=_lin(a.flop, b.flop), act_elems=_lin(a.act, b.act),
                    weight_elems=a.weight, m=_lin(a.m, b.m), n=_lin(a.n, b.n),
                    k=_lin(a.k, b.k), count=_lin(a.count, b.count),
                    saved_elems=_lin(a.saved, b.saved), frozen=a.frozen)
