"""Device families whose memory reaches less of its nominal bandwidth (Apple unified memory)."""

from __future__ import annotations

import pytest

from rigwise.catalog.load import catalog
from rigwise.model.efficiency import device_memory_factor, efficiency_of
from rigwise.model.infer import InferConfig, estimate_infer
from rigwise.workload.models import get_model


def test_apple_copy_bandwidth_share_is_below_discrete_gpus() -> None:
    """chsasank/device-benchmarks: the same copy script reaches 0.78-0.80 of nominal on M2
    Ultra / M3 Max and 0.85-0.90 on RTX 3090/4090 and V100."""
    apple = device_memory_factor(efficiency_of(catalog().gpu("apple-m2-ultra")))
    nvidia = device_memory_factor(efficiency_of(catalog().gpu("nvidia-rtx-4090")))
    assert nvidia == 1.0
    assert 0.78 / 0.90 <= apple <= 0.80 / 0.85


def test_bandwidth_bound_decode_on_apple_runs_at_the_scaled_engine_efficiency() -> None:
    """Batch-1 decode of a 7B model is bound by weight bytes over bandwidth, so its rate is
    the nominal bandwidth x engine efficiency x device factor over the bytes per token."""
    gpu = catalog().gpu("apple-m2-ultra")
    cfg = InferConfig(weights="f16", batch_size=1, prompt_tokens=1, output_tokens=2,
                      engine="mlc")
    e = estimate_infer(get_model("llama-2-7b"), gpu, cfg)
    weights = e.memory.weights_bytes
    bound = gpu.memory_bandwidth_bytes_per_s * 0.80 * device_memory_factor(
        efficiency_of(gpu)) / weights
    assert e.decode_tokens_per_s == pytest.approx(bound, rel=0.08)
