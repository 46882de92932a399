"""Page views of results: the titles, key figures, tables, notes and sources that the HTML
report and the web app show, built from the ``--json`` dicts of the commands.

A view is a plain dict (rendered by the Jinja templates in ``report/templates``):

* ``title``, ``subtitle``: strings;
* ``figures``: key figures, ``{"label", "value", "range"}`` (``range`` is the low-high
  interval where the result has ``*_low``/``*_high`` fields, else None);
* ``tables``: ``{"title", "columns", "numeric" (column indexes), "rows", "note"}``, a cell
  being a string or ``{"text", "href"}``;
* ``assumptions``: strings; ``sources``: ``{"what", "title", "url", "as_of"}``.

No I/O beyond the built-in catalog; quantities arrive in SI units and are formatted here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.units import GIB, format_bytes, format_duration, format_rate, format_usd

Linker = Callable[[Mapping[str, Any]], str | None]
"""Maps an advice option to the URL of its estimate page (web), or None (report)."""

KINDS = ("advise", "estimate-train", "estimate-infer", "scale", "doctor", "bench")


def detect_kind(data: Mapping[str, Any]) -> str:
    """Which command produced ``data`` (one of :data:`KINDS`).

    An explicit ``kind`` or ``command`` field wins; otherwise the shape decides.

    Raises:
        InputError: the dict matches no known result.
    """
    explicit = data.get("kind") or data.get("command")
    if isinstance(explicit, str):
        k = explicit.replace(" ", "-").lower()
        if k in KINDS:
            return k
        if k.startswith("bench"):
            return "bench"
    if "options" in data and "constraints" in data:
        return "advise"
    if "prefill" in data and "decode" in data:
        return "estimate-infer"
    if "step_time_s" in data and "memory" in data:
        return "estimate-train"
    if any(k in data for k in ("curve", "plans")):
        return "scale"
    if any(k in data for k in ("results", "measurements", "runs")):
        return "bench"
    if any(k in data for k in ("checks", "verdicts", "driver", "cpu")):
        return "doctor"
    raise InputError("not a rigwise result: expected the --json output of advise, estimate, "
                     "scale, doctor or bench")


def _get(d: Mapping[str, Any], path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def figure(d: Mapping[str, Any], path: str, label: str,
           fmt: Callable[[float], str]) -> dict[str, Any] | None:
    """A key figure at ``path`` (dotted) with its ``_low``/``_high`` interval if present."""
    v = _get(d, path)
    if v is None:
        return None
    lo, hi = _get(d, f"{path}_low"), _get(d, f"{path}_high")
    rng = f"{fmt(lo)} – {fmt(hi)}" if isinstance(lo, int | float) and isinstance(
        hi, int | float) else None
    return {"label": label, "value": fmt(v) if isinstance(v, int | float) else str(v),
            "range": rng}


def _figures(items: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [f for f in items if f is not None]


def gpu_sources(gpu_ids: Iterable[str]) -> list[dict[str, str]]:
    """The catalog sources of the GPUs shown, one row per distinct document."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    gpus = catalog().gpus
    for gid in dict.fromkeys(gpu_ids):
        g = gpus.get(gid)
        if g is None:
            continue
        for s in g.sources.values():
            if s.url in seen:
                continue
            seen.add(s.url)
            out.append({"what": g.name, "title": s.title, "url": s.url,
                        "as_of": s.as_of.isoformat()})
    return out


def model_source(model_id: str | None) -> list[dict[str, str]]:
    """The source of a built-in model's shape (empty for models from files)."""
    from rigwise.workload.models import builtin_models

    m = builtin_models().get(model_id or "")
    if m is None:
        return []
    return [{"what": m.name, "title": m.source.title, "url": m.source.url,
             "as_of": m.source.as_of.isoformat()}]


def _model_name(model_id: str | None) -> str:
    from rigwise.workload.models import builtin_models

    m = builtin_models().get(model_id or "")
    return m.name if m else str(model_id)


def _gpu_name(gpu_id: str) -> str:
    g = catalog().gpus.get(gpu_id)
    return g.name if g else gpu_id


def _plain_rate(v: float) -> str:
    return format_rate(v, "").strip()


def _rate(v: float, *, unit: str) -> str:
    return format_rate(v, unit)


def gib(n_bytes: float) -> str:
    """Bytes as GiB with one decimal."""
    return f"{n_bytes / GIB:.1f} GiB"


