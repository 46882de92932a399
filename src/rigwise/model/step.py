"""The time of a pass from its ops: shares of compute, memory, launches; the backward kernels of
a forward pass; the bottleneck; the GPU-GPU link of one machine. Shared by training
(:mod:`rigwise.model.estimate`, :mod:`rigwise.model.ddp`, :mod:`rigwise.model.parallel`) and
inference (:mod:`rigwise.model.infer`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rigwise import units
from rigwise.catalog.load import catalog
from rigwise.catalog.models import Gpu
from rigwise.errors import InputError
from rigwise.model.efficiency import overheads
from rigwise.model.ops import Op
from rigwise.model.roofline import Device, op_seconds, op_time


@dataclass(frozen=True, slots=True)
class TimeShares:
    """Where the time of a step goes, in seconds; ``host_s``: transfers between host and
    GPU memory that the GPU waits for (paged optimizer states)."""

    compute_s: float
    memory_s: float
    launch_s: float
    communication_s: float = 0.0
    bubble_s: float = 0.0
    host_s: float = 0.0

    @property
    def total_s(self) -> float:
        """Sum of the shares."""
        return (self.compute_s + self.memory_s + self.launch_s + self.communication_s
                + self.bubble_s + self.host_s)


def require_positive(name: str, value: int) -> None:
    """Raise :class:`InputError` unless ``value`` (a size or count called ``name``) is > 0."""
    if value <= 0:
        raise InputError(f"{name} must be positive, got {value}")


def time_ops(dev: Device, ops: list[Op], launch_s: float) -> TimeShares:
    """Time shares of ``ops`` on ``dev`` (roofline per op, ``launch_s`` per kernel)."""
    return sum_shares(op_times(dev, ops), launch_s)


def issue_bound_shares(dev: Device, ops: list[Op], issue_s: float,
                       split: int = 1) -> TimeShares:
    """Time shares of ``ops`` when the host issues kernels asynchronously, one every
    ``issue_s`` seconds: a kernel shorter than that leaves the GPU waiting for the next
    launch, a longer one hides it. Each kernel costs ``max(t_gpu, issue_s)``; the launch
    share is ``sum(count * max(0, issue_s - t_gpu))`` (the CPU-bound regime of small
    kernels; NVIDIA, "Getting Started with CUDA Graphs", 2019, on launch overhead).
    ``split``: each GPU of a tensor-parallel group does 1/split of every kernel's work.
    Inference passes are timed this way (:mod:`rigwise.model.infer`)."""
    compute = mem = idle = 0.0
    for c, m, n, _ in op_times(dev, ops):
        compute += c / split
        mem += m / split
        if n:
            idle += max(0.0, issue_s - (c + m) / (split * n)) * n
    return TimeShares(compute, mem, idle)


def op_times(dev: Device, ops: list[Op]) -> list[tuple[float, float, int, bool]]:
    """Per op: (compute seconds, memory seconds, kernel count, in a layer), all instances."""
    out = []
    for op in ops:
        t, bound = op_time(dev, op)
        t *= op.count
        out.append((t, 0.0, op.count, op.layer) if bound else (0.0, t, op.count, op.layer))
    return out


def sum_shares(times: list[tuple[float, float, int, bool]], launch_s: float,
                layer_only: bool = False) -> TimeShares:
    """Sum :func:`op_times` into shares (only ops inside repeated layers with ``layer_only``)."""
    compute = mem = 0.0
    kernels = 0
    for c, m, n, layer in times:
        if layer_only and not layer:
            continue
        compute += c
        mem += m
        kernels += n
    return TimeShares(compute, mem, kernels * launch_s)


def backward_shares(dev: Device, fwd: list[Op], launch_s: float) -> tuple[TimeShares, float]:
    """Time shares and FLOPs of the backward pass of ``fwd`` (the kernels of
    :func:`backward_kernels`), timed without building :class:`Op` objects (an estimate's hot
    loop)."""
    compute = mem = flop_total = 0.0
    kernels = 0
    for op in fwd:
        c = op.count
        for flop, nbytes, m, n, k in backward_kernels(op):
            t, bound = op_seconds(dev, op.kind, flop, nbytes, m, n, k, op.winograd)
            if bound:
                compute += t * c
            else:
                mem += t * c
            kernels += c
            flop_total += flop * c
    return TimeShares(compute, mem, kernels * launch_s), flop_total


def add_shares(*shares: TimeShares) -> TimeShares:
    """Compute, memory and launch shares added up (communication and bubble left out)."""
    return TimeShares(sum(s.compute_s for s in shares), sum(s.memory_s for s in shares),
                      sum(s.launch_s for s in shares))


def backward_kernels(op: Op) -> tuple[tuple[float, float, int, int, int], ...]:
    """The backward kernels of one forward op, as ``(flop, bytes, m, n, k)`` per instance.

    A GEMM ``(m x k)(k x n)`` has a data-gradient GEMM ``(m x n)(n x k)`` and, unless its weight
    is frozen, a weight-gradient GEMM ``(k x m)(m x n)``: twice the forward FLOPs (Narayanan
    et al. 2021, §5.1). Attention backward costs 2.5x its forward (FlashAttention-2 §3.2:
    five matmuls instead of two); memory-bound kernels read and write twice as much.
    """
    if op.kind == "gemm" or op.kind == "conv":
        dgrad = (op.flop, op.bytes, op.m, op.k, op.n)
        return (dgrad,) if op.frozen else (dgrad, (op.flop, op.bytes, op.k, op.n, op.m))
    if op.kind == "attention":
        return ((op.flop * 2.5, op.bytes * 2, op.m, op.n, op.k),)
    return ((op.flop, op.bytes * 2, op.m, op.n, op.k),)


def backward_ops(ops: list[Op]) -> list[Op]:
    """Backward kernels of a forward pass (:func:`backward_kernels`) as :class:`Op` objects,
    for callers that time or place them themselves."""
    return [Op(op.name, op.kind, flop, nbytes, op.count, m, n, k, op.saved_bytes, op.frozen,
               op.layer, op.weight_bytes, op.winograd)
            for op in ops for flop, nbytes, m, n, k in backward_kernels(op)]


def bottleneck(shares: TimeShares, fits: bool) -> str:
    """The largest share's name, or ``memory capacity`` when the setup does not fit."""
    if not fits:
        return "memory capacity"
    parts = {"compute": shares.compute_s, "memory bandwidth": shares.memory_s,
             "kernel launch overhead": shares.launch_s, "communication": shares.communication_s,
             "pipeline bubble": shares.bubble_s, "host transfers": shares.host_s}
    return max(parts, key=lambda k: parts[k])


