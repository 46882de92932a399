"""Parameter counts of transformer shapes, matrix by matrix.

Per decoder layer (perf-models.md §7.1; Narayanan et al. 2021, "Efficient Large-Scale Language
Model Training on GPU Clusters using Megatron-LM", §5.1): attention ``h·a·d + 2·h·g·d + a·d·h``
(Q, K, V, O), MLP ``2·h·f`` (GELU) or ``3·h·f`` (SwiGLU), norms ``2h`` (RMSNorm) or ``4h``
(LayerNorm), biases where the config has them; embeddings ``V·h``, plus ``V·h`` for an untied
LM head. MoE layers hold ``E`` expert MLPs and a router ``h·E``; a token runs ``k`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigwise.workload.schema import TransformerShape


@dataclass(frozen=True, slots=True)
class ParamCount:
    """Parameters of a transformer, by part (counts of elements).

    ``linear`` counts the weights of the matrices inside the layers (what LoRA adapts and
    what 4-bit quantisation compresses); ``active`` is what one token uses (MoE: k experts).
    """

    total: int
    embedding: int
    head: int
    layers: int
    linear: int
    active: int


def attention_params(s: TransformerShape) -> int:
    """Q, K, V, O weights (and biases) of one layer."""
    d, a, g, h = s.d_head, s.n_heads, s.n_kv_heads, s.hidden
    weights = h * a * d + 2 * h * g * d + a * d * h
    biases = ((a + 2 * g) * d if (s.qkv_bias or s.bias) else 0) + (h if s.bias else 0)
    return weights + biases


def mlp_params(s: TransformerShape) -> int:
    """Weights (and biases) of one expert's MLP."""
    mats = 3 if s.ffn_kind == "swiglu" else 2
    biases = (s.ffn_hidden * (mats - 1) + s.hidden) if s.bias else 0
    return mats * s.hidden * s.ffn_hidden + biases


def norm_params(s: TransformerShape) -> int:
    """One normalisation layer (DiT's norms have no affine parameters)."""
    if s.family == "dit":
        return 0
    return 2 * s.hidden if s.norm == "layernorm" else s.hidden


def layer_linear_weights(s: TransformerShape) -> int:
    """Weights of the linear layers in one layer, all experts (no biases, no norms)."""
    d, a, g, h = s.d_head, s.n_heads, s.n_kv_heads, s.hidden
    mats = 3 if s.ffn_kind == "swiglu" else 2
    attn = h * a * d + 2 * h * g * d + a * d * h
    return attn + s.n_experts * mats * h * s.ffn_hidden + (6 * h * h if s.family == "dit" else 0)


def count_params(s: TransformerShape) -> ParamCount:
    """Parameter count of ``s``, reproducing the published totals (tests hold them)."""
    h = s.hidden
    router = h * s.n_experts if s.n_experts > 1 else 0
    adaln = (6 * h * h + 6 * h) if s.family == "dit" else 0
    per_layer = attention_params(s) + s.n_experts * mlp_params(s) + router + 2 * norm_params(s) \
        + adaln
    active_layer = per_layer - (s.n_experts - s.experts_per_token) * mlp_params(s)
    embedding, head = _embedding_and_head(s)
    layers = s.n_layers * per_layer
    linear = s.n_layers * layer_linear_weights(s)
    total = embedding + layers + head
    active = embedding + s.n_layers * active_layer + head
    return ParamCount(total=total, embedding=embedding, head=head, layers=layers,
                      linear=linear, active=active)


def _embedding_and_head(s: TransformerShape) -> tuple[int, int]:
    """Parameters outside the layers: (embeddings and input side, output side)."""
    h = s.hidden
    final_norm = norm_params(s)
    if s.family == "decoder":
        pos = s.max_seq_len * h if s.position == "learned" else 0
        head = 0 if s.tied_embeddings else s.vocab * h
        return s.vocab * h + pos, head + final_norm
    if s.family == "encoder":  # BERT: embeddings + LN; pooler; MLM transform + LN + bias
        emb = (s.vocab + s.max_seq_len + s.type_vocab) * h + 2 * h
        head = (h * h + h) + (h * h + h) + 2 * h + s.vocab
        return emb, head
    assert s.image_size and s.patch_size and s.channels
    patch = s.channels * s.patch_size**2 * h + h
    if s.family == "vit":
        emb = patch + h + s.image_tokens * h  # patch conv, class token, learned positions
        classes = s.num_classes or 1000
        return emb, final_norm + h * classes + classes
    # DiT (Peebles & Xie 2023): timestep MLP (256 -> h -> h), class embedding (+1 for CFG),
    # final adaLN (h -> 2h) and linear to patch * patch * 2C (learned sigma).
    classes = s.num_classes or 1000
    emb = patch + (256 * h + h + h * h + h) + (classes + 1) * h
    out = s.patch_size**2 * 2 * s.channels
    return emb, (h * 2 * h + 2 * h) + (h * out + out)


def count_param_tensors(s: TransformerShape, task_head: bool = False) -> int:
    """Number of parameter tensors (weights, biases, norm scales and shifts) of ``s``: what a
    per-tensor (for-loop) optimizer iterates over, ``len(list(model.parameters()))``.

    Hugging Face module layout: Q, K, V and O as separate linear layers (Llama, BERT; GPT-2's
    fused ``c_attn`` has 4 fewer per layer), a bias per linear layer where the config has
    them, LayerNorm ``weight`` + ``bias``, RMSNorm ``weight``; tied embeddings count once.
    Encoders (BERT, ``BertForPreTraining`` without the next-sentence head): word, position and
    token-type embeddings + LayerNorm (5), 16 per layer, pooler (2) and the MLM head (transform
    2, LayerNorm 2, output bias 1) = 396 for BERT-large; with ``task_head`` the MLM head is
    replaced by a classifier's weight and bias (``BertForSequenceClassification``: 393).
    """
    if s.family == "dit":
        raise ValueError("parameter tensors of DiT models are not counted")
    norm = 2 if s.norm == "layernorm" else 1
    attn = 4 + (3 if (s.qkv_bias or s.bias) else 0) + (1 if s.bias else 0)
    mats = 3 if s.ffn_kind == "swiglu" else 2
    mlp = mats + (mats if s.bias else 0)
    router = 1 if s.n_experts > 1 else 0
    per_layer = attn + s.n_experts * mlp + router + 2 * norm
    if s.family == "encoder":
        outer = 3 + norm + 2 + (2 if task_head else 2 + norm + 1)
    elif s.family == "decoder":
        outer = 1 + (1 if s.position == "learned" else 0) + norm \
            + (0 if s.tied_embeddings else 1)
    else:  # ViT: patch conv (2), class token, positions; final norm, classifier (2)
        outer = 2 + 1 + 1 + norm + 2
    return s.n_layers * per_layer + outer
