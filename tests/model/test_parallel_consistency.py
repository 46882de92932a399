"""Consistency of the parallel-plan model with itself and with the single-GPU estimate: one
optimizer-step table, plan labels that read back and the search space's edges (an empty
space, max_tp)."""

from __future__ import annotations

import pytest

from rigwise.catalog.load import catalog
from rigwise.catalog.systems import get_system
from rigwise.errors import InputError
from rigwise.model import memory as mem_model
from rigwise.model.estimate import TrainConfig, estimate_train
from rigwise.model.parallel import (
    PlanSpec,
    SearchSpace,
    best_plan,
    enumerate_plans,
    evaluate_plan,
    spec_from_label,
)
from rigwise.model.parallel_context import _context
from rigwise.model.parallel_time import _optimizer_s
from rigwise.workload.models import get_model

H100 = "nvidia-h100-sxm5-80gb"
A100 = "nvidia-a100-sxm4-80gb"


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
