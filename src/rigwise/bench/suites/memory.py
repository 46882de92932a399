"""Memory bandwidth: device copy and read, host<->device copies, GPU<->GPU (P2P) copies.

Byte accounting (bench-tools.md §6.8): a device copy of ``S`` bytes moves ``2·S`` through
memory (read + write) and is counted as ``2·S``, so it compares with the datasheet's memory
bandwidth (bandwidthTest's D2D convention; nvbandwidth counts ``S``). A read (a sum) counts
``S``. Host<->device and P2P copies count ``S`` per direction. Buffers are far larger than
the L2 cache (1 GiB on a GPU), so no flush is needed between samples. Pinned copies use
``non_blocking=True`` from page-locked memory; pageable ones go through the driver's
staging buffer.
"""

from __future__ import annotations

from functools import partial

from rigwise import units
from rigwise.bench.measurement import Measurement
from rigwise.bench.suites import BenchContext, case

BYTES = {"full": 1 * units.GIB, "tiny": 4 * units.MIB}
HOST_BYTES = {"full": 256 * units.MIB, "tiny": 1 * units.MIB}


def _device(ctx: BenchContext) -> list[Measurement]:
    torch, n = ctx.torch, BYTES[ctx.size]
    src = torch.randn(n // 4, device=ctx.device)
    dst = torch.empty_like(src)
    return [
        case(ctx, lambda: dst.copy_(src), suite="memory", kind="memory_copy",
             name=f"device copy {units.format_bytes(n)}", metric="bytes_per_s", work=2.0 * n,
             params={"bytes": n, "bytes_counted": "read+write"}, flush=False),
        case(ctx, lambda: torch.sum(src), suite="memory", kind="memory_read",
             name=f"device read {units.format_bytes(n)}", metric="bytes_per_s", work=float(n),
             params={"bytes": n, "bytes_counted": "read"}, flush=False),
    ]


def _host(ctx: BenchContext) -> list[Measurement]:
    torch, n = ctx.torch, HOST_BYTES[ctx.size]
    dev = torch.empty(n // 4, device=ctx.device)
    out = []
    for pinned in (True, False):
        host = torch.randn(n // 4, pin_memory=pinned)
        mode = "pinned" if pinned else "pageable"
        out.append(case(ctx, partial(dev.copy_, host, non_blocking=pinned), suite="memory",
                        kind="h2d", name=f"host->device {mode} {units.format_bytes(n)}",
                        metric="bytes_per_s", work=float(n),
                        params={"bytes": n, "memory": mode}, flush=False))
        out.append(case(ctx, partial(host.copy_, dev, non_blocking=pinned), suite="memory",
                        kind="d2h", name=f"device->host {mode} {units.format_bytes(n)}",
                        metric="bytes_per_s", work=float(n),
                        params={"bytes": n, "memory": mode}, flush=False))
    return out


def _p2p(ctx: BenchContext) -> list[Measurement]:
    torch, n = ctx.torch, HOST_BYTES[ctx.size]
    count = torch.cuda.device_count()
    out = []
    for i in range(count):
        for j in range(count):
            if i == j:
                continue
            if not torch.cuda.can_device_access_peer(i, j):
                ctx.notes.append(f"p2p {i}->{j}: no peer access, measured through host memory")
            src = torch.randn(n // 4, device=f"cuda:{i}")
            dst = torch.empty(n // 4, device=f"cuda:{j}")
            with torch.cuda.device(i):
                out.append(case(ctx, partial(dst.copy_, src), suite="memory",
                                kind="p2p", name=f"GPU{i}->GPU{j} {units.format_bytes(n)}",
                                metric="bytes_per_s", work=float(n),
                                params={"bytes": n, "src": i, "dst": j,
                                        "peer_access": bool(
                                            torch.cuda.can_device_access_peer(i, j))},
                                flush=False))
    return out


def run(ctx: BenchContext) -> list[Measurement]:
    """Device copy/read; on a GPU also host<->device (pinned, pageable) and P2P."""
    out = _device(ctx)
    if not ctx.is_cuda:
        ctx.skip("host<->device and P2P copies", "no GPU: the CPU run measures host memory only")
        return out
    out += _host(ctx)
    if ctx.torch.cuda.device_count() > 1:
        out += _p2p(ctx)
    else:
        ctx.skip("P2P copies", "one GPU")
    return out
