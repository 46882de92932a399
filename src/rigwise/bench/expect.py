"""Each measured figure next to the catalog's peak and the model's prediction, with a verdict.

* **Peak**: GEMM and attention against ``Gpu.peak(precision)`` (dense); memory copies against
  ``Gpu.memory_bandwidth_bytes_per_s``; host<->device copies against the PCIe link (per lane
  per direction from the catalog's interconnect data, times the lanes; the link read under
  load when telemetry saw it); P2P copies and collective busbw against the scale-up fabric
  per direction (NVLink) or PCIe.
* **Prediction**: what :mod:`rigwise.model` predicts for the same work on that GPU (roofline
  GEMM time with wave quantisation, attention efficiency, ``estimate_train`` /
  ``estimate_infer`` for the model steps at their full sizes).
* **Verdict**: against the healthy band of ``catalog/data/bench/bands.toml``: ``ok``,
  ``warn``, ``fail``, ``suspect`` (above the peak) or ``n/a`` (nothing to compare with).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, replace
from typing import Any

from rigwise import units
from rigwise.bench.measurement import Measurement
from rigwise.bench.suites.collectives import busbw
from rigwise.catalog.load import DATA_DIR, catalog
from rigwise.catalog.models import Gpu
from rigwise.errors import InputError

_ACT_BYTES = {"fp32": 4.0, "tf32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0}
_WEIGHTS = {"fp32": "f32", "tf32": "f32", "fp16": "f16", "bf16": "bf16"}


@dataclass(frozen=True, slots=True)
class Comparison:
    """One figure against its references. Rates in the measurement's unit (SI).

    ``fraction_of_peak``/``fraction_of_model`` are ratios (0.8 = 80%); ``reference`` the
    healthy fraction of peak for this kind; ``reasons``: why the verdict is what it is.
    """

    name: str
    kind: str
    metric: str
    value: float
    peak: float | None
    peak_what: str | None
    fraction_of_peak: float | None
    predicted: float | None
    fraction_of_model: float | None
    reference: float | None
    verdict: str
    reasons: tuple[str, ...] = ()


@functools.cache
def bands() -> dict[str, Any]:
    """The bands data file, parsed."""
    with (DATA_DIR / "bench" / "bands.toml").open("rb") as fh:
        return tomllib.load(fh)


def _threshold(name: str) -> float:
    return float(bands()["thresholds"][name]["value"])


def reference_fraction(key: str) -> float | None:
    """Healthy fraction of peak for a band key (``gemm_bf16``, ``memory_copy``, ...)."""
    item = bands()["reference"].get(key)
    return None if item is None else float(item["value"])


def pcie_bytes_per_s(gen: int, lanes: int) -> float | None:
    """Per-direction PCIe bandwidth of a ``gen`` x ``lanes`` link (catalog data)."""
    for link in catalog().interconnects["pcie"].generation:
        if link.name == f"PCIe {gen}.0":
            return units.gb_per_s_to_bytes_per_s(link.gb_per_s_per_direction) * lanes
    return None


def _pcie(gpu: Gpu, m: Measurement) -> tuple[float | None, str | None]:
    gen, lanes = m.pcie_under_load or (gpu.pcie_gen, gpu.pcie_lanes)
    if not gen or not lanes:
        return None, None
    return pcie_bytes_per_s(gen, lanes), f"PCIe {gen}.0 x{lanes} per direction"


def _link(gpu: Gpu, m: Measurement) -> tuple[float | None, str | None]:
    if gpu.scaleup_fabric != "none" and gpu.scaleup_bytes_per_s_per_direction and \
            m.params.get("peer_access", True):
        return gpu.scaleup_bytes_per_s_per_direction, f"{gpu.scaleup_fabric} per direction"
    return _pcie(gpu, m)


def peak_of(gpu: Gpu, m: Measurement) -> tuple[float | None, str | None, str | None]:
    """(peak rate, what it is, band key) of measurement ``m`` on ``gpu``."""
    prec = str(m.params.get("precision", ""))
    if m.kind in ("gemm", "attention"):
        p = "fp32" if prec == "tf32" and m.kind == "attention" else prec
        if not gpu.supports(p):
            return None, None, None
        key = f"gemm_{p}" if m.kind == "gemm" else ("attention" if p in ("fp16", "bf16")
                                                    else None)
        return gpu.peak(p), f"{p} dense peak", key
    if m.kind in ("memory_copy", "memory_read"):
        return gpu.memory_bandwidth_bytes_per_s, f"{gpu.memory_type} bandwidth", m.kind
    if m.kind in ("h2d", "d2h"):
        peak, what = _pcie(gpu, m)
        return peak, what, m.kind if m.params.get("memory") == "pinned" else None
    if m.kind in ("p2p", "busbw"):
        peak, what = _link(gpu, m)
        return peak, what, m.kind
    return None, None, None


def predict(gpu: Gpu, m: Measurement) -> float | None:
    """The model's rate for the work of ``m`` on ``gpu`` (None when it has none)."""
    from rigwise.model.efficiency import default_efficiency, overheads
    from rigwise.model.ops import Op, gemm
    from rigwise.model.roofline import make_device, op_time

    prec = str(m.params.get("precision", ""))
    try:
        if m.kind == "gemm":
            dev = make_device(gpu, prec, default_efficiency())
            b = _ACT_BYTES[prec]
            op = gemm("gemm", int(m.params["m"]), int(m.params["n"]), int(m.params["k"]),
                      act_bytes=b, w_bytes=b)
            return m.work / op_time(dev, op)[0]
        if m.kind == "attention":
            p = "fp32" if prec == "tf32" else prec
            dev = make_device(gpu, p, default_efficiency())
            b, h, s, d = (int(m.params[k]) for k in ("batch", "heads", "seq_len", "head_dim"))
            op = Op("attention", "attention", m.work, 4.0 * b * h * s * d * _ACT_BYTES[p])
            return m.work / op_time(dev, op)[0]
        if m.kind in ("memory_copy", "memory_read"):
            return gpu.memory_bandwidth_bytes_per_s * default_efficiency().memory
        if m.kind in ("p2p", "busbw"):
            peak = _link(gpu, m)[0]
            return None if peak is None else peak * overheads().busbw_efficiency
        if m.params.get("size") == "full":
            return _predict_model(gpu, m, prec)
    except (InputError, KeyError, ValueError):
        return None
    return None


