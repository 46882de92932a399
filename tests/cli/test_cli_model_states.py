"""``rigwise estimate train`` with pure bf16, the optimizer step in backward and paged states."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

BASE = ("estimate", "train", "--model", "llama-3.1-8b", "--gpu", "rtx-4090", "--task",
        "finetune", "--batch-size", "2", "--seq-len", "2048")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigwise.cli.main", *args],
                          capture_output=True, text=True, check=False)


def test_json_reports_the_setup_and_the_paged_states() -> None:
    out = run(*BASE, "--optimizer", "paged_adamw8bit", "--no-master-weights",
              "--optimizer-in-backward", "--checkpointing", "--chunked-loss", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["master_weights"] is False and d["optimizer_in_backward"] is True
    assert d["fits"] is True
    paged = d["memory"]["paged"]
    assert paged["optimizer_bytes"] > 14 * 2**30
    assert paged["resident_bytes"] + paged["host_bytes"] == pytest.approx(
        paged["optimizer_bytes"], rel=1e-5)
    assert d["time_breakdown_s"]["host_transfer"] > 0


def test_table_shows_paged_states() -> None:
    out = run(*BASE, "--optimizer", "paged_adamw8bit", "--no-master-weights")
    assert out.returncode == 0, out.stderr
    assert "paged optimizer states" in out.stdout and "no master weights" in out.stdout


@pytest.mark.parametrize(("args", "says"), [
    (("--optimizer", "paged_adam"), "--optimizer must be"),
    (("--no-master-weights", "--precision", "fp32"), "bf16 or fp16"),
    (("--optimizer-in-backward", "--gpus", "2"), "one GPU"),
])
def test_bad_values_give_one_line_and_exit_2(args: tuple[str, ...], says: str) -> None:
    out = run(*BASE, *args)
    assert out.returncode == 2
    assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
