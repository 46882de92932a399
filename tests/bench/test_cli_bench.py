"""``rigwise bench``, ``doctor`` and ``calibrate`` end to end on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rigwise.cli.main import app

pytestmark = pytest.mark.torch


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigwise.cli.main", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_doctor_json_without_gpu() -> None:
    out = cli("doctor", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["inventory"]["cpu"]["logical_cores"] >= 1
    assert got["inventory"]["cpu"]["memory_bytes"] > 0
    assert got["verdict"] in ("ok", "info", "warn", "fail")
    assert any(f["check"] == "nvidia" for f in got["findings"])


def test_bench_stores_history_compare_export_import(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    out = cli("bench", "gemm", "--quick", "--precision", "fp32", "--json", "--db", db)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["run"]["device_kind"] == "cpu" and first["stored_in"] == db
    assert first["run"]["device_name"].startswith("CPU")
    assert all(c["verdict"] == "n/a" for c in first["comparisons"])
    assert all(len(m["samples_s"]) >= 5 for m in first["measurements"])
    runner = CliRunner()
    second = runner.invoke(app, ["bench", "memory", "--quick", "--json", "--db", db])
    assert second.exit_code == 0, second.output
    hist = json.loads(runner.invoke(app, ["bench", "history", "--json", "--db", db]).output)
    assert len(hist["runs"]) == 2
    cmp = runner.invoke(app, ["bench", "compare", first["run"]["id"], "latest", "--json",
                              "--db", db])
    assert cmp.exit_code == 0 and json.loads(cmp.output)["a"] == first["run"]["id"]
    shown = runner.invoke(app, ["bench", "show", "latest", "--db", db])
    assert shown.exit_code == 0 and "CPU run" in shown.output
    exported = tmp_path / "runs.json"
    assert runner.invoke(app, ["bench", "export", str(exported), "--db", db]).exit_code == 0
    other = str(tmp_path / "other.db")
    imp = runner.invoke(app, ["bench", "import", str(exported), "--db", other])
    assert imp.exit_code == 0 and "imported 2 run(s)" in imp.output


def test_bad_import_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "rigwise-bench-runs", "version": 1}')
    out = cli("bench", "import", str(bad), "--db", str(tmp_path / "runs.db"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "not a rigwise runs export" in out.stderr
    assert "Traceback" not in out.stderr


def test_calibrate_without_gpu_runs_exits_2(tmp_path: Path) -> None:
    out = cli("calibrate", "--db", str(tmp_path / "runs.db"),
              env={"RIGWISE_CALIBRATION": str(tmp_path / "cal.toml")})
    assert out.returncode == 2 and "no GPU measurements" in out.stderr
    assert not (tmp_path / "cal.toml").exists()


def test_ctrl_c_during_a_run_stores_nothing(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import rigwise.bench.runner as runner_mod

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(runner_mod, "run_bench", interrupted)
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(app, ["bench", "gemm", "--db", str(db)])
    assert result.exit_code == 130 and "not stored" in result.output
    hist = CliRunner().invoke(app, ["bench", "history", "--json", "--db", str(db)])
    assert json.loads(hist.output)["runs"] == []
