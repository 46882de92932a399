"""Predictions of the multi-GPU validation rows (tests/validation/data/multi_gpu.toml).

A row whose notes start with ``plan:`` is evaluated on that published layout; others on the
best plan rigwise finds. Shared by the tests and by ``python -m tests.model.multi_gpu_rows``,
which prints the full table.
"""

from __future__ import annotations

from pathlib import Path

from rigwise.catalog.load import catalog
from rigwise.catalog.systems import get_system
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel import Plan, best_plan, evaluate_plan, spec_from_label
from rigwise.validation.rows import Row, load_rows
from rigwise.workload.models import get_model

ROOT = Path(__file__).resolve().parents[2]
ROWS = ROOT / "tests" / "validation" / "data" / "multi_gpu.toml"


def rows() -> list[Row]:
    """The multi-GPU rows."""
    return load_rows(ROWS)


def _plan(row: Row, gpus: int) -> Plan:
    model = row.model if not row.model.endswith(".json") else str(ROOT / row.model)
    m, g = get_model(model), catalog().gpu(row.gpu)
    cfg = TrainConfig(precision=row.precision or "bf16", batch_size=row.batch_size or 1,
                      seq_len=row.seq_len, optimizer=row.optimizer)
    system = get_system(row.system) if row.system else None
    batch = row.global_batch
    if row.notes.startswith("plan:"):
        label = row.notes.split(".", 1)[0].removeprefix("plan:").strip()
        spec = spec_from_label(label, gpus)
        if row.checkpointing is not None:
            from dataclasses import replace
            spec = replace(spec, checkpointing=row.checkpointing)
        return evaluate_plan(m, g, spec, cfg, system=system, global_batch=batch)
    return best_plan(m, g, gpus, cfg, system=system, global_batch=batch)


def predict(row: Row) -> float:
    """The model's value of a row, in the row's unit."""
    plan = _plan(row, row.gpus)
    if row.kind == "scaling_efficiency":
        base_n = row.baseline_gpus or 1
        base = _plan(row, base_n)
        return (plan.samples_per_s / row.gpus) / (base.samples_per_s / base_n)
    return {"mfu": plan.mfu, "step_time_s": plan.step_time_s,
            "tokens_per_s": plan.tokens_per_s, "samples_per_s": plan.samples_per_s}[row.unit]


def error(row: Row, predicted: float) -> float:
    """Scaling efficiency: difference in percentage points (as a fraction); other units:
    relative error ``(predicted − measured) / measured``."""
    if row.unit == "scaling_efficiency":
        return predicted - row.measured
    return (predicted - row.measured) / row.measured


if __name__ == "__main__":
    for r in rows():
        p = predict(r)
        kind = "pts" if r.unit == "scaling_efficiency" else "rel"
        miss = " (expected miss)" if r.expected_miss else ""
        print(f"{r.id:42s} {r.unit:18s} measured {r.measured:8.3f} predicted {p:8.3f} "
              f"error {error(r, p) * 100:+6.1f} {kind}{miss}")
