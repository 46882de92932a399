"""Published measurements to validate the model against: the row format and its loader.

Rows live in TOML files (``tests/validation/data/*.toml`` in a checkout), each an array of
``[[row]]`` tables; ``tests/validation/README.md`` describes the sources.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rigwise.errors import ConfigFileError

Kind = Literal["train_throughput", "infer_decode", "infer_prefill", "infer_serve",
               "train_memory", "multi_gpu_throughput", "scaling_efficiency"]
Unit = Literal["samples_per_s", "tokens_per_s", "step_time_s", "bytes", "gib", "gb", "mfu",
               "scaling_efficiency"]

UNIT_SCALE: dict[str, float] = {"bytes": 1.0, "gib": 2.0**30, "gb": 1e9}
"""Bytes per unit of the memory units."""


class Row(BaseModel):
    """One published measurement and the setup it was measured in.

    ``measured`` is in ``unit``; ``batch_size`` is per GPU (or ``global_batch`` the total).
    ``expected_miss`` marks a row the model is known to miss, with the reason; it stays in the
    table and in the error figures. ``plan``: the published parallel layout of a multi-GPU
    row (``"TP8 PP16 mb1 SP ZeRO-1"``); without it the best plan rigwise finds is used.
    ``model`` may be a ``config.json`` path relative to the rows file. ``memory_kind``:
    ``allocated`` for ``torch.cuda.max_memory_allocated`` figures (they exclude the CUDA
    context, so the model's context term is left out of the comparison), ``used`` for
    nvidia-smi/NVML figures (context included). ``context_bytes``: the CUDA context (driver,
    kernels, library handles) the row's source measured in the same environment, with a
    1x1 tensor on the device and nothing else; a ``used`` row is compared with that context
    instead of the model's default (it depends on the CUDA version and on lazy module
    loading, not on the workload). ``chunked_loss`` and
    ``nf4_double_quant``: the training setup's loss and QLoRA quantisation, as the row's
    source states them (see :class:`rigwise.model.estimate.TrainConfig`). ``memory_format``:
    a CNN row's activation layout, ``channels_last`` (NHWC) or ``nchw``. ``fused_attention``:
    false where the row's software wrote attention scores to memory (eager attention).
    ``autocast``: 16-bit compute through ``torch.autocast`` over an fp32 model.
    ``lora_targets``: which linear layers the row's recipe adapts (``all`` or ``qv``; unset:
    the task's default, see :func:`rigwise.model.estimate.lora_targets`).
    ``infer_serve`` rows are aggregate output tokens/s of many requests served at once with
    ``concurrency`` sequences in flight (unset: maximum load, as many as the engine admits);
    ``kv_bytes``: bytes per KV-cache element (1 for an fp8 cache).
    ``grad_accum``: micro-batches of ``batch_size`` per optimizer step.
    ``optimizer_impl``: how the row's code ran the optimizer step (``fused`` one kernel,
    ``foreach``, or a per-tensor loop: ``for-loop``, ``transformers``, ``bertadam``; see
    :mod:`rigwise.model.optstep`).
    ``master_weights`` false: pure 16-bit training (no fp32 master copy);
    ``optimizer_in_backward``: each parameter stepped in backward (no gradient buffer);
    optimizer ``paged_adamw8bit``: bitsandbytes ``PagedAdamW8bit``
    (:mod:`rigwise.model.model_states`).
    ``framework``: whose training code the row ran (``generic`` or ``litgpt``, see
    :class:`rigwise.model.estimate.TrainConfig`); ``bitsandbytes``: the bitsandbytes version of
    a QLoRA row (before 0.43.2 its 4-bit matmul kept each frozen layer's input).
    ``lora_head``: the recipe adapts the output head too (LitGPT ``lora_head``).
    ``first_step_peak``: the row's peak came from the first micro-batch (its longest sample
    fed first), so nothing of an earlier micro-batch was held
    (:attr:`rigwise.model.memory.MemoryBreakdown.held_bytes` is left out).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: Kind
    model: str
    gpu: str
    gpus: int = Field(default=1, ge=1)
    system: str | None = None
    task: str = "train"
    precision: str | None = None
    batch_size: int | None = Field(default=None, ge=1)
    global_batch: int | None = Field(default=None, ge=1)
    seq_len: int | None = Field(default=None, ge=1)
    mean_seq_len: int | None = Field(default=None, ge=1)
    optimizer: Literal["adamw", "adamw8bit", "paged_adamw8bit", "sgd"] = "adamw"
    checkpointing: bool | None = None
    lora_rank: int = Field(default=16, ge=1)
    chunked_loss: bool = False
    nf4_double_quant: bool = True
    memory_format: Literal["channels_last", "nchw"] = "channels_last"
    fused_attention: bool = True
    autocast: bool = False
    lora_targets: Literal["all", "qv"] | None = None
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    optimizer_impl: Literal["fused", "foreach", "for-loop", "transformers", "bertadam"] = "fused"
    grad_accum: int = Field(default=1, ge=1)
    master_weights: bool = True
    optimizer_in_backward: bool = False
    framework: Literal["generic", "litgpt"] = "generic"
    first_step_peak: bool = False
    lora_head: bool = False
    bitsandbytes: str | None = Field(default=None, pattern=r"^\d+(\.\d+){0,2}$")
    weights: str | None = None
    engine: str | None = None
    prompt_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    kv_bytes: float = Field(default=2.0, gt=0)
    concurrency: int | None = Field(default=None, ge=1)
    baseline_gpus: int | None = Field(default=None, ge=1)
    plan: str | None = None
    memory_kind: Literal["allocated", "used"] | None = None
    context_bytes: float | None = Field(default=None, gt=0)
    measured: float = Field(gt=0)
    unit: Unit
    source: str
    source_title: str
    as_of: dt.date
    notes: str = ""
    expected_miss: str | None = None


class RowFile(BaseModel):
    """A file of rows."""

    model_config = ConfigDict(extra="forbid")
    row: list[Row]


def default_data_dir() -> Path | None:
    """``tests/validation/data`` of the source checkout this package runs from, if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "tests" / "validation" / "data"
        if candidate.is_dir():
            return candidate
    return None


def load_rows(path: Path) -> list[Row]:
    """Every row of a file, or of every ``*.toml`` file of a folder (sorted by name).

    Raises:
        ConfigFileError: a missing file, invalid TOML, an invalid row or a repeated id.
    """
    files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise ConfigFileError(f"no validation data at {path}")
    rows: list[Row] = []
    for f in files:
        try:
            with f.open("rb") as fh:
                found = RowFile.model_validate(tomllib.load(fh)).row
            rows.extend(r.model_copy(update={"model": str(f.parent / r.model)})
                        if r.model.endswith(".json") and not Path(r.model).is_absolute()
                        else r for r in found)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigFileError(f"{f.name}: not valid TOML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigFileError(f"{f.name}: {where}: {first['msg']}") from None
    seen: set[str] = set()
    for r in rows:
        if r.id in seen:
            raise ConfigFileError(f"validation row id {r.id!r} appears twice")
        seen.add(r.id)
    return rows
