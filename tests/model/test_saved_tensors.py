"""What autograd keeps for backward in LoRA/QLoRA and eager Llama layers (the memory model's
per-op ``saved_bytes``), against rules checked with ``saved_tensors_hooks`` and against
LitGPT's published trainable-parameter count."""

from __future__ import annotations

import pytest

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.estimate import TrainConfig, estimate_train, train_forward_ops
from rigwise.workload.models import get_model

A100 = "nvidia-a100-sxm4-40gb"
T = 2 * 1024  # tokens of the passes below: batch 2 x seq 1024


def _saved(task: str, **kw: object) -> dict[str, float]:
    cfg = TrainConfig(task=task, batch_size=2, seq_len=1024, lora_rank=8, **kw)  # type: ignore[arg-type]
    _, ops = train_forward_ops(get_model("llama-2-7b"), catalog().gpu(A100), cfg)
    return {op.name: op.saved_bytes for op in ops}  # per instance: per layer for layer ops


def test_litgpt_query_value_adapters_have_its_published_trainable_count() -> None:
    """LitGPT's resource tables: LoRA r=8 on query and value of Llama-2-7B trains 4,194,304
    parameters."""
    cfg = TrainConfig(task="lora", lora_rank=8, lora_targets="qv", batch_size=1, seq_len=512)
    e = estimate_train(get_model("llama-2-7b"), catalog().gpu(A100), cfg)
    assert e.memory.gradients_bytes == pytest.approx(4_194_304 * 4.0)


def test_a_frozen_linear_keeps_no_input_nor_a_4bit_one_since_bitsandbytes_0_43_2() -> None:
    """PyTorch saves a matmul's input only for its weight's gradient; bitsandbytes'
    MatMul4Bit saved it whenever the input needed a gradient until 0.43.2 (PR #1270)."""
    full = _saved("train")
    lora = _saved("lora", lora_targets="qv")
    qlora = _saved("qlora", lora_targets="qv")
    old = _saved("qlora", lora_targets="qv", bnb_saves_input=True)
    h, f = 4096, 11008
    assert full["mlp_down"] == pytest.approx(T * f * 2)
    assert lora["mlp_down"] == 0.0 and lora["mlp_up"] == 0.0
    assert qlora["mlp_down"] == 0.0 and qlora["mlp_up"] == 0.0
    assert old["mlp_down"] == pytest.approx(T * f * 2)
    assert lora["qkv.lora_a"] == pytest.approx(T * h * 2)  # the adapter keeps x
    assert qlora["qkv.lora_a"] == pytest.approx(T * h * 2)
    assert old["qkv.lora_a"] == 0.0  # x is the old 4-bit GEMM's saved input already


def test_eager_llama_layers_keep_swiglu_attention_output_and_fp32_norm_inputs() -> None:
    """saved_tensors_hooks on PyTorch 2.13: silu(gate) * up keeps gate, silu(gate) and up;
    SDPA keeps Q, K, V and O; the fp32 RMSNorm keeps an fp32 copy of its input (plus the
    normalised 16-bit output when its weight trains)."""
    h, f = 4096, 11008
    full, lora = _saved("train"), _saved("lora", lora_targets="qv")
    assert full["swiglu"] == pytest.approx(3 * T * f * 2)
    assert full["attention"] == pytest.approx(4 * T * h * 2)
    assert full["out_proj"] == 0.0  # O is kept by attention already
    assert full["norm1"] == pytest.approx(T * h * (4 + 2))
    assert lora["norm1"] == pytest.approx(T * h * 4)


def test_lora_dropout_keeps_the_dropped_input_and_its_mask() -> None:
    plain, drop = _saved("lora", lora_targets="qv"), _saved("lora", lora_targets="qv",
                                                            lora_dropout=0.05)
    assert drop["qkv.lora_dropout"] == pytest.approx(T * 4096)  # 1-byte mask
    assert drop["qkv.lora_a"] == pytest.approx(plain["qkv.lora_a"])
    model, gpu = get_model("llama-2-7b"), catalog().gpu(A100)
    with pytest.raises(InputError, match="dropout"):
        estimate_train(model, gpu, TrainConfig(task="lora", lora_dropout=1.0))
    with pytest.raises(InputError, match="LoRA targets"):
        estimate_train(model, gpu, TrainConfig(task="lora", lora_targets="mlp"))


def test_lora_defaults_to_query_value_and_qlora_to_every_linear() -> None:
    """Hu et al. 2021 §7.1 / PEFT / LitGPT / torchtune adapt q and v by default; the QLoRA paper
    (§4) adapts every linear layer."""
    model, gpu = get_model("llama-2-7b"), catalog().gpu(A100)
    lora = estimate_train(model, gpu, TrainConfig(task="lora", lora_rank=8, batch_size=1,
                                                  seq_len=512))
    qlora = estimate_train(model, gpu, TrainConfig(task="qlora", lora_rank=8, batch_size=1,
                                                   seq_len=512))
    assert lora.memory.gradients_bytes == pytest.approx(4_194_304 * 4.0)
    assert qlora.memory.gradients_bytes > 4 * lora.memory.gradients_bytes
    assert any("query and value" in a for a in lora.assumptions)


def test_an_adapter_on_the_head_trains_r_times_h_plus_v_more_and_keeps_its_input() -> None:
    """LitGPT's lora_head: LoRA on the output head as on any linear layer (Hu et al. 2021)."""
    base = TrainConfig(task="lora", lora_rank=8, lora_targets="qv", batch_size=2, seq_len=1024,
                       lora_dropout=0.05)
    with_head = TrainConfig(task="lora", lora_rank=8, lora_targets="qv", batch_size=2,
                            seq_len=1024, lora_dropout=0.05, lora_head=True)
    a = estimate_train(get_model("llama-2-7b"), catalog().gpu(A100), base)
    b = estimate_train(get_model("llama-2-7b"), catalog().gpu(A100), with_head)
    assert b.memory.gradients_bytes - a.memory.gradients_bytes == pytest.approx(
        8 * (4096 + 32000) * 4.0)
    _, ops = train_forward_ops(get_model("llama-2-7b"), catalog().gpu(A100), with_head)
    kept = {op.name: op.saved_bytes for op in ops if op.name.startswith("lm_head.")}
    assert kept["lm_head.lora_a"] == pytest.approx(T * 4096 * 2)  # the dropped-out input
    assert kept["lm_head.lora_dropout"] == pytest.approx(T * 4096)  # its 1-byte mask
