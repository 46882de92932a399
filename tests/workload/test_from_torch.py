"""Import of PyTorch modules traced on the meta device (issue 2: ``from_torch``).

The reference figures are rigwise's own built-in shapes, which other tests hold to the
published counts (torchvision's ResNet-50: 25,557,032 parameters, 4.09 GMACs; GPT-2 small:
124,439,808 parameters), so a traced module must land on the same numbers.
"""

from __future__ import annotations

from typing import Any

import pytest

from rigwise import TrainConfig, catalog, estimate_train, from_torch, get_model
from rigwise.errors import InputError, UnsupportedError
from rigwise.workload.schema import CnnShape, TracedShape

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.torch


class Bottleneck(nn.Module):  # type: ignore[misc]
    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        out = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(True), nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out))
        self.down = (nn.Sequential(nn.Conv2d(c_in, out, 1, stride, bias=False),
                                   nn.BatchNorm2d(out))
                     if stride != 1 or c_in != out else nn.Identity())

    def forward(self, x: Any) -> Any:
        return torch.relu(self.body(x) + self.down(x))


def resnet50() -> Any:
    layers: list[Any] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                         nn.ReLU(True), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512),
                                                strict=True)):
        for i in range(blocks):
            layers.append(Bottleneck(c, width, 2 if i == 0 and stage > 0 else 1))
            c = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers)


class Block(nn.Module):  # type: ignore[misc]
    def __init__(self, h: int, a: int) -> None:
        super().__init__()
        self.a = a
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc, self.out = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)

    def forward(self, x: Any) -> Any:
        b, t, h = x.shape
        q, k, v = (y.view(b, t, self.a, h // self.a).transpose(1, 2)
                   for y in self.qkv(self.ln1(x)).split(h, dim=-1))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, h))
        return x + self.out(nn.functional.gelu(self.fc(self.ln2(x))))


class GPT2(nn.Module):  # type: ignore[misc]
    """GPT-2 small as in its config.json: 12 layers, 768 wide, 12 heads, tied head."""

    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(50257, 768), nn.Embedding(1024, 768)
        self.blocks = nn.ModuleList(Block(768, 12) for _ in range(12))
        self.ln = nn.LayerNorm(768)
        self.head = nn.Linear(768, 50257, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx: Any) -> Any:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def tokens(b: int) -> tuple[Any, ...]:
    return (torch.randint(0, 50257, (b, 1024), device="meta"),)


@pytest.fixture(scope="module")
def gpt2() -> Any:
    with torch.device("meta"):
        return from_torch(GPT2(), tokens, name="GPT-2 traced", tokens_per_sample=1024)


def test_resnet50_matches_torchvision_counts() -> None:
    with torch.device("meta"):
        traced = from_torch(resnet50(), (3, 224, 224), name="ResNet-50 traced")
    shape = traced.shape
    assert isinstance(shape, TracedShape)
    assert shape.params == shape.trainable == 25_557_032
    builtin = get_model("resnet50").shape
    assert isinstance(builtin, CnnShape)
    # FlopCounterMode counts 2 FLOP per MAC of convolutions and the classifier
    assert shape.flop_counter.per_sample == pytest.approx(2 * sum(ly.macs for ly in
                                                                  builtin.layers))
    assert shape.flop_counter.base == pytest.approx(0, abs=1)
    convs = [op for op in shape.ops if op.kind == "conv"]
    assert len(convs) == 53  # 49 in the bottlenecks and stem + 4 downsampling
    assert sum(op.flop.per_sample for op in shape.ops) == pytest.approx(
        shape.flop_counter.per_sample, rel=1e-9)


def test_gpt2_traced_agrees_with_the_builtin_shape(gpt2: Any) -> None:
    assert gpt2.shape.params == 124_439_808  # tied embeddings counted once
    gpu = catalog().gpu("H100 SXM5")
    cfg = TrainConfig(batch_size=8, precision="bf16", seq_len=1024)
    traced, builtin = estimate_train(gpt2, gpu, cfg), estimate_train(get_model("gpt2"), gpu,
                                                                       cfg)
    # same FLOPs per step: GEMMs, the tied head and causal attention
    assert traced.model_flop_per_step == pytest.approx(builtin.model_flop_per_step, rel=0.01)
    assert traced.tokens_per_s is not None and traced.tokens_per_s > 0
    # fused attention: activations linear in the sequence, not s² scores
    assert traced.memory.activations_bytes < builtin.memory.activations_bytes
    attn = [op for op in gpt2.shape.ops if op.kind == "attention"]
    assert len(attn) == 12


def test_estimates_scale_with_batch(gpt2: Any) -> None:
    gpu = catalog().gpu("RTX 4090")
    small = estimate_train(gpt2, gpu, TrainConfig(batch_size=2, precision="bf16"))
    big = estimate_train(gpt2, gpu, TrainConfig(batch_size=16, precision="bf16"))
    assert big.memory.activations_bytes == pytest.approx(8 * small.memory.activations_bytes,
                                                         rel=0.01)
    assert big.samples_per_s >= small.samples_per_s


def test_frozen_parameters_have_no_optimizer_state() -> None:
    with torch.device("meta"):
        net = resnet50()
    for p in list(net.parameters())[:-2]:
        p.requires_grad_(False)
    traced = from_torch(net, (3, 224, 224), name="frozen backbone")
    assert traced.shape.trainable == 2048 * 1000 + 1000
    gpu = catalog().gpu("RTX 4090")
    est = estimate_train(traced, gpu, TrainConfig(batch_size=32, precision="bf16"))
    # AdamW: two fp32 moments per trainable parameter, none for the frozen backbone
    assert est.memory.optimizer_bytes == pytest.approx(traced.shape.trainable * 8, rel=0.01)


def test_a_module_with_weights_is_left_untouched() -> None:
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    traced = from_torch(net, (64,), name="mlp")
    assert traced.shape.params == 64 * 64 + 64 + 64 * 10 + 10
    assert all(p.device.type == "cpu" for p in net.parameters())


def test_bad_modules_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"nn\.Module"):
        from_torch("not a module", (3,), name="x")
    with pytest.raises(InputError, match="forward failed"):
        from_torch(nn.Linear(8, 8), (5,), name="wrong input")

    class Branchy(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x: Any) -> Any:
            return self.lin(x) if x.shape[0] % 2 else torch.relu(self.lin(x))

    with pytest.raises(UnsupportedError, match="control flow"):
        from_torch(Branchy(), (8,), name="branchy")
