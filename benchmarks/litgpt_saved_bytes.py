"""Measure what LitGPT's LoRA/QLoRA training step keeps in memory, on CPU, layer by layer.

Not part of the test suite: it needs ``litgpt``, ``bitsandbytes`` and ``torch==2.13.0`` (CPU)
in an environment of their own, e.g.::

    python -m venv /tmp/lg && /tmp/lg/bin/pip install torch==2.13.0 litgpt==0.5.13 \
        bitsandbytes==0.50.2
    /tmp/lg/bin/python benchmarks/litgpt_saved_bytes.py \
        > tests/validation/calibration/litgpt_saved_bytes.toml

Method. Autograd decides what a step keeps the same way on every device, so the bytes a
layer keeps for backward can be counted on CPU. A ``TorchDispatchMode`` sees every tensor an
op creates and follows its storage with a weak reference until it is freed, giving the bytes
alive at each moment (allocations only: the model's own weights are not counted). The model
is built twice, with 2 and with 3 layers of the real shape (litgpt's ``Config.from_name``);
the difference of the bytes alive after the forward pass is one layer's kept activations;
the 2-layer figure minus twice that is what lies outside the layers (logits, loss). Two
iterations in LitGPT's loop pattern (``logits`` and ``loss`` reassigned each step, as in
``litgpt/finetune/lora.py``'s ``fit``) show what the previous micro-batch still holds.

Two things differ from CUDA: the dropout mask is a 16-bit tensor on CPU (``x * noise``)
where CUDA's ``native_dropout`` keeps a 1-byte bool mask; and bitsandbytes' CPU 4-bit matmul
does not dequantise the whole weight in the forward pass. Bitsandbytes before 0.43.2
(``MatMul4Bit.forward``: ``ctx.tensors = (A, B)``, 0.42.0 ``autograd/_functions.py`` line 523)
is reproduced by setting ``ctx.tensors`` back to ``(A, B)`` after the current forward.
"""

from __future__ import annotations

import datetime
import platform
import sys
import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """Bytes of the storages created by ops inside the mode that are still alive, and their
    peak. ``known``: tensors that existed before (weights), whose views are not counted."""

    def __init__(self, known: list[torch.Tensor]) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.sizes: dict[int, int] = {t.untyped_storage()._cdata: 0 for t in known}

    def _free(self, key: int, n: int) -> None:
        self.live -= n
        self.sizes.pop(key, None)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            key, n = st._cdata, st.nbytes()
            if key in self.sizes or n == 0:
                continue
            self.sizes[key] = n
            self.live += n
            weakref.finalize(st, self._free, key, n)
            self.peak = max(self.peak, self.live)
        return out


def _keep_inputs_as_before_0_43_2() -> None:
    from bitsandbytes.autograd import _functions as bnb_functions

    current = bnb_functions.MatMul4Bit.forward

    def forward(ctx: Any, a: Any, b: Any, out: Any = None, bias: Any = None,
                quant_state: Any = None) -> Any:
        result = current(ctx, a, b, out, bias, quant_state)
        if any(ctx.needs_input_grad[:2]):
            ctx.tensors = (a, b)  # the input A and the 4-bit weight B, as before 0.43.2
        return result

    bnb_functions.MatMul4Bit.forward = staticmethod(forward)


def _model(name: str, layers: int, seq: int, quantize: bool,
           every_layer: bool) -> tuple[Any, Any]:
    import bitsandbytes as bnb
    import litgpt.lora as lora
    from lightning.fabric.plugins import BitsandbytesPrecision

    # config_hub/finetune/*/lora.yaml: r 32, alpha 16, dropout 0.05 on query and value, or
    # (tiny-llama) on every linear layer and the head
    cfg = lora.Config.from_name(name, n_layer=layers, lora_r=32, lora_alpha=16,
                                lora_dropout=0.05, lora_query=True, lora_key=every_layer,
                                lora_value=True, lora_projection=every_layer,
                                lora_mlp=every_layer, lora_head=every_layer)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    model = lora.GPT(cfg)
    torch.set_default_dtype(torch.float32)
    model.max_seq_length = seq
    if quantize:  # Lightning's plugin: every nn.Linear to NF4, quantised from float16
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        model = BitsandbytesPrecision("nf4", torch.bfloat16).convert_module(model)
        for mod_name, mod in model.named_modules():
            if isinstance(mod, bnb.nn.Linear4bit):
                w = weights[mod_name + ".weight"].to(torch.half)
                mod.weight = bnb.nn.Params4bit(w, requires_grad=False, quant_type="nf4",
                                               compress_statistics=False)._quantize("cpu")
    lora.mark_only_lora_as_trainable(model)
    return model, cfg


