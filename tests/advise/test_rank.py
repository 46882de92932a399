"""What ``rigwise advise`` tells a buyer besides speed and price."""

from __future__ import annotations

import pytest

from rigwise.advise.rank import software_caveat
from rigwise.catalog.load import catalog


@pytest.mark.parametrize(("gpu", "says"), [
    # CUDA 12.0 removed sm_35/sm_37 (LLVM commit 0f49116): a K80 runs no current stack
    ("nvidia-tesla-k80", "no CUDA 12"),
    # CUDA 13.0 dropped Maxwell, Pascal and Volta; PyTorch 2.8's default wheels need CC 7.5
    ("nvidia-gtx-1080-ti", "dropped by CUDA 13"),
    ("nvidia-p100-pcie-16gb", "dropped by CUDA 13"),
    ("nvidia-v100-sxm2-32gb", "dropped by CUDA 13"),
    ("amd-mi300x", "ROCm"),
])
def test_old_or_non_cuda_gpus_carry_a_software_caveat(gpu: str, says: str) -> None:
    assert says in software_caveat(catalog().gpus[gpu])


@pytest.mark.parametrize("gpu", ["nvidia-t4", "nvidia-rtx-2080-ti", "nvidia-a100-sxm4-80gb",
                                 "nvidia-rtx-4090", "nvidia-h100-sxm5-80gb"])
def test_turing_and_newer_run_the_current_stack(gpu: str) -> None:
    assert software_caveat(catalog().gpus[gpu]) == ""
