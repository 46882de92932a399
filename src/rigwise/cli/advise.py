"""``rigwise advise``: rank the catalog's GPUs for a model and task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rigwise.advise.rank import Constraints, Workload
from rigwise.advise.rank import advise as rank
from rigwise.catalog.load import catalog
from rigwise.cli.common import (
    CpuCoresOpt,
    DataLoaderOpt,
    EngineOpt,
    KvCacheOpt,
    console,
    model_by_name,
    print_json,
)
from rigwise.errors import InputError
from rigwise.model.infer import kv_cache_bytes_of, parse_concurrency
from rigwise.report.jsonout import advice_json
from rigwise.report.tables import advice_table
from rigwise.units import GIB


def advise(
    model: Annotated[str, typer.Option("--model", "-m",
                                       help="model id or name, or a config.json path")],
    task: Annotated[str, typer.Option(
        help="train, finetune, lora, qlora, infer (one stream) or serve (many requests, "
             "continuous batching)")],
    budget: Annotated[float | None, typer.Option(
        help="USD for all cards (new/used); in the cloud, USD for the target run, "
             "or USD per hour without a target")] = None,
    max_power: Annotated[float | None, typer.Option(help="max TDP per GPU, W")] = None,
    max_total_power: Annotated[float | None, typer.Option(help="max TDP of all GPUs, W")] = None,
    min_memory: Annotated[float | None, typer.Option(help="min memory per GPU, GiB")] = None,
    gpus: Annotated[int | None, typer.Option(help="use exactly this many GPUs")] = None,
    market: Annotated[str, typer.Option(help="new, used or cloud")] = "new",
    form_factor: Annotated[str | None, typer.Option(help="pcie, sxm4, sxm5, oam, ...")] = None,
    vendor: Annotated[list[str] | None, typer.Option(help="only these vendors")] = None,
    precision: Annotated[str | None, typer.Option(
        help="training precision (default: bf16, else fp16/fp32 by device)")] = None,
    weights: Annotated[str, typer.Option(help="inference weight format")] = "bf16",
    batch_size: Annotated[int | None, typer.Option(
        help="batch per GPU (default: the best that fits)")] = None,
    seq_len: Annotated[int | None, typer.Option(help="sequence length")] = None,
    prompt_tokens: Annotated[int, typer.Option(help="inference prompt tokens")] = 512,
    output_tokens: Annotated[int, typer.Option(help="inference output tokens")] = 256,
    engine: EngineOpt = "generic",
    tokens: Annotated[float | None, typer.Option(help="target: tokens to process")] = None,
    samples: Annotated[float | None, typer.Option(help="target: samples to process")] = None,
    epochs: Annotated[float | None, typer.Option(help="target: epochs")] = None,
    dataset_samples: Annotated[float | None, typer.Option(
        help="samples per epoch (default ImageNet-1k for image models)")] = None,
    data_loader: DataLoaderOpt = "none",
    cpu_cores: CpuCoresOpt = None,
    kv_cache: KvCacheOpt = "bf16",
    concurrency: Annotated[str, typer.Option(
        help="serve: sequences in flight, 'max' (as many as fit) or a number")] = "max",
    sort: Annotated[str, typer.Option(help="value (perf per dollar) or speed")] = "value",
    top: Annotated[int, typer.Option(help="show this many options")] = 15,
    show_excluded: Annotated[bool, typer.Option(help="list the GPUs left out and why")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    plot: Annotated[Path | None, typer.Option(
        help="also draw perf per dollar and throughput vs price to this file "
             "(.png, .svg, .html or .json)")] = None,
) -> None:
    """Rank GPUs for a model and task: fit, speed, price, speed per dollar, and why."""
    if market not in ("new", "used", "cloud"):
        raise InputError("--market must be new, used or cloud")
    if top <= 0:
        raise InputError("--top must be positive")
    for name, v in (("--tokens", tokens), ("--samples", samples), ("--epochs", epochs),
                    ("--min-memory", min_memory), ("--max-total-power", max_total_power)):
        if v is not None and v <= 0:
            raise InputError(f"{name} must be positive")
    m = model_by_name(model)
    constraints = Constraints(
        budget_usd=budget, max_power_w=max_power, max_total_power_w=max_total_power,
        min_memory_bytes=min_memory * GIB if min_memory else None, gpus=gpus, market=market,
        form_factor=form_factor, vendors=tuple(v.lower() for v in vendor or ()))
    workload = Workload(task=task, precision=precision, weights=weights, batch_size=batch_size,
                        seq_len=seq_len, prompt_tokens=prompt_tokens,
                        output_tokens=output_tokens, engine=engine, target_tokens=tokens,
                        target_samples=samples, target_epochs=epochs,
                        dataset_samples=dataset_samples, data_loader=data_loader,
                        cpu_cores=cpu_cores, kv_bytes=kv_cache_bytes_of(kv_cache),
                        concurrency=parse_concurrency(concurrency))
    result = rank(m, workload, catalog().gpus.values(), constraints, sort=sort, top=top)
    if plot is not None:
        from rigwise.report.charts import plot_result

        plot_result(advice_json(result), "advise", plot)
    if as_json:
        print_json(advice_json(result))
    else:
        console.print(advice_table(result, show_excluded=show_excluded))
