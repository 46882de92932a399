"""Consistency of the parallel-plan model: plan labels that read back and the search space's
edges (an empty space, max_tp)."""

from __future__ import annotations

import pytest

from rigwise.catalog.load import catalog
from rigwise.catalog.systems import get_system
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel import (
    SearchSpace,
    best_plan,
    enumerate_plans,
    spec_from_label,
)
from rigwise.workload.models import get_model

H100 = "nvidia-h100-sxm5-80gb"


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
