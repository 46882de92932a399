"""Serving many requests with continuous batching: concurrency from the KV cache and the
engine, and output throughput from prefill plus batched decode steps."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.efficiency import engine_efficiency, overheads
from rigwise.model.infer import (
    InferConfig,
    estimate_infer,
    kv_cache_bytes_of,
    parse_concurrency,
)
from rigwise.workload.models import get_model

LLAMA31_8B_KV_FP8_PER_TOKEN = 2 * 32 * 8 * 128 * 1
"""Llama 3.1 8B config.json: 32 layers, 8 KV heads of 128; K and V at 1 byte (fp8 cache)."""


def _serve(model: str, gpu: str, **kw: object) -> tuple[InferConfig, object]:
    cfg = InferConfig(**{"weights": "fp8", "engine": "tensorrt-llm", "kv_bytes": 1.0,
                         "serve": True, **kw})  # type: ignore[arg-type]
    return cfg, estimate_infer(get_model(model), catalog().gpu(gpu), cfg)


def test_concurrency_is_what_the_kv_cache_holds_at_full_length() -> None:
    """trtllm-bench sizes the batch to free memory x 0.9 / (KV bytes per token x (ISL+OSL))
    (tensorrt_llm/bench/build/tuning.py; free_gpu_memory_fraction 0.9)."""
    gpu = catalog().gpu("nvidia-h100-sxm5-80gb")
    _, e = _serve("llama-3.1-8b", gpu.id, prompt_tokens=128, output_tokens=2048)
    s = e.serving
    per_seq = LLAMA31_8B_KV_FP8_PER_TOKEN * (128 + 2048)
    assert s.kv_cache_bytes == pytest.approx(s.concurrency * per_seq)
    free = gpu.memory_bytes - e.memory.weights_bytes - overheads().cuda_context_bytes
    # Llama 3.1 8B in fp8 on 80 GiB: about 0.9 x 72 GiB of KV cache, 136 MiB per sequence
    assert s.limited_by == "KV cache memory"
    assert 0.97 * 0.9 * free / per_seq <= s.concurrency <= 0.9 * free / per_seq
    assert 440 <= s.concurrency <= 500


def test_throughput_is_prefill_plus_batched_decode() -> None:
    """C requests take C prefills and O decode steps of the whole batch."""
    cfg, e = _serve("llama-3.1-8b", "nvidia-h100-sxm5-80gb", prompt_tokens=1000,
                    output_tokens=1000)
    s = e.serving
    cycle = s.concurrency * s.prefill_s_per_request + cfg.output_tokens * s.decode_step_s
    assert s.output_tokens_per_s == pytest.approx(s.concurrency * cfg.output_tokens / cycle)
    assert s.requests_per_s == pytest.approx(s.output_tokens_per_s / cfg.output_tokens)
    # one request: its prefill batch and all its decode steps
    assert s.request_latency_s == pytest.approx(
        s.prefill_s_per_request * s.prefill_batch + 1000 * s.decode_step_s)


def test_batching_trades_latency_for_throughput() -> None:
    """More sequences in flight: more output tokens/s, but a longer step per token."""
    results = [_serve("llama-3.1-8b", "nvidia-h100-sxm5-80gb", prompt_tokens=512,
                      output_tokens=512, concurrency=c)[1].serving for c in (1, 16, 256)]
    rates = [s.output_tokens_per_s for s in results]
    steps = [s.decode_step_s for s in results]
    assert rates == sorted(rates) and rates[-1] > 20 * rates[0]
    assert steps == sorted(steps)
    assert all(s.limited_by == "requested" for s in results)


def test_batch1_serving_matches_the_single_stream_decode() -> None:
    """With one sequence in flight and a long output, throughput approaches the batch-1
    decode rate (the prefill is a small share of each request)."""
    _, e = _serve("llama-3.1-8b", "nvidia-h100-sxm5-80gb", prompt_tokens=128,
                  output_tokens=2048, concurrency=1)
    assert e.serving.output_tokens_per_s == pytest.approx(e.decode_tokens_per_s, rel=0.05)


def test_requested_concurrency_above_the_kv_cache_is_capped() -> None:
    _, e = _serve("llama-3.1-8b", "nvidia-rtx-4090", weights="bf16", kv_bytes=2.0,
                  engine="vllm", prompt_tokens=2048, output_tokens=2048, concurrency=500)
    s = e.serving
    assert s.limited_by == "KV cache memory" and s.concurrency == s.kv_sequences < 500


def test_vllm_batch_limit_depends_on_the_gpu() -> None:
    """vLLM's max_num_seqs: 1024 on GPUs with at least 70 GiB except A100s, else 256."""
    cases = {"nvidia-h100-sxm5-80gb": 1024, "nvidia-a100-sxm4-80gb": 256,
             "nvidia-rtx-4090": 256}
    for gpu, cap in cases.items():
        cfg = InferConfig(weights="bf16", engine="vllm", prompt_tokens=64, output_tokens=64,
                          serve=True)
        s = estimate_infer(get_model("llama-3.2-3b"), catalog().gpu(gpu), cfg).serving
        assert s is not None and s.concurrency == cap and s.limited_by == "vllm batch limit"
    assert engine_efficiency("vllm").kv_of_total


