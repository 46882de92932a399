"""CNN activation layout: NCHW pays cuDNN's layout transposes on tensor cores only."""

from __future__ import annotations

import pytest

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig, estimate_train
from rigwise.workload.models import get_model


def _rate(gpu: str, precision: str, batch: int, fmt: str, gpus: int = 1) -> float:
    cfg = TrainConfig(precision=precision, batch_size=batch, optimizer="sgd",
                      memory_format=fmt, gpus=gpus)
    return estimate_train(get_model("resnet50"), catalog().gpu(gpu), cfg).samples_per_s


@pytest.mark.parametrize(("gpu", "precision"), [("nvidia-v100-sxm2-16gb", "fp16"),
                                                ("nvidia-a100-sxm4-80gb", "fp16"),
                                                ("nvidia-a100-sxm4-80gb", "tf32")])
def test_channels_last_gain_on_resnet50_matches_published(gpu: str, precision: str) -> None:
    """PyTorch's channels-last tutorial: over 22 % faster ResNet-50 AMP training on V100;
    MosaicML's Channels Last card: about 30 % on V100 and A100."""
    gain = _rate(gpu, precision, 256, "channels_last") / _rate(gpu, precision, 256, "nchw")
    assert 1.20 <= gain <= 1.35


def test_fp32_simt_convolutions_run_nchw_natively() -> None:
    v100 = "nvidia-v100-sxm2-16gb"
    assert _rate(v100, "fp32", 112, "nchw") == pytest.approx(_rate(v100, "fp32", 112,
                                                                   "channels_last"))


def test_data_parallel_cnn_pays_the_transposes_too() -> None:
    a100 = "nvidia-a100-sxm4-80gb"
    nhwc, nchw = (_rate(a100, "fp16", 256, f, gpus=8) for f in ("channels_last", "nchw"))
    assert 1.15 <= nhwc / nchw <= 1.35


def test_unknown_memory_format_is_a_clear_input_error() -> None:
    with pytest.raises(InputError, match="memory format"):
        _rate("nvidia-a100-sxm4-80gb", "fp16", 64, "nhcw")
