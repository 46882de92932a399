"""``rigwise serve``: a local, server-rendered web app over the catalog, the advisor and the
estimates (FastAPI + Jinja2).

Pages (all GET, so every page is a link that can be bookmarked):

* ``/`` and ``/advise``: pick a model, task and constraints, see the ranked options with the
  perf-per-dollar and price/throughput charts; each option links to its estimate;
* ``/estimate``: one configuration in depth: key figures, memory and roofline charts, tables,
  assumptions and sources; ``/report/advise`` and ``/report/estimate`` download the same as
  a self-contained HTML file;
* ``/gpus`` and ``/gpus/{id}``: the catalog with every value's source; ``/models``: the
  built-in models; ``/runs``: stored benchmark runs when a store exists.

Safety: the server binds to 127.0.0.1 unless told otherwise; requests must name a local host
(``Host`` header checked, against DNS rebinding); every input is validated
(:mod:`rigwise.web.forms`) and names resolve only against the built-in catalogs, never as
paths; pages carry no scripts and a Content-Security-Policy that forbids them and any
network fetch; charts are inline SVG and the CSS is inline, so it works offline.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from rigwise.errors import InputError, UnknownNameError
from rigwise.web import forms

if TYPE_CHECKING:
    import jinja2
    from fastapi import FastAPI, Request, Response

TEMPLATES = Path(__file__).parent / "templates"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@functools.cache
def environment() -> jinja2.Environment:
    """Jinja2 environment over the web templates and the report's shared partials."""
    import jinja2

    from rigwise.report.html import TEMPLATES as REPORT_TEMPLATES

    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(TEMPLATES),
                                    jinja2.FileSystemLoader(REPORT_TEMPLATES)]),
        autoescape=jinja2.select_autoescape(["html", "j2"]))


def page(name: str, *, status: int = 200, **context: Any) -> Response:
    """Render template ``name`` to an HTML response."""
    from fastapi.responses import HTMLResponse

    from rigwise import __version__
    from rigwise.report.html import stylesheet

    html = environment().get_template(name).render(css=stylesheet(), version=__version__,
                                                   **context)
    return HTMLResponse(html, status_code=status)


# --- computations (cached: the same query gives the same page) -------------------------------


@functools.lru_cache(maxsize=64)
def advice_result(form: forms.AdviseForm) -> dict[str, Any]:
    """``rigwise advise --json`` for a validated form."""
    from rigwise.advise.rank import Constraints, Workload, advise
    from rigwise.catalog.load import catalog
    from rigwise.report.jsonout import advice_json
    from rigwise.units import GIB

    model = forms.web_model(form.model)
    constraints = Constraints(
        budget_usd=form.budget, max_power_w=form.max_power,
        min_memory_bytes=form.min_memory * GIB if form.min_memory else None, gpus=form.gpus,
        market=form.market)
    workload = Workload(task=form.task, weights=form.weights, engine=form.engine)
    result = advise(model, workload, catalog().gpus.values(), constraints, sort=form.sort,
                    top=form.top)
    return advice_json(result)


@functools.lru_cache(maxsize=128)
def estimate_result(form: forms.EstimateForm) -> dict[str, Any]:
    """``rigwise estimate train|infer --json`` for a validated form."""
    from rigwise.catalog.load import catalog
    from rigwise.model.estimate import TrainConfig, estimate_train
    from rigwise.model.infer import InferConfig, estimate_infer
    from rigwise.report.jsonout import infer_json, train_json

    model = forms.web_model(form.model)
    gpu = catalog().gpu(form.gpu)
    if form.task == "infer":
        return infer_json(estimate_infer(model, gpu, InferConfig(
            weights=form.weights, batch_size=form.batch_size, prompt_tokens=form.prompt_tokens,
            output_tokens=form.output_tokens, engine=form.engine, gpus=form.gpus)))
    return train_json(estimate_train(model, gpu, TrainConfig(
        task=form.task, precision=form.precision, batch_size=form.batch_size,
        seq_len=form.seq_len, checkpointing=form.checkpointing, gpus=form.gpus)))


@functools.lru_cache(maxsize=256)
def _svgs(kind: str, key: str) -> tuple[str, ...]:
    import json

    from rigwise.report.html import chart_svgs

    return tuple(chart_svgs(json.loads(key), kind))


def svgs(data: Mapping[str, Any], kind: str) -> tuple[str, ...]:
    """The charts of a result as inline SVG (cached by content)."""
    import json

    return _svgs(kind, json.dumps(data, sort_keys=True))


def estimate_link(option: Mapping[str, Any], form: forms.AdviseForm) -> str:
    """The ``/estimate`` URL of one advice option, with the setting the advisor chose."""
    e = option["estimate"]
    q: dict[str, Any] = {"model": form.model, "gpu": option["gpu"], "gpus": option["gpus"]}
    if "prefill" in e:
        q |= {"task": "infer", "weights": e["weights"], "batch_size": e["batch_size"],
              "prompt_tokens": e["prompt_tokens"], "output_tokens": e["output_tokens"],
              "engine": e["engine"]}
    else:
        q |= {"task": e["task"], "precision": e["precision"], "batch_size": e["batch_size"],
              "checkpointing": str(bool(e.get("checkpointing"))).lower()}
        if e.get("seq_len"):
            q["seq_len"] = e["seq_len"]
    return "/estimate?" + urlencode(q)


def model_choices() -> list[tuple[str, str]]:
    """``(id, name)`` of the built-in models, for the form's list."""
    from rigwise.workload.models import builtin_models

    return sorted(((m.id, m.name) for m in builtin_models().values()), key=lambda t: t[1])


def gpu_choices() -> list[tuple[str, str]]:
    """``(id, name)`` of the catalog's GPUs, for the form's list."""
    from rigwise.catalog.load import catalog

    return sorted(((g.id, g.name) for g in catalog().gpus.values()), key=lambda t: t[1])


# --- the app ---------------------------------------------------------------------------------


def create_app(*, allowed_hosts: Sequence[str] = LOCAL_HOSTS,
               db_path: Path | None = None) -> FastAPI:
    """The web app. ``allowed_hosts``: the names a request's ``Host`` may carry; ``db_path``:
    the benchmark run store to show (default ``$RIGWISE_DB`` or the user data dir)."""
    from fastapi import FastAPI
    from fastapi import Response as PlainResponse
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from rigwise import __version__
    from rigwise.web.pages import register

    app = FastAPI(title="rigwise", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.db_path = db_path
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> Response:
        candidates = exc.candidates if isinstance(exc, UnknownNameError) else []
        return page("error.html.j2", status=400, error=str(exc), candidates=candidates,
                    nav="")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return PlainResponse(status_code=204)

    register(app)
    return app
