"""Schema migrations of the run store: an append-only list, applied in order.

The database's ``PRAGMA user_version`` holds how many migrations it has; opening a store runs
the missing ones, each in its own transaction (simonw/llm and sqlite-utils keep the same
discipline). Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: runs and their measurements, raw samples and telemetry as JSON text
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        host TEXT NOT NULL,
        device_kind TEXT NOT NULL,
        device_name TEXT NOT NULL,
        catalog_id TEXT,
        architecture TEXT,
        suites TEXT NOT NULL,
        command TEXT NOT NULL,
        rigwise_version TEXT NOT NULL,
        environment_json TEXT NOT NULL,
        telemetry_json TEXT NOT NULL
    );
    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        suite TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        record_json TEXT NOT NULL
    );
    CREATE INDEX measurements_run ON measurements(run_id);
    CREATE INDEX runs_started ON runs(started_at);
    """,
    # 2: efficiencies fitted by `rigwise calibrate`
    """
    CREATE TABLE calibrations (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        architecture TEXT NOT NULL,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        n_points INTEGER NOT NULL,
        runs TEXT NOT NULL
    );
    CREATE INDEX calibrations_arch ON calibrations(architecture, created_at);
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations ``conn`` lacks; returns the schema version after.

    Raises:
        sqlite3.DatabaseError: the file is not a rigwise store, or is newer than this rigwise.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"store schema {version} is newer than this rigwise ({len(MIGRATIONS)})")
    for i in range(version, len(MIGRATIONS)):
        try:
            conn.executescript(f"BEGIN;\n{MIGRATIONS[i]}\nPRAGMA user_version = {i + 1};\n"
                               "COMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
