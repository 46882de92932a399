"""Predictions of the multi-GPU validation rows (tests/validation/data/multi_gpu.toml).

A row with a ``plan`` is evaluated on that published layout; others on the best plan rigwise
finds (:func:`rigwise.validation.run.predict`). Shared by the tests and by
``python -m tests.model.multi_gpu_rows``, which prints the full table.
"""

from __future__ import annotations

from pathlib import Path

from rigwise.validation.rows import Row, load_rows
from rigwise.validation.run import predict as validation_predict

ROOT = Path(__file__).resolve().parents[2]
ROWS = ROOT / "tests" / "validation" / "data" / "multi_gpu.toml"


def rows() -> list[Row]:
    """The multi-GPU rows."""
    return load_rows(ROWS)


def predict(row: Row) -> float:
    """The model's value of a row, in the row's unit: the row's published layout
    (``plan``) or the best plan, as ``rigwise validate`` predicts it."""
    return validation_predict(row)


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
