"""The built-in model catalog and model lookup by name or ``config.json`` path."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from rigwise.errors import CatalogError, ConfigFileError
from rigwise.names import NameIndex
from rigwise.workload.cnn import BUILDERS
from rigwise.workload.from_hf import load_config_file
from rigwise.workload.schema import CnnShape, Model, ModelFile, TransformerShape

MODELS_DIR = Path(__file__).parent / "data" / "models"


def _build(f: ModelFile) -> Model:
    shape: TransformerShape | CnnShape
    if f.kind == "cnn":
        assert f.builder is not None
        shape = BUILDERS[f.builder](**f.builder_args)
    else:
        assert f.shape is not None
        shape = f.shape
    return Model(id=f.id, name=f.name, aliases=f.aliases, shape=shape, source=f.source,
                 published_params=f.published_params, default_seq_len=f.default_seq_len)


@functools.cache
def builtin_models() -> dict[str, Model]:
    """Every built-in model by id, loaded on first call.

    Raises:
        CatalogError: a built-in model file is invalid.
    """
    out: dict[str, Model] = {}
    for path in sorted(MODELS_DIR.glob("*.toml")):
        try:
            with path.open("rb") as fh:
                f = ModelFile.model_validate(tomllib.load(fh))
        except Exception as exc:  # any parse or validation failure is a data bug
            raise CatalogError(f"invalid model file {path.name}: {exc}") from exc
        out[f.id] = _build(f)
    return out


@functools.cache
def _index() -> NameIndex:
    return NameIndex("model", {m.id: (m.name, *m.aliases) for m in builtin_models().values()})


def get_model(name: str) -> Model:
    """A model by catalog id, common name, or path to a Hugging Face ``config.json``.

    Raises:
        UnknownNameError: no built-in model matches (the closest are listed).
        ConfigFileError: a path that cannot be read or parsed.
    """
    looks_like_path = name.endswith(".json") or ("/" in name and Path(name).exists())
    if looks_like_path:
        path = Path(name)
        if path.is_dir():
            path = path / "config.json"
        if not path.exists():
            raise ConfigFileError(f"no such file: {path}")
        return load_config_file(path)
    return builtin_models()[_index().resolve(name)]
