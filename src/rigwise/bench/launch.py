"""Launching multi-process benchmarks with PyTorch's and Slurm's launchers (no launcher of
our own, DESIGN.md "Distributed work").

* One node: ``torchrun --standalone --nproc-per-node=N -m rigwise.bench.launch ...``
  (``python -m torch.distributed.run``), which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
  and the rendezvous.
* Several nodes: inside a Slurm allocation, ``srun --nodes=K --ntasks-per-node=G`` runs one
  task per GPU; each task maps ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID`` to
  ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (with ``submitit``'s
  ``TorchDistributedEnvironment`` when installed, else the same mapping by hand, the master
  being the first host of ``scontrol show hostnames``).

The worker (``python -m rigwise.bench.launch SUITE --out FILE``) initialises the process group
(NCCL on GPUs, gloo on the CPU), runs the suite on every rank and rank 0 writes the
measurements as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rigwise.bench.measurement import Measurement, measurement_from_json, measurement_json
from rigwise.errors import InputError

DISTRIBUTED_SUITES = ("collectives", "scaling")


class LaunchError(InputError):
    """A distributed benchmark could not be launched or failed on a rank."""


def _worker_args(suite: str, *, size: str, device: str, out: Path,
                 precisions: tuple[str, ...] | None, quick: bool) -> list[str]:
    args = ["-m", "rigwise.bench.launch", suite, "--size", size, "--device", device,
            "--out", str(out)]
    if precisions:
        args += ["--precision", ",".join(precisions)]
    return args + (["--quick"] if quick else [])


def torchrun_command(suite: str, nproc: int, *, size: str, device: str, out: Path,
                     precisions: tuple[str, ...] | None = None,
                     quick: bool = False) -> list[str]:
    """The ``torchrun`` command line of a one-node run on ``nproc`` processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}",
            *_worker_args(suite, size=size, device=device, out=out, precisions=precisions,
                          quick=quick)]


def srun_command(suite: str, nodes: int, gpus_per_node: int, *, size: str, out: Path,
                 precisions: tuple[str, ...] | None = None) -> list[str]:
    """The ``srun`` command line of a multi-node run, one task per GPU."""
    return ["srun", f"--nodes={nodes}", f"--ntasks-per-node={gpus_per_node}",
            f"--gpus-per-node={gpus_per_node}", sys.executable,
            *_worker_args(suite, size=size, device="cuda", out=out, precisions=precisions,
                          quick=False)]


def slurm_env(env: dict[str, str]) -> dict[str, str]:
    """``torch.distributed`` variables derived from a Slurm task's environment.

    Empty when ``RANK`` is already set (torchrun) or outside Slurm.
    """
    if "RANK" in env or "SLURM_PROCID" not in env:
        return {}
    try:
        from submitit.helpers import TorchDistributedEnvironment  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        TorchDistributedEnvironment().export()
        return {k: os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                           "MASTER_PORT") if k in os.environ}
    master = env.get("MASTER_ADDR")
    if master is None and shutil.which("scontrol") and "SLURM_JOB_NODELIST" in env:
        hosts = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]],
                               capture_output=True, text=True, check=False).stdout.split()
        master = hosts[0] if hosts else None
    return {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env.get("SLURM_NTASKS", "1"),
            "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
            "MASTER_ADDR": master or "127.0.0.1", "MASTER_PORT": env.get("MASTER_PORT", "29500")}


def run_suite_in_group(suite: str, *, size: str, device: str,
                       precisions: tuple[str, ...] | None, quick: bool) -> tuple[
                           list[Measurement], list[str], int]:
    """Run ``suite`` on this rank of an initialised process group; returns measurements,
    notes and the rank."""
    import torch.distributed as dist

    from rigwise.bench.suites import BenchContext, collectives, import_torch, scaling
    from rigwise.bench.timer import QUICK, TimerConfig

    torch = import_torch()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = f"cuda:{local}" if device == "cuda" else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local)
    ctx = BenchContext(torch=torch, device=dev, size=size,
                       timer=QUICK if quick else TimerConfig(), precisions=precisions)
    mod = collectives if suite == "collectives" else scaling
    return mod.run(ctx), ctx.notes, dist.get_rank()


def worker(argv: list[str] | None = None) -> int:
    """Entry point of one rank (``python -m rigwise.bench.launch``)."""
    p = argparse.ArgumentParser(prog="rigwise.bench.launch")
    p.add_argument("suite", choices=DISTRIBUTED_SUITES)
    p.add_argument("--size", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--precision", default="")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    os.environ.update(slurm_env(dict(os.environ)))
    import torch.distributed as dist

    dist.init_process_group("nccl" if a.device == "cuda" else "gloo")
    try:
        ms, notes, rank = run_suite_in_group(
            a.suite, size=a.size, device=a.device,
            precisions=tuple(x for x in a.precision.split(",") if x) or None, quick=a.quick)
        if rank == 0:
            a.out.write_text(json.dumps({"measurements": [measurement_json(m) for m in ms],
                                         "notes": notes}))
    finally:
        dist.destroy_process_group()
    return 0


def run_distributed(suite: str, nproc: int, *, size: str, device: str, nodes: int = 1,
                    precisions: tuple[str, ...] | None = None, quick: bool = False,
                    timeout_s: float = 1800.0) -> tuple[list[Measurement], list[str]]:
    """Launch ``suite`` on ``nproc`` processes per node and return rank 0's measurements.

    Raises:
        LaunchError: a multi-node run outside Slurm, or a rank failed.
    """
    if nodes > 1 and "SLURM_JOB_ID" not in os.environ:
        raise LaunchError("multi-node runs need a Slurm allocation (salloc/sbatch); without "
                          "Slurm run `torchrun --nnodes=K --rdzv-endpoint=HOST:PORT -m "
                          "rigwise.bench.launch ...` on every node")
    with tempfile.TemporaryDirectory(prefix="rigwise-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = (srun_command(suite, nodes, nproc, size=size, out=out, precisions=precisions)
               if nodes > 1 else torchrun_command(suite, nproc, size=size, device=device,
                                                  out=out, precisions=precisions, quick=quick))
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=env, check=False)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise LaunchError(f"{suite} on {nproc} process(es) failed: " + " | ".join(tail))
        data: dict[str, Any] = json.loads(out.read_text())
    return [measurement_from_json(m) for m in data["measurements"]], list(data["notes"])


if __name__ == "__main__":
    raise SystemExit(worker())
