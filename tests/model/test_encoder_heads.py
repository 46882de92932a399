"""Encoder heads: masked-LM pre-training predicts 15 % of tokens; fine-tuning has a task head."""

from __future__ import annotations

import pytest

from rigwise.catalog.load import catalog
from rigwise.model.estimate import TrainConfig, TrainEstimate, estimate_train, train_forward_ops
from rigwise.model.ops import MLM_MASKED_FRACTION
from rigwise.workload.models import get_model
from rigwise.workload.schema import TransformerShape

A100 = "nvidia-a100-sxm4-80gb"


def _ops(task: str, fused: bool = True) -> dict[str, float]:
    cfg = TrainConfig(task=task, batch_size=32, seq_len=128, fused_attention=fused)
    _, ops = train_forward_ops(get_model("bert-large"), catalog().gpu(A100), cfg)
    return {op.name: op.flop * op.count for op in ops}


def test_pretraining_head_covers_the_masked_fifteen_percent() -> None:
    """Devlin et al. 2019 §3.1: the MLM loss predicts 15 % of the positions; the vocabulary
    projection is the only place the 30,522-word vocabulary costs FLOPs."""
    ops = _ops("train")
    tokens = 32 * 128
    vocab, hidden = 30522, 1024
    assert ops["lm_head"] == pytest.approx(
        2 * round(tokens * MLM_MASKED_FRACTION) * vocab * hidden)


def test_fine_tuning_has_a_task_head_and_no_vocabulary_logits() -> None:
    ops = _ops("finetune")
    assert "lm_head" not in ops and "cross_entropy" not in ops
    assert ops["task_head"] == pytest.approx(2 * 32 * 128 * 2 * 1024)


def test_unfused_attention_is_slower_and_keeps_the_scores() -> None:
    """Korthikanti et al. 2022: without a fused kernel the scores and probabilities
    (5·a·s²·b bytes per layer) are stored for backward; they also cost memory traffic."""
    gpu, model = catalog().gpu(A100), get_model("bert-large")
    fused, eager = (estimate_train(model, gpu, TrainConfig(batch_size=16, seq_len=512,
                                                           fused_attention=f))
                    for f in (True, False))
    assert eager.samples_per_s < fused.samples_per_s
    extra = eager.memory.activations_bytes - fused.memory.activations_bytes
    heads, seq, batch, layers = 16, 512, 16, 24
    assert extra == pytest.approx(5 * heads * seq**2 * batch * layers, rel=0.15)


def test_autocast_keeps_norms_and_the_residual_stream_in_fp32() -> None:
    """PyTorch AMP: layer_norm and softmax autocast to float32, so an fp32 model under
    torch.autocast saves fp32 norm inputs (2 per layer) where a 16-bit model saves 16-bit ones,
    and moves more bytes; fp32 training is unaffected."""
    gpu, model = catalog().gpu("nvidia-v100-sxm2-16gb"), get_model("bert-large")

    def est(precision: str, autocast: bool) -> TrainEstimate:
        return estimate_train(model, gpu, TrainConfig(
            task="finetune", precision=precision, batch_size=4, seq_len=512,
            fused_attention=False, autocast=autocast))

    pure, amp = est("fp16", False), est("fp16", True)
    assert amp.samples_per_s < pure.samples_per_s
    layers, tokens, hidden = 24, 4 * 512, 1024
    norms_extra = layers * 2 * tokens * hidden * (4 - 2)
    assert amp.memory.activations_bytes - pure.memory.activations_bytes >= norms_extra
    assert est("fp32", True).samples_per_s == pytest.approx(est("fp32", False).samples_per_s)


def test_eager_attention_moves_the_scores_through_its_whole_op_chain() -> None:
    """HF BertSelfAttention / DLE BERT: QK^T, scale, mask add, softmax, dropout, PV: 8 passes
    over the 16-bit scores plus dropout's read, write and 1-byte mask (bytes per element)."""
    from rigwise.model.ops import PassSpec, attention

    shape = get_model("bert-large").shape
    assert isinstance(shape, TransformerShape)
    p = PassSpec(batch=2, seq=128, context=128, act_bytes=2.0, w_bytes=2.0, causal=False,
                 fused_attention=False)
    fused = attention(shape, PassSpec(batch=2, seq=128, context=128, act_bytes=2.0,
                                      w_bytes=2.0, causal=False))
    scores = 2 * 16 * 128 * 128
    assert attention(shape, p).bytes - fused.bytes == pytest.approx(scores * (8 * 2 + 2 * 2 + 1))
