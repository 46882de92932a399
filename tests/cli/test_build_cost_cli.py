"""``rigwise build`` and ``rigwise cost`` end to end: JSON answers, bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigwise.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_build_plan_json() -> None:
    out = run("build", "plan", "--gpu", "RTX 4090", "--gpus", "2", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    parts = {p["part"]: p for p in got["parts"]}
    assert {"gpu", "cpu", "ram", "storage", "psu", "case"} <= set(parts)
    assert got["psu"]["recommended_w"] == 1300  # (2x450 + 105 + 100) x 1.1 = 1215.5 -> 1300
    priced = sum(p["price_usd"] * p["quantity"] for p in got["parts"] if p["price_usd"])
    assert got["total_usd"] == pytest.approx(priced, rel=1e-5)
    assert all(p["reason"] for p in got["parts"])


def test_build_plan_feeds_an_image_model() -> None:
    out = run("build", "plan", "--gpu", "RTX 4090", "--gpus", "4", "--model", "resnet50",
              "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    feed = got["data_loader"]
    assert feed["loader"] == "pillow" and feed["images_per_s"] > 4000
    assert feed["cores"] == -(-feed["images_per_s"] // 160)
    cpu = next(p for p in got["parts"] if p["part"] == "cpu")
    assert f"{feed['cores']} cores of pillow" in cpu["reason"]
    bad = run("build", "plan", "--gpu", "RTX 4090", "--model", "gpt2")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_estimate_data_loader_flags() -> None:
    base = ("estimate", "train", "-m", "resnet50", "-g", "A100 SXM4 80GB", "--precision",
            "fp16", "--batch-size", "256")
    fed = json.loads(run(*base, "--data-loader", "pillow", "--cpu-cores", "10",
                         "--json").stdout)
    assert fed["bottleneck"] == "data loader (CPU)"
    assert fed["throughput"]["samples_per_s"] == pytest.approx(1600)
    assert fed["data_loader"]["gpu_samples_per_s"] > 2000
    missing = run(*base, "--data-loader", "pillow")
    assert missing.returncode == 2 and "--cpu-cores" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_build_check_json_and_table(tmp_path: Path) -> None:
    path = tmp_path / "rig.toml"
    path.write_text('gpu = "RTX 3090"\ngpus = 4\ncpu = "Ryzen 9 7950X"\npsu_w = 1000\n')
    got = json.loads(run("build", "check", str(path), "--json").stdout)
    assert got["ok"] is False
    assert {"psu-overload", "cpu-lanes", "open-air-stacked"} <= {f["code"] for f in got["findings"]}
    table = run("build", "check", str(path))
    assert table.returncode == 0 and "psu-overload" in table.stdout


@pytest.mark.parametrize(("text", "name", "needle"), [
    ('gpu = "RTX 4090"\npsu = "Corsair HX15"\n', "rig.toml", "did you mean"),
    ('gpu = "RTX 4090"\npsu = \n', "rig.toml", "malformed TOML"),
    ("gpu: RTX 4090\n  psu: [x\n", "rig.yaml", "malformed YAML"),
    ('gpu = "RTX 9999"\n', "rig.toml", "RTX 9999"),
])
def test_bad_parts_lists_exit_2_with_one_line(tmp_path: Path, text: str, name: str,
                                              needle: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    out = run("build", "check", str(path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and needle in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_parts_list_exits_2(tmp_path: Path) -> None:
    out = run("build", "check", str(tmp_path / "nope.toml"))
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_cost_reproduces_dettmers_break_even() -> None:
    out = run("cost", "--gpu", "RTX 3090", "--purchase-usd", "2200", "--cloud-usd-per-h", "2.14",
              "--system-power-w", "450", "--electricity-usd-per-kwh", "0.12",
              "--utilization", "0.15", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    rent = got["rent"][0]
    days = rent["break_even_hours"] / (0.15 * 24)
    assert days == pytest.approx(300, rel=0.03)
    assert rent["break_even_months"] == pytest.approx(days / 30.4375, rel=1e-3)


def test_cost_of_a_training_run() -> None:
    out = run("cost", "--gpu", "RTX 4090", "--model", "gpt2", "--tokens", "1e9", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    r = got["run"]
    assert r["hours"] > 0
    assert r["energy_kwh"] == pytest.approx(got["own"]["power_w"] / 1000 * r["hours"], rel=1e-4)
    assert r["emissions_kg_co2"] == pytest.approx(r["energy_kwh"] * 0.366, rel=1e-4)
    assert r["own_usd_per_million_tokens"] == pytest.approx(r["own_usd"] / 1000, rel=1e-4)
    assert got["rent"], "the catalog has cloud rates for the RTX 4090"


def test_cost_bad_input_exits_2() -> None:
    out = run("cost", "--gpu", "RTX 4090", "--utilization", "2")
    assert out.returncode == 2 and "utilization" in out.stderr
    out = run("cost", "--gpu", "RTX 4090", "--tokens", "1e9")
    assert out.returncode == 2 and "--model" in out.stderr


def test_build_edge_json() -> None:
    out = run("build", "edge", "--model", "llama-3-8b", "--max-power", "75",
              "--max-latency-ms", "100", "--max-slots", "1", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["options"] and all(o["power_w"] <= 75 for o in got["options"])
