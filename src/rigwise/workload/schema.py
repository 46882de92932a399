"""What runs: model shapes and the tasks run on them.

A model is either a :class:`TransformerShape` (decoders such as GPT-2 and Llama, encoders such
as BERT, vision transformers, diffusion transformers) or a :class:`CnnShape` (a list of layers
with their sizes). Both come from published configurations: the built-in catalog
(``workload/data/models/*.toml``), a Hugging Face ``config.json`` file, or a PyTorch module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Task = Literal["train", "finetune", "lora", "qlora", "infer"]
Family = Literal["decoder", "encoder", "vit", "dit"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSource(_Frozen):
    """Where a model's shape was published."""

    title: str
    url: str
    as_of: dt.date


class TransformerShape(_Frozen):
    """Hyper-parameters of a transformer, named as in Hugging Face configs where they exist.

    Sizes are element counts. ``n_kv_heads < n_heads`` is grouped-query attention;
    ``n_experts > 1`` is a mixture of experts of which ``experts_per_token`` run per token.
    Vision models give ``image_size``/``patch_size``/``channels`` and have
    ``(image_size / patch_size)**2`` patch tokens (+1 class token for ``vit``).
    """

    family: Family
    n_layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int = Field(gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    ffn_hidden: int = Field(gt=0)
    ffn_kind: Literal["gelu", "swiglu"]
    vocab: int = Field(default=0, ge=0)
    max_seq_len: int = Field(gt=0)
    norm: Literal["layernorm", "rmsnorm"]
    bias: bool = False
    qkv_bias: bool = False
    tied_embeddings: bool = False
    position: Literal["rope", "learned", "fixed"] = "rope"
    type_vocab: int = Field(default=0, ge=0)
    n_experts: int = Field(default=1, ge=1)
    experts_per_token: int = Field(default=1, ge=1)
    dropout: bool = False
    image_size: int | None = Field(default=None, gt=0)
    patch_size: int | None = Field(default=None, gt=0)
    channels: int | None = Field(default=None, gt=0)
    num_classes: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> TransformerShape:
        if self.n_heads % self.n_kv_heads:
            raise ValueError("n_heads must be a multiple of n_kv_heads")
        if self.experts_per_token > self.n_experts:
            raise ValueError("experts_per_token exceeds n_experts")
        if self.family in ("vit", "dit") and not (self.image_size and self.patch_size
                                                  and self.channels):
            raise ValueError(f"{self.family} needs image_size, patch_size and channels")
        if self.family in ("decoder", "encoder") and self.vocab <= 0:
            raise ValueError("a language model needs vocab > 0")
        return self

    @property
    def d_head(self) -> int:
        """Size of one attention head."""
        return self.head_dim or self.hidden // self.n_heads

    @property
    def image_tokens(self) -> int:
        """Tokens of one image for vision models (0 for language models)."""
        if self.image_size is None or self.patch_size is None:
            return 0
        patches = (self.image_size // self.patch_size) ** 2
        return patches + (1 if self.family == "vit" else 0)


@dataclass(frozen=True, slots=True)
class CnnLayer:
    """One layer of a CNN for one image; sizes in elements.

    ``kind`` conv: ``c_in, c_out, kernel, stride, groups`` and output ``h_out x w_out``;
    linear: ``c_in -> c_out`` (h_out = w_out = 1); bn/relu/add/pool: an elementwise pass over
    ``c_out x h_out x w_out`` (pool reads ``c_in x h_in x w_in``).
    """

    kind: Literal["conv", "linear", "bn", "relu", "add", "pool"]
    name: str
    c_in: int
    c_out: int
    h_in: int
    w_in: int
    h_out: int
    w_out: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    bias: bool = False

    @property
    def params(self) -> int:
        """Trainable parameters of the layer."""
        if self.kind == "conv":
            return (self.c_in // self.groups) * self.c_out * self.kernel ** 2 + (
                self.c_out if self.bias else 0)
        if self.kind == "linear":
            return self.c_in * self.c_out + (self.c_out if self.bias else 0)
        if self.kind == "bn":
            return 2 * self.c_out
        return 0

    @property
    def out_elements(self) -> int:
        """Elements of the layer's output for one image."""
        return self.c_out * self.h_out * self.w_out

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the forward pass for one image (1 MAC = 2 FLOP)."""
        if self.kind == "conv":
            return (self.c_in // self.groups) * self.kernel ** 2 * self.out_elements
        if self.kind == "linear":
            return self.c_in * self.c_out
        return 0


@dataclass(frozen=True, slots=True)
class CnnShape:
    """A convolutional network as the list of its layers for one ``image_size`` input."""

    image_size: int
    layers: tuple[CnnLayer, ...]
    num_classes: int

    @property
    def params(self) -> int:
        """Trainable parameters."""
        return sum(layer.params for layer in self.layers)


@dataclass(frozen=True, slots=True)
class Lin:
    """A quantity linear in the batch size: ``at(b) = base + per_sample·b``."""

    base: float
    per_sample: float

    def at(self, batch: int) -> float:
        """The value for ``batch`` samples."""
        return self.base + self.per_sample * batch


@dataclass(frozen=True, slots=True)
class TracedOp:
    """One kernel of a forward pass traced from a PyTorch module, as a function of batch.

    ``kind`` gemm/conv: an (implicit) GEMM ``(m x k) @ (k x n)`` repeated ``count`` times
    (batched matmuls, grouped convolutions); attention: a fused attention kernel; memory: any
    other kernel, memory-bound. ``act_elems``: activation elements read and written;
    ``weight_elems``: parameter elements read; ``saved_elems``: activation elements autograd
    keeps for the backward pass after this op. ``frozen``: its weight gets no gradient.
    """

    name: str
    kind: Literal["gemm", "conv", "attention", "memory"]
    flop: Lin
    act_elems: Lin
    weight_elems: float
    m: Lin
    n: Lin
    k: Lin
    count: Lin
    saved_elems: Lin
    frozen: bool = False


@dataclass(frozen=True, slots=True)
class TracedShape:
    """A model traced from an ``nn.Module`` (:func:`rigwise.workload.from_torch.from_torch`).

    ``ops``: the forward kernels in order; ``params``/``trainable``: parameter counts;
    ``flop_counter``: forward FLOP per sample as ``torch.utils.flop_counter`` counts them;
    ``tokens_per_sample``: tokens in one sample (0 when samples are not token sequences).
    """

    ops: tuple[TracedOp, ...]
    params: int
    trainable: int
    flop_counter: Lin
    tokens_per_sample: int = 0


@dataclass(frozen=True, slots=True)
class Model:
    """A named model: its shape and where the shape comes from.

    ``published_params`` is the parameter count its authors give (for tests), if any.
    """

    id: str
    name: str
    aliases: tuple[str, ...]
    shape: TransformerShape | CnnShape | TracedShape
    source: ModelSource
    published_params: float | None = None
    default_seq_len: int | None = None

    @property
    def is_transformer(self) -> bool:
        """True for transformer shapes."""
        return isinstance(self.shape, TransformerShape)

    @property
    def is_language_model(self) -> bool:
        """True for decoders and encoders over a vocabulary (they have tokens and a KV cache)."""
        return isinstance(self.shape, TransformerShape) and self.shape.family in (
            "decoder", "encoder")


class ModelFile(_Frozen):
    """A built-in model file: ``workload/data/models/<id>.toml``.

    ``kind = "transformer"`` gives ``[shape]`` as a :class:`TransformerShape`;
    ``kind = "cnn"`` names a builder in :mod:`rigwise.workload.cnn` and its arguments.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    name: str
    kind: Literal["transformer", "cnn"]
    aliases: tuple[str, ...] = ()
    published_params: float | None = Field(default=None, gt=0)
    default_seq_len: int | None = Field(default=None, gt=0)
    source: ModelSource
    shape: TransformerShape | None = None
    builder: str | None = None
    builder_args: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_shape(self) -> ModelFile:
        if (self.kind == "transformer") != (self.shape is not None):
            raise ValueError("a transformer gives [shape]; a cnn gives builder instead")
        if self.kind == "cnn" and not self.builder:
            raise ValueError("a cnn needs a builder")
        return self
