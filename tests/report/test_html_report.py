"""The HTML report: self-contained (no network), with the tables, charts, assumptions, sources
and ranges of the result; and ``rigwise report`` / ``--plot`` on the command line."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rigwise import TrainConfig, catalog, estimate_train, get_model
from rigwise.advise.rank import Constraints, Workload, advise
from rigwise.errors import InputError
from rigwise.report.html import render_report
from rigwise.report.jsonout import advice_json, train_json
from rigwise.report.views import detect_kind, view

EXTERNAL_LOAD = re.compile(
    r"""(<script[^>]+src=|<link[^>]+href=["']?https?:|<img[^>]+src=["']?https?:"""
    r"""|url\(\s*["']?https?:|@import)""", re.I)


@pytest.fixture(scope="module")
def advice() -> dict[str, Any]:
    return advice_json(advise(get_model("llama-3-8b"), Workload(task="qlora"),
                              catalog().gpus.values(), Constraints(budget_usd=2000), top=8))


@pytest.fixture(scope="module")
def train() -> dict[str, Any]:
    return train_json(estimate_train(get_model("gpt2"), catalog().gpu("RTX 4090"),
                                     TrainConfig(batch_size=8, seq_len=1024)))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigwise.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180, check=False)


def test_advice_report_is_self_contained_with_tables_charts_and_sources(
        advice: dict[str, Any]) -> None:
    html = render_report(advice)
    assert html.startswith("<!doctype html>")
    assert not EXTERNAL_LOAD.search(html), "the report must open without a network"
    assert html.count("<svg") >= 2  # perf per dollar, price/throughput
    for o in advice["options"]:
        assert o["name"] in html
    top = catalog().gpus[advice["options"][0]["gpu"]]
    assert next(iter(top.sources.values())).url in html
    assert "huggingface.co/meta-llama" in html  # the model's source
    assert "assumptions" in html and "ranked options" in html


def test_estimate_report_shows_figures_memory_and_roofline(train: dict[str, Any]) -> None:
    html = render_report(train)
    assert "training of GPT-2" in html or "training of gpt2" in html.lower()
    assert "memory per GPU" in html and "where the step time goes" in html
    assert html.count("<svg") == 2  # memory breakdown + roofline
    assert "roofline" in html
    assert f"{train['mfu']:.0%}" in html


def test_ranges_are_shown_where_the_result_has_them(train: dict[str, Any]) -> None:
    data = json.loads(json.dumps(train))
    data["throughput"] |= {"samples_per_s_low": 70.0, "samples_per_s_high": 95.0}
    figs = {f["label"]: f for f in view(data)["figures"]}
    assert figs["samples/s"]["range"] == "70 – 95"
    assert "range 70 – 95" in render_report(data)
    plain = {f["label"]: f for f in view(train)["figures"]}
    if "samples_per_s_low" not in train["throughput"]:
        assert plain["samples/s"]["range"] is None


def test_text_from_the_result_is_escaped(train: dict[str, Any]) -> None:
    data = dict(train, assumptions=["<script>alert(1)</script>"])
    html = render_report(data)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(("data", "kind"), [
    ({"options": [], "constraints": {}}, "advise"),
    ({"prefill": {}, "decode": {}, "memory": {}}, "estimate-infer"),
    ({"step_time_s": 1.0, "memory": {}}, "estimate-train"),
    ({"curve": []}, "scale"),
    ({"command": "bench run", "results": []}, "bench"),
    ({"checks": []}, "doctor"),
])
def test_detect_kind(data: dict[str, Any], kind: str) -> None:
    assert detect_kind(data) == kind


def test_unknown_json_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a rigwise result"):
        detect_kind({"hello": 1})


def test_other_results_get_a_generic_page_with_their_tables() -> None:
    data = {"kind": "scale", "model": "llama-3-8b", "gpu": "nvidia-h100-sxm5-80gb",
            "curve": [{"gpus": 1, "throughput": 100.0}, {"gpus": 8, "throughput": 720.0}]}
    html = render_report(data)
    assert "<svg" in html  # the scaling curve
    assert "curve" in html and "720" in html
    assert "H100" in html  # sources of the GPU named


