"""The CPU data loader as a limit on image-model training.

An image model trains no faster than the CPU decodes and augments its images. With a loader
that runs on the CPU, ``images/s <= cores x r`` where ``r`` is the loader's rate per core
(``catalog/data/efficiency/default.toml``, ``[loader]``):

* ``pillow``: PyTorch DataLoader with Pillow, 160 images/s per core (FFCV's benchmark:
  3,804 images/s on 24 cores for JPEG decode + RandomResizedCrop(224) + flip; 184 per core on
  12; timm issue #1491: 192 per worker on an A100 machine);
* ``pillow-simd``: 250 images/s per core (timm #1491, a lower bound).

``none`` (the default) sets no CPU limit: synthetic data, images decoded on the GPU (DALI with
nvJPEG), or data preprocessed before training. The guide's rule of thumb, 1-2 cores per GPU
(Dettmers 2018), predates GPUs that train ResNet-50 at thousands of images per second; the
cores a GPU needs are ``images/s / r`` (:func:`cores_to_feed`).

Known limits: the per-core rate falls as cores are added (FFCV's loader flattens at about
3,950 images/s from 48 cores up); image size, augmentations and storage change it.
"""

from __future__ import annotations

from rigwise.errors import InputError
from rigwise.model.efficiency import loader_rates

LOADERS = ("none", "pillow", "pillow-simd")

LOADER_HIGH = 1.2
"""Highest sourced Pillow rate per core over the one used (timm #1491: 192 against 160)."""


def per_core(loader: str) -> float | None:
    """Images per second per CPU core of ``loader``; None for ``none`` (no CPU limit).

    Raises:
        InputError: an unknown loader.
    """
    if loader not in LOADERS:
        raise InputError(f"unknown data loader {loader!r}; choose pillow, pillow-simd or none "
                         "(no CPU limit: synthetic data, DALI's GPU decoding, preprocessed data)")
    return None if loader == "none" else loader_rates()[loader]


def loader_limit(loader: str, cpu_cores: int | None) -> float | None:
    """The images per second ``cpu_cores`` cores of ``loader`` supply, or None without a limit.

    Raises:
        InputError: an unknown loader; a CPU loader without a positive core count.
    """
    rate = per_core(loader)
    if rate is None:
        return None
    if cpu_cores is None or cpu_cores <= 0:
        raise InputError(f"the {loader} data loader needs the machine's CPU cores "
                         "(--cpu-cores N, N > 0)")
    return cpu_cores * rate


def cores_to_feed(images_per_s: float, loader: str = "pillow") -> float:
    """CPU cores ``loader`` needs to supply ``images_per_s`` (fractional).

    Raises:
        InputError: an unknown loader or ``none``.
    """
    rate = per_core(loader)
    if rate is None:
        raise InputError("cores to feed a GPU are defined for a CPU data loader, not 'none'")
    return images_per_s / rate
