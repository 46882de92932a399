"""Verdicts against the catalog peak, the healthy bands and the model's prediction.

The measurements here are constructed (one sample each) to sit at chosen fractions of the
H100 SXM's datasheet figures; they test the comparison, not any GPU.
"""

from __future__ import annotations

import pytest

from rigwise.bench.expect import compare, compare_all, pcie_bytes_per_s, reference_fraction
from rigwise.bench.measurement import Measurement
from rigwise.catalog.load import catalog

H100 = catalog().gpu("H100 SXM")
PEAK_BF16 = H100.peak("bf16")


def _gemm(fraction: float, size: int = 8192, **kw: object) -> Measurement:
    work = 2.0 * size**3
    return Measurement("gemm", "gemm", f"gemm bf16 {size}", "flop_per_s", work,
                       (work / (fraction * PEAK_BF16),),
                       {"precision": "bf16", "m": size, "n": size, "k": size, "size": "full"},
                       **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fraction", "verdict"), [(0.80, "ok"), (0.70, "ok"), (0.62, "warn"),
                                                   (0.50, "fail"), (1.10, "suspect")])
def test_gemm_band(fraction: float, verdict: str) -> None:
    c = compare(_gemm(fraction), H100)
    assert c.fraction_of_peak == pytest.approx(fraction)
    assert c.reference == reference_fraction("gemm_bf16") == 0.80
    assert c.verdict == verdict


def test_gemm_prediction_uses_the_roofline() -> None:
    big, small = compare(_gemm(0.8), H100), compare(_gemm(0.4, size=512), H100)
    assert big.predicted is not None and small.predicted is not None
    assert small.predicted < big.predicted <= PEAK_BF16  # wave quantisation, K overhead
    assert big.fraction_of_model == pytest.approx(0.8 * PEAK_BF16 / big.predicted)


def test_band_applies_to_the_best_shape_only() -> None:
    rows = compare_all([_gemm(0.3, size=512), _gemm(0.79)], H100)
    assert rows[0].reference is None  # a small shape is judged against the model only
    best = rows[-1]
    assert best.name.startswith("gemm bf16 best shape (8192x8192x8192)")
    assert best.verdict == "ok"


def test_throttled_run_is_flagged() -> None:
    c = compare(_gemm(0.8, throttled_fraction=0.5), H100)
    assert c.verdict == "warn" and any("throttled" in r for r in c.reasons)


def test_memory_copy_and_pcie_and_busbw_peaks() -> None:
    copy = Measurement("memory", "memory_copy", "copy", "bytes_per_s", 2e9,
                       (2e9 / (0.8 * H100.memory_bandwidth_bytes_per_s),), {"size": "full"})
    c = compare(copy, H100)
    assert c.peak == H100.memory_bandwidth_bytes_per_s and c.verdict == "ok"
    gen5 = pcie_bytes_per_s(5, 16)
    assert gen5 is not None and 62e9 < gen5 < 64e9  # 32 GT/s x16, 128b/130b
    h2d = Measurement("memory", "h2d", "h2d", "bytes_per_s", 1e9, (1e9 / 20e9,),
                      {"memory": "pinned"}, pcie_under_load=(4, 16))
    ch = compare(h2d, H100)
    assert ch.peak == pcie_bytes_per_s(4, 16) and ch.verdict == "warn"  # 63% of Gen4
    assert any("Gen4 under load" in r for r in ch.reasons)
    ar = Measurement("collectives", "busbw", "all_reduce", "bytes_per_s", 1e9,
                     (1e9 / 200e9,), {"op": "all_reduce", "ranks": 8},
                     extra={"busbw_factor": 1.75})
    cb = compare(ar, H100)
    assert cb.value == pytest.approx(350e9) and cb.peak == 450e9 and cb.verdict == "ok"


def test_cpu_run_has_no_gpu_reference() -> None:
    c = compare(_gemm(0.8), None)
    assert c.verdict == "n/a" and c.peak is None and c.predicted is None


def test_full_size_model_steps_get_a_model_prediction() -> None:
    step = Measurement("models", "train_step", "gpt2", "tokens_per_s", 8192.0, (0.1,),
                       {"model": "gpt2", "precision": "bf16", "batch_size": 8, "seq_len": 1024,
                        "size": "full"})
    decode = Measurement("models", "decode", "dec", "tokens_per_s", 1.0, (0.01,),
                         {"model": "gpt2-xl", "precision": "bf16", "batch_size": 1,
                          "context": 512, "size": "full"})
    for m in (step, decode):
        c = compare(m, H100)
        assert c.predicted is not None and c.predicted > 0
        assert c.fraction_of_model == pytest.approx(m.value / c.predicted)
    tiny = Measurement("models", "train_step", "tiny", "tokens_per_s", 64.0, (0.1,),
                       {"model": "tiny", "precision": "fp32", "size": "tiny"})
    assert compare(tiny, H100).predicted is None
