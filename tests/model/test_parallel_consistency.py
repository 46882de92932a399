"""Consistency of the parallel-plan model with itself and with the single-GPU estimate: one
optimizer-step table, ZeRO-Offload with fp32 weights, plan labels that read back, the search
space's edges, the ZeRO-1/2 parameter all-gather and the bytes per value of fp8 gathers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rigwise.catalog.load import catalog
from rigwise.catalog.systems import get_system
from rigwise.errors import InputError
from rigwise.model import memory as mem_model
from rigwise.model.comm import collective_time
from rigwise.model.estimate import TrainConfig, estimate_train
from rigwise.model.parallel import (
    PlanSpec,
    SearchSpace,
    best_plan,
    enumerate_plans,
    evaluate_plan,
    spec_from_label,
)
from rigwise.model.parallel_context import _context, _placement
from rigwise.model.parallel_memory import _params, gathered_weight_bytes, working_weight_bytes
from rigwise.model.parallel_time import _optimizer_s
from rigwise.workload.models import get_model

H100 = "nvidia-h100-sxm5-80gb"
A100 = "nvidia-a100-sxm4-80gb"


def _llama8b(spec: PlanSpec, precision: str = "bf16", gb: int = 64):
    return evaluate_plan(get_model("llama-3-8b"), catalog().gpu(H100), spec,
                         TrainConfig(seq_len=4096, precision=precision),
                         system=get_system("dgx-h100"), global_batch=gb)


# -- 1. one optimizer-step table ------------------------------------------------------------

def test_optimizer_tables_name_the_same_optimizers() -> None:
    """An optimizer with states but no step cost (or the reverse) cannot exist."""
    assert set(mem_model.OPTIMIZER_STEP_BYTES_PER_PARAM) == \
        set(mem_model.OPTIMIZER_BYTES_PER_PARAM)
    # the step reads and writes at least the states and the fp32 weight and gradient
    for name, states in mem_model.OPTIMIZER_BYTES_PER_PARAM.items():
        assert mem_model.OPTIMIZER_STEP_BYTES_PER_PARAM[name] >= 2 * states + 4 + 4


def test_single_gpu_ddp_and_parallel_plans_read_one_optimizer_step_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Doubling an optimizer's step bytes in the table slows the optimizer step of the
    single-GPU estimate, of a CNN data-parallel plan and of a transformer plan alike."""
    rn50 = TrainConfig(precision="fp16", batch_size=256, optimizer="sgd")
    gpt = TrainConfig(seq_len=1024, batch_size=8, optimizer="sgd")
    spec = PlanSpec(dp=8, zero=1, microbatch=8)

    def times() -> tuple[float, float, float]:
        single = estimate_train(get_model("gpt2-xl"), catalog().gpu(A100), gpt).step_time_s
        cnn = evaluate_plan(get_model("resnet50"), catalog().gpu(A100),
                            PlanSpec(dp=8, microbatch=256), rn50,
                            system=get_system("dgx-a100")).time.optimizer_s
        ctx = _context(get_model("gpt2-xl"), catalog().gpu(A100), gpt,
                       get_system("dgx-a100"), None, 8)
        return single, cnn, _optimizer_s(ctx, spec)[0]

    before = times()
    monkeypatch.setitem(mem_model.OPTIMIZER_STEP_BYTES_PER_PARAM, "sgd",
                        2 * mem_model.OPTIMIZER_STEP_BYTES_PER_PARAM["sgd"])
    after = times()
    assert all(a > b for a, b in zip(after, before, strict=True))
    assert after[2] == pytest.approx(2 * before[2])  # a pure bandwidth term


# -- 2. ZeRO-Offload with fp32 weights ------------------------------------------------------

