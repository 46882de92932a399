"""``rigwise scale``: plans, curves, JSON contract and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigwise.cli.main", "scale", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_json_plans_have_the_contract_fields() -> None:
    r = run("--model", "llama-2-70b", "--gpu", "H100 SXM", "--gpus", "64", "--global-batch",
            "256", "--seq-len", "4096", "--top", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["searched"] > 100 and len(out["plans"]) == 3
    best = out["plans"][0]
    assert best["fits"] and best["plan"]["dp"] * best["plan"]["tp"] * best["plan"]["pp"] == 64
    assert best["memory"]["per_gpu_bytes"] <= best["memory"]["capacity_bytes"]
    assert best["throughput"]["tokens_per_s"] == pytest.approx(
        256 * 4096 / best["step_time_s"], rel=1e-6)
    assert 0 < best["mfu"] < 1 and best["limit"]
    steps = [p["step_time_s"] for p in out["plans"]]
    assert steps == sorted(steps)


def test_table_output_and_user_system_file(tmp_path: Path) -> None:
    src = Path(__file__).parents[2] / "src/rigwise/catalog/data/systems/dgx-a100.toml"
    mine = tmp_path / "lab.toml"
    mine.write_text(src.read_text().replace('id = "dgx-a100"', 'id = "lab"'))
    r = run("--model", "llama-3-8b", "--gpu", "A100 SXM4 80GB", "--gpus", "16",
            "--system", str(mine), "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    assert "plans fit" in r.stdout and "limited by" in r.stdout


def test_curve_prints_scaling_efficiency() -> None:
    r = run("--model", "gpt2-xl", "--gpu", "rtx-4090", "--system", "workstation-4x-rtx-4090",
            "--curve", "1,2,4", "--batch-size", "4", "--seq-len", "1024", "--json")
    assert r.returncode == 0, r.stderr
    pts = json.loads(r.stdout)["curve"]
    assert [p["gpus"] for p in pts] == [1, 2, 4]
    fitting = [p for p in pts if p["fits"]]
    assert fitting[0]["scaling_efficiency"] == pytest.approx(1.0)
    assert all(p["scaling_efficiency"] > 0.3 for p in fitting)


def test_cnn_gets_data_parallel_plans_in_images_per_second() -> None:
    r = run("--model", "resnet50", "--gpu", "A100 SXM4 80GB", "--gpus", "16",
            "--system", "dgx-a100-superpod", "--batch-size", "256", "--precision", "fp16",
            "--optimizer", "sgd", "--json")
    assert r.returncode == 0, r.stderr
    best = json.loads(r.stdout)["plans"][0]
    assert best["plan"]["dp"] == 16 and best["plan"]["tp"] == best["plan"]["pp"] == 1
    assert best["throughput"]["tokens_per_s"] is None
    assert best["throughput"]["samples_per_s"] == pytest.approx(
        16 * 256 / best["step_time_s"], rel=1e-6)
    assert best["time_split_s"]["comm_total_s"]["dp"] > 0
    r = run("--model", "resnet50", "--gpu", "A100 SXM4 80GB", "--curve", "1,8",
            "--batch-size", "256")
    assert r.returncode == 0, r.stderr
    assert "samples/s" in r.stdout and "tok/s" not in r.stdout


def test_superlinear_curve_says_why() -> None:
    r = run("--model", "gpt2", "--gpu", "h100-sxm5", "--curve", "1,16", "--json")
    assert r.returncode == 0, r.stderr
    pts = json.loads(r.stdout)["curve"]
    assert pts[0]["scaling_note"] is None
    assert pts[1]["scaling_efficiency"] > 1.0 and "optimizer step" in pts[1]["scaling_note"]
    r = run("--model", "gpt2", "--gpu", "h100-sxm5", "--curve", "1,16")
    assert r.returncode == 0 and "above 100 %" in r.stdout


def test_model_that_fits_nowhere_is_an_answer() -> None:
    r = run("--model", "llama-2-70b", "--gpu", "rtx-4090", "--gpus", "4", "--json")
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert out["fitting"] == 0 and not out["plans"][0]["fits"]
    r = run("--model", "llama-2-70b", "--gpu", "rtx-4090", "--gpus", "4")
    assert r.returncode == 0 and "fits nowhere" in r.stdout


@pytest.mark.parametrize("args", [
    ["--model", "llama-3-8b", "--gpu", "H100 SXM", "--gpus", "0"],
    ["--model", "llama-3-8b", "--gpu", "H100 SXM"],
    ["--model", "llama-3-8b", "--gpu", "H100 SXM", "--curve", "1,x"],
    ["--model", "llama-3-8b", "--gpu", "H100 SXM", "--gpus", "8", "--system", "nope-9000"],
    ["--model", "llama-3-8b", "--gpu", "H100 SXM", "--gpus", "8", "--system", "/no/such.toml"],
    ["--model", "resnet50", "--gpu", "H100 SXM", "--gpus", "8", "--global-batch", "0"],
    ["--model", "llama-3-8b", "--gpu", "H100 SXM", "--gpus", "16", "--system",
     "mi300x-platform"],
])
def test_bad_input_exits_2_with_one_line(args: list[str]) -> None:
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error:")
    assert "Traceback" not in r.stderr
