"""The run store: migrations, WAL, atomic runs, history, export/import that never corrupts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rigwise.bench.measurement import Measurement, Run
from rigwise.probe.nvml import TelemetrySample
from rigwise.store.db import BadRunFileError, Store, StoreError, UnknownRunError
from rigwise.store.migrations import MIGRATIONS


def _run(run_id: str, started: str = "2026-11-20T10:00:00", value_s: float = 1e-3) -> Run:
    m = Measurement("gemm", "gemm", "gemm fp32 64x64x64", "flop_per_s", 2.0 * 64**3,
                    (value_s, value_s * 1.1, value_s * 0.9), {"precision": "fp32", "m": 64,
                                                             "n": 64, "k": 64})
    tel = TelemetrySample(0.5, 0, 1.98e9, 2.6e9, 650.0, 70.0, ("sw_power_cap",), 5, 16, True)
    return Run(run_id, started, "cpu", "CPU: test", None, None, ("gemm",), "rigwise bench gemm",
               {"inventory": {"cpu": {"model": "test"}}}, [m], [tel])


def _ids(store: Store) -> list[str]:
    return [r["id"] for r in store.history()]


def test_new_store_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "a" / "runs.db") as s:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Store(tmp_path / "a" / "runs.db") as s:  # reopening applies nothing twice
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_roundtrip_history_and_run_references(tmp_path: Path) -> None:
    with Store(tmp_path / "runs.db") as s:
        s.save_run(_run("20261120-100000-aaaaaa"))
        s.save_run(_run("20261121-100000-bbbbbb", started="2026-11-21T10:00:00"))
        assert _ids(s) == ["20261121-100000-bbbbbb", "20261120-100000-aaaaaa"]
        assert s.resolve("latest") == "20261121-100000-bbbbbb"
        assert s.resolve("20261120") == "20261120-100000-aaaaaa"
        back = s.run("20261120")
        with pytest.raises(UnknownRunError, match="several"):
            s.resolve("2026112")
        with pytest.raises(UnknownRunError, match="no run"):
            s.resolve("1999")
    m = back.measurements[0]
    assert m.samples_s == (1e-3, 1e-3 * 1.1, 1e-3 * 0.9) and m.params["precision"] == "fp32"
    assert back.telemetry[0].reasons == ("sw_power_cap",) and back.telemetry[0].throttled
    assert back.environment["inventory"]["cpu"]["model"] == "test"


def test_interrupted_write_leaves_no_half_run(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(tmp_path / "runs.db") as s:
        s.save_run(_run("first"))

        def ctrl_c(*args: object) -> object:
            raise KeyboardInterrupt  # after the run row, before its measurements
        monkeypatch.setattr(s, "conn", _Proxy(s.conn, ctrl_c))
        with pytest.raises(KeyboardInterrupt):
            s.save_run(_run("second"))
        monkeypatch.setattr(s, "conn", s.conn.inner)  # type: ignore[attr-defined]
        assert _ids(s) == ["first"]
        assert s.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 1


class _Proxy:
    """A connection whose executemany fails, to interrupt a save between two statements."""

    def __init__(self, inner: sqlite3.Connection, fail: object) -> None:
        self.inner = inner
        self.executemany = fail

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_export_import_roundtrip(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as a:
        a.save_run(_run("r1"))
        a.save_run(_run("r2", started="2026-11-21T00:00:00"))
        doc = a.export(["r1"])
        everything = a.export()
    assert [r["id"] for r in doc["runs"]] == ["r1"] and len(everything["runs"]) == 2
    f = tmp_path / "runs.json"
    f.write_text(json.dumps(everything))
    with Store(tmp_path / "b.db") as b:
        assert b.import_file(f) == (2, 0)
        assert b.import_file(f) == (0, 2)
        assert b.run("r2").measurements[0].value == pytest.approx(2.0 * 64**3 / 1e-3)


@pytest.mark.parametrize("text", [
    "not json",
    json.dumps({"format": "something-else", "version": 1, "exported_at": "x", "runs": []}),
    json.dumps({"runs": []}),
])
def test_bad_import_leaves_store_untouched(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(text)
    with Store(tmp_path / "runs.db") as s:
        s.save_run(_run("kept"))
        with pytest.raises(BadRunFileError):
            s.import_file(f)
        assert _ids(s) == ["kept"]


def test_one_malformed_run_rejects_the_whole_file(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as a:
        a.save_run(_run("good"))
        a.save_run(_run("bad", started="2026-11-22T00:00:00"))
        doc = a.export()
    doc["runs"][1]["measurements"][0]["samples_s"] = [-1.0]
    f = tmp_path / "runs.json"
    f.write_text(json.dumps(doc))
    with Store(tmp_path / "b.db") as b:
        with pytest.raises(BadRunFileError, match="'bad'"):
            b.import_file(f)
        assert _ids(b) == []


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    f = tmp_path / "notes.db"
    f.write_text("this is not sqlite, and is long enough to be read as a header" * 20)
    with pytest.raises(StoreError):
        Store(f)
    assert f.read_text().startswith("this is not sqlite")
