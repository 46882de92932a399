"""Statistics and the timer's stop rule, on the CPU clock."""

from __future__ import annotations

import time

import pytest

from rigwise.bench.measurement import Measurement, measurement_from_json, measurement_json, stats
from rigwise.bench.timer import TimerConfig, measure


def test_stats_median_and_quartiles() -> None:
    s = stats([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median_s, s.q1_s, s.q3_s, s.min_s, s.max_s) == (5, 3.0, 2.0, 4.0, 1.0, 5.0)
    assert s.iqr_rel == pytest.approx(2.0 / 3.0)
    with pytest.raises(ValueError):
        stats([])


def test_measure_times_the_work_and_keeps_raw_samples() -> None:
    cfg = TimerConfig(warmup_s=0.0, warmup_calls=1, min_samples=5, max_samples=8,
                      min_time_s=0.0, max_time_s=5.0, target_iqr_rel=1.0, min_sample_s=0.0)
    t = measure(lambda: time.sleep(0.002), config=cfg)
    assert t.timer == "perf_counter" and t.inner == 1
    assert 5 <= len(t.samples_s) <= 8
    assert min(t.samples_s) >= 0.002
    assert stats(t.samples_s).median_s < 0.05


def test_short_calls_are_batched_and_reported_per_call() -> None:
    calls = []
    cfg = TimerConfig(warmup_s=0.0, warmup_calls=2, min_samples=3, max_samples=3,
                      min_time_s=0.0, min_sample_s=1e-3)
    t = measure(lambda: calls.append(1), config=cfg)
    assert t.inner > 10
    assert len(calls) == 2 + 3 * t.inner
    assert all(s < 1e-4 for s in t.samples_s)


def test_noisy_samples_run_to_max_samples() -> None:
    seq = iter([0.001, 0.004] * 100)
    cfg = TimerConfig(warmup_s=0.0, warmup_calls=1, min_samples=4, max_samples=12,
                      min_time_s=0.0, target_iqr_rel=0.01, min_sample_s=0.0)
    t = measure(lambda: time.sleep(next(seq)), config=cfg)
    assert len(t.samples_s) == 12


def test_measurement_json_roundtrip_recomputes_derived_values() -> None:
    m = Measurement("gemm", "gemm", "gemm fp32 8", "flop_per_s", 1024.0, (1e-6, 2e-6, 3e-6),
                    {"precision": "fp32"}, pcie_under_load=(5, 16))
    d = measurement_json(m)
    assert d["value"] == pytest.approx(1024.0 / 2e-6) and d["best"] == pytest.approx(1024 / 1e-6)
    d["value"] = 1e30  # derived fields are not trusted on the way back
    back = measurement_from_json(d)
    assert back.value == pytest.approx(m.value) and back.pcie_under_load == (5, 16)
    with pytest.raises(ValueError):
        measurement_from_json({**d, "samples_s": [-1.0]})
