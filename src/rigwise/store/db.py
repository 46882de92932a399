"""The run store: one SQLite file (WAL), every benchmark run with its environment.

* Default path ``platformdirs.user_data_dir("rigwise")/runs.db``; ``--db`` or the
  ``RIGWISE_DB`` environment variable choose another.
* A run is written only when complete, in one transaction (:meth:`Store.save_run`): a crash or
  Ctrl-C during a benchmark loses nothing already stored and leaves no half-written run
  (SQLite's atomic commit; WAL keeps readers off the writer's way).
* Export and import JSON (``format: rigwise-bench-runs``, ``version: 1``). An import is
  validated whole before anything is written, then written in one transaction; a bad file
  changes nothing (:class:`BadRunFileError`). Runs already in the store are skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rigwise.bench.measurement import (
    Measurement,
    Run,
    measurement_from_json,
    measurement_json,
)
from rigwise.errors import ConfigFileError, InputError
from rigwise.probe.nvml import TelemetrySample
from rigwise.store.migrations import migrate

EXPORT_FORMAT = "rigwise-bench-runs"
EXPORT_VERSION = 1


class BadRunFileError(ConfigFileError):
    """A runs file to import is missing, not JSON, or not a rigwise export."""


class UnknownRunError(InputError):
    """No stored run has that id (or the prefix matches several)."""


class StoreError(InputError):
    """The store file cannot be opened as a rigwise store."""


def default_path() -> Path:
    """``$RIGWISE_DB``, else ``runs.db`` in the user's data directory."""
    env = os.environ.get("RIGWISE_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("rigwise")) / "runs.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunRecord(_Strict):
    """One run in an export file."""

    id: str = Field(min_length=1, max_length=100)
    started_at: str
    finished_at: str
    host: str
    device_kind: str
    device_name: str
    catalog_id: str | None
    architecture: str | None
    suites: list[str]
    command: str
    rigwise_version: str
    environment: dict[str, Any]
    telemetry: list[dict[str, Any]]
    measurements: list[dict[str, Any]]


class RunFile(_Strict):
    """A whole export file."""

    format: str
    version: int
    exported_at: str
    runs: list[RunRecord]


def _telemetry_from_json(d: dict[str, Any]) -> TelemetrySample:
    return TelemetrySample(**{**d, "reasons": tuple(d.get("reasons", ()))})


def run_record(run: Run, *, host: str, version: str) -> dict[str, Any]:
    """A run as the JSON record stored and exported."""
    return {
        "id": run.id, "started_at": run.started_at,
        "finished_at": run.finished_at or run.started_at, "host": host,
        "device_kind": run.device_kind, "device_name": run.device_name,
        "catalog_id": run.catalog_id, "architecture": run.architecture,
        "suites": list(run.suites), "command": run.command, "rigwise_version": version,
        "environment": run.environment,
        "telemetry": [dataclasses.asdict(t) for t in run.telemetry],
        "measurements": [measurement_json(m) for m in run.measurements],
    }


def run_from_record(r: RunRecord) -> Run:
    """The :class:`Run` of a validated record.

    Raises:
        KeyError, TypeError, ValueError: malformed measurements or telemetry.
    """
    return Run(id=r.id, started_at=r.started_at, finished_at=r.finished_at,
               device_kind=r.device_kind, device_name=r.device_name, catalog_id=r.catalog_id,
               architecture=r.architecture, suites=tuple(r.suites), command=r.command,
               environment=r.environment,
               measurements=[measurement_from_json(m) for m in r.measurements],
               telemetry=[_telemetry_from_json(t) for t in r.telemetry])


class Store:
    """An open run store. Use as a context manager, or call :meth:`close`.

    Raises:
        StoreError: the file is not a SQLite database or is from a newer rigwise.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"{self.path} is not a usable rigwise store: {exc}") from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def _insert(self, rec: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec["id"], rec["started_at"], rec["finished_at"], rec["host"], rec["device_kind"],
             rec["device_name"], rec["catalog_id"], rec["architecture"],
             ",".join(rec["suites"]), rec["command"], rec["rigwise_version"],
             json.dumps(rec["environment"]), json.dumps(rec["telemetry"])))
        self.conn.executemany(
            "INSERT INTO measurements (run_id, position, suite, kind, name, metric, value, "
            "record_json) VALUES (?,?,?,?,?,?,?,?)",
            [(rec["id"], i, m["suite"], m["kind"], m["name"], m["metric"], m["value"],
              json.dumps(m)) for i, m in enumerate(rec["measurements"])])

    def _transaction(self, records: list[dict[str, Any]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for rec in records:
                self._insert(rec)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def save_run(self, run: Run) -> None:
        """Write a complete run (and all its measurements) in one transaction."""
        from rigwise import __version__

        if run.finished_at is None:
            run.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._transaction([run_record(run, host=socket.gethostname(), version=__version__)])

    def has_run(self, run_id: str) -> bool:
        """True if a run with exactly this id is stored."""
        return self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() \
            is not None

    def resolve(self, ref: str) -> str:
        """The full id of a run given its id, a unique prefix, or ``latest``.

        Raises:
            UnknownRunError: no run, or several, match.
        """
        if ref == "latest":
            row = self.conn.execute("SELECT id FROM runs ORDER BY started_at DESC, id DESC "
                                    "LIMIT 1").fetchone()
            if row is None:
                raise UnknownRunError("the store has no runs yet: run `rigwise bench ...`")
            return str(row[0])
        rows = self.conn.execute("SELECT id FROM runs WHERE id LIKE ? || '%' ESCAPE '\\'",
                                 (ref.replace("%", "\\%").replace("_", "\\_"),)).fetchall()
        if len(rows) != 1:
            what = "matches no run" if not rows else "matches several runs"
            raise UnknownRunError(f"run {ref!r} {what}; see `rigwise bench history`")
        return str(rows[0][0])

    def record(self, ref: str) -> dict[str, Any]:
        """The stored JSON record of one run (see :func:`run_record`)."""
        run_id = self.resolve(ref)
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        cols = [d[0] for d in self.conn.execute("SELECT * FROM runs LIMIT 0").description]
        r = dict(zip(cols, row, strict=True))
        ms = [json.loads(x[0]) for x in self.conn.execute(
            "SELECT record_json FROM measurements WHERE run_id = ? ORDER BY position",
            (run_id,))]
        return {**{k: r[k] for k in cols if not k.endswith("_json")},
                "suites": [s for s in str(r["suites"]).split(",") if s],
                "environment": json.loads(r["environment_json"]),
                "telemetry": json.loads(r["telemetry_json"]), "measurements": ms}

    def run(self, ref: str) -> Run:
        """One stored run, rebuilt."""
        return run_from_record(RunRecord.model_validate(self.record(ref)))

    def history(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Newest runs first: id, times, device, suites and measurement count."""
        rows = self.conn.execute(
            "SELECT r.id, r.started_at, r.device_kind, r.device_name, r.catalog_id, "
            "r.architecture, r.suites, r.host, COUNT(m.id) FROM runs r LEFT JOIN measurements m"
            " ON m.run_id = r.id GROUP BY r.id ORDER BY r.started_at DESC, r.id DESC LIMIT ?",
            (limit,)).fetchall()
        keys = ("id", "started_at", "device_kind", "device_name", "catalog_id", "architecture",
                "suites", "host", "measurements")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def export(self, refs: list[str] | None = None) -> dict[str, Any]:
        """An export document of the given runs (all when None)."""
        ids = [self.resolve(r) for r in refs] if refs else [
            str(r[0]) for r in self.conn.execute("SELECT id FROM runs ORDER BY started_at")]
        return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
                "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "runs": [self.record(i) for i in ids]}

    def import_file(self, path: Path) -> tuple[int, int]:
        """Import the runs of an export file; returns (added, already present).

        Raises:
            BadRunFileError: unreadable, not JSON, wrong format, or invalid records; the
                store is then unchanged.
        """
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRunFileError(f"cannot read runs file {path}: {exc}") from None
        try:
            doc = RunFile.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BadRunFileError(f"{path} is not a rigwise runs export: {where}: "
                                  f"{first['msg']}") from None
        if doc.format != EXPORT_FORMAT or doc.version > EXPORT_VERSION:
            raise BadRunFileError(f"{path}: format {doc.format!r} version {doc.version} is "
                                  f"not {EXPORT_FORMAT!r} <= {EXPORT_VERSION}")
        records = []
        for r in doc.runs:
            try:
                run_from_record(r)
            except (KeyError, TypeError, ValueError) as exc:
                raise BadRunFileError(f"{path}: run {r.id!r} is malformed: {exc}") from None
            records.append(r.model_dump())
        new = [r for r in records if not self.has_run(r["id"])]
        self._transaction(new)
        return len(new), len(records) - len(new)

    def measurements(self, *, device_kind: str = "cuda") -> list[tuple[str, str | None,
                                                                      str | None, Measurement]]:
        """(run id, catalog id, architecture, measurement) of every stored measurement on
        ``device_kind``."""
        rows = self.conn.execute(
            "SELECT r.id, r.catalog_id, r.architecture, m.record_json FROM measurements m "
            "JOIN runs r ON r.id = m.run_id WHERE r.device_kind = ? ORDER BY r.started_at, "
            "m.position", (device_kind,)).fetchall()
        return [(str(a), b, c, measurement_from_json(json.loads(d))) for a, b, c, d in rows]

    def save_calibration(self, architecture: str, values: dict[str, tuple[float, int]],
                         runs: list[str]) -> None:
        """Store fitted efficiencies (key -> (value, points)) of one architecture."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(
                "INSERT INTO calibrations (created_at, architecture, key, value, n_points, runs)"
                " VALUES (?,?,?,?,?,?)",
                [(now, architecture, k, v, n, ",".join(runs)) for k, (v, n) in values.items()])
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
