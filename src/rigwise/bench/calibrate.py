"""Fit the performance model's efficiencies from stored runs, per GPU architecture.

For each architecture with GPU runs in the store (throttled measurements left out):

* ``gemm_<precision>``: the large-GEMM efficiency ``η`` that makes the model's GEMM curve
  ``η · wave(M, N) · K/(K + k0)`` (:func:`rigwise.model.roofline.gemm_efficiency`, NVIDIA
  "Matrix Multiplication Background": tile and wave quantisation) fit the measured fractions
  of the dense peak best, by least squares: ``η = Σ y·s / Σ s²`` with ``s`` the curve's shape
  factor at each measured size and ``y`` the measured fraction;
* ``gemm_<precision>_half_flop``: with at least four distinct sizes, the FLOP per GEMM at
  which a saturating curve ``η_max · f / (f + f_half)`` reaches half its plateau (least
  squares over a log grid of ``f_half``), a direct description of size dependence;
* ``gemm_tensor`` (bf16, else fp16, else tf32) and ``gemm_simt`` (fp32): the fields of
  :class:`rigwise.model.efficiency.Efficiency` they replace;
* ``memory``: the median device-copy bandwidth over the datasheet bandwidth (copies counted
  read + write), the ``Efficiency.memory`` field.

The fit is stored in the run store and written as a TOML overlay (default
``platformdirs.user_data_dir("rigwise")/calibration.toml``, or ``$RIGWISE_CALIBRATION``),
which :func:`calibrated_efficiency` reads cheaply (cached by modification time, no torch).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import statistics
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from rigwise.bench.measurement import Measurement
from rigwise.errors import InputError

MIN_CURVE_POINTS = 4
THROTTLED_MAX = 0.10
TENSOR_ORDER = ("bf16", "fp16", "tf32")


class NothingToCalibrateError(InputError):
    """The store has no usable GPU measurements of a GPU the catalog knows."""


@dataclass(frozen=True, slots=True)
class ArchFit:
    """Fitted efficiencies of one architecture: key -> (value, points used)."""

    architecture: str
    values: dict[str, tuple[float, int]]
    runs: tuple[str, ...]
    gpus: tuple[str, ...]


def overlay_path() -> Path:
    """``$RIGWISE_CALIBRATION``, else ``calibration.toml`` in the user's data directory."""
    env = os.environ.get("RIGWISE_CALIBRATION")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("rigwise")) / "calibration.toml"


def fit_scale(shape: list[float], measured: list[float]) -> float:
    """Least-squares ``η`` of ``measured ≈ η · shape``. Raises ValueError for no points."""
    den = sum(s * s for s in shape)
    if not shape or den == 0:
        raise ValueError("no points to fit")
    return sum(s * y for s, y in zip(shape, measured, strict=True)) / den


def fit_saturating(flop: list[float], measured: list[float]) -> tuple[float, float]:
    """``(η_max, f_half)`` of ``measured ≈ η_max · f / (f + f_half)``, least squares over
    ``f_half`` on a log grid from 1e6 to 1e14 FLOP (closed form for ``η_max``)."""
    best: tuple[float, float, float] | None = None
    for i in range(161):
        half = 10 ** (6 + i * 0.05)
        g = [f / (f + half) for f in flop]
        eta = fit_scale(g, measured)
        sse = sum((y - eta * x) ** 2 for x, y in zip(g, measured, strict=True))
        if best is None or sse < best[0]:
            best = (sse, eta, half)
    assert best is not None
    return best[1], best[2]


def _gemm_fits(ms: list[Measurement], gpu_id: str) -> dict[str, tuple[float, int]]:
    from rigwise.catalog.load import catalog
    from rigwise.model.efficiency import default_efficiency
    from rigwise.model.roofline import gemm_efficiency, make_device

    gpu = catalog().gpus[gpu_id]
    unit = replace(default_efficiency(), gemm_tensor=1.0, gemm_simt=1.0)
    by: dict[str, list[Measurement]] = {}
    for m in ms:
        if m.kind == "gemm" and gpu.supports(str(m.params["precision"])):
            by.setdefault(str(m.params["precision"]), []).append(m)
    out: dict[str, tuple[float, int]] = {}
    for p, pm in by.items():
        dev = make_device(gpu, p, unit)
        shape = [gemm_efficiency(dev, int(m.params["m"]), int(m.params["n"]), int(m.params["k"]))
                 for m in pm]
        frac = [m.value / gpu.peak(p) for m in pm]
        out[f"gemm_{p}"] = (fit_scale(shape, frac), len(pm))
        if len({m.work for m in pm}) >= MIN_CURVE_POINTS:
            out[f"gemm_{p}_half_flop"] = (fit_saturating([m.work for m in pm], frac)[1], len(pm))
    return out


