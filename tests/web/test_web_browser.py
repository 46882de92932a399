"""End-to-end: ``rigwise serve``'s app on 127.0.0.1 driven by a real headless Chromium
(Debian's package, through Playwright) through the main flows, checking what the page shows
and looking at screenshots of the charts for drawn, coloured marks.

Set ``RIGWISE_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's chromium (.ci/run installs it)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from rigwise.web.app import create_app

    db = tmp_path_factory.mktemp("store") / "runs.db"  # one real CPU benchmark run
    out = subprocess.run([sys.executable, "-m", "rigwise.cli.main", "bench", "gemm", "--device",
                          "cpu", "--size", "tiny", "--quick", "--db", str(db)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(db_path=db), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900})
        yield context
        context.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    pg = browser.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.requests = requests
    yield pg
    assert all(u.startswith(server) for u in requests), \
        f"the page fetched from elsewhere: {[u for u in requests if not u.startswith(server)]}"
    pg.close()


def shot(element: Any, name: str) -> bytes:
    png: bytes = element.screenshot()
    keep = os.environ.get("RIGWISE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{name}.png").write_bytes(png)
    return png


def marks(png: bytes) -> float:
    """Fraction of the image in saturated colour: bars, dots, lines; not text or grid."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    raw = img.tobytes()
    n = len(raw) // 3
    sat = sum(1 for i in range(0, len(raw), 3)
              if max(raw[i:i + 3]) - min(raw[i:i + 3]) > 60)
    return sat / n


def test_advice_flow_to_one_gpu(page: Any, server: str) -> None:
    page.goto(server + "/")
    page.select_option("select[name=model]", "llama-3-8b")
    page.select_option("select[name=task]", "qlora")
    page.fill("input[name=budget]", "2000")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('QLoRA fine-tuning of Llama 3 8B')")
    assert "budget $2,000" in page.inner_text("p.subtitle")
    rows = page.locator("table tbody tr")
    assert rows.count() >= 5
    charts = page.locator("figure.chart")
    assert charts.count() == 2
    bars = shot(charts.nth(0), "advice-value")
    assert marks(bars) > 0.05, "perf-per-dollar bars are drawn"
    assert marks(shot(charts.nth(1), "advice-price")) > 0.0015, "price scatter has its dots"
    shot(page, "advice-page")
    first = rows.nth(0).locator("td").nth(1)
    gpu_name = first.inner_text()
    first.locator("a").click()
    page.wait_for_selector("h1:has-text('on 1 x')")
    assert gpu_name.split()[-1] in page.inner_text("h1")
    labels = page.locator(".figure .label").all_inner_texts()
    assert {"FITS", "STEP TIME", "MFU"} <= {x.upper() for x in labels}
    mem_chart = page.locator("figure.chart").nth(0)
    assert "memory per GPU" in mem_chart.inner_text()
    assert marks(shot(mem_chart, "estimate-memory")) > 0.03
    assert marks(shot(page.locator("figure.chart").nth(1), "estimate-roofline")) > 0.001
    shot(page, "estimate-page")


def test_inference_estimate_form(page: Any, server: str) -> None:
    page.goto(server + "/estimate")
    page.select_option("select[name=model]", "llama-3-8b")
    page.select_option("select[name=gpu]", label="NVIDIA GeForce RTX 4090")
    page.select_option("select[name=task]", "infer")
    page.select_option("select[name=weights]", "q4_k_m")
    page.fill("input[name=batch_size]", "4")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('inference of Llama 3 8B')")
    figures = dict(zip(page.locator(".figure .label").all_inner_texts(),
                       page.locator(".figure .value").all_inner_texts(), strict=True))
    assert figures["fits".upper()] == "yes" or figures.get("fits") == "yes"
    decode = next(v for k, v in figures.items() if k.lower() == "decode tokens/s")
    assert float(decode.split()[0]) > 0


def test_catalog_browse_and_sources(page: Any, server: str) -> None:
    page.goto(server + "/gpus")
    page.select_option("select[name=vendor]", "amd")
    page.click("button[type=submit]")
    page.wait_for_url("**/gpus?vendor=amd**")
    vendors = page.locator("#gpu-table tbody tr td:nth-child(2)").all_inner_texts()
    assert vendors and set(vendors) == {"amd"}
    page.locator("#gpu-table tbody tr a").first.click()
    page.wait_for_selector("#spec-table")
    assert page.locator("ul.sources li").count() >= 1
    assert page.locator("ul.sources a").first.get_attribute("href", timeout=2000).startswith(
        "http")


def test_runs_and_bad_input(page: Any, server: str) -> None:
    page.goto(server + "/runs")
    assert page.inner_text("h1") == "Benchmark runs"
    assert page.locator("#runs-table tbody tr").count() == 1
    page.locator("#runs-table tbody tr a").first.click()
    page.wait_for_selector("h1:has-text('benchmark run')")
    cases = page.locator("table tbody tr td:first-child").all_inner_texts()
    assert any(c.startswith("gemm fp32") for c in cases)
    shot(page, "run-page")
    response = page.goto(server + "/advise?model=llama-3-9b&task=qlora")
    assert response.status == 400
    alert = page.inner_text("[role=alert]")
    assert "not in the catalog" in alert or "ambiguous" in alert
