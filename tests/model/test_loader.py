"""The CPU data loader as a ceiling on image-model training (rigwise.model.loader)."""

from __future__ import annotations

import math

import pytest

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig, TrainEstimate, estimate_train
from rigwise.model.loader import cores_to_feed, loader_limit, per_core
from rigwise.workload.models import get_model


def _rn50(gpu: str, gpus: int = 1, data_loader: str = "none",
          cpu_cores: int | None = None) -> TrainEstimate:
    cfg = TrainConfig(precision="fp16", batch_size=256, optimizer="sgd", gpus=gpus,
                      data_loader=data_loader, cpu_cores=cpu_cores)
    return estimate_train(get_model("resnet50"), catalog().gpu(gpu), cfg)


def test_per_core_rates_are_the_sourced_ones() -> None:
    assert per_core("pillow") == 160  # FFCV benchmark: 3,804 images/s on 24 cores
    assert per_core("pillow-simd") == 250  # timm #1491, a lower bound
    assert per_core("none") is None
    assert loader_limit("pillow", 24) == pytest.approx(3840)
    assert cores_to_feed(1600, "pillow") == pytest.approx(10)


def test_ten_pillow_workers_cannot_feed_an_a100_on_resnet50() -> None:
    """timm issue #1491: ResNet-50 AMP channels_last on one A100 reached 2,600 images/s GPU-only
    but 1,923 with 10 Pillow DataLoader workers (the loader was the limit)."""
    free = _rn50("nvidia-a100-sxm4-80gb")
    fed = _rn50("nvidia-a100-sxm4-80gb", data_loader="pillow", cpu_cores=10)
    assert free.samples_per_s == pytest.approx(2600, rel=0.10)
    assert fed.bottleneck == "data loader (CPU)"
    assert fed.samples_per_s == pytest.approx(1923, rel=0.20)
    assert fed.step_time_s > free.step_time_s
    assert fed.mfu < free.mfu


def test_enough_cores_leave_the_gpu_rate_and_say_how_many_are_needed() -> None:
    free = _rn50("nvidia-rtx-4090")
    need = free.cores_to_feed
    assert need is not None
    assert need["pillow"] == pytest.approx(free.samples_per_s / 160)
    fed = _rn50("nvidia-rtx-4090", data_loader="pillow", cpu_cores=math.ceil(need["pillow"]))
    assert fed.samples_per_s == pytest.approx(free.samples_per_s)
    assert fed.bottleneck != "data loader (CPU)"


def test_several_gpus_share_the_machine_loader() -> None:
    fed = _rn50("nvidia-rtx-4090", gpus=4, data_loader="pillow", cpu_cores=16)
    assert fed.samples_per_s == pytest.approx(16 * 160)


def test_loader_needs_cores_and_an_image_model() -> None:
    with pytest.raises(InputError, match="cpu-cores"):
        _rn50("nvidia-rtx-4090", data_loader="pillow")
    with pytest.raises(InputError, match="data loader"):
        _rn50("nvidia-rtx-4090", data_loader="opencv", cpu_cores=8)
    with pytest.raises(InputError, match="image"):
        estimate_train(get_model("gpt2"), catalog().gpu("nvidia-rtx-4090"),
                       TrainConfig(data_loader="pillow", cpu_cores=8))
    assert estimate_train(get_model("gpt2"), catalog().gpu("nvidia-rtx-4090"),
                          TrainConfig()).cores_to_feed is None


def test_a_loader_bound_range_stays_near_the_loader_rate() -> None:
    fed = _rn50("nvidia-rtx-4090", data_loader="pillow", cpu_cores=4)
    rng = fed.samples_per_s_range()
    assert rng is not None
    assert rng[0] <= fed.samples_per_s <= rng[1] <= 1.2 * 4 * 160