def test_cli_report_from_a_command_and_from_json(tmp_path: Path) -> None:
    out = run("report", "-o", str(tmp_path / "a.html"), "estimate", "train", "--model",
              "gpt2", "--gpu", "RTX 4090", "--batch-size", "8")
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "a.html").read_text()
    assert "<svg" in html and "GPT-2" in html
    est = run("estimate", "infer", "--model", "llama-3-8b", "--gpu", "RTX 4090", "--json")
    (tmp_path / "e.json").write_text(est.stdout)
    out = run("report", "--from", str(tmp_path / "e.json"), "-o", str(tmp_path / "e.html"))
    assert out.returncode == 0, out.stderr
    assert "decode tokens/s" in (tmp_path / "e.html").read_text()


@pytest.mark.parametrize("args", [
    ["report", "-o", "x.html"],                                   # nothing to report
    ["report", "-o", "x.html", "--from", "missing.json"],          # no such file
    ["report", "-o", "x.txt", "--from", "bad.json"],               # not .html
    ["report", "-o", "x.html", "--from", "bad.json"],              # not JSON
    ["report", "-o", "x.html", "--from", "other.json"],            # not a rigwise result
    ["report", "-o", "x.html", "advise", "--model", "nope", "--task", "qlora"],
    ["advise", "--model", "gpt2", "--task", "train", "--plot", "x.pdf"],
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
    assert not (tmp_path / "x.html").exists()


def test_cli_plot_writes_a_png_next_to_the_json(tmp_path: Path) -> None:
    out = run("advise", "--model", "resnet50", "--task", "train", "--market", "cloud",
              "--top", "6", "--json", "--plot", str(tmp_path / "a.png"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["options"]  # stdout stays pure JSON
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    out = run("estimate", "train", "--model", "gpt2", "--gpu", "RTX 4090", "--plot",
              str(tmp_path / "e.svg"))
    assert out.returncode == 0, out.stderr
    svg = (tmp_path / "e.svg").read_text()
    assert "roofline" in svg and "memory per GPU" in svg


def test_scale_curve_report_has_the_curve_chart_and_table() -> None:
    def point(n: int, eff: float) -> dict[str, Any]:
        return {"gpus": n, "scaling_efficiency": eff, "plan": {"label": f"DP{n} TP1 PP1"},
                "system": "dgx-h100", "step_time_s": 0.02, "fits": True, "mfu": 0.3,
                "limit": "compute", "memory": {"per_gpu_bytes": 7e9},
                "throughput": {"samples_per_s": 400.0 * n * eff,
                               "tokens_per_s": 409600.0 * n * eff}}
    data = {"model": "gpt2", "gpu": "nvidia-h100-sxm5-80gb",
            "curve": [point(1, 1.0), point(2, 0.95), point(8, 0.9)]}
    assert detect_kind(data) == "scale"
    v = view(data)
    assert v["title"].startswith("scaling of GPT-2")
    assert [r[0] for r in v["tables"][0]["rows"]] == ["1", "2", "8"]
    assert [r[1] for r in v["tables"][0]["rows"]] == ["100%", "95%", "90%"]
    html = render_report(data)
    assert html.count("<svg") == 1 and "DP8 TP1 PP1" in html


def test_image_model_report_says_how_many_cpu_cores_feed_the_gpus() -> None:
    e = estimate_train(get_model("resnet50"), catalog().gpu("nvidia-rtx-4090"),
                       TrainConfig(batch_size=256))
    figs = {f["label"]: f["value"] for f in view(train_json(e))["figures"]}
    assert e.cores_to_feed is not None
    assert figs["CPU cores to feed (Pillow)"] == str(math.ceil(e.cores_to_feed["pillow"]))
