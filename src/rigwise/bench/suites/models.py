"""Model steps with synthetic data: ResNet-50 and GPT-2 training steps, attention, decode.

* ResNet-50 (He et al. 2016) training step: forward, cross-entropy, backward, SGD with
  momentum; images/s. Full size: batch 64 at 224 px; tiny: batch 2 at 32 px.
* GPT-2 (124M) training step: forward, cross-entropy over the vocabulary, backward, AdamW;
  tokens/s. Full: batch 8 x 1024 tokens; tiny: a 2-layer, 64-wide model.
* Attention kernel: ``scaled_dot_product_attention`` forward, causal, counted as
  ``4·b·h·s²·d / 2`` FLOP (QKᵀ and AV, halved by the mask; Dao et al. 2022).
* LLM decode: one token per step of GPT-2 XL against a KV cache of 512 positions, batch 1;
  tokens/s (memory-bound: every step reads all weights).

Precisions: ``fp32`` (TF32 off), ``tf32``, ``bf16`` and ``fp16`` as AMP (``torch.autocast``;
fp16 with a gradient scaler). Full sizes match catalog models so that the performance model
can predict them (:mod:`rigwise.bench.expect`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rigwise.bench.measurement import Measurement
from rigwise.bench.suites import BenchContext, case
from rigwise.workload.schema import TransformerShape

TINY_GPT = TransformerShape(family="decoder", n_layers=2, hidden=64, n_heads=4, n_kv_heads=4,
                            ffn_hidden=256, ffn_kind="gelu", vocab=512, max_seq_len=64,
                            norm="layernorm", bias=True, position="learned",
                            tied_embeddings=True)
RESNET = {"full": (64, 224), "tiny": (2, 32)}  # batch, image size
GPT = {"full": ("gpt2", 8, 1024), "tiny": ("tiny", 2, 32)}  # model, batch, seq
ATTENTION = {"full": (8, 16, 2048, 128), "tiny": (1, 2, 64, 32)}  # b, h, s, d
DECODE = {"full": ("gpt2-xl", 1, 512), "tiny": ("tiny", 1, 16)}  # model, batch, context
DEFAULT = {"cuda": ("tf32", "bf16"), "cpu": ("fp32",)}


def _autocast(ctx: BenchContext, precision: str) -> AbstractContextManager[Any]:
    torch = ctx.torch
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast("cuda" if ctx.is_cuda else "cpu", dtype=dtype)  # type: ignore[no-any-return]
    return nullcontext()


def _train_step(ctx: BenchContext, net: Any, x: Any, y: Any, opt: Any, precision: str,
                loss_fn: Callable[[Any, Any], Any]) -> Callable[[], None]:
    torch = ctx.torch
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" and ctx.is_cuda else None

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with _autocast(ctx, precision):
            loss = loss_fn(net(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
    return step


def _gpt_shape(name: str) -> TransformerShape:
    if name == "tiny":
        return TINY_GPT
    from rigwise.workload.models import get_model

    shape = get_model(name).shape
    assert isinstance(shape, TransformerShape)
    return shape


def resnet50(ctx: BenchContext, precision: str) -> Measurement:
    """One ResNet-50 training step (images/s)."""
    from rigwise.bench.suites.nets import cnn_module
    from rigwise.workload.cnn import resnet

    torch, (batch, px) = ctx.torch, RESNET[ctx.size]
    net = cnn_module(resnet(50, image_size=px)).to(ctx.device)
    x = torch.randn(batch, 3, px, px, device=ctx.device)
    y = torch.randint(0, 1000, (batch,), device=ctx.device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    step = _train_step(ctx, net, x, y, opt, precision, torch.nn.functional.cross_entropy)
    return case(ctx, step, suite="models", kind="train_step", name=f"resnet50 train {precision}"
                f" b{batch} {px}px", metric="samples_per_s", work=float(batch),
                params={"model": "resnet50", "precision": precision, "batch_size": batch,
                        "image_size": px}, flush=False)


def gpt_train(ctx: BenchContext, precision: str) -> Measurement:
    """One GPT-style training step (tokens/s)."""
    from rigwise.bench.suites.nets import Gpt

    torch, (model, batch, seq) = ctx.torch, GPT[ctx.size]
    net = Gpt(_gpt_shape(model)).to(ctx.device)
    x = torch.randint(0, net.shape.vocab, (batch, seq), device=ctx.device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def loss(logits: Any, y: Any) -> Any:
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
    step = _train_step(ctx, net, x, x, opt, precision, loss)
    return case(ctx, step, suite="models", kind="train_step",
                name=f"{model} train {precision} b{batch} s{seq}", metric="tokens_per_s",
                work=float(batch * seq), params={"model": model, "precision": precision,
                                                 "batch_size": batch, "seq_len": seq},
                flush=False)


def attention(ctx: BenchContext, precision: str) -> Measurement:
    """Causal SDPA forward (FLOP/s)."""
    torch, (b, h, s, d) = ctx.torch, ATTENTION[ctx.size]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    q, k, v = (torch.randn(b, h, s, d, device=ctx.device, dtype=dtype) for _ in range(3))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return case(ctx, lambda: sdpa(q, k, v, is_causal=True), suite="models", kind="attention",
                name=f"attention {precision} b{b} h{h} s{s} d{d}", metric="flop_per_s",
                work=4.0 * b * h * s * s * d / 2, params={"precision": precision, "batch": b,
                                                           "heads": h, "seq_len": s,
                                                           "head_dim": d, "causal": True})


def decode(ctx: BenchContext, precision: str) -> Measurement:
    """One decode step of a GPT-style model with a KV cache (tokens/s)."""
    from rigwise.bench.suites.nets import Gpt

    torch, (model, batch, context) = ctx.torch, DECODE[ctx.size]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    net = Gpt(_gpt_shape(model)).to(ctx.device, dtype).eval()
    cache = net.new_cache(batch, context + 1, dtype=dtype, device=ctx.device)
    token = torch.randint(0, net.shape.vocab, (batch, 1), device=ctx.device)

    def step() -> None:
        with torch.inference_mode():
            net.decode_step(token, cache, context)
    return case(ctx, step, suite="models", kind="decode",
                name=f"{model} decode {precision} b{batch} ctx{context}", metric="tokens_per_s",
                work=float(batch), params={"model": model, "precision": precision,
                                           "batch_size": batch, "context": context},
                flush=False)


def run(ctx: BenchContext) -> list[Measurement]:
    """Each model benchmark in each requested precision."""
    wanted = ctx.precisions or DEFAULT["cuda" if ctx.is_cuda else "cpu"]
    out = []
    for precision in wanted:
        if precision == "tf32" and not ctx.is_cuda:
            ctx.skip("models tf32", "a CUDA mode")
            continue
        if precision not in ("fp32", "tf32", "bf16", "fp16"):
            ctx.skip(f"models {precision}", "model steps run fp32, tf32, bf16 or fp16")
            continue
        ctx.torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        ctx.torch.backends.cudnn.allow_tf32 = precision == "tf32"
        for bench in (resnet50, gpt_train, attention, decode):
            out.append(bench(ctx, precision))
            ctx.sync()
    return out
