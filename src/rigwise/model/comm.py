"""Time of collectives on a system's tiers: the alpha-beta model with bus bandwidth.

For ``n`` ranks, a message of ``S`` bytes, per-rank bus bandwidth ``B`` and per-step latency
``α`` (perf-models.md §7.7; Patarasuk & Yuan 2009 for the ring; nccl-tests
doc/PERFORMANCE.md for algbw/busbw):

* all-reduce, ring: ``2(n−1)·α + 2·(n−1)/n · S/B``;
* reduce-scatter / all-gather, ring (``S`` the full, unsharded buffer):
  ``(n−1)·α + (n−1)/n · S/B``;
* all-to-all (each rank sends ``S`` in total): ``(n−1)·α + (n−1)/n · S/B`` in one node;
  across nodes the ``(n−k)/n`` of ``S`` bound for other nodes crosses the rank's NIC share,
  with all sends issued at once (NCCL groups them): ``2·α_inter`` of latency;
* send/recv: ``α + S/B``;
* tree (NCCL's double binary tree): the same bandwidth term as the ring for large messages
  and ``2·⌈log2 n⌉·α`` of latency for all-reduce, which wins for small messages.

``B`` is the *bus* bandwidth: nccl-tests reports ``busbw = algbw · 2(n−1)/n`` for all-reduce
and ``algbw · (n−1)/n`` for the others, so that it compares with the link rate; each tier
carries the fraction of the link rate that busbw reaches (``Tier.efficiency``).

Across nodes a group with ``k`` ranks per node on ``m`` nodes runs **hierarchically**:
reduce-scatter inside the node, all-reduce of ``S/k`` across nodes on the per-GPU share of the
node's NICs, all-gather inside the node. NCCL pipelines the phases of its rings, so the time
is that of the slowest phase (``ring``); the un-pipelined sum is ``hierarchical``; ``auto``
takes the fastest, as NCCL's tuner does. Inter-node bandwidth per rank is the node's NIC
bandwidth divided by the GPUs that share it (``gpus_per_node / k`` groups communicate at
once in a data-parallel step).

Overlap with compute (DDP buckets, Li et al. 2020, "PyTorch Distributed"; FSDP prefetch,
Zhao et al. 2023, "PyTorch FSDP") and 8-bit gradient compression (Dettmers 2016,
"8-Bit Approximations for Parallelism in Deep Learning") are separate functions below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rigwise.catalog.systems import System, Tier
from rigwise.errors import InputError

Collective = Literal["all_reduce", "reduce_scatter", "all_gather", "all_to_all", "send_recv"]
Algorithm = Literal["ring", "tree", "hierarchical", "auto"]

COLLECTIVES: tuple[Collective, ...] = ("all_reduce", "reduce_scatter", "all_gather",
                                       "all_to_all", "send_recv")


@dataclass(frozen=True, slots=True)
class Group:
    """Ranks taking part in one collective: ``size`` in all, ``per_node`` of them in each node
    (``size`` must be a multiple of ``per_node`` when it spans nodes)."""

    size: int
    per_node: int

    @property
    def nodes(self) -> int:
        """Nodes the group spans."""
        return max(1, self.size // max(self.per_node, 1))


@dataclass(frozen=True, slots=True)
class CommTime:
    """Result of :func:`collective_time`: seconds, the algorithm used, algbw and busbw (B/s)."""

    time_s: float
    algorithm: str
    algbw_bytes_per_s: float
    busbw_bytes_per_s: float


def bus_factor(op: Collective, n: int) -> float:
    """``busbw / algbw`` of a collective over ``n`` ranks (nccl-tests PERFORMANCE.md)."""
    if n <= 1:
        return 1.0
    if op == "all_reduce":
        return 2.0 * (n - 1) / n
    if op == "send_recv":
        return 1.0
    return (n - 1) / n


def _steps(op: Collective, n: int) -> int:
    if n <= 1:
        return 0
    return {"all_reduce": 2 * (n - 1), "send_recv": 1}.get(op, n - 1)


def _flat(op: Collective, size: float, n: int, tier: Tier, algorithm: str) -> float:
    """One tier, ``n`` ranks: latency steps plus bus-bandwidth term."""
    if n <= 1 or size <= 0:
        return 0.0
    bw = tier.busbw(n) if op != "send_recv" else _p2p_bandwidth(tier)
    steps = _steps(op, n)
    if algorithm == "tree" and op == "all_reduce":
        steps = 2 * math.ceil(math.log2(n))
    return steps * tier.latency_s + bus_factor(op, n) * size / bw


def _p2p_bandwidth(tier: Tier) -> float:
    """Bandwidth between two GPUs of a tier: one link of a mesh, the full rate otherwise."""
    bw = tier.bytes_per_s * tier.efficiency
    if tier.fabric == "ici-torus":
        bw /= 3.0  # one dimension's pair of ports
    if not tier.p2p:
        bw *= tier.no_p2p_factor
    return bw


def collective_time(op: Collective, size_bytes: float, system: System, group: Group,
                    algorithm: Algorithm = "auto") -> CommTime:
    """Seconds for one collective of ``size_bytes`` over ``group`` on ``system``.

    ``size_bytes``: the buffer for all-reduce, the full (unsharded) buffer for reduce-scatter
    and all-gather, the bytes each rank sends for all-to-all, the message for send/recv.

    Raises:
        InputError: a negative size, an unknown collective, or a group that spans nodes on a
            system without a network.
    """
    if size_bytes < 0:
        raise InputError(f"message size must be non-negative, got {size_bytes}")
    if op not in COLLECTIVES:
        raise InputError(f"unknown collective {op!r}; choose one of {', '.join(COLLECTIVES)}")
    n, k, m = group.size, min(group.per_node, group.size), group.nodes
    if n <= 1 or size_bytes == 0:
        return CommTime(0.0, "none", math.inf, math.inf)
    if m > 1 and system.inter is None:
        raise InputError(f"{system.name} has no network between nodes; a group of {n} GPUs "
                         f"needs {m} nodes")
    candidates: dict[str, float] = {}
    if m == 1:
        for alg in ("ring", "tree"):
            candidates[alg] = _flat(op, size_bytes, n, system.intra, alg)
    else:
        assert system.inter is not None
        candidates.update(_two_tier(op, size_bytes, k, m, system))
    if algorithm != "auto":
        key = algorithm if algorithm in candidates else "ring"
        candidates = {key: candidates[key]}
    alg = min(candidates, key=lambda a: candidates[a])
    t = candidates[alg]
    algbw = size_bytes / t if t > 0 else math.inf
    return CommTime(t, alg, algbw, algbw * bus_factor(op, n))


def _two_tier(op: Collective, size: float, k: int, m: int, system: System) -> dict[str, float]:
    """Ring (pipelined tiers), tree and hierarchical (sequential) times across nodes."""
    intra, inter = system.intra, system.inter
    assert inter is not None
    inter_bw = inter.busbw(m) * k  # k ranks per node, each with its GPU's share of the NICs
    n = k * m
    if op == "send_recv":
        t = inter.latency_s + size / (inter.bytes_per_s * inter.efficiency)
        return {"ring": t}
    if op == "all_to_all":
        local = (k - 1) / n * size / intra.busbw(k) if k > 1 else 0.0
        remote = (n - k) / n * size * k / inter_bw
        return {"ring": max(local, remote) + 2 * inter.latency_s}
    factor = 2.0 if op == "all_reduce" else 1.0
    intra_t = (factor * (k - 1) / k * size / intra.busbw(k)) if k > 1 else 0.0
    inter_t = factor * (m - 1) / m * size / inter_bw
    steps_i = _steps(op, k) if k > 1 else 0
    steps_o = _steps(op, m)
    ring_bw = factor * (n - 1) / n * size / min(intra.busbw(k) if k > 1 else math.inf,
                                                inter_bw)
    out = {
        "ring": ring_bw + _steps(op, n) * max(intra.latency_s, inter.latency_s),
        "hierarchical": intra_t + inter_t + steps_i * intra.latency_s
        + steps_o * inter.latency_s,
    }
    if op == "all_reduce":
        tree_lat = 2 * math.ceil(math.log2(m)) * inter.latency_s + 2 * k * intra.latency_s
        out["tree"] = max(intra_t, inter_t) + tree_lat
    return out


def exposed_time(comm_s: float, overlappable_s: float, overlap: float,
                 tail_s: float = 0.0) -> float:
    """Communication time left on the critical path when it runs beside compute.

    ``overlap`` is the fraction of ``overlappable_s`` (compute that can run at the same
    time, e.g. the backward pass for DDP's bucketed all-reduce) that hides communication;
    ``tail_s`` is what can never hide (the last bucket, issued after the last gradient).
    Returns ``max(tail_s, comm_s − overlap · overlappable_s)``, at most ``comm_s``.
    """
    if comm_s <= 0:
        return 0.0
    return min(comm_s, max(tail_s, comm_s - overlap * overlappable_s))


def chunked_exposed(comm_s: float, pass_s: float, chunks: int, spacing_s: float,
                    overlap: float, tail_s: float = 0.0) -> float:
    """Exposed time of data-parallel traffic split over ``chunks`` model chunks of an
    interleaved pipeline (Narayanan et al. 2021, §2.2; Megatron-LM buckets each chunk apart).

    Chunk ``j``'s share ``comm_s / chunks`` must be done by ``j·spacing_s + pass_s/chunks``
    (the schedule runs ``spacing_s`` of other chunks' passes between two chunks; ``pass_s``
    is one micro-batch's pass over all chunks), progressing at ``overlap`` while compute
    runs. Returns the worst lateness, at least ``tail_s``, at most ``comm_s``; with one chunk
    this is :func:`exposed_time`.
    """
    if comm_s <= 0:
        return 0.0
    if chunks <= 1:
        return exposed_time(comm_s, pass_s, overlap, tail_s)
    late = max((j + 1) * comm_s / chunks - overlap * (j * spacing_s + pass_s / chunks)
               for j in range(chunks))
    return min(comm_s, max(tail_s, late))


def prefetch_exposed(per_layer_comm_s: float, per_layer_compute_s: float, layers: int,
                     overlap: float) -> float:
    """Exposed time of FSDP's per-layer all-gathers with prefetch (Zhao et al. 2023, §4.3):
    the first layer's gather is exposed; each later gather hides behind the previous layer's
    compute, leaving ``max(0, c − overlap · t)`` per layer."""
    if per_layer_comm_s <= 0 or layers <= 0:
        return 0.0
    hidden = max(0.0, per_layer_comm_s - overlap * per_layer_compute_s)
    return per_layer_comm_s + (layers - 1) * hidden


DDP_BUCKET_BYTES = 25 * 2**20
"""PyTorch DDP's default gradient bucket, 25 MiB (``bucket_cap_mb=25``; Li et al. 2020)."""

DDP_FIRST_BUCKET_BYTES = 1 * 2**20
"""PyTorch DDP's first bucket (the last layers' gradients), 1 MiB, so that communication
starts early in the backward pass (``kDefaultFirstBucketBytes`` in torch's reducer)."""


def ddp_buckets(grad_bytes: list[float], cap_bytes: float = DDP_BUCKET_BYTES,
                first_cap_bytes: float = DDP_FIRST_BUCKET_BYTES) -> list[tuple[int, float]]:
    """Gradient buckets as PyTorch DDP fills them (Li et al. 2020, §3.2.3).

    ``grad_bytes``: gradient bytes of each layer in the order the backward pass produces
    them (last layer first). A bucket closes once it holds at least its cap (the first
    ``first_cap_bytes``, the others ``cap_bytes``); a layer larger than the cap fills a bucket
    on its own. Returns ``(index of the layer that completes the bucket, bucket bytes)``.
    """
    out: list[tuple[int, float]] = []
    size, cap = 0.0, first_cap_bytes
    for i, b in enumerate(grad_bytes):
        if b <= 0:
            continue
        size += b
        if size >= cap:
            out.append((i, size))
            size, cap = 0.0, cap_bytes
    if size > 0:
        out.append((len(grad_bytes) - 1, size))
    return out


def overlapped_finish(ready_s: list[float], comm_s: list[float], window_s: float,
                      overlap: float) -> float:
    """When the last of a queue of collectives finishes, in seconds from the start of a
    compute window of ``window_s`` seconds (the backward pass for DDP's buckets).

    Collective ``i`` becomes ready at ``ready_s[i]`` and runs after the previous one on one
    communication stream (NCCL serialises a process group's collectives). While compute
    runs it progresses at ``overlap`` of its full speed (the two share SMs and memory
    bandwidth; ``[link] ddp_overlap``); after the window, at full speed. With one collective
    ready at 0 this is :func:`exposed_time`'s ``max(0, C − o·T)`` past the window.
    """
    if not 0 < overlap <= 1:
        raise InputError(f"overlap must be in (0, 1], got {overlap}")
    free = 0.0
    for ready, dur in zip(ready_s, comm_s, strict=True):
        start = max(ready, free)
        if start >= window_s:
            free = start + dur
            continue
        inside = (window_s - start) * overlap  # work done before the window closes
        free = start + dur / overlap if dur <= inside else window_s + (dur - inside)
    return free


def compressed_bytes(grad_bytes: float, bytes_per_value: float) -> float:
    """Bytes on the wire when gradients of ``bytes_per_value`` are sent as 8-bit values with
    one fp32 scale per block of 256 (Dettmers 2016; block-wise like Dettmers et al. 2022)."""
    values = grad_bytes / bytes_per_value
    return values * (1.0 + 4.0 / 256.0)


def compression_overhead_s(grad_bytes: float, bytes_per_value: float,
                           memory_bytes_per_s: float, n: int) -> float:
    """Seconds spent (de)quantising gradients for an 8-bit ring all-reduce.

    Each of the ``2(n−1)`` ring steps quantises what it sends and dequantises what it
    receives (a memory-bound pass over ``S/n`` values each way): about
    ``2·(n−1)/n · (S + S/b)`` bytes through device memory in total, ``b`` the bytes per
    value. Dettmers 2016 measured 8-bit transfers 2.2x faster than 32-bit end to end
    where the data shrank 4x: this overhead is what eats the difference.
    """
    if n <= 1:
        return 0.0
    values = grad_bytes / bytes_per_value
    return 2.0 * (n - 1) / n * 2.0 * (grad_bytes + values) / memory_bytes_per_s
