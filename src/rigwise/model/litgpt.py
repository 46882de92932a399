"""LitGPT's own memory rules (``--framework litgpt``): what its layer code and its QLoRA path
through Lightning's bitsandbytes plugin keep beyond the generic rules of
:mod:`rigwise.model.ops` and :mod:`rigwise.model.memory` (docs/method.md §5; checked on CPU
by benchmarks/litgpt_saved_bytes.py against litgpt 0.5.13)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rigwise.workload.schema import TransformerShape

if TYPE_CHECKING:
    from rigwise.model.ops import Op


def litgpt_kept_heads(s: TransformerShape) -> int:
    """Head-sized tensors per token that LitGPT's fused attention keeps for backward
    (:func:`rigwise.model.ops.attention` gives the rules and their source)."""
    a, g = s.n_heads, s.n_kv_heads
    if g < a:  # k and v repeated to all query heads: q, k, v, O
        return 4 * a
    fused = a + 2 * g  # v is a view of the fused QKV output, which it keeps alive
    if s.position == "rope":  # q and k are new (rotated) tensors
        return a + g + fused + a
    return fused + a  # q, k and v are all views of the fused output


def litgpt_qlora(s: TransformerShape, fwd: list[Op], linear: float, ckpt: bool,
                 bnb_saves_input: bool) -> tuple[float, float, float]:
    """(NF4 weights, dequantisation buffer bytes, previous micro-batch's kept bytes) of
    LitGPT's QLoRA (``litgpt finetune_lora --quantize bnb.nf4``).

    * Lightning's ``BitsandbytesPrecision`` replaces every ``torch.nn.Linear``, the head's
      included (LitGPT passes no ``ignore_modules``), so an untied head is NF4 too.
    * It quantises from float16 (``weight.to(torch.half)`` before ``quantize_4bit``, Lightning
      2.1 to 2.6), so ``dequantize_4bit`` returns float16 and ``MatMul4Bit`` casts it to the
      bf16 input's dtype: 4 bytes per weight of the matrix in use, at most the head's, while
      all activations are held (the head runs last in the forward and first in backward).
    * Before bitsandbytes 0.43.2 ``MatMul4Bit`` keeps its input as a context attribute
      (``ctx.tensors``), which backward does not release: it lives as long as the graph, and
      LitGPT's loop keeps the graph through ``logits`` and ``loss`` until the next micro-batch
      reassigns them (``fit`` in litgpt/finetune/lora.py). The inputs of the previous
      micro-batch are therefore still held during the next forward. Checked on CPU with a
      live-storage count over two iterations of litgpt 0.5.13's Llama-2-7B layers with the
      pre-0.43.2 rule (+47.7 MB per layer at 1,024 tokens, ``(3h + f)·2`` bytes per token).
      Under activation checkpointing the kept inputs belong to the recomputed segments,
      which are freed per segment, so nothing carries over.
    """
    head = 0 if s.tied_embeddings else s.vocab * s.hidden  # a tied head is the embedding
    linear += head
    qkv = s.hidden * (s.n_heads + 2 * s.n_kv_heads) * s.d_head
    dequant = 4.0 * max(head, qkv, s.hidden * s.ffn_hidden)
    held = 0.0
    if bnb_saves_input and not ckpt:
        held = sum(op.saved_bytes * op.count for op in fwd
                   if op.kind == "gemm" and op.frozen and op.saved_bytes > 0 and op.layer)
    return linear, dequant, held
