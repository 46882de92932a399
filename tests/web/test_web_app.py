"""The web app's routes through FastAPI's TestClient: pages, validation, and safety (no file
reads from model names, local Host only, no scripts, no network)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from rigwise.catalog.load import catalog
from rigwise.web.app import CSP, create_app

ADVICE = {"model": "llama-3-8b", "task": "qlora", "budget": "2000"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        yield c


def no_scripts_or_remote_loads(html: str) -> bool:
    return "<script" not in html.lower() and not re.search(
        r"""(src=["']?https?:|<link[^>]+https?:|url\(\s*["']?https?:|@import)""", html, re.I)


def test_home_shows_the_form_with_every_built_in_model(client: TestClient) -> None:
    from rigwise.workload.models import builtin_models

    r = client.get("/")
    assert r.status_code == 200
    assert 'id="advise-form"' in r.text
    for m in builtin_models().values():
        assert f'value="{m.id}"' in r.text


def test_advice_page_ranks_options_with_charts_and_links(client: TestClient) -> None:
    r = client.get("/advise?" + urlencode(ADVICE))
    assert r.status_code == 200
    html = r.text
    assert "QLoRA fine-tuning of Llama 3 8B" in html
    assert html.count("<svg") >= 2
    links = re.findall(r'href="(/estimate\?[^"]+)"', html)
    assert len(links) >= 3
    assert r.headers["content-security-policy"] == CSP
    assert no_scripts_or_remote_loads(html)
    # drill into the first option: its estimate page repeats the option's throughput
    e = client.get(links[0].replace("&amp;", "&"))
    assert e.status_code == 200
    assert "memory per GPU" in e.text and e.text.count("<svg") == 2


def test_estimate_pages_train_and_infer(client: TestClient) -> None:
    r = client.get("/estimate", params={"model": "gpt2", "gpu": "RTX 4090", "task": "train",
                                        "batch_size": "8", "seq_len": "1024"})
    assert r.status_code == 200
    assert "where the step time goes" in r.text and "MFU" in r.text
    r = client.get("/estimate", params={"model": "Llama 3 8B", "gpu": "h100-sxm5",
                                        "task": "infer", "weights": "fp8", "batch_size": "16"})
    assert r.status_code == 200
    assert "decode tokens/s" in r.text and "NVIDIA H100" in r.text
    assert 'value="llama-3-8b" selected' in r.text  # the form shows what was resolved


@pytest.mark.parametrize(("params", "message"), [
    ({**ADVICE, "budget": "-5"}, "budget"),
    ({**ADVICE, "task": "rm -rf /"}, "task"),
    ({**ADVICE, "top": "100000"}, "top"),
    ({**ADVICE, "surprise": "1"}, "surprise"),
    ({**ADVICE, "model": "x" * 500}, "model"),
    ({**ADVICE, "model": "not-a-model"}, "not in the catalog"),
])
def test_bad_advice_input_is_a_400_page(client: TestClient, params: dict[str, str],
                                        message: str) -> None:
    r = client.get("/advise", params=params)
    assert r.status_code == 400
    assert 'role="alert"' in r.text and message in r.text


@pytest.mark.parametrize("name", ["/etc/passwd", "../../config.json", "./my/config.json",
                                  "~/model", "C:\\models\\config.json", "tests/config.json"])
def test_a_path_given_as_a_model_is_never_read(client: TestClient, name: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import rigwise.workload.models as models

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the web app read a file")

    monkeypatch.setattr(models, "load_config_file", forbidden)
    r = client.get("/estimate", params={"model": name, "gpu": "RTX 4090"})
    assert r.status_code == 400
    assert "not in the catalog" in r.text


def test_unknown_gpu_lists_the_closest_names(client: TestClient) -> None:
    r = client.get("/estimate", params={"model": "gpt2", "gpu": "RTX 409"})
    assert r.status_code == 400
    assert "Did you mean" in r.text and "nvidia-rtx-4090" in r.text


def test_requests_for_another_host_are_refused() -> None:
    with TestClient(create_app(), base_url="http://evil.example") as c:
        assert c.get("/").status_code == 400


def test_catalog_pages(client: TestClient) -> None:
    r = client.get("/gpus")
    assert r.status_code == 200
    assert r.text.count('<a href="/gpus/') == len(catalog().gpus)
    amd = client.get("/gpus", params={"vendor": "amd"}).text
    rows = re.findall(r"<tr><td><a href=\"/gpus/([^\"]+)\">", amd)
    assert rows and all(catalog().gpus[g].vendor == "amd" for g in rows)
    g = catalog().gpu("RTX 4090")
    r = client.get(f"/gpus/{g.id}")
    assert r.status_code == 200
    for s in g.sources.values():
        assert s.url in r.text
    assert client.get("/gpus/no-such-gpu").status_code == 400
    assert client.get("/gpus", params={"vendor": "acme"}).status_code == 400


def test_models_runs_and_health(client: TestClient, tmp_path: Path) -> None:
    assert "Llama 3 8B" in client.get("/models").text
    assert client.get("/healthz").json()["status"] == "ok"
    with TestClient(create_app(db_path=tmp_path / "none.db"),
                    base_url="http://127.0.0.1") as c:
        assert "No benchmark store on this machine yet" in c.get("/runs").text
        assert c.get("/runs/20260101-000000-abcdef").status_code == 400
    assert not (tmp_path / "none.db").exists(), "the app never creates a store"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run store holding one real (CPU, tiny) GEMM run."""
    db = tmp_path_factory.mktemp("store") / "runs.db"
    out = subprocess.run([sys.executable, "-m", "rigwise.cli.main", "bench", "gemm", "--device",
                          "cpu", "--size", "tiny", "--quick", "--db", str(db)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    return db


def test_stored_runs_list_and_detail(store: Path) -> None:
    with TestClient(create_app(db_path=store), base_url="http://127.0.0.1") as c:
        runs = c.get("/runs")
        assert runs.status_code == 200
        ids = re.findall(r'href="/runs/([^"]+)"', runs.text)
        assert len(ids) == 1
        detail = c.get(f"/runs/{ids[0]}")
        assert detail.status_code == 200
        assert "gemm fp32" in detail.text and "GFLOPS" in detail.text
        assert c.get("/runs/no-such-run").status_code == 400
        assert c.get("/runs/..%2F..%2Fetc").status_code in (400, 404)


def test_report_download_is_a_self_contained_file(client: TestClient) -> None:
    r = client.get("/report/advise", params=ADVICE)
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    assert r.text.count("<svg") >= 2 and no_scripts_or_remote_loads(r.text)
