"""Count the ops eager PyTorch dispatches for one Hugging Face BERT training micro-batch, on CPU.

Not part of the test suite: it needs ``transformers==4.27.2`` (the version of the Hugging Face
page the ``hf-docs-bert-large-*`` validation rows come from) and ``torch==2.13.0`` (CPU)::

    python -m venv /tmp/hf && /tmp/hf/bin/pip install torch==2.13.0 transformers==4.27.2
    /tmp/hf/bin/python benchmarks/hf_host_ops.py

Why. In eager PyTorch the host issues every op: Python, the dispatcher and, on CUDA, the kernel
launch. When the GPU finishes a micro-batch's kernels sooner than the host can issue them, the
host sets the pace. PyTorch PR #45299 measured about 17 us of host time per eager op
(``docs/method.md`` §4); this script counts the ops. Which ops a step dispatches does not
depend on the device or on tensor sizes, so a small BERT (hidden 64, 4 heads) is counted with
2 and with 3 layers, the difference being one layer. ``torch.autocast`` runs on CPU in bf16
where Hugging Face's ``fp16=True`` runs CUDA autocast in fp16; both cast the inputs and weights
of every linear layer and matmul, which is where the counts differ from fp32.

Output: per layer and outside the layers, the ops of the forward pass (issued from Python) and
of the backward pass (issued by the autograd engine, with checkpointing's recomputed forward),
split into ops that launch a kernel on CUDA and view/metadata ops that do not.
"""

from __future__ import annotations

import collections
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

NO_KERNEL = {"view", "_unsafe_view", "t", "transpose", "permute", "expand", "slice", "select",
             "unsqueeze", "squeeze", "as_strided", "alias", "detach", "reshape", "split",
             "unbind", "_reshape_alias", "lift_fresh", "empty", "empty_like", "new_empty",
             "new_empty_strided"}
"""Ops that only make a view or allocate without writing: no kernel on CUDA."""


class _Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def _split(ops: collections.Counter[str]) -> tuple[int, int]:
    kernels = sum(n for op, n in ops.items() if op not in NO_KERNEL)
    return kernels, sum(ops.values()) - kernels


def count(layers: int, autocast: bool, checkpointing: bool) -> tuple[tuple[int, int],
                                                                     tuple[int, int]]:
    """(kernel ops, other ops) of the forward and of the backward pass of one micro-batch."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=64, num_attention_heads=4, intermediate_size=256,
                     num_hidden_layers=layers, num_labels=2)
    model = BertForSequenceClassification(cfg).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    ids, labels = torch.randint(0, 1000, (1, 32)), torch.tensor([1])
    mask = torch.ones(1, 32, dtype=torch.long)
    model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()  # warm-up
    model.zero_grad(set_to_none=True)
    fwd, bwd = _Count(), _Count()
    with fwd, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    with bwd:
        loss.backward()
    return _split(fwd.ops), _split(bwd.ops)


def main() -> None:
    import transformers

    print(f"# transformers {transformers.__version__}, torch {torch.__version__}, CPU; "
          "BertForSequenceClassification, eager attention")
    for autocast, ckpt in ((False, False), (True, False), (True, True)):
        (f2, b2), (f3, b3) = count(2, autocast, ckpt), count(3, autocast, ckpt)
        layer = [f3[i] - f2[i] for i in (0, 1)] + [b3[i] - b2[i] for i in (0, 1)]
        outside = [f2[0] - 2 * layer[0], f2[1] - 2 * layer[1],
                   b2[0] - 2 * layer[2], b2[1] - 2 * layer[3]]
        print(f"autocast={autocast} checkpointing={ckpt}: per layer forward {layer[0]} "
              f"kernel + {layer[1]} other ops, backward {layer[2]} + {layer[3]}; outside "
              f"the layers forward {outside[0]} + {outside[1]}, backward "
              f"{outside[2]} + {outside[3]}")


if __name__ == "__main__":
    main()
