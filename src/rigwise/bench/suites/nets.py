"""PyTorch modules for the model benchmarks, built from rigwise's own workload shapes.

* :func:`cnn_module` turns a :class:`~rigwise.workload.schema.CnnShape` layer list (ResNet
  of He et al. 2016 as :mod:`rigwise.workload.cnn` builds it) into an ``nn.Module``; residual
  blocks are the layers named ``layerS.B.*``, their ``downsample`` layers the shortcut.
* :class:`Gpt` is a GPT-2-style decoder (Radford et al. 2019: learned positions, pre-norm
  LayerNorm, GELU MLP, tied embeddings) from a
  :class:`~rigwise.workload.schema.TransformerShape`; attention is
  ``torch.nn.functional.scaled_dot_product_attention`` (FlashAttention where available), and
  :meth:`Gpt.decode_step` runs one token against a preallocated KV cache.

This module imports torch at the top; only the suites import it, inside their ``run``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own convention)
from torch import nn

from rigwise.errors import UnsupportedError
from rigwise.workload.schema import CnnLayer, CnnShape, TransformerShape


def _layer(layer: CnnLayer) -> nn.Module:
    if layer.kind == "conv":
        return nn.Conv2d(layer.c_in, layer.c_out, layer.kernel, layer.stride,
                         padding=layer.kernel // 2, groups=layer.groups, bias=layer.bias)
    if layer.kind == "bn":
        return nn.BatchNorm2d(layer.c_out)
    if layer.kind == "relu":
        return nn.ReLU(inplace=True)
    if layer.kind == "pool":
        if layer.h_out == 1:
            return nn.AdaptiveAvgPool2d(1)
        return nn.MaxPool2d(layer.kernel, layer.stride, padding=(layer.kernel - 1) // 2)
    if layer.kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(layer.c_in, layer.c_out, bias=layer.bias))
    raise UnsupportedError(f"CNN layer kind {layer.kind!r} outside a residual block")


class _Residual(nn.Module):
    def __init__(self, layers: list[CnnLayer]) -> None:
        super().__init__()
        main, short, post = [], [], []
        for layer in layers:
            parts = layer.name.split(".")
            if parts[2] == "downsample":
                short.append(_layer(layer))
            elif len(parts) == 3 and parts[2] in ("add", "relu"):
                post.append(layer.kind)
            else:
                main.append(_layer(layer))
        self.main = nn.Sequential(*main)
        self.short = nn.Sequential(*short)
        self.relu = "relu" in post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x) + self.short(x)
        return F.relu(y, inplace=True) if self.relu else y


def cnn_module(shape: CnnShape) -> nn.Module:
    """An ``nn.Module`` with exactly the layers of ``shape`` (same parameter count)."""
    stem: list[nn.Module] = []
    head: list[nn.Module] = []
    blocks: OrderedDict[str, list[CnnLayer]] = OrderedDict()
    for layer in shape.layers:
        parts = layer.name.split(".")
        if parts[0].startswith("layer") and len(parts) >= 3:
            blocks.setdefault(".".join(parts[:2]), []).append(layer)
        elif blocks:
            head.append(_layer(layer))
        else:
            stem.append(_layer(layer))
    return nn.Sequential(*stem, *(_Residual(b) for b in blocks.values()), *head)


class _Block(nn.Module):
    def __init__(self, s: TransformerShape) -> None:
        super().__init__()
        h = s.hidden
        self.heads = s.n_heads
        self.ln1 = nn.LayerNorm(h)
        self.qkv = nn.Linear(h, 3 * h, bias=s.bias or s.qkv_bias)
        self.proj = nn.Linear(h, h, bias=s.bias)
        self.ln2 = nn.LayerNorm(h)
        self.fc = nn.Linear(h, s.ffn_hidden, bias=s.bias)
        self.out = nn.Linear(s.ffn_hidden, h, bias=s.bias)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, h = t.shape
        return t.view(b, n, self.heads, h // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                pos: int = 0) -> torch.Tensor:
        b, n, h = x.shape
        q, k, v = (self._split(t) for t in self.qkv(self.ln1(x)).split(h, dim=2))
        if cache is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            kc, vc = cache
            kc[:, :, pos:pos + n] = k
            vc[:, :, pos:pos + n] = v
            a = F.scaled_dot_product_attention(q, kc[:, :, :pos + n], vc[:, :, :pos + n])
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, h))
        mlp: torch.Tensor = self.out(F.gelu(self.fc(self.ln2(x))))
        return x + mlp


class Gpt(nn.Module):
    """A GPT-2-style decoder of shape ``s`` (learned positions, LayerNorm, GELU, tied head).

    Raises:
        UnsupportedError: a shape that is not GPT-2-style (SwiGLU, RMSNorm, RoPE, GQA, MoE).
    """

    def __init__(self, s: TransformerShape) -> None:
        super().__init__()
        if (s.ffn_kind, s.norm, s.position) != ("gelu", "layernorm", "learned") or \
                s.n_kv_heads != s.n_heads or s.n_experts > 1:
            raise UnsupportedError("the benchmark transformer is GPT-2-style only")
        self.shape = s
        self.wte = nn.Embedding(s.vocab, s.hidden)
        self.wpe = nn.Embedding(s.max_seq_len, s.hidden)
        self.blocks = nn.ModuleList(_Block(s) for _ in range(s.n_layers))
        self.ln = nn.LayerNorm(s.hidden)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, seq, vocab)`` of token ids ``idx`` ``(batch, seq)``."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        out: torch.Tensor = self.ln(x) @ self.wte.weight.t()
        return out

    def new_cache(self, batch: int, length: int, *, dtype: torch.dtype,
                  device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Empty K and V caches of ``length`` positions for every layer."""
        s = self.shape
        dims = (batch, s.n_heads, length, s.d_head)
        return [(torch.zeros(dims, dtype=dtype, device=device),
                 torch.zeros(dims, dtype=dtype, device=device)) for _ in range(s.n_layers)]

    def decode_step(self, token: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]],
                    pos: int) -> torch.Tensor:
        """Logits ``(batch, vocab)`` of one new token per sequence at position ``pos``."""
        x = self.wte(token) + self.wpe.weight[pos]
        for blk, kv in zip(self.blocks, cache, strict=True):
            x = blk(x, kv, pos)
        out: torch.Tensor = (self.ln(x) @ self.wte.weight.t())[:, -1]
        return out