@pytest.mark.parametrize("zero", [1, 2, 3])
def test_fp32_offload_keeps_the_compute_weights_on_the_gpu(zero: int) -> None:
    """Ren et al. 2021 (ZeRO-Offload): the GPU keeps the compute copy, the host the fp32
    shard and the optimizer states. With fp32 the compute copy is the fp32 weights."""
    base = PlanSpec(dp=8, zero=zero, microbatch=1, checkpointing=True)
    on_gpu = _llama8b(base, "fp32").memory
    off = _llama8b(replace(base, offload=True), "fp32").memory
    assert off.weights_bytes == pytest.approx(on_gpu.weights_bytes) and off.weights_bytes > 0
    assert off.optimizer_bytes == 0.0
    assert off.gradients_bytes == pytest.approx(on_gpu.gradients_bytes)
    # host: the fp32 shard CPU Adam updates (4 B) and AdamW's states (8 B), each / dp
    assert off.host_bytes == pytest.approx(on_gpu.optimizer_bytes * (4 + 8) / 8)


def test_bf16_offload_moves_the_master_weights_to_the_host() -> None:
    base = PlanSpec(dp=8, zero=2, microbatch=1, checkpointing=True)
    on_gpu = _llama8b(base).memory
    off = _llama8b(replace(base, offload=True)).memory
    params = on_gpu.optimizer_bytes * 8 / 8  # AdamW 8 B per parameter, sharded over 8
    # on the GPU: the 16-bit copy (2 B) of every parameter, plus the fp32 master shard
    assert on_gpu.weights_bytes == pytest.approx(params * 2 + params * 4 / 8)
    assert off.weights_bytes == pytest.approx(params * 2)
    assert off.host_bytes == pytest.approx(params * (4 + 8) / 8)


def test_fp32_offload_moves_fp32_gradients_and_parameters_over_the_host_link() -> None:
    """Gradients down and parameters up at the bytes of the training format: 2 + 2 B per
    parameter for bf16, 4 + 4 B for fp32; the CPU Adam work is the same."""
    spec = PlanSpec(dp=8, zero=2, microbatch=1, checkpointing=True, offload=True)
    system = get_system("dgx-h100")
    bf16, fp32 = _llama8b(spec).time.offload_s, _llama8b(spec, "fp32").time.offload_s
    ctx = _context(get_model("llama-3-8b"), catalog().gpu(H100), TrainConfig(seq_len=4096),
                   system, 64, 8)
    dense = _params(ctx, spec)[0]
    assert fp32 - bf16 == pytest.approx(dense / 8 * 4 / system.host_bytes_per_s)


# -- 3. plan labels read back ---------------------------------------------------------------

@pytest.mark.parametrize(("model", "n_gpus"), [("llama-2-70b", 64), ("mixtral-8x7b", 32),
                                               ("gpt2-xl", 1)])
def test_every_enumerated_plan_label_reads_back_to_the_same_plan(model: str,
                                                                 n_gpus: int) -> None:
    shape = get_model(model).shape
    specs = enumerate_plans(n_gpus, shape, 8, SearchSpace(compression=True))  # type: ignore[arg-type]
    assert specs
    for p in specs:
        assert spec_from_label(p.describe(), n_gpus) == p, p.describe()
    if n_gpus > 1:  # the space holds every kind of flag
        assert any(p.compression for p in specs) and any(p.offload for p in specs)
        assert any(p.zero == 3 for p in specs) and any(p.schedule == "interleaved"
                                                       for p in specs)
    if model.startswith("mixtral"):
        assert any(p.ep > 1 for p in specs)


# -- 4. a search space with no plan ---------------------------------------------------------

def test_empty_search_space_is_named_as_such() -> None:
    """SP needs TP > 1, so SP-only plans capped at TP1 leave nothing to search."""
    p = best_plan(get_model("llama-3-8b"), catalog().gpu(H100), 8, TrainConfig(seq_len=4096),
                  system=get_system("dgx-h100"), global_batch=64,
                  space=SearchSpace(sp=(True,), max_tp=1))
    assert not p.feasible and not p.fits
    assert len(p.reasons) == 1 and "search space holds no plan for 8 GPUs" in p.reasons[0]


def test_no_runnable_plan_gives_the_first_reason() -> None:
    """Micro-batches of 16 cannot split a global batch of 8: every plan is searched, none
    runs, and the answer says why."""
    p = best_plan(get_model("llama-3-8b"), catalog().gpu(H100), 8, TrainConfig(seq_len=4096),
                  system=get_system("dgx-h100"), global_batch=8,
                  space=SearchSpace(microbatches=(16,)))
    assert not p.feasible
    assert p.reasons[0].startswith("no plan can run: ") and "global batch 8" in p.reasons[0]


