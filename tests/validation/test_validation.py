"""The model against published measurements (issue 3).

The bounds below are the errors the model reaches today on the whole suite, asserted so that
a change that makes them worse fails. They are not the issue's targets (10 % MAPE for
training throughput and decode, 15 % prefill, 5 % memory); docs/method.md §9 reports the
gap row by row.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from rigwise.catalog.load import catalog
from rigwise.cli.main import app
from rigwise.errors import ConfigFileError
from rigwise.validation import intervals
from rigwise.validation.rows import default_data_dir, load_rows
from rigwise.validation.run import Result, run, summarize

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def results() -> list[Result]:
    return run(load_rows(DATA))


def test_the_suite_is_broad(results: list[Result]) -> None:
    single = [r for r in results if r.row.gpus == 1]
    assert len(single) >= 60
    sources = {urlparse(r.row.source).netloc + urlparse(r.row.source).path.split("/")[1]
               for r in results}
    assert len(sources) >= 5
    archs = {r.architecture for r in results}
    for arch in ("Pascal", "Volta", "Ampere", "Ada Lovelace", "Hopper", "Blackwell"):
        assert arch in archs
    vendors = {catalog().gpu(r.row.gpu).vendor for r in results}
    assert vendors & {"amd", "apple"}
    kinds = {r.row.kind for r in results}
    assert {"train_throughput", "infer_decode", "infer_prefill", "infer_serve",
            "train_memory"} <= kinds


def test_every_row_gets_a_prediction(results: list[Result]) -> None:
    assert [r.row.id for r in results if r.problem] == []


@pytest.mark.parametrize(("group", "bound"), [
    ("train", 0.35), ("decode", 0.25), ("prefill", 0.20), ("memory", 0.05),
    ("serving", 0.25),
])
def test_error_does_not_grow(results: list[Result], group: str, bound: float) -> None:
    summary = {(g.group, g.basis): g for g in summarize(results)}
    g = summary[(group, "all")]
    assert g.mape_known is not None and g.mape_known <= bound, (
        f"{group}: MAPE {g.mape_known:.1%} over {g.rows_known} rows exceeds {bound:.0%}")


def test_stored_intervals_match_the_current_model(results: list[Result]) -> None:
    fitted = intervals.fit(results)
    assert intervals.to_toml(fitted) == intervals.INTERVALS_FILE.read_text(), (
        "the model changed: run `rigwise validate --write-intervals`")


def test_estimates_carry_ranges() -> None:
    result = CliRunner().invoke(app, ["estimate", "train", "--model", "bert-large", "--gpu",
                                      "A100 SXM4 80GB", "--precision", "fp16",
                                      "--batch-size", "32", "--seq-len", "128", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    t = out["throughput"]
    assert t["samples_per_s_low"] <= t["samples_per_s"] <= t["samples_per_s_high"]
    assert t["samples_per_s_low"] < t["samples_per_s_high"]
    assert out["interval"]["basis"] in ("blind", "calibrated")
    assert out["interval"]["from"][0]["rows"] >= 5


def test_validate_command_prints_the_table() -> None:
    result = CliRunner().invoke(app, ["validate", "--kind", "prefill", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {r["group"] for r in out["rows"]} == {"prefill"}
    assert out["summary"][0]["mape"] >= 0


def test_bad_rows_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "rows.toml"
    bad.write_text('[[row]]\nid = "x"\nkind = "train_throughput"\n')
    with pytest.raises(ConfigFileError):
        load_rows(bad)
    result = CliRunner().invoke(app, ["validate", "--data", str(bad)])
    assert result.exit_code != 0
    assert default_data_dir() == DATA
