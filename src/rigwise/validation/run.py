"""Predict each published measurement with the model and report the errors.

Error of a row: ``(predicted - measured) / measured``. Per group (training throughput,
decode, prefill, memory, multi-GPU) the mean absolute percentage error (MAPE) and the
median signed error; the group's residuals also give the intervals of estimates
(:mod:`rigwise.validation.intervals`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rigwise.catalog.load import catalog
from rigwise.errors import RigwiseError
from rigwise.model.efficiency import basis_of, overheads
from rigwise.model.estimate import TrainConfig, TrainEstimate, estimate_train
from rigwise.model.infer import InferConfig, estimate_infer
from rigwise.model.memory import framework_overhead_bytes
from rigwise.model.train_config import bnb_saves_input
from rigwise.validation.rows import UNIT_SCALE, Row
from rigwise.workload.models import get_model

if TYPE_CHECKING:
    from rigwise.model.parallel import Plan

GROUPS: dict[str, str] = {
    "train_throughput": "train", "train_memory": "memory", "infer_decode": "decode",
    "infer_prefill": "prefill", "infer_serve": "serving", "multi_gpu_throughput": "multi-gpu",
    "scaling_efficiency": "scaling",
}
"""The error group of each row kind."""


@dataclass(frozen=True, slots=True)
class Result:
    """A row with its prediction: ``predicted`` in the row's unit (None when the model
    could not answer, with ``problem`` saying why); ``basis`` is ``calibrated`` when the
    efficiencies used were measured on the GPU's architecture, else ``blind``.
    ``implied_mfu``: for training throughput, the MFU the measured figure implies with the
    model's FLOP count; above 1 the row cannot be right as set up (it counts FLOPs or
    samples differently)."""

    row: Row
    predicted: float | None
    problem: str | None
    architecture: str
    basis: str
    implied_mfu: float | None = None

    @property
    def group(self) -> str:
        """Error group of the row."""
        return GROUPS[self.row.kind]

    @property
    def error(self) -> float | None:
        """Signed relative error, ``(predicted - measured) / measured``; for a scaling
        efficiency, the difference in percentage points (as a fraction)."""
        if self.predicted is None:
            return None
        if self.row.unit == "scaling_efficiency":
            return self.predicted - self.row.measured
        return (self.predicted - self.row.measured) / self.row.measured


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """MAPE, median signed error and counts of one group (rows with a prediction)."""

    group: str
    basis: str
    rows: int
    mape: float
    median_error: float
    within_10: int
    rows_known: int
    mape_known: float | None


def _train_cfg(row: Row, gpus: int | None = None) -> TrainConfig:
    n = gpus or row.gpus
    batch = row.batch_size or max(1, (row.global_batch or n) // n)
    return TrainConfig(task=row.task, precision=row.precision or "bf16", batch_size=batch,
                       seq_len=row.seq_len, gpus=n, optimizer=row.optimizer,
                       checkpointing=row.checkpointing, lora_rank=row.lora_rank,
                       chunked_loss=row.chunked_loss, nf4_double_quant=row.nf4_double_quant,
                       memory_format=row.memory_format,
                       fused_attention=row.fused_attention, autocast=row.autocast,
                       lora_targets=row.lora_targets, lora_dropout=row.lora_dropout,
                       optimizer_impl=row.optimizer_impl, grad_accum=row.grad_accum,
                       master_weights=row.master_weights,
                       optimizer_in_backward=row.optimizer_in_backward,
                       framework=row.framework, lora_head=row.lora_head,
                       bnb_saves_input=row.bitsandbytes is not None
                       and bnb_saves_input(row.bitsandbytes), mean_seq_len=row.mean_seq_len)


def _train_estimate(row: Row, gpus: int | None = None) -> TrainEstimate:
    return estimate_train(get_model(row.model), catalog().gpu(row.gpu), _train_cfg(row, gpus))


def _train_value(row: Row, gpus: int | None = None) -> float:
    est = _train_estimate(row, gpus)
    if row.unit in UNIT_SCALE:
        total = est.memory.per_gpu_bytes
        if row.first_step_peak:  # no earlier micro-batch held anything
            total -= est.memory.held_bytes
        if row.memory_kind == "allocated":  # neither the context nor cached slack is
            m = est.memory  # an allocation
            total -= framework_overhead_bytes(m.activations_bytes, m.gradients_bytes)
        elif row.memory_kind == "used":  # the device holds the resident paged states too
            total += est.memory.paged_resident_bytes
            if row.context_bytes is not None:  # measured in the row's own environment
                total += row.context_bytes - overheads().cuda_context_bytes
        return total / UNIT_SCALE[row.unit]
    if row.unit == "step_time_s":
        return est.step_time_s
    if row.unit == "mfu":
        return est.mfu
    if row.unit == "tokens_per_s":
        if est.tokens_per_s is None:
            raise RigwiseError(f"{row.model} has no tokens")
        return est.tokens_per_s
    return est.samples_per_s


def predict(row: Row) -> float:
    """The model's value for a row, in the row's unit.

    Raises:
        RigwiseError: the row names something the catalogs lack, or a setup the model
            cannot estimate.
    """
    if row.kind in ("infer_decode", "infer_prefill", "infer_serve"):
        serve = row.kind == "infer_serve"
        cfg = InferConfig(weights=row.weights or "bf16", batch_size=row.batch_size or 1,
                          prompt_tokens=row.prompt_tokens if row.prompt_tokens is not None
                          else 512, output_tokens=row.output_tokens or 128,
                          engine=row.engine or "generic", gpus=row.gpus,
                          kv_bytes=row.kv_bytes, serve=serve, concurrency=row.concurrency)
        est = estimate_infer(get_model(row.model), catalog().gpu(row.gpu), cfg)
        if row.kind == "infer_prefill":
            return est.prefill_tokens_per_s
        if est.serving is not None:
            if est.serving.concurrency == 0:
                raise RigwiseError("no sequence fits in the memory left for the KV cache")
            return est.serving.output_tokens_per_s
        return est.decode_tokens_per_s
    if row.kind == "scaling_efficiency":
        base = row.baseline_gpus or 1
        many, one = _planned(row, row.gpus), _planned(row, base)
        return (many.samples_per_s / row.gpus) / (one.samples_per_s / base)
    if row.kind == "multi_gpu_throughput":
        plan = _planned(row, row.gpus)
        return {"mfu": plan.mfu, "step_time_s": plan.step_time_s,
                "tokens_per_s": plan.tokens_per_s,
                "samples_per_s": plan.samples_per_s}[row.unit]
    return _train_value(row)


def _planned(row: Row, gpus: int) -> Plan:
    """A multi-GPU row on its published layout (``row.plan``), else on the best plan."""
    from rigwise.catalog.systems import get_system
    from rigwise.model.parallel import best_plan, evaluate_plan, spec_from_label

    model, gpu = get_model(row.model), catalog().gpu(row.gpu)
    cfg = TrainConfig(precision=row.precision or "bf16", batch_size=row.batch_size or 1,
                      seq_len=row.seq_len, optimizer=row.optimizer)
    system = get_system(row.system) if row.system else None
    if row.plan:
        spec = spec_from_label(row.plan, gpus)
        if row.checkpointing is not None:
            spec = replace(spec, checkpointing=row.checkpointing)
        return evaluate_plan(model, gpu, spec, cfg, system=system, global_batch=row.global_batch)
    return best_plan(model, gpu, gpus, cfg, system=system, global_batch=row.global_batch)


def run(rows: Iterable[Row]) -> list[Result]:
    """Predict every row; a row the model cannot answer gets ``problem`` instead."""
    out: list[Result] = []
    for row in rows:
        try:
            gpu = catalog().gpu(row.gpu)
        except RigwiseError as exc:
            out.append(Result(row, None, str(exc), "?", "blind"))
            continue
        arch = gpu.architecture
        basis = basis_of(gpu)
        try:
            value = predict(row)
            implied = None
            if (row.kind == "train_throughput" and get_model(row.model).is_transformer
                    and row.unit in ("samples_per_s", "tokens_per_s")):
                implied = _train_estimate(row).mfu * row.measured / value
            out.append(Result(row, value, None, arch, basis, implied))
        except RigwiseError as exc:
            out.append(Result(row, None, str(exc), arch, basis))
    return out


def summarize(results: Iterable[Result]) -> list[GroupSummary]:
    """Per group and basis (and ``all`` bases together): MAPE and median signed error over
    every row, and the MAPE without the rows marked ``expected_miss``."""
    buckets: dict[tuple[str, str], list[tuple[float, bool]]] = {}
    for r in results:
        if r.error is None:
            continue
        for basis in (r.basis, "all"):
            buckets.setdefault((r.group, basis), []).append((r.error, bool(r.row.expected_miss)))
    out = []
    for (group, basis), pairs in sorted(buckets.items()):
        errs = [e for e, _ in pairs]
        known = [abs(e) for e, miss in pairs if not miss]
        out.append(GroupSummary(group, basis, len(errs),
                                statistics.fmean(abs(e) for e in errs),
                                statistics.median(errs), sum(abs(e) <= 0.10 for e in errs),
                                len(known), statistics.fmean(known) if known else None))
    return out
