"""The pages of the web app: each parses its query (:mod:`rigwise.web.forms`), calls the
public API and renders a template. Bad input raises InputError, which the app turns into a
400 page with the message."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse

from rigwise.errors import InputError
from rigwise.web import forms
from rigwise.web.app import (
    advice_result,
    estimate_link,
    estimate_result,
    gpu_choices,
    model_choices,
    page,
    svgs,
)


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _advise(request: Request) -> Response:
    from rigwise.report.views import advice_view

    q = _query(request)
    if not q:
        return page("advise.html.j2", nav="advise", form=None, q={}, v=None, charts=(),
                    models=model_choices())
    form = forms.parse(forms.AdviseForm, q)
    data = advice_result(form)
    v = advice_view(data, link=lambda o: estimate_link(o, form))
    shown = form.model_dump() | {"model": data["model"]}
    return page("advise.html.j2", nav="advise", form=form, q=shown, v=v,
                charts=svgs(data, "advise") if data["options"] else (),
                models=model_choices(), report_query=request.url.query)


def _estimate(request: Request) -> Response:
    from rigwise.report.views import view

    q = _query(request)
    if not q:
        return page("estimate.html.j2", nav="estimate", q={}, v=None, charts=(),
                    models=model_choices(), gpus=gpu_choices())
    form = forms.parse(forms.EstimateForm, q)
    data = estimate_result(form)
    kind = "estimate-infer" if form.task == "infer" else "estimate-train"
    shown = form.model_dump() | {"model": data["model"], "gpu": data["gpu"]}
    return page("estimate.html.j2", nav="estimate", q=shown, v=view(data, kind),
                charts=svgs(data, kind), models=model_choices(), gpus=gpu_choices(),
                report_query=request.url.query)


def _report(kind: str, request: Request) -> Response:
    from rigwise.report.html import render_report

    q = _query(request)
    if kind == "advise":
        data = advice_result(forms.parse(forms.AdviseForm, q))
        html, name = render_report(data, kind="advise"), "rigwise-advice.html"
    else:
        form = forms.parse(forms.EstimateForm, q)
        data = estimate_result(form)
        html = render_report(data, kind="estimate-infer" if form.task == "infer"
                             else "estimate-train")
        name = "rigwise-estimate.html"
    return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _gpu_rows(form: forms.CatalogForm) -> list[dict[str, Any]]:
    from rigwise.catalog.load import catalog
    from rigwise.units import GIB, GIGA, TERA, format_usd

    rows = []
    for g in catalog().gpus.values():
        if (form.vendor and g.vendor != form.vendor) or (form.segment and g.segment !=
                                                          form.segment):
            continue
        if form.min_memory and g.memory_bytes < form.min_memory * GIB:
            continue
        if form.market == "cloud":
            c = g.cloud_price_usd_per_h()
            price = f"${c[0]:.2f}/h" if c else None
        else:
            p = g.purchase_price_usd(form.market)
            price = format_usd(p[0]) if p else None
        if form.market != "new" and price is None:
            continue
        peak = g.peak_flop_per_s.get("bf16") or g.peak_flop_per_s.get("fp16")
        name = g.name if g.devices_per_board == 1 else \
            f"{g.name} (one of {g.devices_per_board} devices per board; figures per device)"
        rows.append({"id": g.id, "name": name, "vendor": g.vendor, "segment": g.segment,
                     "released": g.release_date, "memory": f"{g.memory_bytes / GIB:.0f} GiB",
                     "bandwidth": f"{g.memory_bandwidth_bytes_per_s / GIGA:,.0f}",
                     "tflops": f"{peak / TERA:,.1f}" if peak else "-",
                     "tdp": f"{g.tdp_w:.0f}" if g.tdp_w else "-", "price": price or "-"})
    rows.sort(key=lambda r: (r["released"], r["id"]), reverse=True)
    return rows


def _gpu(gpu_id: str) -> Response:
    from rigwise.catalog.load import catalog
    from rigwise.cli.gpus import _spec_rows
    from rigwise.report.views import gpu_sources

    g = catalog().gpu(gpu_id)
    prices = sorted(g.prices, key=lambda p: p.date, reverse=True)
    return page("gpu.html.j2", nav="gpus", g=g, specs=_spec_rows(g), prices=prices,
                sources=gpu_sources([g.id]), provenance=g.provenance)


def _models() -> Response:
    from rigwise.cli.models import _params
    from rigwise.units import MEGA
    from rigwise.workload.models import builtin_models
    from rigwise.workload.schema import TransformerShape

    rows = [{"id": m.id, "name": m.name, "params": f"{_params(m) / MEGA:,.0f} M",
             "kind": m.shape.family if isinstance(m.shape, TransformerShape) else "cnn",
             "source": m.source}
            for m in sorted(builtin_models().values(), key=lambda m: m.name)]
    return page("models.html.j2", nav="models", rows=rows)


def _runs(request: Request) -> Response:
    from rigwise.web.runs import stored_runs

    store, runs = stored_runs(request.app.state.db_path)
    return page("runs.html.j2", nav="runs", store=store, runs=runs)


def _run(request: Request, run_id: str) -> Response:
    from rigwise.report.views import bench_view
    from rigwise.web.runs import run_result

    data = run_result(request.app.state.db_path, run_id)
    return page("run.html.j2", nav="runs", v=bench_view(data), charts=svgs(data, "bench"))


def register(app: FastAPI) -> None:
    """Add the pages to ``app``."""
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return _advise(request)

    @app.get("/advise", response_class=HTMLResponse)
    def advise(request: Request) -> Response:
        return _advise(request)

    @app.get("/estimate", response_class=HTMLResponse)
    def estimate(request: Request) -> Response:
        return _estimate(request)

    @app.get("/report/advise", response_class=HTMLResponse)
    def report_advise(request: Request) -> Response:
        return _report("advise", request)

    @app.get("/report/estimate", response_class=HTMLResponse)
    def report_estimate(request: Request) -> Response:
        return _report("estimate", request)

    @app.get("/gpus", response_class=HTMLResponse)
    def gpus(request: Request) -> Response:
        form = forms.parse(forms.CatalogForm, _query(request))
        return page("gpus.html.j2", nav="gpus", q=form.model_dump(), rows=_gpu_rows(form))

    @app.get("/gpus/{gpu_id}", response_class=HTMLResponse)
    def gpu(gpu_id: str) -> Response:
        if len(gpu_id) > 100:
            raise InputError("GPU name too long")
        return _gpu(gpu_id)

    @app.get("/models", response_class=HTMLResponse)
    def models() -> Response:
        return _models()

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request) -> Response:
        return _runs(request)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(request: Request, run_id: str) -> Response:
        return _run(request, run_id)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "time": dt.datetime.now(dt.UTC).isoformat()}
