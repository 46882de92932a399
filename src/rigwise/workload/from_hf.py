"""Read a Hugging Face ``config.json`` file into a :class:`TransformerShape`.

Only the JSON is read: no network, no ``trust_remote_code``, nothing executed. Keys follow the
``transformers`` configuration classes (LlamaConfig, MistralConfig, MixtralConfig, Qwen2Config,
GPT2Config, BertConfig, ViTConfig); unknown ``model_type`` values are read as a Llama-style
decoder when they carry the standard keys.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rigwise.errors import ConfigFileError
from rigwise.workload.schema import Model, ModelSource, TransformerShape

_GELU_ACTS = {"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu"}


def _first(cfg: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return None


def shape_from_config(cfg: dict[str, Any]) -> TransformerShape:
    """The transformer shape described by a parsed ``config.json``.

    Raises:
        ConfigFileError: a required key is missing or a value is invalid.
    """
    if "text_config" in cfg and "num_hidden_layers" not in cfg:
        cfg = {**cfg["text_config"], "model_type": cfg["text_config"].get("model_type", "")}
    mtype = str(cfg.get("model_type", "")).lower()
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model")
    heads = _first(cfg, "num_attention_heads", "n_head")
    layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers")
    missing = [n for n, v in (("hidden_size", hidden), ("num_attention_heads", heads),
                              ("num_hidden_layers", layers)) if v is None]
    if missing:
        raise ConfigFileError(f"config.json lacks {', '.join(missing)}")
    act = str(_first(cfg, "hidden_act", "activation_function") or "silu").lower()
    gpt2_like = mtype == "gpt2"
    fields: dict[str, Any] = {
        "n_layers": layers, "hidden": hidden, "n_heads": heads,
        "n_kv_heads": _first(cfg, "num_key_value_heads") or heads,
        "head_dim": cfg.get("head_dim"),
        "ffn_hidden": _first(cfg, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden,
        "ffn_kind": "gelu" if act in _GELU_ACTS else "swiglu",
        "vocab": _first(cfg, "vocab_size") or 0,
        "max_seq_len": _first(cfg, "max_position_embeddings", "n_positions") or 2048,
        "norm": "layernorm" if ("layer_norm_epsilon" in cfg or "layer_norm_eps" in cfg)
        else "rmsnorm",
        "tied_embeddings": bool(cfg.get("tie_word_embeddings", gpt2_like)),
        "n_experts": _first(cfg, "num_local_experts", "num_experts", "n_routed_experts") or 1,
        "experts_per_token": _first(cfg, "num_experts_per_tok") or 1,
    }
    if mtype == "bert":
        fields.update(family="encoder", bias=True, qkv_bias=True, position="learned",
                      type_vocab=cfg.get("type_vocab_size", 2), tied_embeddings=True,
                      dropout=True)
    elif mtype == "vit":
        fields.update(family="vit", bias=True, qkv_bias=True, position="learned",
                      image_size=cfg.get("image_size", 224), patch_size=cfg.get("patch_size", 16),
                      channels=cfg.get("num_channels", 3), num_classes=1000)
        fields["max_seq_len"] = (fields["image_size"] // fields["patch_size"]) ** 2 + 1
    else:
        bias = gpt2_like or bool(cfg.get("attention_bias") and cfg.get("mlp_bias"))
        fields.update(family="decoder", bias=bias,
                      qkv_bias=gpt2_like or bool(cfg.get("attention_bias"))
                      or mtype.startswith("qwen2"),
                      position="learned" if gpt2_like else "rope", dropout=gpt2_like)
    try:
        return TransformerShape.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigFileError(f"config.json: {where}: {err['msg']}") from exc


def load_config_file(path: Path) -> Model:
    """A :class:`Model` from a ``config.json`` path.

    Raises:
        ConfigFileError: the file is missing, not JSON, or not a transformer config.
    """
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ConfigFileError(f"{path} is not a config object")
    shape = shape_from_config(cfg)
    name = str(cfg.get("_name_or_path") or path.parent.name or path.stem)
    mtime = dt.date.fromtimestamp(path.stat().st_mtime)
    return Model(id=f"file:{path.name}", name=name, aliases=(), shape=shape,
                 source=ModelSource(title=f"config file {path}", url=path.resolve().as_uri(),
                                    as_of=mtime),
                 default_seq_len=min(shape.max_seq_len, 2048))
