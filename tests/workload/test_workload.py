"""Model shapes: parameter counts against published figures, config.json import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigwise.errors import ConfigFileError, UnknownNameError
from rigwise.workload.cnn import resnet, vgg
from rigwise.workload.models import builtin_models, get_model
from rigwise.workload.params import count_params
from rigwise.workload.schema import TransformerShape

REQUIRED = ["resnet50", "resnet152", "vgg16", "vit-b-16", "bert-base", "bert-large", "gpt2",
            "gpt2-medium", "gpt2-large", "gpt2-xl", "llama-2-7b", "llama-2-13b", "llama-2-70b",
            "llama-3-8b", "llama-3-70b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b",
            "qwen2.5-7b", "qwen2.5-72b", "dit-xl-2"]


def test_required_models_present() -> None:
    assert [m for m in REQUIRED if m not in builtin_models()] == []


@pytest.mark.parametrize("mid", [m for m in REQUIRED if m not in ("resnet50", "resnet152",
                                                                   "vgg16")])
def test_transformer_params_match_published(mid: str) -> None:
    m = builtin_models()[mid]
    assert isinstance(m.shape, TransformerShape)
    assert m.published_params
    # BERT-large's "340M" is the paper's rounding of 335M + the MLM head
    assert count_params(m.shape).total == pytest.approx(m.published_params, rel=0.015)


def test_mixtral_active_params() -> None:
    # Mistral AI: 46.7B total, 12.9B active per token
    shape = builtin_models()["mixtral-8x7b"].shape
    assert isinstance(shape, TransformerShape)
    assert count_params(shape).active == pytest.approx(12.9e9, rel=0.01)


# torchvision model docs: parameters and GFLOPS (multiply-accumulates) at 224 px
@pytest.mark.parametrize(("build", "params", "gmacs"), [
    (lambda: resnet(50), 25_557_032, 4.09),
    (lambda: resnet(152), 60_192_808, 11.51),
    (lambda: vgg(16), 138_357_544, 15.47),
])
def test_cnn_layer_lists_match_torchvision(build, params: int, gmacs: float) -> None:  # type: ignore[no-untyped-def]
    shape = build()
    assert shape.params == params
    assert sum(layer.macs for layer in shape.layers) / 1e9 == pytest.approx(gmacs, abs=0.01)


@pytest.mark.parametrize("name", ["Llama 3 70B", "meta-llama/Meta-Llama-3-8B", "gpt2-xl",
                                  "bert-large", "resnet50", "mixtral-8x7b", "llama-2-13b"])
def test_model_names_resolve(name: str) -> None:
    assert get_model(name).id in builtin_models()


def test_unknown_model() -> None:
    with pytest.raises(UnknownNameError):
        get_model("llama-5-9000b")


LLAMA3_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-05, "hidden_act": "silu", "tie_word_embeddings": False,
    "auto_map": {"AutoModel": "evil.Module"},
}


def test_config_json_matches_builtin(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA3_8B_CONFIG))
    m = get_model(str(path))
    assert isinstance(m.shape, TransformerShape)
    assert count_params(m.shape).total == count_params(
        builtin_models()["llama-3-8b"].shape).total  # type: ignore[arg-type]


def test_config_dir_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B_CONFIG))
    assert get_model(str(tmp_path) + "/").shape.n_layers == 32  # type: ignore[union-attr]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({"model_type": "llama"}),
                                     json.dumps({**LLAMA3_8B_CONFIG, "num_key_value_heads": 5})])
def test_malformed_config_is_an_input_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigFileError):
        get_model(str(path))


def test_missing_config_file() -> None:
    with pytest.raises(ConfigFileError):
        get_model("/nonexistent/config.json")