TASK_NAMES = {"train": "training", "finetune": "full fine-tuning", "lora": "LoRA fine-tuning",
              "qlora": "QLoRA fine-tuning", "infer": "inference",
              "serve": "serving (continuous batching)"}


def advice_view(a: Mapping[str, Any], *, link: Linker | None = None) -> dict[str, Any]:
    """The view of ``rigwise advise --json``."""
    cloud = a.get("market") == "cloud"
    c = a.get("constraints") or {}
    options = a.get("options", [])
    rows = []
    for i, o in enumerate(options, 1):
        name = o["name"] if o["gpus"] == 1 else f"{o['gpus']}x {o['name']}"
        href = link(o) if link else None
        price = o["price"]["usd_per_h"] if cloud else o["price"]["usd"]
        shown_price = "-" if not price else (f"${price:.2f}/h" if cloud else format_usd(price))
        value = o.get("throughput_per_usd")
        shown_value = "-" if value is None else (
            f"{value:,.0f}" if cloud else f"{value * 1000:,.1f}")
        mem = o["memory"]
        need = f"{mem['per_gpu_bytes'] / GIB:.1f} / {mem['capacity_bytes'] / GIB:.0f}"
        unit_o = str(o["throughput"]["unit"])
        thr = figure(_option_throughput(o), "value", "", functools.partial(_rate, unit=unit_o))
        rows.append([str(i), {"text": name, "href": href} if href else name,
                     need if o["fits"] else {"text": need, "cls": "bad"},
                     (thr or {}).get("value", "-") + (
                         f" ({thr['range']})" if thr and thr["range"] else ""),
                     shown_price, shown_value,
                     f"{o['power_w']:.0f}" if o.get("power_w") else "-",
                     o.get("setting", ""), o.get("why", "")])
    unit = options[0]["throughput"]["unit"] if options else "throughput"
    per = "per $/h" if cloud else "per $1k"
    table: dict[str, Any] = {"title": "ranked options", "columns": [
        "#", "GPU", "GiB need / has", "throughput", "price", f"{unit} {per}", "W", "setting",
        "why"], "numeric": [0, 2, 3, 4, 5, 6], "rows": rows,
        "note": f"{unit} {per}: throughput per " + (
            "dollar-hour at the cheapest on-demand rate seen" if cloud else
            f"$1,000 of {a.get('market', 'new')} price") +
        ("; every option serves as many requests at once as its KV cache holds."
         if a.get("task") == "serve" else "; every option uses its best batch size that fits.")}
    tables = [table]
    if a.get("excluded"):
        tables.append({"title": f"left out ({len(a['excluded'])})", "columns": ["GPU", "why"],
                       "numeric": [], "rows": [[_gpu_name(x["gpu"]), x["reason"]]
                                               for x in a["excluded"]],
                       "note": None, "collapsed": True})
    best = next((o for o in options if o["fits"]), None)
    fastest = max((o for o in options if o["fits"]),
                  key=lambda o: o["throughput"]["value"], default=None)
    figs: list[dict[str, Any]] = []
    if best:
        v = best.get("throughput_per_usd")
        figs.append({"label": "best value", "value": short_option(best), "range": None,
                     "note": None if v is None else (
                         f"{v:,.0f} {unit} per $/h" if cloud else
                         f"{v * 1000:,.0f} {unit} per $1k")})
    if fastest:
        figs.append({"label": "fastest shown", "value": short_option(fastest), "range": None,
                     "note": format_rate(fastest["throughput"]["value"], unit)})
    figs.append({"label": "options shown", "value": str(len(options)), "range": None})
    assumptions = [*options[0]["estimate"].get("assumptions", []),
                   *interval_note(options[0]["estimate"])] if options else []
    assumptions.append("prices: " + ("cheapest recent on-demand rate per GPU-hour" if cloud
                                     else f"latest {a.get('market', 'new')} price per card"))
    budget = c.get("budget_usd")
    subtitle = f"{a.get('market', 'new')} market" + (f", budget {format_usd(budget)}"
                                                     if budget else "")
    return {"kind": "advise",
            "title": f"{TASK_NAMES.get(a.get('task', ''), a.get('task', ''))} of "
                     f"{_model_name(a.get('model'))}",
            "subtitle": subtitle, "figures": figs, "tables": tables,
            "assumptions": assumptions,
            "sources": model_source(a.get("model")) + gpu_sources(o["gpu"] for o in options)}


