"""Parallel plans: memory per GPU (ZeRO, TP/SP, PP), step time (bubble, comm), search, and the
multi-GPU validation rows."""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest

from rigwise.catalog.load import catalog
from rigwise.catalog.systems import get_system
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel import (
    PlanSpec,
    SearchSpace,
    best_plan,
    enumerate_plans,
    evaluate_plan,
    scaling_curve,
    search_plans,
    spec_from_label,
)
from rigwise.workload.models import get_model
from tests.model import multi_gpu_rows

H100 = "nvidia-h100-sxm5-80gb"
CFG = TrainConfig(seq_len=4096)


def _plan(spec: PlanSpec, model: str = "llama-2-70b", gb: int = 256, sys: str = "dgx-h100",
          cfg: TrainConfig = CFG):
    return evaluate_plan(get_model(model), catalog().gpu(H100), spec, cfg,
                         system=get_system(sys), global_batch=gb)


def test_zero_stages_shrink_model_states_as_the_paper_says() -> None:
    """Rajbhandari et al. 2020 §5: each stage shards one more kind of state over DP."""
    base = PlanSpec(dp=64, tp=2, pp=1, microbatch=1, sp=True, checkpointing=True)
    mem = [_plan(replace(base, zero=z)).memory for z in range(4)]
    assert mem[1].optimizer_bytes == pytest.approx(mem[0].optimizer_bytes / 64)
    assert mem[2].gradients_bytes == pytest.approx(mem[1].gradients_bytes / 64)
    assert mem[3].weights_bytes < mem[2].weights_bytes / 4
    totals = [m.per_gpu_bytes for m in mem]
    assert totals == sorted(totals, reverse=True)


def test_sequence_parallel_divides_the_replicated_activations() -> None:
    """Korthikanti et al. 2022: TP alone keeps 10 of 34 sbh replicated; SP splits them."""
    tp = _plan(PlanSpec(dp=8, tp=8, zero=1, microbatch=1)).memory.activations_bytes
    sp = _plan(PlanSpec(dp=8, tp=8, zero=1, microbatch=1, sp=True)).memory.activations_bytes
    assert 1.5 < tp / sp < 4.5


def test_pipeline_bubble_is_p_minus_1_over_v_microbatches() -> None:
    """Narayanan et al. 2021: bubble / ideal time = (p-1)/m, interleaved (p-1)/(v m)."""
    one = _plan(PlanSpec(dp=8, tp=2, pp=4, zero=1, microbatch=1, sp=True))
    inter = _plan(PlanSpec(dp=8, tp=2, pp=4, zero=1, microbatch=1, sp=True,
                           schedule="interleaved", chunks=2))
    m = one.microbatches
    per_mb = one.time.bubble_s / 3
    assert one.time.bubble_s / (m * per_mb) == pytest.approx(3 / m)
    assert inter.time.bubble_s == pytest.approx(one.time.bubble_s / 2, rel=1e-6)
    assert inter.memory.activations_bytes > one.memory.activations_bytes


def test_impossible_plans_are_explained_not_raised() -> None:
    bad_tp = _plan(PlanSpec(dp=1, tp=16, pp=4))  # 8 KV heads
    assert not bad_tp.feasible and not bad_tp.fits
    assert any("heads" in r for r in bad_tp.reasons)
    too_deep = _plan(PlanSpec(dp=1, tp=1, pp=128), model="llama-3-8b", sys="dgx-h100-superpod")
    assert any("layers" in r for r in too_deep.reasons)
    bad_batch = _plan(PlanSpec(dp=64, microbatch=8), gb=100, sys="dgx-h100-superpod")
    assert any("batch" in r for r in bad_batch.reasons)


def test_model_that_fits_nowhere_says_so() -> None:
    p = best_plan(get_model("llama-2-70b"), catalog().gpu("rtx-4090"), 4, CFG,
                  system=get_system("workstation-4x-rtx-4090"), global_batch=4)
    assert not p.fits and p.reasons and "fits nowhere" in p.reasons[0]
    assert p.memory.per_gpu_bytes > p.memory.capacity_bytes


def test_peft_and_bad_counts_are_input_errors() -> None:
    with pytest.raises(InputError):
        best_plan(get_model("llama-3-8b"), catalog().gpu(H100), 8, replace(CFG, task="lora"))
    with pytest.raises(InputError):
        best_plan(get_model("llama-3-8b"), catalog().gpu(H100), 0, CFG)


def test_best_plan_keeps_tp_inside_the_node_and_fits() -> None:
    p = best_plan(get_model("llama-2-70b"), catalog().gpu(H100), 64, CFG,
                  system=get_system("dgx-h100"), global_batch=512)
    assert p.fits and p.spec.tp <= 8 and p.spec.gpus == 64
    assert 0.2 < p.mfu < 0.8
    assert p.tokens_per_s == pytest.approx(512 * 4096 / p.step_time_s)


def test_search_space_exceeds_ten_thousand_configurations() -> None:
    shape = get_model("llama-3.1-405b").shape
    specs = enumerate_plans(2048, shape, 8, SearchSpace(microbatches=(1, 2, 4, 8, 16, 32, 64)))
    assert len(specs) >= 10_000