def fit_architecture(architecture: str,
                     rows: list[tuple[str, str, Measurement]]) -> ArchFit | None:
    """Fit one architecture from (run id, catalog id, measurement) rows; None if nothing
    usable. GEMM fits are per GPU model and averaged over the models of the architecture."""
    from rigwise.catalog.load import catalog

    usable = [(r, g, m) for r, g, m in rows
              if m.throttled_fraction is None or m.throttled_fraction <= THROTTLED_MAX]
    per_gpu: dict[str, list[Measurement]] = {}
    for _, g, m in usable:
        per_gpu.setdefault(g, []).append(m)
    values: dict[str, tuple[float, int]] = {}
    gemm = [_gemm_fits(ms, g) for g, ms in per_gpu.items()]
    for key in sorted({k for fit in gemm for k in fit}):
        got = [fit[key] for fit in gemm if key in fit]
        values[key] = (statistics.fmean(v for v, _ in got), sum(n for _, n in got))
    for p in TENSOR_ORDER:
        if f"gemm_{p}" in values:
            values["gemm_tensor"] = values[f"gemm_{p}"]
            break
    if "gemm_fp32" in values:
        values["gemm_simt"] = values["gemm_fp32"]
    copies = [m.value / catalog().gpus[g].memory_bandwidth_bytes_per_s
              for _, g, m in usable if m.kind == "memory_copy"]
    if copies:
        values["memory"] = (statistics.median(copies), len(copies))
    if not values:
        return None
    return ArchFit(architecture, values, tuple(sorted({r for r, _, _ in usable})),
                   tuple(sorted(per_gpu)))


def _toml_value(v: object) -> str:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "nan"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def overlay_toml(fits: list[ArchFit], *, store: str) -> str:
    """The overlay file's text: one ``[architecture."NAME"]`` table per architecture."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lines = ["# rigwise calibration overlay, written by `rigwise calibrate`.",
             "# Efficiencies are fractions of the datasheet dense peak (GEMM) or bandwidth",
             "# (memory), fitted from this machine's stored benchmark runs.",
             "", "[meta]", f"created_at = {_toml_value(now)}", f"store = {_toml_value(store)}"]
    for f in fits:
        lines += ["", f"[architecture.{json.dumps(f.architecture)}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, (v, _) in sorted(f.values.items())]
        lines += [f"n_points = {sum(n for _, n in f.values.values())}",
                  f"runs = {_toml_value(list(f.runs))}", f"gpus = {_toml_value(list(f.gpus))}",
                  f"source = {_toml_value('rigwise bench runs in ' + store)}"]
    return "\n".join(lines) + "\n"


def calibrate(store: object, *, path: Path | None = None) -> tuple[list[ArchFit], Path]:
    """Fit every architecture in ``store`` (a :class:`rigwise.store.db.Store`), store the
    fits and write the overlay atomically (write to a temporary file, then rename).

    Raises:
        NothingToCalibrateError: no GPU measurements of catalog GPUs in the store.
    """
    from rigwise.store.db import Store

    assert isinstance(store, Store)
    rows: dict[str, list[tuple[str, str, Measurement]]] = {}
    for run_id, gpu_id, arch, m in store.measurements(device_kind="cuda"):
        if gpu_id and arch:
            rows.setdefault(arch, []).append((run_id, gpu_id, m))
    fits = [f for a, r in sorted(rows.items()) if (f := fit_architecture(a, r)) is not None]
    if not fits:
        raise NothingToCalibrateError(
            "no GPU measurements of a catalog GPU in the store: run `rigwise bench gemm "
            "memory` on an NVIDIA GPU first (CPU runs do not calibrate the GPU model)")
    for f in fits:
        store.save_calibration(f.architecture, f.values, list(f.runs))
    target = path or overlay_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".toml.tmp")
    tmp.write_text(overlay_toml(fits, store=str(store.path)))
    tmp.replace(target)
    return fits, target


_cache: dict[Path, tuple[int, dict[str, dict[str, float]]]] = {}


def calibrated_efficiency(architecture: str) -> dict[str, float] | None:
    """The calibrated efficiencies of ``architecture`` (as the catalog spells it, e.g.
    ``"Hopper"``, ``"Ada Lovelace"``; case-insensitive), or None without a calibration.

    Keys: ``gemm_tensor``, ``gemm_simt``, ``memory`` (fields of
    :class:`~rigwise.model.efficiency.Efficiency`), ``gemm_<precision>`` and
    ``gemm_<precision>_half_flop`` (FLOP). Reads the overlay at :func:`overlay_path`, cached
    until its modification time changes; an unreadable overlay counts as none.
    """
    path = overlay_path()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        try:
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError):
            return None
        table = raw.get("architecture", {})
        parsed = {str(a).lower(): {k: float(v) for k, v in vals.items()
                                   if isinstance(v, float) and math.isfinite(v)}
                  for a, vals in table.items() if isinstance(vals, dict)}
        _cache[path] = cached = (mtime, parsed)
    return cached[1].get(architecture.lower())
