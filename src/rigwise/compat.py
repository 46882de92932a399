"""Which NVIDIA GPUs a CUDA toolkit or a PyTorch build still has kernels for.

A framework carries compiled kernels for a list of compute capabilities (CC); on a GPU below
that list every CUDA call fails with "no kernel image is available for execution on the
device". Sources, each for the line it sets:

* CUDA 12.0 removed sm_35 and sm_37, the last Kepler targets (LLVM commit 0f49116,
  review D152027, 2023-06: "sm_35 and sm_37 were removed in cuda-12.0"): CUDA 12 needs CC 5.0.
* CUDA 13.0 (August 2025) dropped Maxwell, Pascal and Volta, keeping Turing (NVIDIA cuDecomp
  PR #97: "CUDA 13.0 dropped support for Volta (SM70), but not Turing (SM75)"): CC 7.5.
* PyTorch 2.8's CUDA 12.8 and 12.9 wheels, the default on PyPI, are built for CC 7.5, 8.0, 8.6,
  9.0, 10.0 and 12.0; its CUDA 12.6 wheels still for 5.0 to 9.0 (pytorch/pytorch #157517,
  2025-07).
"""

from __future__ import annotations

CUDA12_MIN_CC = 5.0
"""CUDA 12.0 removed Kepler (CC 3.x)."""

CUDA13_MIN_CC = 7.5
"""CUDA 13.0 dropped Maxwell, Pascal and Volta (CC 5.0 to 7.2)."""

TORCH_CU128_MIN_CC = 7.5
"""PyTorch 2.8 and later, CUDA 12.8+ wheels: built for CC 7.5 and up."""


def _version(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def min_compute_capability(cuda: str, torch_version: str | None = None) -> float:
    """The lowest compute capability a build for CUDA ``cuda`` (``"12.8"``) has kernels for;
    with ``torch_version``, that of PyTorch's wheels for that CUDA (see the module's sources).

    Builds from source can target other capabilities; this is what the released wheels carry.
    """
    cu = _version(cuda)[:2]
    if cu >= (13, 0):
        return CUDA13_MIN_CC
    if torch_version is not None and _version(torch_version)[:2] >= (2, 8) and cu >= (12, 8):
        return TORCH_CU128_MIN_CC
    if cu >= (12, 0):
        return CUDA12_MIN_CC
    return 3.5


def current_stack_caveat(compute_capability: str) -> str:
    """What of today's CUDA/PyTorch stack a GPU of this compute capability cannot run (``''``
    when it runs all of it): a short clause for advice tables."""
    cc = float(compute_capability)
    if cc < CUDA12_MIN_CC:
        return f"no CUDA 12 or current PyTorch for CC {compute_capability}"
    if cc < CUDA13_MIN_CC:
        return f"CC {compute_capability}: dropped by CUDA 13; use PyTorch's CUDA 12.6 wheels"
    return ""
