"""The data behind the charts, as plain JSON-ready dicts (no plotting library needed).

* :func:`roofline_data`: the roofline of one GPU (Williams, Waterman & Patterson, "Roofline:
  an insightful visual performance model", CACM 2009) with the workload's operations placed
  on it: arithmetic intensity ``I = flop / bytes`` (FLOP/byte) on x, attained FLOP/s
  ``flop / t_op`` on y, where ``t_op`` is the time model's op time
  (:func:`rigwise.model.roofline.op_time`). The roof is ``min(peak, bandwidth · I)`` with the
  datasheet peak of the GEMM precision and the datasheet memory bandwidth.
* :func:`pareto_front`: the options no other option beats on both price and throughput.

The ops are rebuilt the way :mod:`rigwise.model.estimate` builds them (same ``PassSpec``,
precision and device), forward pass for training, prefill and decode for inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rigwise.catalog.models import Gpu
from rigwise.model.estimate import TrainConfig, train_forward_ops
from rigwise.model.infer import InferConfig, infer_pass_ops
from rigwise.model.ops import Op
from rigwise.model.precision import train_precision, weight_format
from rigwise.model.roofline import Device, op_time
from rigwise.workload.schema import Model, TracedShape, TransformerShape


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points on the price/throughput Pareto front, cheapest first.

    ``points`` are ``(price, throughput)`` pairs. A point is on the front when no other point
    costs at most as much and delivers strictly more throughput (or the same throughput for
    strictly less money).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _op_rows(dev: Device, ops: Sequence[Op], phase: str) -> list[dict[str, Any]]:
    rows = []
    for op in ops:
        t, compute_bound = op_time(dev, op)
        rows.append({
            "name": op.name, "phase": phase, "kind": op.kind, "count": op.count,
            "flop": op.flop, "bytes": op.bytes,
            "intensity_flop_per_byte": op.flop / op.bytes if op.bytes else None,
            "attained_flop_per_s": op.flop / t if t and op.flop else None,
            "time_s": t * op.count,
            "bound": "compute" if compute_bound else "memory",
        })
    return rows


def roofline_data(model: Model, gpu: Gpu, cfg: TrainConfig | InferConfig) -> dict[str, Any]:
    """The roofline of ``gpu`` and the ops of ``model`` under ``cfg`` placed on it.

    Returns a dict with ``gpu``, ``precision``, ``peak_flop_per_s`` (dense datasheet peak of
    the GEMM precision, FLOP/s), ``memory_bytes_per_s`` (datasheet bandwidth, bytes/s),
    ``ridge_flop_per_byte`` and ``ops``: one row per op with ``intensity_flop_per_byte``,
    ``attained_flop_per_s`` (None for kernels without matmul FLOPs), ``time_s`` (all its
    instances, seconds), ``phase`` and ``bound``.

    Raises:
        UnsupportedError: a precision or weight format the device cannot run.
        TypeError: a model kind without an op list (traced modules).
    """
    if isinstance(cfg, TrainConfig):
        if isinstance(model.shape, TracedShape):
            raise TypeError("no roofline for traced modules")
        dev, fwd = train_forward_ops(model, gpu, cfg)
        precision = train_precision(cfg.precision, gpu).matmul
        rows = _op_rows(dev, fwd, "forward")
    else:
        if not isinstance(model.shape, TransformerShape):
            raise TypeError("inference rooflines need a transformer")
        dev, passes = infer_pass_ops(model, gpu, cfg)
        precision = weight_format(cfg.weights, gpu).compute
        rows = [row for phase, ops in passes.items() for row in _op_rows(dev, ops, phase)]
    peak = gpu.peak(precision)
    bw = gpu.memory_bandwidth_bytes_per_s
    return {"gpu": gpu.id, "gpu_name": gpu.name, "model": model.id, "precision": precision,
            "peak_flop_per_s": peak, "memory_bytes_per_s": bw,
            "ridge_flop_per_byte": peak / bw, "ops": rows}


def roofline_for_result(e: dict[str, Any]) -> dict[str, Any] | None:
    """The roofline data of an ``estimate train|infer --json`` result, rebuilt from the
    built-in catalog; None when its model or GPU is not built in or it has no op list."""
    from rigwise.catalog.load import catalog
    from rigwise.errors import RigwiseError
    from rigwise.workload.models import builtin_models

    model = builtin_models().get(str(e.get("model")))
    gpu = catalog().gpus.get(str(e.get("gpu")))
    if model is None or gpu is None:
        return None
    cfg: TrainConfig | InferConfig
    try:
        if "prefill" in e:
            cfg = InferConfig(weights=e["weights"], batch_size=int(e["batch_size"]),
                              prompt_tokens=int(e["prompt_tokens"]),
                              output_tokens=int(e["output_tokens"]), engine=e["engine"],
                              gpus=int(e.get("gpus", 1)))
        else:
            cfg = TrainConfig(task=e["task"], precision=e["precision"],
                              batch_size=int(e["batch_size"]), seq_len=e.get("seq_len"),
                              gpus=int(e.get("gpus", 1)))
        return roofline_data(model, gpu, cfg)
    except (KeyError, TypeError, ValueError, RigwiseError):
        return None
