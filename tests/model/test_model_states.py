"""Pure 16-bit training, the optimizer step in backward and paged 8-bit optimizer states
(rigwise.model.model_states), against torchtune's Llama 3.1 8B single-GPU full fine-tune."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.efficiency import overheads
from rigwise.model.estimate import TrainConfig, TrainEstimate, estimate_train
from rigwise.model.memory import OPTIMIZER_BYTES_PER_PARAM, OPTIMIZER_STEP_BYTES_PER_PARAM
from rigwise.model.model_states import (
    PAGED_MIN_ELEMENTS,
    host_copy_bytes_per_s,
    step_bytes_per_param,
    transformer_tensors,
)
from rigwise.workload.models import get_model
from rigwise.workload.params import count_params
from rigwise.workload.schema import TransformerShape

GIB = 2.0**30

# torchtune 0.3.1 recipes/configs/llama3_1/8B_full_single_device.yaml with the README's
# overrides (batch 2, packed 2048 tokens): dtype bf16, PagedAdamW8bit, optimizer_in_bwd,
# activation checkpointing, CEWithChunkedOutputLoss.
TORCHTUNE_FULL = TrainConfig(task="finetune", batch_size=2, seq_len=2048,
                             optimizer="paged_adamw8bit", checkpointing=True,
                             chunked_loss=True, master_weights=False,
                             optimizer_in_backward=True)
MIXED = TrainConfig(task="finetune", batch_size=2, seq_len=2048, optimizer="adamw8bit",
                    checkpointing=True, chunked_loss=True)


def _estimate(cfg: TrainConfig, gpu: str = "nvidia-rtx-4090") -> TrainEstimate:
    return estimate_train(get_model("llama-3.1-8b"), catalog().gpu(gpu), cfg)


def _shape() -> TransformerShape:
    shape = get_model("llama-3.1-8b").shape
    assert isinstance(shape, TransformerShape)
    return shape


def test_torchtune_full_finetune_allocated_memory_matches_the_floor_arithmetic() -> None:
    """torchtune README (2024-09-25): 18.9 GiB peak allocated on an RTX 4090. The floor from
    the recipe: bf16 weights 14.96 GiB + checkpointed layer inputs 1.0 + bf16 logits 0.98 +
    the LM head's bf16 gradient 0.98, twice while the 8 loss chunks' contributions are
    summed (notes: torchtune_rows_s10.md §4) = 18.9 GiB; rigwise within 5 % of it."""
    s = _shape()
    floor = (8_030_261_248 * 2 + 32 * 2 * 2048 * s.hidden * 2 + 2 * 2048 * s.vocab * 2
             + 2 * s.vocab * s.hidden * 2) / GIB
    assert floor == pytest.approx(18.9, abs=0.1)
    m = _estimate(TORCHTUNE_FULL).memory
    allocated = (m.per_gpu_bytes - overheads().cuda_context_bytes) / GIB
    assert allocated == pytest.approx(floor, rel=0.05)
    assert m.fits


def test_pure_bf16_terms() -> None:
    """Pure bf16: 2 B weights, no master copy; the step in backward keeps only the LM head's
    gradient (twice with a chunked loss); 8-bit states of the large tensors are paged."""
    pc = count_params(_shape())
    m = _estimate(TORCHTUNE_FULL).memory
    s = _shape()
    assert m.weights_bytes == pytest.approx(pc.total * 2.0)
    assert m.gradients_bytes == pytest.approx(2 * s.vocab * s.hidden * 2.0)
    vectors = transformer_tensors(s).unpaged
    assert vectors < 1e-4 * pc.total  # norms only, Llama has no biases
    assert m.paged_bytes == pytest.approx((pc.total - vectors) * 2.0)
    assert m.optimizer_bytes == pytest.approx(vectors * 2.0)
    no_chunks = _estimate(replace(TORCHTUNE_FULL, chunked_loss=False)).memory
    assert no_chunks.gradients_bytes == pytest.approx(s.vocab * s.hidden * 2.0)


def test_paged_states_are_reported_but_not_allocated() -> None:
    """bitsandbytes' paged states are CUDA managed memory: outside per_gpu_bytes and fits,
    but reported, split into what stays on the GPU and what lives in host memory."""
    paged = _estimate(TORCHTUNE_FULL).memory
    unpaged = _estimate(replace(TORCHTUNE_FULL, optimizer="adamw8bit")).memory
    assert paged.paged_bytes > 14 * GIB
    assert unpaged.paged_bytes == 0.0
    assert unpaged.optimizer_bytes == pytest.approx(paged.paged_bytes + paged.optimizer_bytes)
    assert unpaged.per_gpu_bytes - paged.per_gpu_bytes == pytest.approx(paged.paged_bytes)
    assert paged.fits and not unpaged.fits  # 20 GiB + 15 GiB of states on a 24 GiB card
    assert paged.paged_resident_bytes == pytest.approx(paged.capacity_bytes - paged.per_gpu_bytes)
    assert paged.paged_host_bytes + paged.paged_resident_bytes == pytest.approx(paged.paged_bytes)


def test_paged_states_migrate_only_when_they_do_not_fit() -> None:
    """On a 48 GiB card the 15 GiB of states stay beside 20 GiB: no migration. On a 24 GiB
    card every paged byte crosses PCIe each way per step, at the pinned-copy rate."""
    a6000 = _estimate(TORCHTUNE_FULL, "nvidia-rtx-a6000")
    assert a6000.memory.paged_host_bytes == 0.0 and a6000.shares.host_s == 0.0
    e = _estimate(TORCHTUNE_FULL)
    rate = host_copy_bytes_per_s(catalog().gpu("nvidia-rtx-4090"))
    assert rate == pytest.approx(16 * 1.969e9 * 0.8, rel=0.01)  # PCIe 4.0 x16, 80 %
    assert e.shares.host_s == pytest.approx(e.memory.paged_bytes / rate)
    unpaged = _estimate(replace(TORCHTUNE_FULL, optimizer="adamw8bit"))
    assert e.step_time_s == pytest.approx(unpaged.step_time_s + e.shares.host_s)
    assert any("paged optimizer states" in a for a in e.assumptions)


def test_mixed_precision_is_unchanged() -> None:
    """The defaults are mixed precision with fp32 master weights, 18 B per parameter with
    AdamW (weights 4 + 2, gradients 4, moments 8), 14 with 8-bit AdamW."""
    explicit = _estimate(replace(MIXED, master_weights=True, optimizer_in_backward=False))
    default = _estimate(MIXED)
    assert explicit == default
    pc = count_params(_shape())
    m = default.memory
    assert m.weights_bytes == pytest.approx(pc.total * 6.0)
    assert m.gradients_bytes == pytest.approx(pc.total * 4.0)
    assert m.optimizer_bytes == pytest.approx(pc.total * 2.0)
    assert m.paged_bytes == 0.0 and default.shares.host_s == 0.0


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZER_STEP_BYTES_PER_PARAM))
def test_step_bytes_accounting_reproduces_the_table(optimizer: str) -> None:
    """Read weight, gradient and states, write weight and states, clip-read the gradient
    (not for SGD): with 4-byte weights and gradients this is the step-bytes table; pure
    16-bit halves weights and gradients (and PyTorch states); in backward no clipping."""
    kw = {"table": OPTIMIZER_STEP_BYTES_PER_PARAM, "states": OPTIMIZER_BYTES_PER_PARAM}
    table = OPTIMIZER_STEP_BYTES_PER_PARAM[optimizer]
    assert step_bytes_per_param(optimizer, master_weights=True, in_backward=False,
                                **kw) == table
    clip = 0.0 if optimizer == "sgd" else 4.0
    assert step_bytes_per_param(optimizer, master_weights=True, in_backward=True,
                                **kw) == table - clip
    pure = step_bytes_per_param(optimizer, master_weights=False, in_backward=True, **kw)
    assert pure < table - clip
    assert step_bytes_per_param("adamw8bit", master_weights=False, in_backward=True,
                                **kw) == 2 * 2 + 2 + 2 * 2.0


def test_pure_bf16_adamw_keeps_bf16_moments() -> None:
    """torch.optim.AdamW creates its moments with zeros_like(param): bf16 in pure bf16."""
    m = _estimate(replace(MIXED, optimizer="adamw", master_weights=False)).memory
    pc = count_params(_shape())
    assert m.optimizer_bytes == pytest.approx(pc.total * 4.0)
    assert m.gradients_bytes == pytest.approx(pc.total * 2.0)


def test_lora_adapters_are_too_small_to_page() -> None:
    """Rank-8 adapters have r·d < 1e5 elements: bitsandbytes keeps their states as ordinary
    device tensors, so nothing is paged; LoRA without the new options is unchanged."""
    lora = TrainConfig(task="lora", batch_size=2, seq_len=2048, lora_rank=8,
                       checkpointing=True, lora_targets="qv")
    assert 8 * _shape().hidden < PAGED_MIN_ELEMENTS
    paged = _estimate(replace(lora, optimizer="paged_adamw8bit")).memory
    plain = _estimate(replace(lora, optimizer="adamw8bit")).memory
    assert paged.paged_bytes == 0.0
    assert paged.per_gpu_bytes == pytest.approx(plain.per_gpu_bytes)


@pytest.mark.parametrize(("change", "match"), [
    ({"precision": "fp32", "master_weights": False}, "bf16 or fp16"),
    ({"autocast": True, "master_weights": False}, "autocast"),
    ({"gpus": 2, "optimizer_in_backward": True}, "one GPU"),
    ({"gpus": 2, "optimizer": "paged_adamw8bit"}, "one GPU"),
])
def test_unsupported_combinations_are_input_errors(change: dict[str, object],
                                                   match: str) -> None:
    with pytest.raises(InputError, match=match):
        _estimate(replace(MIXED, **change))  # type: ignore[arg-type]
