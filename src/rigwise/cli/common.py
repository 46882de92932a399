"""Helpers shared by the command modules: output of JSON and tables, name lookups, options
that several commands take."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from rigwise.catalog.load import catalog
from rigwise.catalog.models import Gpu
from rigwise.workload.models import get_model
from rigwise.workload.schema import Model

console = Console(highlight=False, width=None if sys.stdout.isatty() else 132)

EngineOpt = Annotated[str, typer.Option(
    help="generic (compiled PyTorch, lean C++), transformers (eager), llama.cpp "
    "(current builds; llama.cpp-before-graphs: CUDA builds before May 2024), vllm, mlc, "
    "exllamav2 or tensorrt-llm")]
"""``--engine`` of ``estimate infer`` and ``advise``."""

KvCacheOpt = Annotated[str, typer.Option(
    help="inference and serving: KV-cache precision fp16, bf16 or fp8 (1 byte per element)")]
"""``--kv-cache`` of ``estimate infer`` and ``advise``."""

DataLoaderOpt = Annotated[str, typer.Option(
    help="image models: CPU data loader none (synthetic data, GPU decode), pillow or "
         "pillow-simd; with --cpu-cores it caps images/s at cores x its per-core rate")]
"""``--data-loader`` of ``estimate train`` and ``advise``."""

CpuCoresOpt = Annotated[int | None, typer.Option(
    help="CPU cores that feed the data loader (with --data-loader pillow/pillow-simd)")]
"""``--cpu-cores`` of ``estimate train`` and ``advise``."""


def print_json(obj: dict[str, Any]) -> None:
    """Print one JSON object on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def gpu_by_name(name: str) -> Gpu:
    """A catalog GPU by any common name; UnknownNameError otherwise."""
    return catalog().gpu(name)


def model_by_name(name: str) -> Model:
    """A model by name or config.json path; UnknownNameError/ConfigFileError otherwise."""
    return get_model(name)