# -- 5. max_tp ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -2])
def test_max_tp_below_one_is_an_input_error(bad: int) -> None:
    with pytest.raises(InputError, match="max_tp must be at least 1"):
        SearchSpace(max_tp=bad)


def test_max_tp_caps_tensor_parallelism() -> None:
    shape = get_model("llama-2-70b").shape
    tps = {m: {p.tp for p in enumerate_plans(64, shape, 8, SearchSpace(max_tp=m))}  # type: ignore[arg-type]
           for m in (1, 2, None)}
    assert tps == {1: {1}, 2: {1, 2}, None: {1, 2, 4, 8}}


# -- 6 and 7. data-parallel traffic and the bytes of parameter gathers -----------------------

def _dp_traffic(precision: str, zero: int) -> tuple[float, float]:
    """(model's dp seconds, reduce-scatter/all-reduce + all-gather computed here)."""
    spec = PlanSpec(dp=8, zero=zero, microbatch=1, checkpointing=True)
    cfg = TrainConfig(seq_len=4096, precision=precision)
    plan = _llama8b(spec, precision)
    ctx = _context(get_model("llama-3-8b"), catalog().gpu(H100), cfg,
                   get_system("dgx-h100"), 64, 8)
    group, sys_ = _placement(ctx, spec)["dp"], ctx.system
    dense = _params(ctx, spec)[0]
    grad_b = 4.0 if precision == "fp32" else 2.0
    gather_b = {"bf16": 2.0, "fp8": 1.0, "fp32": 4.0}[precision]
    if zero == 0:
        want = collective_time("all_reduce", dense * grad_b, sys_, group).time_s
    else:
        want = (collective_time("reduce_scatter", dense * grad_b, sys_, group).time_s
                + collective_time("all_gather", dense * gather_b, sys_, group).time_s)
    return plan.time.comm_total_s["dp"], want


@pytest.mark.parametrize("zero", [0, 1, 2])
def test_zero_1_and_2_reduce_scatter_then_all_gather(zero: int) -> None:
    """Rajbhandari et al. 2020, §5 and §7: stages 1 and 2 both reduce-scatter the gradients
    and all-gather the updated parameters; stage 0 all-reduces."""
    got, want = _dp_traffic("bf16", zero)
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("zero", [1, 2])
def test_fp8_parameter_gathers_move_one_byte_per_value(zero: int) -> None:
    """fp8 working weights (Transformer Engine fp8_model_init, Megatron-LM
    --fp8-param-gather) are gathered in fp8 by ZeRO-1/2 as by ZeRO-3; gradients stay bf16."""
    got, want = _dp_traffic("fp8", zero)
    assert got == pytest.approx(want, rel=1e-9)


def test_one_byte_rule_for_fp8_across_memory_and_gathers() -> None:
    """The working copy the memory model holds is the one the gathers move."""
    for prec in ("fp32", "tf32", "fp16", "bf16", "fp8"):
        held = mem_model.weights_bytes_train("train", prec, 1.0, 1.0, 0.0) - 4.0
        assert working_weight_bytes(prec) == held
        assert gathered_weight_bytes(prec) == (held or 4.0)
    # ZeRO-3 shards the working copy and keeps two gathered layers in the same format:
    # fp8 holds 1 B less than bf16 per sharded parameter and per buffered parameter
    z3 = PlanSpec(dp=8, zero=3, microbatch=1, checkpointing=True)
    fp8, bf16 = _llama8b(z3, "fp8").memory, _llama8b(z3).memory
    ctx = _context(get_model("llama-3-8b"), catalog().gpu(H100), TrainConfig(seq_len=4096),
                   get_system("dgx-h100"), 64, 8)
    dense, _, layer, _ = _params(ctx, z3)
    assert bf16.weights_bytes - fp8.weights_bytes == pytest.approx(dense / 8 + 2 * layer)
