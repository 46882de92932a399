"""Host-issued kernels: a kernel shorter than the host's issue time costs that time, a longer
one hides it (the CPU-bound regime of small decode kernels)."""

from __future__ import annotations

import pytest

from rigwise.catalog.load import catalog
from rigwise.model.efficiency import efficiency_of
from rigwise.model.ops import memory
from rigwise.model.roofline import make_device
from rigwise.model.step import issue_bound_shares, time_ops


def test_short_kernels_cost_the_issue_time_and_long_ones_hide_it() -> None:
    gpu = catalog().gpu("nvidia-rtx-4090")
    dev = make_device(gpu, "fp16", efficiency_of(gpu))
    short = memory("norm", 1e3, 0.0, count=100)  # ~1 ns each
    long = memory("gemv", 4e8, 0.0)  # ~0.5 ms
    issue = 10e-6
    s = issue_bound_shares(dev, [short, long], issue)
    assert s.total_s == pytest.approx(100 * issue + time_ops(dev, [long], 0.0).total_s,
                                      rel=1e-3)
    # graph replay instead adds the gap to every kernel
    assert time_ops(dev, [short, long], issue).launch_s == pytest.approx(101 * issue)