def _predict_model(gpu: Gpu, m: Measurement, prec: str) -> float | None:
    from rigwise.model.estimate import TrainConfig, estimate_train
    from rigwise.model.infer import InferConfig, estimate_infer
    from rigwise.workload.models import get_model

    if m.kind == "train_step":
        model = get_model(str(m.params["model"]))
        cfg = TrainConfig(precision=prec, batch_size=int(m.params["batch_size"]),
                          seq_len=m.params.get("seq_len"))
        e = estimate_train(model, gpu, cfg)
        rate = e.tokens_per_s if m.metric == "tokens_per_s" else e.samples_per_s
        return None if rate is None or not e.fits else rate
    if m.kind == "decode":
        model = get_model(str(m.params["model"]))
        icfg = InferConfig(weights=_WEIGHTS[prec], batch_size=int(m.params["batch_size"]),
                           prompt_tokens=int(m.params["context"]), output_tokens=1)
        ie = estimate_infer(model, gpu, icfg)
        return ie.decode_tokens_per_s if ie.fits else None
    return None


def _verdict(frac: float | None, ref: float | None, model_frac: float | None) -> tuple[
        str, list[str]]:
    if frac is not None and frac > _threshold("suspect_above"):
        return "suspect", ["above the datasheet peak: a cache-resident buffer, the wrong "
                           "catalog variant, or a timer error"]
    if frac is not None and ref is not None:
        rel = frac / ref
        if rel < _threshold("fail_below"):
            return "fail", [f"{frac:.0%} of peak, healthy is about {ref:.0%}"]
        if rel < _threshold("warn_below"):
            return "warn", [f"{frac:.0%} of peak, healthy is about {ref:.0%}"]
        return "ok", []
    if model_frac is not None:
        if model_frac < _threshold("model_warn_below"):
            return "warn", [f"{model_frac:.0%} of the model's prediction"]
        return "ok", []
    return "n/a", []


def compare(m: Measurement, gpu: Gpu | None, *, banded: bool = True) -> Comparison:
    """Compare one measurement with ``gpu``'s peak and the model (``gpu`` None: CPU run).

    ``banded=False`` leaves the peak band out of the verdict (single GEMM shapes, whose
    band applies to the best shape only).
    """
    value = busbw(m) if m.kind == "busbw" else m.value
    if gpu is None:
        return Comparison(m.name, m.kind, m.metric, value, None, None, None, None, None, None,
                          "n/a", ("CPU run: no GPU reference",))
    peak, what, key = peak_of(gpu, m)
    predicted = predict(gpu, m)
    frac = value / peak if peak else None
    model_frac = value / predicted if predicted else None
    ref = reference_fraction(key) if key and banded else None
    verdict, reasons = _verdict(frac, ref, model_frac)
    if m.throttled_fraction is not None and m.throttled_fraction > _threshold(
            "throttled_warn_above"):
        reasons.append(f"throttled in {m.throttled_fraction:.0%} of telemetry samples")
        verdict = "warn" if verdict in ("ok", "n/a") else verdict
    if m.pcie_under_load and gpu.pcie_gen and m.pcie_under_load[0] < gpu.pcie_gen:
        reasons.append(f"PCIe link Gen{m.pcie_under_load[0]} under load, the GPU supports "
                       f"Gen{gpu.pcie_gen}")
    return Comparison(m.name, m.kind, m.metric, value, peak, what, frac, predicted, model_frac,
                      ref, verdict, tuple(reasons))


def compare_all(ms: list[Measurement], gpu: Gpu | None) -> list[Comparison]:
    """Comparisons of every measurement, plus the best GEMM shape per precision judged
    against its band."""
    out = [compare(m, gpu, banded=m.kind != "gemm") for m in ms]
    best: dict[str, Measurement] = {}
    for m in ms:
        if m.kind == "gemm":
            p = str(m.params["precision"])
            if p not in best or m.value > best[p].value:
                best[p] = m
    for p, m in best.items():
        c = compare(m, gpu)
        out.append(replace(c, name=f"gemm {p} best shape ({m.params['m']}x{m.params['n']}x"
                                   f"{m.params['k']})"))
    return out
