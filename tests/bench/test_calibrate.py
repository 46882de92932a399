"""Calibration: the fit recovers known efficiencies, the overlay is read back cheaply."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rigwise.bench.calibrate import (
    NothingToCalibrateError,
    calibrate,
    calibrated_efficiency,
    fit_saturating,
)
from rigwise.bench.measurement import Measurement, Run
from rigwise.catalog.load import catalog
from rigwise.model.efficiency import default_efficiency
from rigwise.model.roofline import gemm_efficiency, make_device
from rigwise.store.db import Store

H100 = catalog().gpu("nvidia-h100-sxm5-80gb")
SHAPES = ((1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192),
          (16384, 8192, 1024))


def _gemm(precision: str, eta: float, m: int, n: int, k: int, *,
          throttled: float | None = None) -> Measurement:
    from dataclasses import replace

    dev = make_device(H100, precision, replace(default_efficiency(), gemm_tensor=1.0,
                                               gemm_simt=1.0))
    frac = eta * gemm_efficiency(dev, m, n, k)
    work = 2.0 * m * n * k
    return Measurement("gemm", "gemm", f"gemm {precision} {m}x{n}x{k}", "flop_per_s", work,
                       (work / (frac * H100.peak(precision)),),
                       {"precision": precision, "m": m, "n": n, "k": k},
                       throttled_fraction=throttled)


def _run(run_id: str, ms: list[Measurement], *, kind: str = "cuda") -> Run:
    return Run(run_id, "2026-11-20T10:00:00", kind, "NVIDIA H100 80GB HBM3",
               H100.id if kind == "cuda" else None, H100.architecture if kind == "cuda" else None,
               ("gemm", "memory"), "test", {}, ms)


@pytest.fixture
def overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calibration.toml"
    monkeypatch.setenv("RIGWISE_CALIBRATION", str(path))
    return path


def test_fit_recovers_efficiencies(tmp_path: Path, overlay: Path) -> None:
    bf16 = [_gemm("bf16", 0.74, *s) for s in SHAPES]
    fp32 = [_gemm("fp32", 0.70, *s) for s in SHAPES[:2]]
    slow = [_gemm("bf16", 0.30, 8192, 8192, 8192, throttled=0.9)]  # left out
    copy = Measurement("memory", "memory_copy", "copy", "bytes_per_s", 2e9,
                       (2e9 / (0.86 * H100.memory_bandwidth_bytes_per_s),), {})
    cpu = _run("cpu-run", [_gemm("bf16", 0.01, 1024, 1024, 1024)], kind="cpu")
    with Store(tmp_path / "runs.db") as store:
        store.save_run(_run("r1", [*bf16, *fp32, *slow, copy]))
        store.save_run(cpu)
        fits, path = calibrate(store)
        saved = store.conn.execute("SELECT COUNT(*) FROM calibrations").fetchone()[0]
    assert path == overlay and saved > 0
    (fit,) = fits
    assert fit.architecture == "Hopper" and fit.gpus == (H100.id,) and fit.runs == ("r1",)
    v = {k: val for k, (val, _) in fit.values.items()}
    assert v["gemm_bf16"] == pytest.approx(0.74) and v["gemm_tensor"] == pytest.approx(0.74)
    assert v["gemm_fp32"] == pytest.approx(0.70) and v["gemm_simt"] == pytest.approx(0.70)
    assert v["memory"] == pytest.approx(0.86)
    assert "gemm_bf16_half_flop" in v and "gemm_fp32_half_flop" not in v  # 5 vs 2 sizes
    got = calibrated_efficiency("hopper")
    assert got is not None and got["gemm_tensor"] == pytest.approx(0.74)
    assert set(got) >= {"gemm_tensor", "gemm_simt", "memory", "gemm_bf16", "gemm_fp32"}
    assert calibrated_efficiency("Ampere") is None


def test_overlay_cache_follows_the_file(overlay: Path) -> None:
    assert calibrated_efficiency("Hopper") is None
    overlay.write_text('[architecture."Ada Lovelace"]\nmemory = 0.8\n')
    assert calibrated_efficiency("Ada Lovelace") == {"memory": 0.8}
    overlay.write_text('[architecture."Ada Lovelace"]\nmemory = 0.7\n')
    os.utime(overlay, ns=(1, 10**18))
    assert calibrated_efficiency("Ada Lovelace") == {"memory": 0.7}
    overlay.write_text("not toml [")
    os.utime(overlay, ns=(1, 2 * 10**18))
    assert calibrated_efficiency("Ada Lovelace") is None


def test_nothing_to_calibrate(tmp_path: Path, overlay: Path) -> None:
    with Store(tmp_path / "runs.db") as store:
        store.save_run(_run("cpu-run", [_gemm("bf16", 0.01, 1024, 1024, 1024)], kind="cpu"))
        with pytest.raises(NothingToCalibrateError, match="GPU"):
            calibrate(store)
    assert not overlay.exists()


def test_saturating_curve_fit() -> None:
    flop = [1e8, 1e9, 1e10, 1e11, 1e12]
    measured = [0.8 * f / (f + 3e9) for f in flop]
    eta, half = fit_saturating(flop, measured)
    assert eta == pytest.approx(0.8, rel=0.05) and half == pytest.approx(3e9, rel=0.15)