def test_pcie_generation_and_p2p_change_scaling(tmp_path: object) -> None:
    """Dettmers' guides: PCIe 4.0/lanes matter little at 4 GPUs, no-P2P consumer cards scale
    worse; 8-bit gradient compression helps where the link is slow."""
    from pathlib import Path
    assert isinstance(tmp_path, Path)
    model, gpu = get_model("gpt2-xl"), catalog().gpu("rtx-4090")
    cfg = TrainConfig(seq_len=1024, batch_size=4)
    ws = get_system("workstation-4x-rtx-4090")
    spec = PlanSpec(dp=4, microbatch=4)
    fast = evaluate_plan(model, gpu, spec, cfg, system=ws)
    text = (Path(__file__).parents[2] / "src/rigwise/catalog/data/systems"
            / "workstation-4x-rtx-4090.toml").read_text()
    gen2 = tmp_path / "gen2.toml"
    gen2.write_text(text.replace("value = 31.5", "value = 8.0"))  # PCIe 2.0 x16
    slow = evaluate_plan(model, gpu, spec, cfg, system=get_system(str(gen2)))
    assert slow.step_time_s > fast.step_time_s * 1.1
    compressed = evaluate_plan(model, gpu, replace(spec, compression=True), cfg,
                               system=get_system(str(gen2)))
    assert compressed.step_time_s < slow.step_time_s


def test_scaling_curve_efficiency_is_relative_to_first_fitting_count() -> None:
    pts = scaling_curve(get_model("llama-3-8b"), catalog().gpu(H100), [8, 16, 64],
                        replace(CFG, batch_size=2), system=get_system("dgx-h100-superpod"))
    assert pts[0].scaling_efficiency == pytest.approx(1.0)
    effs = [p.scaling_efficiency for p in pts if p.scaling_efficiency is not None]
    assert len(effs) == 3
    # data parallel over NVLink, then NDR: the gradient reduce-scatter hides behind the
    # backward pass, the parameter all-gather behind the forward pass, and ZeRO-1/2 split
    # each GPU's optimizer step, so efficiency stays near (or just above) 1
    assert all(0.9 < e <= 1.05 for e in effs)


def test_spec_from_label_round_trips() -> None:
    spec = PlanSpec(dp=4, tp=8, pp=4, zero=3, microbatch=2, schedule="interleaved",
                    chunks=2, sp=True, checkpointing=True)
    assert spec_from_label(spec.describe(), 128) == spec
    with pytest.raises(InputError):
        spec_from_label("TP3 banana", 12)


def test_search_returns_fitting_plans_first() -> None:
    plans = search_plans(get_model("llama-3-8b"), catalog().gpu(H100), 16, CFG,
                         system=get_system("dgx-h100-superpod"), global_batch=64)
    fits = [p.fits for p in plans]
    assert fits[0] and fits == sorted(fits, reverse=True)
    times = [p.step_time_s for p in plans if p.fits]
    assert times == sorted(times)


# -- validation against published multi-GPU measurements -----------------------------------

_RESULTS = [(r, multi_gpu_rows.predict(r)) for r in multi_gpu_rows.rows()]


def test_validation_rows_cover_sources_and_kinds() -> None:
    rows = [r for r, _ in _RESULTS]
    assert len(rows) >= 15
    assert len({r.source for r in rows}) >= 5
    assert {r.kind for r in rows} == {"multi_gpu_throughput", "scaling_efficiency"}


def test_scaling_efficiency_within_5_points_on_average() -> None:
    """Rows not marked as expected misses (8: transformers and CNNs): mean |error| at most
    3.5 points, none beyond 7 (reached: 3.4 and 6.8). The largest miss is MLPerf v3.1's
    GPT-3 4,096 -> 8,192 GPUs (-6.8): rigwise's fp8 gathers parameters in fp8 (1 B, as
    Megatron-LM's --fp8-param-gather), while that NeMo submission kept bf16 parameters
    (its conf/custom.yaml: Transformer Engine fp8 with megatron_amp_O2, no fp8 parameters),
    so its gathers moved twice the bytes the model counts."""
    errs = [abs(multi_gpu_rows.error(r, p)) for r, p in _RESULTS
            if r.unit == "scaling_efficiency" and not r.expected_miss]
    assert len(errs) >= 8
    assert statistics.fmean(errs) <= 0.035
    assert max(errs) <= 0.07


def test_cnn_ddp_rows_within_4_points() -> None:
    """NVIDIA's DGX 1-to-8-GPU ResNet-50 throughput (FP32/TF32, PyTorch DDP): each within 4
    points (reached: 3.0-3.4, the model slightly optimistic)."""
    errs = [multi_gpu_rows.error(r, p) for r, p in _RESULTS
            if r.model == "resnet50" and r.id.startswith("dle-") and not r.expected_miss]
    assert len(errs) == 3
    assert all(0 < e <= 0.04 for e in errs)


def test_step_time_and_mfu_within_bounds() -> None:
    """Rows not marked as expected misses: MAPE at most 8 %, none beyond 10 % (reached:
    7.3 % and 9.8 %)."""
    errs = [abs(multi_gpu_rows.error(r, p)) for r, p in _RESULTS
            if r.kind == "multi_gpu_throughput" and not r.expected_miss]
    assert len(errs) >= 5
    assert statistics.fmean(errs) <= 0.08
    assert max(errs) <= 0.10


def test_expected_misses_still_predicted() -> None:
    misses = [(r, p) for r, p in _RESULTS if r.expected_miss]
    assert all(p > 0 for _, p in misses)
