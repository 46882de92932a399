"""Data-parallel scaling: the GPT-style training step under DDP on 1, 2, 4, ... ranks.

Each rank runs the same step on its own batch (weak scaling, the batch per GPU fixed);
``DistributedDataParallel`` all-reduces the gradients in buckets during the backward pass.
The measurement is the step time of the slowest rank; throughput is ``ranks x batch x seq /
step``. Scaling efficiency ``= throughput(n) / (n x throughput(1))`` is computed when runs for
several rank counts are compared (:func:`efficiency`). Launched by ``torchrun`` (one node) or
``srun`` (Slurm), see :mod:`rigwise.bench.launch`.
"""

from __future__ import annotations

import time
from typing import Any

from rigwise.bench.measurement import Measurement
from rigwise.bench.suites import BenchContext
from rigwise.bench.suites.models import GPT, _gpt_shape, _train_step

STEPS = {"full": 20, "tiny": 5}
WARMUP = 3


def run(ctx: BenchContext) -> list[Measurement]:
    """Step time of DDP training over the process group (must be initialised)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from rigwise.bench.suites.nets import Gpt

    torch, (model, batch, seq) = ctx.torch, GPT[ctx.size]
    world = dist.get_world_size()
    precision = (ctx.precisions or (("bf16",) if ctx.is_cuda else ("fp32",)))[0]
    net = Gpt(_gpt_shape(model)).to(ctx.device)
    ddp = DistributedDataParallel(net, device_ids=[ctx.gpu_index] if ctx.is_cuda else None)
    x = torch.randint(0, net.shape.vocab, (batch, seq), device=ctx.device)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4)

    def loss(logits: Any, y: Any) -> Any:
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
    step = _train_step(ctx, ddp, x, x, opt, precision, loss)
    if ctx.describe is not None:
        ctx.describe(f"DDP {model} x{world}")
    for _ in range(WARMUP):
        step()
    samples = []
    for _ in range(STEPS[ctx.size]):
        ctx.sync()
        t0 = time.perf_counter()
        step()
        ctx.sync()
        t = torch.tensor([time.perf_counter() - t0], dtype=torch.float64, device=ctx.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        samples.append(float(t.item()))
        if ctx.tick is not None:
            ctx.tick()
    return [Measurement(
        suite="scaling", kind="scaling", name=f"{model} DDP {precision} x{world}",
        metric="tokens_per_s", work=float(world * batch * seq), samples_s=tuple(samples),
        params={"model": model, "precision": precision, "batch_size": batch, "seq_len": seq,
                "ranks": world, "backend": dist.get_backend(), "device": ctx.device,
                "size": ctx.size},
        timer="host clock after synchronize, slowest rank")]


def efficiency(ms: list[Measurement]) -> dict[int, float]:
    """Scaling efficiency per rank count, relative to the 1-rank measurement.

    Raises:
        ValueError: no 1-rank measurement among ``ms``.
    """
    by = {int(m.params["ranks"]): m.value for m in ms if m.kind == "scaling"}
    if 1 not in by:
        raise ValueError("scaling efficiency needs a 1-rank run")
    return {n: v / (n * by[1]) for n, v in sorted(by.items())}