def _option_throughput(o: Mapping[str, Any]) -> dict[str, Any]:
    """An option's throughput with the low/high of its estimate, when the estimate has them."""
    e = o.get("estimate") or {}
    value = o["throughput"]["value"]
    if "decode" in e:
        src, key = e["decode"], "tokens_per_s"
    else:
        src = e.get("throughput") or {}
        key = "tokens_per_s" if o["throughput"]["unit"] == "tok/s" else "samples_per_s"
    out = {"value": value}
    if src.get(f"{key}_low") is not None and src.get(f"{key}_high") is not None:
        out |= {"value_low": src[f"{key}_low"], "value_high": src[f"{key}_high"]}
    return out


def interval_note(e: Mapping[str, Any]) -> list[str]:
    """The assumption line that says where an estimate's ranges come from."""
    iv = e.get("interval")
    if not isinstance(iv, Mapping):
        return []
    pct = iv.get("percentiles") or [10, 90]
    rows = sum(int(f.get("rows", 0)) for f in iv.get("from", []) if isinstance(f, Mapping))
    basis = iv.get("basis", "blind")
    if not rows:
        return [f"ranges: none for this configuration ({basis}: no comparable validated rows)"]
    return [f"ranges: {pct[0]}th to {pct[-1]}th percentile of the errors on {rows} comparable "
            f"published measurements ({basis})"]


def short_option(o: Mapping[str, Any]) -> str:
    """``"2x RTX 3090"``: an option's card count and short name."""
    from rigwise.report.charts import short_name

    name = short_name(str(o["name"]))
    return name if o["gpus"] == 1 else f"{o['gpus']}x {name}"


def _memory_table(e: Mapping[str, Any]) -> dict[str, Any]:
    mem = e["memory"]
    rows: list[list[Any]] = [[label, format_bytes(v)] for key, label in (
        ("weights_bytes", "weights"), ("gradients_bytes", "gradients"),
        ("optimizer_bytes", "optimizer states"), ("activations_bytes", "activations"),
        ("kv_cache_bytes", "KV cache"), ("overhead_bytes", "framework overhead"))
        if (v := mem["breakdown"].get(key))]
    rows.append([{"text": "total", "cls": "strong"},
                 {"text": f"{format_bytes(mem['per_gpu_bytes'])} of "
                          f"{format_bytes(mem['capacity_bytes'])}",
                  "cls": "strong" if e.get("fits") else "bad"}])
    return {"title": "memory per GPU", "columns": ["part", "size"], "numeric": [1],
            "rows": rows, "note": None}


def train_view(e: Mapping[str, Any]) -> dict[str, Any]:
    """The view of ``rigwise estimate train --json``."""
    figs = _figures([
        {"label": "fits", "value": "yes" if e["fits"] else "no", "range": None},
        figure(e, "step_time_s", "step time", format_duration),
        figure(e, "throughput.samples_per_s", "samples/s", _plain_rate),
        figure(e, "throughput.tokens_per_s", "tokens/s", _plain_rate),
        figure(e, "mfu", "MFU", lambda v: f"{v:.0%}"),
        figure(e, "memory.per_gpu_bytes", "memory per GPU", gib),
        {"label": "bottleneck", "value": e.get("bottleneck", "-"), "range": None},
        *_loader_figures(e),
    ])
    shares = e.get("time_breakdown_s") or {}
    total = sum(v or 0 for v in shares.values()) or 1.0
    time_table = {"title": "where the step time goes", "columns": ["part", "time", "share"],
                  "numeric": [1, 2], "note": None,
                  "rows": [[k, format_duration(v), f"{v / total:.0%}"]
                           for k, v in shares.items() if v]}
    seq = f", sequence {e['seq_len']}" if e.get("seq_len") else ""
    return {"kind": "estimate-train",
            "title": f"{TASK_NAMES.get(e.get('task', ''), e.get('task'))} of "
                     f"{_model_name(e.get('model'))} on {e['gpus']} x {_gpu_name(e['gpu'])}",
            "subtitle": f"{e.get('precision')}, batch {e.get('batch_size')} per GPU{seq}, "
                        f"{e.get('parallelism')}"
                        + (", activation checkpointing" if e.get("checkpointing") else ""),
            "figures": figs, "tables": [_memory_table(e), time_table],
            "assumptions": [*e.get("assumptions", []), *interval_note(e)],
            "sources": model_source(e.get("model")) + gpu_sources([e["gpu"]])}


