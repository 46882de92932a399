"""The web app's inputs: strict pydantic models of the query strings, and name lookups that
never touch the file system.

Every field has a type, a range or a closed set of values; an empty form field means "not
given". Model names resolve only against the built-in catalog (:func:`web_model`): a path or
a ``config.json`` given as a model is refused, so no request can make the server read a file.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rigwise.errors import InputError, UnknownNameError
from rigwise.names import NameIndex
from rigwise.workload.schema import Model

Name = Annotated[str, Field(min_length=1, max_length=100)]
Task = Literal["train", "finetune", "lora", "qlora", "infer"]
TrainTask = Literal["train", "finetune", "lora", "qlora"]
Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8"]
Weights = Literal["f32", "f16", "bf16", "fp8", "int8", "int4", "q8_0", "q6_k", "q5_k_m",
                  "q5_k_s", "q5_0", "q5_1", "q4_k_m", "q4_k_s", "q4_0", "q4_1", "q3_k_m", "q2_k"]
Market = Literal["new", "used", "cloud"]
Engine = Literal["generic", "llama.cpp", "vllm"]


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and v.strip() == "" else v


F = TypeVar("F", bound=_Form)


class AdviseForm(_Form):
    """Query of ``/advise``: model, task and constraints (money in USD, power in W)."""

    model: Name
    task: Task = "qlora"
    market: Market = "new"
    budget: Annotated[float, Field(gt=0, le=1e8)] | None = None
    max_power: Annotated[float, Field(gt=0, le=1e5)] | None = None
    min_memory: Annotated[float, Field(gt=0, le=1e4)] | None = None
    gpus: Literal[1, 2, 4, 8] | None = None
    weights: Weights = "bf16"
    engine: Engine = "generic"
    sort: Literal["value", "speed"] = "value"
    top: Annotated[int, Field(ge=1, le=40)] = 15


class EstimateForm(_Form):
    """Query of ``/estimate``: one model on one GPU (count), training or inference."""

    model: Name
    gpu: Name
    task: Task = "train"
    gpus: Annotated[int, Field(ge=1, le=64)] = 1
    precision: Precision = "bf16"
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 1
    seq_len: Annotated[int, Field(ge=1, le=1_048_576)] | None = None
    checkpointing: bool | None = None
    weights: Weights = "bf16"
    prompt_tokens: Annotated[int, Field(ge=1, le=1_048_576)] = 512
    output_tokens: Annotated[int, Field(ge=1, le=1_048_576)] = 256
    engine: Engine = "generic"


class CatalogForm(_Form):
    """Query of ``/gpus``: filters of the catalog list."""

    vendor: Literal["nvidia", "amd", "intel", "google", "apple"] | None = None
    segment: Literal["consumer", "workstation", "datacenter", "edge", "soc", "tpu"] | None = None
    market: Market = "new"
    min_memory: Annotated[float, Field(gt=0, le=1e4)] | None = None


def parse(form: type[F], query: dict[str, str]) -> F:
    """Validate a query string against ``form``.

    Raises:
        InputError: one line per bad field, naming the field and what is allowed.
    """
    try:
        return form.model_validate(query)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "query"
            lines.append(f"{field}: {e['msg']}")
        raise InputError("; ".join(lines)) from None


@functools.cache
def _model_index() -> NameIndex:
    from rigwise.workload.models import builtin_models

    return NameIndex("model", {m.id: (m.name, *m.aliases) for m in builtin_models().values()})


def web_model(name: str) -> Model:
    """A built-in model by id or common name; never a file.

    Raises:
        UnknownNameError: no built-in model matches (closest ones listed), including any path.
    """
    from rigwise.workload.models import builtin_models

    if name.endswith(".json") or name.startswith(("/", ".", "~")) or "\\" in name:
        raise UnknownNameError("model", name, [])
    return builtin_models()[_model_index().resolve(name)]
