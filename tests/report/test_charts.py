"""Charts: the data they show (Pareto front, perf per dollar, roofline placement) and that they
render to real, non-empty PNG/SVG/HTML files without a browser or network."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from rigwise import InferConfig, TrainConfig, catalog, get_model
from rigwise.advise.rank import Constraints, Workload, advise
from rigwise.errors import InputError
from rigwise.report import charts
from rigwise.report.figures import pareto_front, roofline_data, roofline_for_result
from rigwise.report.jsonout import advice_json, infer_json
from rigwise.units import GIB


@pytest.fixture(scope="module")
def qlora_advice() -> dict[str, Any]:
    result = advise(get_model("llama-3-8b"), Workload(task="qlora"), catalog().gpus.values(),
                    Constraints(budget_usd=2000), top=12)
    return advice_json(result)


def colored_pixels(png: bytes) -> tuple[int, int]:
    """(pixels that are not near-white, saturated pixels: bars and dots, not grey text)."""
    raw = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    ink = sat = 0
    for i in range(0, len(raw), 3):
        r, g, b = raw[i], raw[i + 1], raw[i + 2]
        if min(r, g, b) < 225:
            ink += 1
        if max(r, g, b) - min(r, g, b) > 60:
            sat += 1
    return ink, sat


@pytest.mark.parametrize(("points", "front"), [
    ([(100, 10), (200, 5), (150, 20), (300, 25)], [0, 2, 3]),
    ([(100, 10), (100, 12), (50, 1)], [2, 1]),          # same price: only the faster one
    ([(100, 10), (200, 10)], [0]),                      # same speed for more money: dominated
    ([(5, 1)], [0]),
    ([], []),
])
def test_pareto_front_table(points: list[tuple[float, float]], front: list[int]) -> None:
    assert pareto_front(points) == front


@given(st.lists(st.tuples(st.floats(1, 1e5), st.floats(0, 1e6)), max_size=30))
def test_pareto_front_is_exactly_the_undominated_points(pts: list[tuple[float, float]]) -> None:
    front = set(pareto_front(pts))

    def dominated(i: int) -> bool:
        p, t = pts[i]
        return any((q <= p and u > t) or (q < p and u >= t) for q, u in pts)

    for i in range(len(pts)):
        if i in front:
            assert not dominated(i)
        elif not any(pts[j] == pts[i] for j in front):  # exact duplicates keep one copy
            assert dominated(i)


def test_value_rows_rank_fitting_priced_options_per_1000_usd(qlora_advice: dict[str, Any]
                                                             ) -> None:
    rows = charts.value_rows(qlora_advice)
    assert rows, "a $2,000 budget buys several cards that fit Llama 3 8B QLoRA"
    values = [r["value"] for r in rows]
    assert values == sorted(values, reverse=True)
    by_gpu = {(o["gpu"], o["gpus"]): o for o in qlora_advice["options"]}
    for r in rows:
        o = next(o for (g, _), o in by_gpu.items() if g == r["gpu"])
        assert o["fits"]
        assert r["value"] == pytest.approx(o["throughput_per_usd"] * 1000)


def test_price_rows_mark_the_pareto_front(qlora_advice: dict[str, Any]) -> None:
    rows = charts.price_rows(qlora_advice)
    front = [r for r in rows if r["pareto"]]
    assert front
    cheapest = min(rows, key=lambda r: r["price"])
    fastest = max(rows, key=lambda r: r["throughput"])
    assert cheapest["pareto"] or any(r["price"] == cheapest["price"] and r["pareto"]
                                     for r in rows)
    assert fastest["pareto"]


def test_advice_charts_render_to_a_png_with_bars(qlora_advice: dict[str, Any]) -> None:
    png = charts.to_png(charts.value_chart(qlora_advice), scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    ink, sat = colored_pixels(png)
    assert sat > 5000, "the bars are drawn in colour"
    assert ink > sat


def test_value_chart_svg_names_the_best_option(qlora_advice: dict[str, Any]) -> None:
    svg = charts.to_svg(charts.value_chart(qlora_advice))
    best = charts.value_rows(qlora_advice)[0]["label"]
    assert svg.lstrip().startswith("<svg")
    assert best in svg


def test_roofline_ops_never_sit_above_the_roof() -> None:
    m, g = get_model("llama-3-8b"), catalog().gpu("H100 SXM5 80GB")
    for cfg in (InferConfig(weights="bf16", batch_size=1), InferConfig(batch_size=64),
                TrainConfig(task="qlora", batch_size=4), TrainConfig(batch_size=1)):
        d = roofline_data(m, g, cfg)
        for op in d["ops"]:
            if op["attained_flop_per_s"]:
                roof = min(d["peak_flop_per_s"],
                           d["memory_bytes_per_s"] * op["intensity_flop_per_byte"])
                assert op["attained_flop_per_s"] <= roof * (1 + 1e-9), (cfg, op["name"])


def test_roofline_places_prefill_gemms_compute_bound_and_decode_memory_bound() -> None:
    d = roofline_data(get_model("llama-3-8b"), catalog().gpu("H100 SXM5 80GB"),
                      InferConfig(weights="bf16", batch_size=1, prompt_tokens=2048))
    gemm = {(o["phase"], o["name"]): o for o in d["ops"] if o["kind"] == "gemm"}
    assert gemm[("prefill", "mlp_up")]["bound"] == "compute"
    assert gemm[("decode", "mlp_up")]["bound"] == "memory"
    # batch 1 decode with 16-bit weights: ~1 FLOP per byte (2 FLOP per 2-byte weight)
    assert gemm[("decode", "mlp_up")]["intensity_flop_per_byte"] == pytest.approx(1.0, rel=0.01)
    assert gemm[("decode", "mlp_up")]["intensity_flop_per_byte"] < d["ridge_flop_per_byte"]


def test_estimate_charts_render_memory_and_roofline(tmp_path: Path) -> None:
    m, g = get_model("llama-3-8b"), catalog().gpu("RTX 4090")
    from rigwise import estimate_infer

    cfg = InferConfig(weights="q4_k_m", batch_size=4)
    e = infer_json(estimate_infer(m, g, cfg))
    roof = roofline_for_result(e)
    assert roof is not None and roof["gpu"] == g.id
    out = charts.plot_estimate(e, tmp_path / "est.png")
    _, sat = colored_pixels(out.read_bytes())
    assert sat > 3000
    spec = charts.spec(charts.memory_chart(e))
    parts = spec["layer"][0]["data"]["values"]
    assert sum(p["gib"] for p in parts) == pytest.approx(e["memory"]["per_gpu_bytes"] / GIB,
                                                         rel=1e-3)


@pytest.mark.parametrize("suffix", [".png", ".svg", ".json", ".html"])
def test_save_writes_each_format(tmp_path: Path, suffix: str,
                                 qlora_advice: dict[str, Any]) -> None:
    path = charts.plot_result(qlora_advice, "advise", tmp_path / f"chart{suffix}")
    data = path.read_bytes()
    assert len(data) > 1000
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    elif suffix == ".svg":
        assert b"<svg" in data[:200]
    elif suffix == ".json":
        assert "vega-lite" in json.loads(data)["$schema"]
    else:
        text = data.decode()
        assert "cdn.jsdelivr" not in text and 'src="http' not in text  # opens offline


def test_bad_plot_path_is_an_input_error(tmp_path: Path, qlora_advice: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="use a file ending"):
        charts.plot_result(qlora_advice, "advise", tmp_path / "chart.pdf")
    with pytest.raises(InputError, match="does not exist"):
        charts.plot_result(qlora_advice, "advise", tmp_path / "nope" / "chart.png")


def test_scaling_rows_compute_efficiency_against_linear() -> None:
    rows = charts.scaling_rows({"curve": [{"gpus": 2, "throughput": 180.0},
                                          {"gpus": 1, "samples_per_s": 100.0},
                                          {"gpus": 4, "throughput": {"samples_per_s": 320.0}}]})
    assert [r["gpus"] for r in rows] == [1, 2, 4]
    assert [r["efficiency"] for r in rows] == pytest.approx([1.0, 0.9, 0.8])
    png = charts.to_png(charts.scaling_chart({"curve": rows}), scale=1)
    assert colored_pixels(png)[1] > 200


def test_bench_rows_as_percent_of_peak() -> None:
    rows = charts.bench_rows({"results": [
        {"name": "bf16 GEMM", "measured": 700e12, "expected": 750e12, "peak": 989e12},
        {"name": "no peak", "measured": 1.0}]})
    assert [(r["name"], r["kind"]) for r in rows] == [("bf16 GEMM", "measured"),
                                                       ("bf16 GEMM", "expected")]
    assert rows[0]["pct_of_peak"] == pytest.approx(700 / 989)
    with pytest.raises(InputError):
        charts.bench_chart({"results": []})


def test_bench_rows_read_rigwise_bench_comparisons() -> None:
    cmp = {"run": {"id": "x"}, "comparisons": [
        {"name": "gemm bf16 8192^3", "metric": "flop_per_s", "value": 760e12, "peak": 989e12,
         "predicted": 790e12, "fraction_of_peak": 0.768},
        {"name": "cpu gemm", "metric": "flop_per_s", "value": 1e11, "peak": None}]}
    rows = charts.bench_rows(cmp)
    assert {(r["name"], r["kind"]) for r in rows} == {("gemm bf16 8192^3", "measured"),
                                                      ("gemm bf16 8192^3", "expected")}
    png = charts.to_png(charts.bench_chart(cmp), scale=1)
    assert colored_pixels(png)[1] > 300
