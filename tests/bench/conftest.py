"""Shared fixtures: PyTorch on the CPU with few threads, and a quick timer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rigwise.bench.suites import BenchContext
from rigwise.bench.timer import TimerConfig

#: few samples: the suites' counting and plumbing are under test, not this machine's speed
TEST_TIMER = TimerConfig(warmup_s=0.0, warmup_calls=1, min_samples=3, max_samples=3,
                         min_time_s=0.0, max_time_s=1.0, min_sample_s=1e-4)


@pytest.fixture(scope="session")
def torch() -> Iterator[Any]:
    """PyTorch with one intra-op thread: on 2 shared cores, OpenMP barriers under load from
    other processes make multi-threaded kernels 10x slower and the tests flaky in time."""
    t = pytest.importorskip("torch")
    threads = t.get_num_threads()
    t.set_num_threads(1)
    yield t
    t.set_num_threads(threads)


@pytest.fixture
def cpu_ctx(torch: Any) -> BenchContext:
    return BenchContext(torch=torch, device="cpu", size="tiny", timer=TEST_TIMER)
