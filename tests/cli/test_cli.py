"""End-to-end CLI runs: golden JSON, bad input exits 2 with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent.parent / "golden"
UPDATE = os.environ.get("RIGWISE_UPDATE_GOLDEN") == "1"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigwise.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


CASES = {
    "estimate_train_gpt2_4090": ["estimate", "train", "--model", "gpt2", "--gpu", "RTX 4090",
                                 "--precision", "bf16", "--batch-size", "8", "--seq-len", "1024"],
    "estimate_train_llama70b_4090": ["estimate", "train", "--model", "llama-2-70b", "--gpu",
                                     "rtx-4090", "--batch-size", "1"],
    "estimate_infer_llama3_h100": ["estimate", "infer", "--model", "Llama 3 8B", "--gpu",
                                   "H100 SXM5 80GB", "--weights", "bf16", "--batch-size", "4"],
    "advise_llama3_qlora_2000": ["advise", "--model", "llama-3-8b", "--task", "qlora",
                                 "--budget", "2000"],
    "advise_resnet50_cloud": ["advise", "--model", "resnet50", "--task", "train", "--market",
                              "cloud"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_json(name: str) -> None:
    out = run(*CASES[name], "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    path = GOLDEN / f"{name}.json"
    if UPDATE or not path.exists():
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())


def test_contract_fields_of_estimate_json() -> None:
    train = json.loads(run(*CASES["estimate_train_gpt2_4090"], "--json").stdout)
    for key in ("fits", "step_time_s", "mfu", "bottleneck"):
        assert key in train
    assert train["memory"]["per_gpu_bytes"] > 0
    assert {"samples_per_s", "tokens_per_s"} <= set(train["throughput"])
    infer = json.loads(run(*CASES["estimate_infer_llama3_h100"], "--json").stdout)
    assert {"time_s", "tokens_per_s"} <= set(infer["prefill"])
    assert {"tokens_per_s", "time_per_token_s"} <= set(infer["decode"])


def test_terminal_estimate_shows_the_json_range_and_its_basis() -> None:
    """The 80 % range a user sees in the terminal is the one --json gives, with its basis."""
    js = json.loads(run(*CASES["estimate_train_gpt2_4090"], "--json").stdout)["throughput"]
    text = run(*CASES["estimate_train_gpt2_4090"]).stdout
    lo, hi = js["samples_per_s_low"], js["samples_per_s_high"]
    assert lo < js["samples_per_s"] <= hi
    assert f"({lo:.1f} – {hi:.1f})" in text or f"({lo:.0f} – {hi:.0f})" in text
    assert "10th-90th percentile" in text and "train rows" in text
    infer = run(*CASES["estimate_infer_llama3_h100"]).stdout
    assert "decode rows" in infer and "prefill rows" in infer


def test_advise_ranks_fitting_options_by_value_within_budget() -> None:
    got = json.loads(run(*CASES["advise_llama3_qlora_2000"], "--json").stdout)
    options = got["options"]
    assert len(options) >= 5
    assert all(o["fits"] for o in options[:5])
    assert all(o["price"]["usd"] <= 2000 for o in options)
    values = [o["throughput_per_usd"] for o in options if o["fits"]]
    assert values == sorted(values, reverse=True)
    assert all(o["why"] for o in options)


def test_advise_table_is_printed() -> None:
    out = run(*CASES["advise_resnet50_cloud"])
    assert out.returncode == 0
    assert "samples/s" in out.stdout and "ResNet-50" in out.stdout


def test_not_fitting_exits_zero_with_fits_false() -> None:
    out = run(*CASES["estimate_train_llama70b_4090"], "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["fits"] is False


@pytest.mark.parametrize("args", [
    ["estimate", "train", "--model", "gpt2", "--gpu", "RTX 9999"],
    ["estimate", "train", "--model", "gpt-7", "--gpu", "RTX 4090"],
    ["estimate", "train", "--model", "gpt2", "--gpu", "A100"],
    ["estimate", "train", "--model", "gpt2", "--gpu", "RTX 4090", "--batch-size", "-4"],
    ["estimate", "train", "--model", "gpt2", "--gpu", "V100 SXM2 32GB", "--precision", "bf16"],
    ["estimate", "infer", "--model", "gpt2", "--gpu", "RTX 4090", "--weights", "q9"],
    ["estimate", "infer", "--model", "/nonexistent/config.json", "--gpu", "RTX 4090"],
    ["advise", "--model", "gpt2", "--task", "dance"],
    ["advise", "--model", "gpt2", "--task", "train", "--budget", "-5"],
    ["gpus", "show", "RTX 40"],
])
def test_bad_input_exits_2_with_one_line(args: list[str]) -> None:
    out = run(*args)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_malformed_config_json(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{oops")
    out = run("estimate", "train", "--model", str(bad), "--gpu", "RTX 4090")
    assert out.returncode == 2 and "not valid JSON" in out.stderr


def test_gpus_list_filters_and_json() -> None:
    out = run("gpus", "list", "--vendor", "nvidia", "--min-memory", "40", "--json")
    gpus = json.loads(out.stdout)["gpus"]
    assert gpus and all(g["vendor"] == "nvidia" and g["memory_bytes"] >= 40 * 2**30
                        for g in gpus)
    out = run("gpus", "compare", "RTX 3090", "RTX 4090", "--json")
    assert [g["id"] for g in json.loads(out.stdout)["gpus"]] == ["nvidia-rtx-3090",
                                                                 "nvidia-rtx-4090"]
    out = run("gpus", "show", "H100 SXM5 80GB")
    assert out.returncode == 0 and "Sources" in out.stdout