def link_bytes_per_s(gpu: Gpu) -> tuple[float, float, str]:
    """Per-direction bandwidth, latency and name of the GPU-GPU link in one machine."""
    o = overheads()
    if gpu.scaleup_fabric != "none" and gpu.scaleup_bytes_per_s_per_direction:
        return (gpu.scaleup_bytes_per_s_per_direction * o.busbw_efficiency, o.latency_nvlink_s,
                gpu.scaleup_fabric)
    gen, lanes = gpu.pcie_gen or 4, gpu.pcie_lanes or 16
    per_lane = pcie_lane_bytes_per_s(gen)
    bw = per_lane * lanes * o.busbw_efficiency
    if not gpu.p2p:
        bw *= o.no_p2p_factor
    return bw, o.latency_pcie_s, f"PCIe {gen}.0 x{lanes}" + ("" if gpu.p2p else " without P2P")


def pcie_lane_bytes_per_s(gen: int) -> float:
    """Per-lane, per-direction PCIe bandwidth of generation ``gen`` from the catalog."""
    for link in catalog().interconnects["pcie"].generation:
        if link.name == f"PCIe {gen}.0":
            return units.gb_per_s_to_bytes_per_s(link.gb_per_s_per_direction)
    raise KeyError(f"no PCIe {gen}.0 in the catalog")