def _loader_figures(e: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Image models: the CPU cores the data loader needs to keep up with the GPUs."""
    feed = (e.get("data_loader") or {}).get("cores_to_feed")
    if not feed:
        return []
    return [{"label": "CPU cores to feed (Pillow)", "value": f"{math.ceil(feed['pillow'])}",
             "range": None}]


def infer_view(e: Mapping[str, Any]) -> dict[str, Any]:
    """The view of ``rigwise estimate infer --json``."""
    figs = _figures([
        {"label": "fits", "value": "yes" if e["fits"] else "no", "range": None},
        figure(e, "decode.tokens_per_s", "decode tokens/s", _plain_rate),
        figure(e, "decode.time_per_token_s", "time per token", format_duration),
        figure(e, "prefill.tokens_per_s", "prefill tokens/s", _plain_rate),
        figure(e, "prefill.time_s", "prefill time", format_duration),
        figure(e, "memory.per_gpu_bytes", "memory per GPU", gib),
        {"label": "bottleneck (decode)", "value": e.get("bottleneck", "-"), "range": None},
        figure(e, "serving.output_tokens_per_s", "serving output tokens/s", _plain_rate),
        figure(e, "serving.concurrency", "sequences in flight", lambda v: f"{v:.0f}"),
        figure(e, "serving.limited_by", "concurrency limited by", str),
        figure(e, "serving.time_per_output_token_s", "serving time per output token",
               format_duration),
        figure(e, "serving.request_latency_s", "request latency (no queueing)",
               format_duration),
    ])
    return {"kind": "estimate-infer",
            "title": f"inference of {_model_name(e.get('model'))} on {e['gpus']} x "
                     f"{_gpu_name(e['gpu'])}",
            "subtitle": f"weights {e.get('weights')}, batch {e.get('batch_size')}, prompt "
                        f"{e.get('prompt_tokens')}, output {e.get('output_tokens')} tokens, "
                        f"engine {e.get('engine')}, {e.get('parallelism')}",
            "figures": figs, "tables": [_memory_table(e)],
            "assumptions": [*e.get("assumptions", []), *interval_note(e)],
            "sources": model_source(e.get("model")) + gpu_sources([e["gpu"]])}


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, Mapping | list):
        import json

        text = json.dumps(v)
        return text if len(text) < 120 else text[:117] + "..."
    return "-" if v is None else str(v)


def generic_view(data: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A view of any other result (scale, doctor, bench): scalars as key figures, lists of
    objects as tables, ``assumptions`` and the sources of any ``gpu`` ids found."""
    figs = [{"label": k.replace("_", " "), "value": _cell(v), "range": None}
            for k, v in data.items()
            if isinstance(v, str | int | float | bool) and not k.endswith(("_low", "_high"))]
    tables = []
    gpu_ids: list[str] = []
    for k, v in data.items():
        if isinstance(v, list) and v and all(isinstance(r, Mapping) for r in v):
            cols = list(dict.fromkeys(c for r in v for c in r))[:10]
            tables.append({"title": k.replace("_", " "), "columns": cols, "note": None,
                           "numeric": [i for i, c in enumerate(cols)
                                       if isinstance(v[0].get(c), int | float)],
                           "rows": [[_cell(r.get(c)) for c in cols] for r in v]})
            gpu_ids += [str(r["gpu"]) for r in v if isinstance(r.get("gpu"), str)]
    if isinstance(data.get("gpu"), str):
        gpu_ids.insert(0, data["gpu"])
    return {"kind": kind, "title": f"rigwise {kind}", "subtitle": "", "figures": figs[:12],
            "tables": tables, "assumptions": [str(x) for x in data.get("assumptions", [])],
            "sources": gpu_sources(gpu_ids)}


def pct(x: float | None) -> str:
    """A fraction as a whole percentage, ``-`` for None."""
    return "-" if x is None else f"{x:.0%}"


def bench_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """The view of ``rigwise bench ... --json`` (a run with its comparisons)."""
    from rigwise.bench.present import rate

    run = data.get("run") or {}
    rows = [[c["name"], rate(c.get("value"), c.get("metric", "")),
             rate(c.get("peak"), c.get("metric", "")), pct(c.get("fraction_of_peak")),
             rate(c.get("predicted"), c.get("metric", "")), pct(c.get("fraction_of_model")),
             {"text": c.get("verdict", "-"), "cls": "bad" if c.get("verdict") in (
                 "low", "slow", "bad") else ""},
             "; ".join(c.get("reasons", []))] for c in data.get("comparisons", [])]
    figs = [{"label": k, "value": str(v), "range": None} for k, v in (
        ("device", run.get("device_name")), ("suites", ", ".join(run.get("suites", []))),
        ("started", str(run.get("started_at", ""))[:16].replace("T", " ")),
        ("measurements", len(data.get("measurements", [])))) if v]
    table = {"title": "measured against the catalog and the model", "columns": [
        "case", "measured", "peak", "% of peak", "model", "% of model", "verdict", "why"],
        "numeric": [1, 2, 3, 4, 5], "rows": rows, "note": "peak: the catalog's datasheet "
        "figure; model: rigwise's estimate for the same case on this GPU"}
    return {"kind": "bench", "title": f"benchmark run {run.get('id', '')}",
            "subtitle": str(run.get("device_name", "")), "figures": figs, "tables": [table],
            "assumptions": [str(n) for n in data.get("notes", [])],
            "sources": gpu_sources([run["catalog_id"]] if run.get("catalog_id") else [])}


def _plan_row(p: Mapping[str, Any]) -> list[Any]:
    thr = p.get("throughput") or {}
    if isinstance(thr, int | float):
        thr = {"samples_per_s": thr}
    tok = thr.get("tokens_per_s")
    shown = format_rate(tok, "tok/s") if tok else (
        format_rate(thr["samples_per_s"], "samples/s") if thr.get("samples_per_s") else "-")
    mem = p.get("memory") or {}
    return [(p.get("plan") or {}).get("label", "-"),
            format_duration(p["step_time_s"]) if p.get("step_time_s") else "-", shown,
            pct(p.get("mfu")),
            gib(mem["per_gpu_bytes"]) if mem.get("per_gpu_bytes") else "-",
            "yes" if p.get("fits") else {"text": "no", "cls": "bad"}, p.get("limit") or "-"]


def scale_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """The view of ``rigwise scale --json``: its plans, or its scaling curve."""
    cols = ["plan", "step time", "throughput", "MFU", "memory per GPU", "fits", "limit"]
    if data.get("curve"):
        rows = [[str(p["gpus"]), pct(p.get("scaling_efficiency")), *_plan_row(p)]
                for p in data["curve"]]
        table = {"title": "scaling curve", "columns": ["GPUs", "efficiency", *cols],
                 "numeric": [0, 1, 3, 4, 5, 6], "rows": rows, "note": None}
        title = f"scaling of {_model_name(data.get('model'))} on {_gpu_name(str(data['gpu']))}"
        plans = data["curve"]
    else:
        plans = data.get("plans", [])
        rows = [[str(i), *_plan_row(p)] for i, p in enumerate(plans, 1)]
        table = {"title": f"best plans ({data.get('fitting', '?')} of "
                          f"{data.get('searched', '?')} fit)", "columns": ["#", *cols],
                 "numeric": [0, 2, 3, 4, 5], "rows": rows, "note": None}
        title = (f"{_model_name(data.get('model'))} on {data.get('gpus')} x "
                 f"{_gpu_name(str(data['gpu']))}")
    assumptions = [str(a) for a in (plans[0].get("assumptions", []) if plans else [])]
    return {"kind": "scale", "title": title,
            "subtitle": f"system {plans[0].get('system')}" if plans else "", "figures": [],
            "tables": [table], "assumptions": assumptions,
            "sources": model_source(data.get("model")) + gpu_sources([str(data["gpu"])])}


def view(data: Mapping[str, Any], kind: str | None = None, *,
         link: Linker | None = None) -> dict[str, Any]:
    """The view of any result; ``kind`` None detects it (:func:`detect_kind`)."""
    kind = kind or detect_kind(data)
    if kind == "advise":
        return advice_view(data, link=link)
    if kind == "estimate-train":
        return train_view(data)
    if kind == "estimate-infer":
        return infer_view(data)
    if kind == "bench" and "comparisons" in data:
        return bench_view(data)
    if kind == "scale" and "gpu" in data and ("curve" in data or "plans" in data):
        return scale_view(data)
    return generic_view(data, kind)
