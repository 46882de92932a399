"""Optimizer step implementations: parameter-tensor counts, the per-tensor CPU cost of eager
(for-loop) optimizers, foreach launches, and the fused default left as it was."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from dataclasses import replace

import pytest

from rigwise.catalog.load import DATA_DIR, catalog
from rigwise.errors import InputError, UnsupportedError
from rigwise.model.efficiency import eager_op_s, efficiency_of, optimizer_impl_values
from rigwise.model.estimate import TrainConfig, estimate_train
from rigwise.model.optstep import optimizer_step, trainable_tensors
from rigwise.model.roofline import make_device
from rigwise.workload.models import builtin_models
from rigwise.workload.params import count_param_tensors, count_params
from rigwise.workload.schema import TransformerShape

V100 = catalog().gpus["nvidia-v100-sxm2-16gb"]
A100 = catalog().gpus["nvidia-a100-sxm4-80gb"]
# The HF docs BERT-large fine-tune (V100, fp16 autocast, batch 4, seq 512, eager attention).
HF_CFG = TrainConfig(task="finetune", precision="fp16", batch_size=4, seq_len=512,
                     autocast=True, fused_attention=False)


def _shape(mid: str) -> TransformerShape:
    shape = builtin_models()[mid].shape
    assert isinstance(shape, TransformerShape)
    return shape


def test_bert_large_tensor_counts_match_hugging_face_modules() -> None:
    """bert-large-uncased config (24 layers, biases, LayerNorm, learned positions, 2 token
    types): BertModel = 3 embeddings + LayerNorm 2 + 24 x 16 + pooler 2 = 391 tensors;
    BertForSequenceClassification adds the classifier's weight and bias (393); the
    pre-training heads without next-sentence prediction add transform 2, LayerNorm 2 and the
    decoder bias (396; the decoder weight is tied to the word embeddings)."""
    s = _shape("bert-large")
    per_layer = 3 * 2 + 2 + 2 + 2 + 2 + 2  # q, k, v, attn out, attn LN, ffn in, ffn out, LN
    bert_model = 3 + 2 + s.n_layers * per_layer + 2
    assert bert_model == 391
    assert count_param_tensors(s, task_head=True) == bert_model + 2 == 393
    assert count_param_tensors(s) == bert_model + 5 == 396


def test_llama_and_resnet_tensor_counts_match_their_checkpoints() -> None:
    """Llama-2-7B's checkpoint holds 291 tensors (32 x 9 + embeddings, final norm, lm_head);
    torchvision ResNet-50 has 161 parameters (53 convolutions, 53 batch norms x 2, fc 2)."""
    assert count_param_tensors(_shape("llama-2-7b")) == 291
    assert trainable_tensors(builtin_models()["resnet50"], task_head=False) == 161


def test_fused_is_the_default_and_reports_no_host_time() -> None:
    m = builtin_models()["bert-large"]
    default = estimate_train(m, V100, HF_CFG)
    fused = estimate_train(m, V100, replace(HF_CFG, optimizer_impl="fused"))
    assert default == fused
    assert default.optimizer_host_s is None


@pytest.mark.parametrize("impl", ["for-loop", "transformers"])
def test_for_loop_host_time_is_tensors_times_ops_times_op_cost(impl: str) -> None:
    """k eager ops for each of the 393 tensors, at the data file's CPU cost per op."""
    m = builtin_models()["bert-large"]
    est = estimate_train(m, V100, replace(HF_CFG, optimizer_impl=impl))
    v = optimizer_impl_values(impl, "adamw")
    assert v is not None
    assert est.optimizer_host_s == pytest.approx(393 * v["ops_per_tensor"] * eager_op_s())
    assert est.step_time_s > estimate_train(m, V100, HF_CFG).step_time_s


def test_for_loop_cost_grows_with_the_number_of_tensors() -> None:
    """Twice the layers: 24 x 16 more tensors, and the loop's host time grows by exactly
    their share."""
    m = builtin_models()["bert-large"]
    shape = _shape("bert-large")
    deep = replace(m, id="bert-48", shape=shape.model_copy(update={"n_layers": 48}))
    cfg = replace(HF_CFG, optimizer_impl="transformers", batch_size=1)
    base, twice = estimate_train(m, A100, cfg), estimate_train(deep, A100, cfg)
    assert base.optimizer_host_s is not None and twice.optimizer_host_s is not None
    per_tensor = base.optimizer_host_s / 393
    assert twice.optimizer_host_s - base.optimizer_host_s == pytest.approx(
        24 * 16 * per_tensor)


