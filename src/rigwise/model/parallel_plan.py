"""Parallel plans as data: one configuration (:class:`PlanSpec`) and what evaluating it gives
(:class:`PlanMemory`, :class:`StepTime`, :class:`Plan`), with the name of the largest share of
a step (:func:`_limit`).

A plan splits ``n = dp · tp · pp`` GPUs (expert parallelism ``ep`` divides ``dp``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEDULES = ("1f1b", "interleaved")


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """One parallel configuration.

    ``dp · tp · pp`` is the GPU count; ``ep`` divides ``dp`` (MoE only); ``zero`` 0-3 (3 is
    FSDP full shard); ``microbatch`` sequences per micro-batch; ``schedule`` ``"1f1b"`` or
    ``"interleaved"`` with ``chunks`` model chunks per GPU; ``sp`` sequence parallelism with
    TP; ``offload`` optimizer states to the CPU; ``compression`` 8-bit gradients.
    """

    dp: int = 1
    tp: int = 1
    pp: int = 1
    ep: int = 1
    zero: int = 0
    microbatch: int = 1
    schedule: str = "1f1b"
    chunks: int = 1
    sp: bool = False
    checkpointing: bool = False
    offload: bool = False
    compression: bool = False

    @property
    def gpus(self) -> int:
        """GPUs the plan uses."""
        return self.dp * self.tp * self.pp

    def describe(self) -> str:
        """Short label, e.g. ``DP4 TP8 PP2(v2) ZeRO-1 mb1 SP ckpt`` (``EP8``,
        ``FSDP/ZeRO-3``, ``offload``, ``8-bit grads`` when set);
        :func:`rigwise.model.parallel_search.spec_from_label` reads it back."""
        parts = [f"DP{self.dp}", f"TP{self.tp}", f"PP{self.pp}"]
        if self.schedule == "interleaved":
            parts[-1] += f"(v{self.chunks})"
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        parts.append("FSDP/ZeRO-3" if self.zero == 3 else f"ZeRO-{self.zero}")
        parts.append(f"mb{self.microbatch}")
        for flag, name in ((self.sp, "SP"), (self.checkpointing, "ckpt"),
                           (self.offload, "offload"), (self.compression, "8-bit grads")):
            if flag:
                parts.append(name)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class PlanMemory:
    """Bytes per GPU of the most loaded stage, by kind."""

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    overhead_bytes: float
    capacity_bytes: float
    host_bytes: float = 0.0

    @property
    def per_gpu_bytes(self) -> float:
        """Total bytes one GPU needs."""
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
                + self.activations_bytes + self.overhead_bytes)

    @property
    def fits(self) -> bool:
        """True if the total fits in the device memory."""
        return self.per_gpu_bytes <= self.capacity_bytes


@dataclass(frozen=True, slots=True)
class StepTime:
    """Where one step's seconds go (all on the critical path).

    ``comm_exposed_s`` maps each kind of communication (``tp``, ``pp``, ``dp``, ``ep``,
    ``zero3``) to its exposed seconds; ``comm_total_s`` to its seconds before overlap.
    """

    compute_s: float
    memory_s: float
    launch_s: float
    bubble_s: float
    optimizer_s: float
    offload_s: float
    comm_exposed_s: dict[str, float]
    comm_total_s: dict[str, float]

    @property
    def total_s(self) -> float:
        """Step time in seconds."""
        return (self.compute_s + self.memory_s + self.launch_s + self.bubble_s
                + self.optimizer_s + self.offload_s + sum(self.comm_exposed_s.values()))


@dataclass(frozen=True, slots=True)
class Plan:
    """A parallel plan evaluated: memory, step time, rates and what limits it.

    ``fits`` is False when the plan does not fit in memory or cannot run (``reasons`` says
    why); rates are for all GPUs together; ``limit`` names the largest share of the step.
    """

    spec: PlanSpec
    model: str
    gpu: str
    system: str
    global_batch: int
    microbatches: int
    seq_len: int
    feasible: bool
    fits: bool
    reasons: tuple[str, ...]
    memory: PlanMemory
    time: StepTime
    step_time_s: float
    samples_per_s: float
    tokens_per_s: float
    mfu: float
    limit: str
    assumptions: tuple[str, ...] = field(default=())

    @property
    def gpus(self) -> int:
        """GPUs the plan uses."""
        return self.spec.gpus


_LIMIT_NAMES = {"compute": "compute", "memory": "memory bandwidth",
                "launch": "kernel launch overhead", "bubble": "pipeline bubble",
                "optimizer": "optimizer step", "offload": "CPU offload",
                "tp": "tensor-parallel communication", "pp": "pipeline communication",
                "dp": "data-parallel gradient sync", "ep": "expert all-to-all",
                "zero3": "ZeRO-3/FSDP parameter gathers"}


def _limit(t: StepTime) -> str:
    parts = {"compute": t.compute_s, "memory": t.memory_s, "launch": t.launch_s,
             "bubble": t.bubble_s, "optimizer": t.optimizer_s, "offload": t.offload_s,
             **t.comm_exposed_s}
    return _LIMIT_NAMES[max(parts, key=lambda k: parts[k])]
