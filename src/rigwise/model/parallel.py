"""Parallel training plans: memory per GPU and step time of DP x TP x PP (x EP) with ZeRO.

A plan splits ``n = dp · tp · pp`` GPUs (expert parallelism ``ep`` divides ``dp``). This module
is the public face of the plan model; the code, with each formula's source, lives in:

* :mod:`rigwise.model.parallel_plan`: the plan and its results (:class:`PlanSpec`,
  :class:`PlanMemory`, :class:`StepTime`, :class:`Plan`);
* :mod:`rigwise.model.parallel_context`: what a search shares, feasibility checks, rank
  placement (Megatron-LM, Narayanan et al. 2021, §3.3);
* :mod:`rigwise.model.parallel_memory`: memory per GPU (ZeRO, Rajbhandari et al. 2020;
  activations, Korthikanti et al. 2022);
* :mod:`rigwise.model.parallel_time`: compute and communication of a micro-batch, the
  data-parallel gradient sync and the optimizer step;
* :mod:`rigwise.model.parallel_evaluate`: one plan's step with the pipeline bubble (Narayanan
  et al. 2021) and MFU (PaLM appendix B), :func:`evaluate_plan`;
* :mod:`rigwise.model.parallel_search`: :func:`enumerate_plans`, :func:`search_plans`,
  :func:`best_plan`, :func:`spec_from_label`;
* :mod:`rigwise.model.parallel_scaling`: :func:`scaling_curve`, :func:`superlinear_note`.

CNNs get data-parallel plans only (:mod:`rigwise.model.ddp`).
"""

from __future__ import annotations

from rigwise.model.parallel_evaluate import evaluate_plan
from rigwise.model.parallel_plan import SCHEDULES, Plan, PlanMemory, PlanSpec, StepTime
from rigwise.model.parallel_scaling import CurvePoint, scaling_curve, superlinear_note
from rigwise.model.parallel_search import (
    SearchSpace,
    best_plan,
    enumerate_plans,
    search_plans,
    spec_from_label,
)
from rigwise.model.parallel_time import prefetch_twice

__all__ = [
    "SCHEDULES",
    "CurvePoint",
    "Plan",
    "PlanMemory",
    "PlanSpec",
    "SearchSpace",
    "StepTime",
    "best_plan",
    "enumerate_plans",
    "evaluate_plan",
    "prefetch_twice",
    "scaling_curve",
    "search_plans",
    "spec_from_label",
    "superlinear_note",
]