def test_loop_step_takes_the_larger_of_host_and_gpu_time() -> None:
    """The GPU runs the queued kernels while the CPU issues the next: the step takes
    max(host, GPU); the host time above the GPU's is the launch share."""
    dev = make_device(V100, "fp16", efficiency_of(V100))
    params = float(count_params(_shape("bert-large")).total)
    for tensors in (10, 393, 5000):  # GPU-bound, then CPU-bound
        step = optimizer_step(dev, impl="transformers", optimizer="adamw", params=params,
                              tensors=tensors)
        gpu = step.shares.compute_s + step.shares.memory_s
        assert step.shares.total_s == pytest.approx(max(step.host_s, gpu))
        assert step.shares.launch_s == pytest.approx(max(0.0, step.host_s - gpu))


def test_foreach_launches_per_op_follow_multi_tensor_apply() -> None:
    """BERT-large: 393 tensors / 48 per launch = 9; 336 M elements / (320 x 65536) = 17."""
    m = builtin_models()["bert-large"]
    est = estimate_train(m, V100, replace(HF_CFG, optimizer_impl="foreach"))
    v = optimizer_impl_values("foreach", "adamw")
    assert v is not None
    params = count_params(_shape("bert-large")).total
    launches = max(math.ceil(393 / 48), math.ceil(params / v["elements_per_launch"]))
    assert launches == math.ceil(params / 20_971_520) > 9
    assert est.optimizer_host_s == pytest.approx(
        v["ops"] * launches * efficiency_of(V100).launch_s)


def test_bad_and_unsupported_implementations() -> None:
    m = builtin_models()["bert-large"]
    with pytest.raises(InputError, match="unknown optimizer implementation"):
        estimate_train(m, V100, replace(HF_CFG, optimizer_impl="loop"))
    with pytest.raises(UnsupportedError, match="adamw8bit"):
        estimate_train(m, V100, replace(HF_CFG, optimizer="adamw8bit",
                                        optimizer_impl="for-loop"))
    with pytest.raises(UnsupportedError, match="one GPU"):
        estimate_train(m, A100, replace(HF_CFG, gpus=8, optimizer_impl="for-loop"))


def test_every_optimizer_impl_value_names_a_dated_source() -> None:
    with (DATA_DIR / "efficiency" / "default.toml").open("rb") as fh:
        data = tomllib.load(fh)
    sources = data["sources"]
    values = [v for impl in data["optimizer_impl"].values() for opt in impl.values()
              for v in opt.values()] + list(data["host"].values())
    assert values
    for v in values:
        assert v["source"] in sources
        assert sources[v["source"]]["as_of"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigwise.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_optimizer_impl_json_and_bad_value() -> None:
    base = ["estimate", "train", "--model", "bert-large", "--gpu", "V100 SXM2 16GB",
            "--precision", "fp16", "--batch-size", "4", "--task", "finetune", "--json"]
    loop = json.loads(_cli(*base, "--optimizer-impl", "transformers").stdout)
    assert loop["optimizer_impl"] == "transformers"
    assert loop["optimizer_host_s"] == pytest.approx(393 * 10 * eager_op_s(), rel=1e-5)
    fused = json.loads(_cli(*base).stdout)
    assert "optimizer_impl" not in fused and "optimizer_host_s" not in fused
    assert fused["step_time_s"] < loop["step_time_s"]
    bad = _cli(*base, "--optimizer-impl", "loop")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "optimizer implementation" in bad.stderr


def test_gradient_accumulation_steps_the_optimizer_once_per_k_micro_batches() -> None:
    """k micro-batches then one optimizer step: step time = k x micro-step + optimizer, so
    the per-sample cost of a slow (per-tensor loop) optimizer shrinks k-fold."""
    from rigwise.workload.models import get_model

    model, gpu = get_model("bert-large"), catalog().gpu("nvidia-v100-sxm2-16gb")
    base = TrainConfig(task="finetune", precision="fp16", batch_size=1, seq_len=512,
                       optimizer_impl="transformers")
    one = estimate_train(model, gpu, base)
    four = estimate_train(model, gpu, replace(base, grad_accum=4))
    fused = estimate_train(model, gpu, replace(base, optimizer_impl="fused"))
    fused4 = estimate_train(model, gpu, replace(base, optimizer_impl="fused", grad_accum=4))
    opt = one.step_time_s - (fused4.step_time_s - fused.step_time_s) / 3  # loop step alone
    micro = one.step_time_s - opt
    assert four.step_time_s == pytest.approx(4 * micro + opt, rel=1e-6)
    assert four.samples_per_s == pytest.approx(4 / four.step_time_s)
    assert four.samples_per_s > one.samples_per_s
    assert four.mfu > one.mfu
