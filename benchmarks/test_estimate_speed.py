"""Speed of the analytical model (issue 3): estimates per second on one core.

Not part of the test suite (``testpaths = tests``); run with

    pytest benchmarks --benchmark-enable

Each round estimates a varied set of configurations (4 GPUs x 20 training setups, or
4 GPUs x 16 inference setups) and starts with the model's caches empty (built passes, GEMM
efficiencies), so they help only as much as within one search over GPUs, not from one round
to the next. Target: at least 10,000 estimates per second.
"""

from __future__ import annotations

from typing import Any

from rigwise import InferConfig, TrainConfig, catalog, estimate_infer, estimate_train, get_model
from rigwise.model.ops import _transformer_forward
from rigwise.model.roofline import _gemm_efficiency

GPUS = ("H100 SXM5", "RTX 4090", "A100 SXM4 80GB", "L40S")
TRAIN = [TrainConfig(batch_size=b, precision="bf16", seq_len=s)
         for b in (1, 2, 4, 8, 16) for s in (512, 1024, 2048, 4096)]
INFER = [InferConfig(weights=w, batch_size=b, prompt_tokens=512, output_tokens=128)
         for w in ("bf16", "q4_k_m", "fp8", "int8") for b in (1, 4, 16, 64)]


def _round(fn: Any, configs: list[Any]) -> int:
    _transformer_forward.cache_clear()
    _gemm_efficiency.cache_clear()
    model = get_model("llama-3-8b")
    n = 0
    for name in GPUS:
        gpu = catalog().gpu(name)
        for cfg in configs:
            fn(model, gpu, cfg)
            n += 1
    return n


def test_train_estimates_per_second(benchmark: Any) -> None:
    n = benchmark(_round, estimate_train, TRAIN)
    if benchmark.stats:
        rate = n / benchmark.stats.stats.median
        benchmark.extra_info["estimates_per_s"] = round(rate)
        print(f"\ntraining estimates: {rate:,.0f}/s")


def test_infer_estimates_per_second(benchmark: Any) -> None:
    n = benchmark(_round, estimate_infer, INFER)
    if benchmark.stats:
        rate = n / benchmark.stats.stats.median
        benchmark.extra_info["estimates_per_s"] = round(rate)
        print(f"\ninference estimates: {rate:,.0f}/s")
