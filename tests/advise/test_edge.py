"""Edge inference under a power cap and a latency target."""

from __future__ import annotations

import pytest

from rigwise.advise.edge import edge_options
from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.infer import InferConfig, estimate_infer
from rigwise.workload.models import get_model


def test_single_slot_75w_cards() -> None:
    # Dettmers' answer to a 150 W in-car server: a single-slot card at 75 W
    a = edge_options(get_model("llama-3-8b"), catalog().gpus.values(), max_power_w=75.0,
                     max_latency_s=0.1, max_slots=1)
    assert a.options
    for o in a.options:
        assert o.power_w <= 75.0 and (o.gpu.slots or 0) <= 1
    assert {"nvidia-t4", "nvidia-l4"} <= {o.gpu.id for o in a.options if o.meets}


def test_batch_is_the_largest_that_meets_the_target() -> None:
    model = get_model("llama-3-8b")
    a = edge_options(model, [catalog().gpu("nvidia-t4")], max_power_w=75.0,
                     max_latency_s=0.05)
    o = a.options[0]
    assert o.meets and o.latency_s <= 0.05
    bigger = estimate_infer(model, o.gpu, InferConfig(weights=o.weights,
                                                      batch_size=o.batch * 2,
                                                      prompt_tokens=512, output_tokens=128))
    assert not bigger.fits or bigger.decode_time_per_token_s > 0.05


def test_power_limits_stay_within_sourced_range() -> None:
    a = edge_options(get_model("llama-3-8b"), catalog().gpus.values(), max_power_w=150.0,
                     max_latency_s=0.05)
    limited = [o for o in a.options if o.power_limited]
    assert limited
    for o in limited:
        assert o.power_w == 150.0 and o.gpu.tdp_w is not None
        assert o.power_w / o.gpu.tdp_w >= 0.6 - 1e-9
        assert o.speed_kept < 1.0
    assert any("even at a 60% power limit" in r for _, r in a.excluded)
    assert all(o.meets for o in a.options[:3])


def test_jetson_is_considered_within_its_power() -> None:
    a = edge_options(get_model("llama-3-8b"), [catalog().gpu("nvidia-jetson-agx-orin-64gb")],
                     max_power_w=60.0, max_latency_s=1.0)
    assert a.options and a.options[0].power_w <= 60.0


def test_bad_inputs() -> None:
    with pytest.raises(InputError):
        edge_options(get_model("llama-3-8b"), [], max_power_w=0, max_latency_s=0.1)
    with pytest.raises(InputError, match="decoder"):
        edge_options(get_model("resnet50"), [catalog().gpu("nvidia-t4")], max_power_w=75,
                     max_latency_s=0.1)