def test_weights_that_do_not_fit_leave_no_concurrency() -> None:
    _, e = _serve("llama-3.1-70b", "nvidia-rtx-4090", weights="bf16", kv_bytes=2.0,
                  engine="vllm")
    assert not e.fits and e.serving.concurrency == 0
    assert e.serving.output_tokens_per_s == 0.0


def test_no_serving_block_unless_asked() -> None:
    e = estimate_infer(get_model("llama-3.1-8b"), catalog().gpu("nvidia-rtx-4090"),
                       InferConfig())
    assert e.serving is None


def test_parse_concurrency_and_kv_cache_names() -> None:
    assert parse_concurrency("max") is None and parse_concurrency(None) is None
    assert parse_concurrency("64") == 64
    for bad in ("0", "-3", "lots"):
        with pytest.raises(InputError):
            parse_concurrency(bad)
    assert kv_cache_bytes_of("FP8") == 1.0 and kv_cache_bytes_of("bf16") == 2.0
    with pytest.raises(InputError):
        kv_cache_bytes_of("int3")


@pytest.mark.parametrize("args", [["--concurrency", "lots"], ["--concurrency", "0"],
                                  ["--kv-cache", "int3"]])
def test_cli_bad_serving_options_exit_2_with_one_line(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "rigwise.cli.main", "estimate", "infer",
                          "-m", "llama-3.1-8b", "-g", "rtx-4090", *args],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_cli_json_has_the_serving_block() -> None:
    import json

    out = subprocess.run([sys.executable, "-m", "rigwise.cli.main", "estimate", "infer",
                          "-m", "llama-3.1-8b", "-g", "nvidia-h100-sxm5-80gb", "--weights",
                          "fp8", "--kv-cache", "fp8", "--engine", "tensorrt-llm",
                          "--prompt-tokens", "1000", "--output-tokens", "1000",
                          "--concurrency", "max", "--json"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)["serving"]
    assert s["kv_bytes_per_element"] == 1.0 and s["concurrency"] > 100
    assert math.isclose(s["requests_per_s"] * 1000, s["output_tokens_per_s"], rel_tol=1e-3)


def test_advise_serve_ranks_by_serving_throughput_and_drops_unsupported_engines() -> None:
    """`advise --task serve`: each option's throughput is its serving output tokens/s at the
    concurrency its KV cache holds; TensorRT-LLM options exist only on NVIDIA GPUs."""
    from rigwise.advise.rank import Constraints, Workload, advise

    model = get_model("llama-3.1-8b")
    w = Workload(task="serve", weights="fp8", prompt_tokens=1000, output_tokens=1000,
                 engine="tensorrt-llm", kv_bytes=1.0)
    a = advise(model, w, catalog().gpus.values(), Constraints(market="cloud"), sort="speed")
    assert a.options and all(o.gpu.vendor == "nvidia" for o in a.options)
    assert any("NVIDIA GPUs only" in reason for _, reason in a.excluded)
    best = a.options[0]
    s = best.estimate.serving
    assert s is not None and best.throughput == s.output_tokens_per_s
    assert best.need_bytes > best.estimate.memory.weights_bytes + s.kv_cache_bytes * 0.99
    single = estimate_infer(model, best.gpu, InferConfig(
        weights="fp8", prompt_tokens=1000, output_tokens=1000, engine="tensorrt-llm",
        gpus=best.gpus))
    assert best.throughput > 10 * single.decode_tokens_per_s


def test_html_view_shows_the_serving_figures_only_when_asked() -> None:
    from rigwise.report.jsonout import infer_json
    from rigwise.report.views import infer_view

    model, gpu = get_model("llama-3.1-8b"), catalog().gpu("nvidia-h100-sxm5-80gb")
    served = infer_view(infer_json(estimate_infer(model, gpu, InferConfig(serve=True))))
    plain = infer_view(infer_json(estimate_infer(model, gpu, InferConfig())))
    labels = {f["label"] for f in served["figures"]}
    assert {"serving output tokens/s", "sequences in flight"} <= labels
    assert not any(f["label"].startswith("serving") for f in plain["figures"])
