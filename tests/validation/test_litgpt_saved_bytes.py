"""rigwise's LitGPT memory rules against what LitGPT's own layers keep, measured on CPU with
litgpt 0.5.13 (tests/validation/calibration/litgpt_saved_bytes.toml, made by
benchmarks/litgpt_saved_bytes.py). A user fine-tuning with ``--framework litgpt`` relies on
these bytes: they decide whether the step fits."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from rigwise.catalog.load import catalog
from rigwise.model.efficiency import overheads
from rigwise.model.estimate import TrainConfig, estimate_train, train_forward_ops
from rigwise.workload.models import get_model

DATA = Path(__file__).parent / "calibration" / "litgpt_saved_bytes.toml"
MODELS = {"Llama-2-7b-hf": "llama-2-7b", "Mistral-7B-v0.1": "mistral-7b",
          "tiny-llama-1.1b": str(Path(__file__).parent / "data" / "models" / "tinyllama-1.1b.json")}


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = tomllib.loads(DATA.read_text())["case"]
    return cases


def _cfg(case: dict[str, Any]) -> TrainConfig:
    task = "qlora" if case["task"].startswith("qlora") else "lora"
    every = "-all-head" in case["task"]
    return TrainConfig(task=task, batch_size=case["batch_size"], seq_len=case["seq_len"],
                       lora_rank=32, lora_targets="all" if every else "qv", lora_head=every,
                       lora_dropout=0.05, checkpointing=False, nf4_double_quant=False,
                       framework="litgpt",
                       bnb_saves_input=case["task"].endswith("before-0.43.2"))


def _per_layer(case: dict[str, Any]) -> float:
    _, ops = train_forward_ops(get_model(MODELS[case["model"]]), catalog().gpu("nvidia-a10"),
                               _cfg(case))
    return sum(op.saved_bytes for op in ops if op.layer)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c['task']}-{c['model']}")
def test_kept_bytes_per_layer_match_litgpt_within_one_percent(case: dict[str, Any]) -> None:
    tokens = case["batch_size"] * case["seq_len"]
    shape = get_model(MODELS[case["model"]]).shape
    # the CPU's dropout mask is 2 bytes per element, CUDA's 1: the model follows CUDA. The
    # adapters' inputs: the QKV input, or with every layer adapted the QKV, out-projection,
    # fc_1, fc_2 (h each) and down-projection (f) inputs
    dropped = (4 * shape.hidden + shape.ffn_hidden if "-all-head" in case["task"]
               else shape.hidden)
    measured_cuda = case["per_layer_bytes"] - tokens * dropped
    assert _per_layer(case) == pytest.approx(measured_cuda, rel=0.01)


def test_qlora_keeps_what_lora_keeps_since_bitsandbytes_0_43_2() -> None:
    by = {(c["task"], c["model"]): c for c in _cases()}
    lora, qlora = by[("lora", "Llama-2-7b-hf")], by[("qlora", "Llama-2-7b-hf")]
    assert lora["per_layer_bytes"] == qlora["per_layer_bytes"]
    assert _per_layer(qlora) == pytest.approx(_per_layer(lora))


def test_litgpt_head_dequantisation_is_the_measured_backward_transient() -> None:
    """Lightning quantises from float16: dequantising the head gives a float16 copy and
    its bf16 cast, 4 bytes per head weight, beside everything the step keeps."""
    qlora = next(c for c in _cases() if c["task"] == "qlora")
    est = estimate_train(get_model("llama-2-7b"), catalog().gpu("nvidia-a10"), _cfg(qlora))
    m, o = est.memory, overheads()
    dequant = m.overhead_bytes - o.cuda_context_bytes - o.fragmentation * (
        m.activations_bytes + m.gradients_bytes)
    assert dequant == pytest.approx(qlora["backward_transient_bytes"], rel=0.01)


def test_previous_micro_batch_held_under_old_bitsandbytes() -> None:
    """Before 0.43.2 the 4-bit matmul's kept inputs outlive backward until LitGPT's loop
    reassigns ``logits`` and ``loss``: the next forward runs beside them."""
    by = {c["task"]: c for c in _cases() if c["model"] == "Llama-2-7b-hf"}
    old, lora = by["qlora-bnb-before-0.43.2"], by["lora"]  # query and value adapters
    # what any LitGPT step carries into the next (the old logits' views) is the LoRA figure
    measured_per_layer = (old["previous_micro_batch_bytes_3_layers"]
                          - lora["previous_micro_batch_bytes_3_layers"]) / 3
    model = get_model("llama-2-7b")
    est = estimate_train(model, catalog().gpu("nvidia-a10"), _cfg(old))
    per_layer = est.memory.held_bytes / model.shape.n_layers
    assert per_layer == pytest.approx(measured_per_layer, rel=0.01)
    new = estimate_train(model, catalog().gpu("nvidia-a10"), _cfg(by["qlora"]))
    assert new.memory.held_bytes == 0.0
