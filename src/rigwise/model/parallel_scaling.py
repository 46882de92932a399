"""Scaling curves: the best plan at each GPU count, its scaling efficiency against the first
count that fits, and why when a point scales better than linearly."""

from __future__ import annotations

from dataclasses import dataclass

from rigwise.catalog.models import Gpu
from rigwise.catalog.systems import System
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel_plan import Plan
from rigwise.model.parallel_search import SearchSpace, best_plan
from rigwise.workload.schema import Model


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One point of a scaling curve: the best plan on ``gpus`` GPUs and its efficiency
    ``(throughput / gpus) / (throughput_base / gpus_base)`` against the smallest count that
    fits; ``note`` says why when the efficiency is above 1 (:func:`superlinear_note`)."""

    gpus: int
    plan: Plan
    scaling_efficiency: float | None
    note: str | None = None


def _per_sample_ms(p: Plan) -> dict[str, float]:
    """Milliseconds of one GPU's step per sample it processes, by part of the step."""
    t, per_gpu = p.time, p.global_batch / p.gpus
    parts = {"kernels": t.compute_s + t.memory_s + t.launch_s, "optimizer": t.optimizer_s,
             "offload": t.offload_s, "bubble": t.bubble_s,
             "communication": sum(t.comm_exposed_s.values())}
    return {k: v * 1e3 / per_gpu for k, v in parts.items()}


def superlinear_note(base: Plan, plan: Plan) -> str | None:
    """Why ``plan`` on more GPUs does more per GPU than ``base`` (scaling efficiency above
    1 by more than half a point), part by part of the step per sample; None otherwise.

    Real causes: ZeRO-1/2 split the optimizer step over the data-parallel GPUs (each updates
    ``1/dp`` of the parameters; Rajbhandari et al. 2020), whose gradient reduce-scatter and
    parameter all-gather can hide behind the backward and forward passes; a larger
    micro-batch or a smaller shard per GPU runs nearer the peak.
    """
    if plan.samples_per_s / plan.gpus <= base.samples_per_s / base.gpus * 1.005:
        return None  # within half a point: nothing to explain
    a, b = _per_sample_ms(base), _per_sample_ms(plan)
    why = {"optimizer": f"ZeRO-{plan.spec.zero} splits it over {plan.spec.dp} GPUs"
           if plan.spec.zero >= 1 and plan.spec.dp > 1 else "a smaller shard per GPU",
           "kernels": f"micro-batch {base.spec.microbatch} -> {plan.spec.microbatch}"
           if plan.spec.microbatch != base.spec.microbatch else "a different layout"}
    names = {"kernels": "forward/backward kernels", "optimizer": "optimizer step",
             "offload": "CPU offload", "bubble": "pipeline bubble",
             "communication": "exposed communication"}
    gains = [f"{names[k]} {a[k]:.3g} -> {b[k]:.3g} ms ({why.get(k, 'layout')})"
             for k in a if a[k] - b[k] > 1e-3 * a[k] and a[k] > b[k]]
    costs = [f"{names[k]} {a[k]:.3g} -> {b[k]:.3g} ms" for k in a
             if b[k] - a[k] > 1e-3 * b[k] and b[k] > a[k]]
    text = f"above 100 % against {base.gpus} GPU(s); per sample: " + "; ".join(gains)
    return text + (f"; against {', '.join(costs)}" if costs else "")


def scaling_curve(model: Model, gpu: Gpu, counts: list[int], cfg: TrainConfig, *,
                  system: System | None = None, global_batch: int | None = None,
                  space: SearchSpace = SearchSpace()) -> list[CurvePoint]:  # noqa: B008
    """Best plan for each GPU count and the scaling efficiency against the first count that
    fits. Weak scaling (``cfg.batch_size`` per GPU) unless ``global_batch`` fixes the batch.

    Raises:
        InputError: an empty or non-positive count list; as :func:`evaluate_plan`.
    """
    if not counts or any(c <= 0 for c in counts):
        raise InputError("--curve needs positive GPU counts, e.g. 1,2,4,8")
    points: list[CurvePoint] = []
    base: Plan | None = None
    for n in sorted(set(counts)):
        plan = best_plan(model, gpu, n, cfg, system=system, global_batch=global_batch,
                         space=space)
        eff, note = None, None
        if plan.fits:
            if base is None:
                base = plan
            eff = (plan.samples_per_s / n) / (base.samples_per_s / base.gpus)
            note = superlinear_note(base, plan)
        points.append(CurvePoint(n, plan, eff, note))
    return points