def measure(name: str, layers: int, batch: int, seq: int, quantize: bool,
            every_layer: bool) -> dict[str, float]:
    """Bytes alive after each forward and the peaks, over two iterations of LitGPT's loop."""
    import bitsandbytes as bnb
    from litgpt.utils import chunked_cross_entropy

    model, cfg = _model(name, layers, seq, quantize, every_layer)
    known = [*model.parameters(), *model.buffers()]
    known += [m.weight for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, cfg.vocab_size, (batch, seq))
    y = torch.randint(0, cfg.vocab_size, (batch, seq))
    mode = LiveBytes(known)
    out: dict[str, float] = {}
    with mode:
        for it in range(2):
            mode.peak = mode.live
            logits = model(x, lm_head_chunk_size=128)
            logits[-1] = logits[-1][..., :-1, :]
            loss = chunked_cross_entropy(logits, y[..., 1:])
            out[f"after_forward_{it}"] = mode.live
            out[f"forward_peak_{it}"] = mode.peak
            loss.backward()
            out[f"step_peak_{it}"] = mode.peak
            opt.step()
            opt.zero_grad()
    return out


CASES = (  # task, litgpt model, quantised, bitsandbytes before 0.43.2, every layer + head
    ("lora", "Llama-2-7b-hf", False, False, False),
    ("lora", "Mistral-7B-v0.1", False, False, False),
    ("qlora", "Llama-2-7b-hf", True, False, False),
    ("lora-all-head", "tiny-llama-1.1b", False, False, True),
    ("qlora-all-head-bnb-before-0.43.2", "tiny-llama-1.1b", True, True, True),
    ("qlora-bnb-before-0.43.2", "Llama-2-7b-hf", True, True, False),  # last: it patches bnb
)


def main() -> None:
    from importlib.metadata import version

    batch, seq = 2, 512
    today = datetime.date.today().isoformat()
    print("# LitGPT LoRA/QLoRA training step: bytes kept per layer and outside the layers,")
    print("# measured on CPU by benchmarks/litgpt_saved_bytes.py (its docstring gives the method).")
    print(f"# litgpt {version('litgpt')}, bitsandbytes {version('bitsandbytes')}, "
          f"lightning {version('lightning')}, torch {torch.__version__}, "
          f"Python {platform.python_version()}, {platform.machine()} CPU; {today}")
    print("# LoRA r 32 alpha 16 dropout 0.05 on query and value (-all-head: every linear layer "
          f"and the head), bf16 weights, batch {batch} x {seq} tokens, lm_head_chunk_size 128 "
          "(litgpt finetune_lora).\n")
    only = sys.argv[1:]  # task names to run (all when none)
    patched = False
    for task, name, quantize, before, every_layer in CASES:
        if only and task not in only:
            continue
        if before and not patched:
            _keep_inputs_as_before_0_43_2()
            patched = True
        elif patched and not before:
            raise SystemExit("bitsandbytes is patched: run the cases before 0.43.2 last")
        two = measure(name, 2, batch, seq, quantize, every_layer)
        three = measure(name, 3, batch, seq, quantize, every_layer)
        per_layer = three["after_forward_0"] - two["after_forward_0"]
        print("[[case]]")
        print(f'task = "{task}"')
        print(f'model = "{name}"')
        print(f"batch_size = {batch}\nseq_len = {seq}")
        print(f"per_layer_bytes = {per_layer}")
        print(f'outside_layers_bytes = {two["after_forward_0"] - 2 * per_layer}')
        print(f'backward_transient_bytes = {three["step_peak_0"] - three["after_forward_0"]}')
        held = three["forward_peak_1"] - three["forward_peak_0"]
        print(f"previous_micro_batch_bytes_3_layers = {held}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
