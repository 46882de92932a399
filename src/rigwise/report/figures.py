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
from rigwise.model.efficiency import default_efficiency, engine_efficiency
from rigwise.model.estimate import InferConfig, TrainConfig
from rigwise.model.ops import Op, PassSpec, cnn_forward, transformer_forward
from rigwise.model.precision import train_precision, weight_format
from rigwise.model.roofline import Device, make_device, op_time
from rigwise.workload.schema import CnnShape, Model, TransformerShape

NF4_READ_BYTES = 0.516
"""Bytes read per NF4 weight when dequantising (4.127 bits, QLoRA; as in model.estimate)."""


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


def _train_ops(model: Model, gpu: Gpu, cfg: TrainConfig) -> tuple[Device, list[Op], str]:
    prec = train_precision(cfg.precision, gpu)
    dev = make_device(gpu, prec.matmul, default_efficiency())
    shape = model.shape
    if isinstance(shape, CnnShape):
        return dev, cnn_forward(shape, cfg.batch_size, prec.act_bytes,
                                prec.gemm_weight_bytes), prec.matmul
    if not isinstance(shape, TransformerShape):
        raise TypeError(f"no roofline for {type(shape).__name__} models")
    peft = cfg.task in ("lora", "qlora")
    seq = shape.image_tokens if shape.family in ("vit", "dit") else (
        cfg.seq_len or model.default_seq_len or min(shape.max_seq_len, 2048))
    spec = PassSpec(batch=cfg.batch_size, seq=seq, context=seq, act_bytes=prec.act_bytes,
                    w_bytes=prec.gemm_weight_bytes, causal=shape.family == "decoder",
                    fused_attention=True, lora_rank=cfg.lora_rank if peft else 0,
                    dequant_bytes=NF4_READ_BYTES if cfg.task == "qlora" else 0.0,
                    frozen=peft, training=True)
    return dev, transformer_forward(shape, spec), prec.matmul


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
        dev, fwd, precision = _train_ops(model, gpu, cfg)
        rows = _op_rows(dev, fwd, "forward")
    else:
        shape = model.shape
        if not isinstance(shape, TransformerShape):
            raise TypeError("inference rooflines need a transformer")
        fmt = weight_format(cfg.weights, gpu)
        eng = engine_efficiency(cfg.engine)
        dev = make_device(gpu, fmt.compute, default_efficiency(), memory_efficiency=eng.memory)
        precision = fmt.compute
        rows = []
        mid = cfg.prompt_tokens + cfg.output_tokens // 2
        for phase, seq, ctx in (("prefill", cfg.prompt_tokens, cfg.prompt_tokens),
                                ("decode", 1, mid)):
            spec = PassSpec(batch=cfg.batch_size, seq=seq, context=ctx, act_bytes=2.0,
                            w_bytes=fmt.bits_per_weight / 8.0, kv_bytes=cfg.kv_bytes,
                            causal=True, training=False)
            rows += _op_rows(dev, transformer_forward(shape, spec), phase)
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
