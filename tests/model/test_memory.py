"""Memory formulas against published values."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rigwise.catalog.load import catalog
from rigwise.model.estimate import TrainConfig, estimate_train
from rigwise.model.memory import kv_cache_bytes
from rigwise.model.ops import PassSpec, transformer_forward
from rigwise.workload.models import builtin_models
from rigwise.workload.params import count_params, layer_linear_weights
from rigwise.workload.schema import TransformerShape

GPT = TransformerShape(family="decoder", n_layers=4, hidden=2048, n_heads=16, n_kv_heads=16,
                       ffn_hidden=8192, ffn_kind="gelu", vocab=50257, max_seq_len=2048,
                       norm="layernorm", bias=True, position="learned", dropout=True)


@pytest.mark.parametrize(("s", "b"), [(2048, 1), (1024, 4), (512, 8)])
def test_korthikanti_activations_without_recompute(s: int, b: int) -> None:
    """Korthikanti et al. 2022 eq. (1): s·b·h·(34 + 5·a·s/h) bytes per layer."""
    spec = PassSpec(batch=b, seq=s, context=s, act_bytes=2.0, w_bytes=2.0,
                    fused_attention=False)
    per_layer = sum(op.saved_bytes for op in transformer_forward(GPT, spec) if op.layer)
    h, a = GPT.hidden, GPT.n_heads
    assert per_layer == pytest.approx(s * b * h * (34 + 5 * a * s / h))


def test_korthikanti_activations_with_flash_attention() -> None:
    """With fused attention (or selective recompute) the s² term goes: 34·s·b·h."""
    s, b = 2048, 2
    spec = PassSpec(batch=b, seq=s, context=s, act_bytes=2.0, w_bytes=2.0)
    per_layer = sum(op.saved_bytes for op in transformer_forward(GPT, spec) if op.layer)
    assert per_layer == pytest.approx(34 * s * b * GPT.hidden)


def _states_per_param(task: str, precision: str, optimizer: str = "adamw") -> float:
    m = builtin_models()["gpt2-xl"]
    e = estimate_train(m, catalog().gpus["nvidia-h100-sxm5-80gb"],
                       TrainConfig(task=task, precision=precision, optimizer=optimizer,
                                   batch_size=1, seq_len=128))
    mem = e.memory
    assert isinstance(m.shape, TransformerShape)
    p = count_params(m.shape).total
    return (mem.weights_bytes + mem.gradients_bytes + mem.optimizer_bytes) / p


@pytest.mark.parametrize(("precision", "optimizer", "expected"), [
    ("fp32", "adamw", 16.0),      # 4 + 4 + 8 (ZeRO paper, Rajbhandari et al. 2020, §3.1)
    ("bf16", "adamw", 18.0),      # Megatron-LM: 2 + 4 + 4 + 4 + 4
    ("bf16", "adamw8bit", 12.0),  # 8-bit moments (Dettmers et al. 2022)
    ("fp32", "sgd", 12.0),        # weights, gradients, momentum
])
def test_bytes_per_parameter(precision: str, optimizer: str, expected: float) -> None:
    assert _states_per_param("train", precision, optimizer) == pytest.approx(expected)


def test_kv_cache_llama2_7b_half_mib_per_token() -> None:
    """MHA fp16 KV cache is 4·L·h bytes per token (kipply): 0.5 MiB for Llama-2-7B."""
    s = builtin_models()["llama-2-7b"].shape
    assert isinstance(s, TransformerShape)
    per_token = kv_cache_bytes(n_layers=s.n_layers, n_kv_heads=s.n_kv_heads, head_dim=s.d_head,
                               tokens=1, bytes_per_element=2)
    assert per_token == 4 * s.n_layers * s.hidden == 2**19


def test_qlora_65b_class_fits_one_48gb_gpu() -> None:
    """QLoRA (Dettmers et al. 2023): a 65B model fine-tunes on a single 48 GB GPU, where full
    16-bit fine-tuning needs more than 780 GB."""
    m = builtin_models()["llama-2-70b"]
    a6000 = catalog().gpus["nvidia-rtx-a6000"]
    q = estimate_train(m, a6000, TrainConfig(task="qlora", batch_size=1, seq_len=512))
    assert q.fits
    full = estimate_train(m, a6000, TrainConfig(task="finetune", batch_size=1, seq_len=512))
    assert not full.fits
    assert full.memory.per_gpu_bytes > 780e9


def test_lora_weights_frozen_and_adapters_small() -> None:
    m = builtin_models()["llama-2-7b"]
    e = estimate_train(m, catalog().gpus["nvidia-a100-sxm4-80gb"],
                       TrainConfig(task="lora", batch_size=1, seq_len=512, lora_rank=16))
    # bf16 base (2 B/param) dominates; gradients only for adapters (< 1 % of the model)
    assert e.memory.weights_bytes == pytest.approx(6.74e9 * 2, rel=0.02)
    assert e.memory.gradients_bytes < 0.01 * 6.74e9 * 4
    assert e.fits


def test_checkpointing_cuts_activations() -> None:
    m = builtin_models()["llama-3-8b"]
    g = catalog().gpus["nvidia-h100-sxm5-80gb"]
    off = estimate_train(m, g, TrainConfig(batch_size=4, checkpointing=False))
    on = estimate_train(m, g, TrainConfig(batch_size=4, checkpointing=True))
    # layer activations shrink ~30x; the fp32 logits of the 128k vocabulary stay
    assert on.memory.activations_bytes < off.memory.activations_bytes / 4
    assert on.step_time_s > off.step_time_s  # the recomputed forward costs time


def test_chunked_loss_keeps_one_fp32_chunk_of_the_logits() -> None:
    """torchtune's CEWithChunkedOutputLoss upcasts one of 8 token chunks at a time: the fp32
    copy of the logits shrinks from ``4·T·V`` to ``4·T·V/8`` bytes (16-bit logits stay)."""
    m = builtin_models()["llama-3.1-8b"]
    g = catalog().gpus["nvidia-rtx-4090"]
    cfg = TrainConfig(task="qlora", batch_size=2, seq_len=2048)
    whole = estimate_train(m, g, cfg).memory.activations_bytes
    chunked = estimate_train(m, g, replace(cfg, chunked_loss=True)).memory.activations_bytes
    assert isinstance(m.shape, TransformerShape)
    logits = 2 * 2048 * m.shape.vocab
    assert whole - chunked == pytest.approx(logits * (4.0 - 4.0 / 8))


def test_nf4_without_double_quant_keeps_fp32_block_constants() -> None:
    """bitsandbytes NF4 without double quantisation: one fp32 absmax per 64 weights, 4.5
    bits/weight against 4.127 with it (Dettmers et al. 2023 §3)."""
    m = builtin_models()["llama-2-7b"]
    g = catalog().gpus["nvidia-a100-sxm4-40gb"]
    cfg = TrainConfig(task="qlora", batch_size=1, seq_len=1024)
    dq = estimate_train(m, g, cfg).memory.weights_bytes
    plain = estimate_train(m, g, replace(cfg, nf4_double_quant=False)).memory.weights_bytes
    assert isinstance(m.shape, TransformerShape)
    linear = m.shape.n_layers * layer_linear_weights(m.shape)
    assert plain - dq == pytest.approx(linear * (4.5 - 4.127) / 8)
