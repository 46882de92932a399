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


QLORA = ("estimate", "train", "--model", "llama-2-7b", "--gpu", "a10", "--task", "qlora",
         "--batch-size", "2", "--seq-len", "512", "--lora-targets", "qv", "--lora-rank", "32",
         "--lora-dropout", "0.05", "--no-checkpointing", "--no-nf4-double-quant")


def test_litgpt_qlora_on_old_bitsandbytes_needs_more_memory_and_says_why() -> None:
    """LitGPT's config hub ran this recipe at 13.68 GB peak allocated (bitsandbytes 0.42)."""
    new = json.loads(run(*QLORA, "--framework", "litgpt", "--json").stdout)
    old_out = run(*QLORA, "--framework", "litgpt", "--bitsandbytes", "0.42.0", "--json")
    assert old_out.returncode == 0, old_out.stderr
    old = json.loads(old_out.stdout)
    assert old["framework"] == "litgpt" and old["bitsandbytes_keeps_inputs"] is True
    held = old["memory"]["held_from_previous_micro_batch_bytes"]
    assert held == pytest.approx(32 * 2 * 512 * (3 * 4096 + 11008) * 2, rel=0.01)
    grown = old["memory"]["per_gpu_bytes"] - new["memory"]["per_gpu_bytes"]
    assert grown > 2 * held  # this step's kept inputs and the previous micro-batch's
    assert any("before 0.43.2" in a for a in old["assumptions"])
    assert "held_from_previous_micro_batch_bytes" not in new["memory"]


@pytest.mark.parametrize(("flag", "value", "word"), [
    ("--framework", "megatron", "framework"), ("--bitsandbytes", "new", "bitsandbytes")])
def test_bad_framework_or_version_is_one_line_exit_2(flag: str, value: str, word: str) -> None:
    out = run(*QLORA, flag, value)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and word in out.stderr
