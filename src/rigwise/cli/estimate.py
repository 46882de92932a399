"""``rigwise estimate train|infer``: memory and speed of one configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rigwise.cli.common import (
    CpuCoresOpt,
    DataLoaderOpt,
    EngineOpt,
    KvCacheOpt,
    console,
    gpu_by_name,
    model_by_name,
    print_json,
)
from rigwise.model.estimate import TrainConfig, estimate_train
from rigwise.model.infer import (
    InferConfig,
    estimate_infer,
    kv_cache_bytes_of,
    parse_concurrency,
)
from rigwise.model.train_config import bnb_saves_input
from rigwise.report.jsonout import infer_json, train_json
from rigwise.report.tables import infer_view, train_view

app = typer.Typer(help="Estimate memory and speed of training or inference.",
                  no_args_is_help=True)

ModelOpt = Annotated[str, typer.Option("--model", "-m",
                                       help="model id or name, or a config.json path")]
GpuOpt = Annotated[str, typer.Option("--gpu", "-g", help="GPU id or common name")]
GpusOpt = Annotated[int, typer.Option("--gpus", help="number of GPUs")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
PlotOpt = Annotated[Path | None, typer.Option(
    help="also draw the memory breakdown and the roofline to this file "
         "(.png, .svg, .html or .json)")]


@app.command("train")
def train(
    model: ModelOpt,
    gpu: GpuOpt,
    precision: Annotated[str, typer.Option(help="fp32, tf32, fp16, bf16 or fp8")] = "bf16",
    batch_size: Annotated[int, typer.Option(help="batch per GPU (samples)")] = 8,
    seq_len: Annotated[int | None, typer.Option(help="sequence length (tokens)")] = None,
    mean_seq_len: Annotated[int | None, typer.Option(
        help="variable-length data padded per batch (length bucketing): the mean padded "
             "sequence length; time follows it, peak memory --seq-len")] = None,
    gpus: GpusOpt = 1,
    task: Annotated[str, typer.Option(help="train, finetune, lora or qlora")] = "train",
    optimizer: Annotated[str, typer.Option(
        help="adamw, adamw8bit, paged_adamw8bit (bitsandbytes PagedAdamW8bit: states in CUDA "
             "managed memory, moved to host memory when the GPU is full) or sgd")] = "adamw",
    optimizer_impl: Annotated[str, typer.Option(
        help="optimizer step: fused (one kernel), foreach (multi-tensor ops), for-loop "
             "(torch foreach=False), transformers (HF AdamW + Trainer) or bertadam "
             "(DeepLearningExamples); loops cost CPU time per tensor")] = "fused",
    checkpointing: Annotated[bool | None, typer.Option(
        "--checkpointing/--no-checkpointing", help="activation checkpointing")] = None,
    grad_accum: Annotated[int, typer.Option(
        help="gradient accumulation: micro-batches per optimizer step")] = 1,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank (lora, qlora)")] = 16,
    lora_targets: Annotated[str | None, typer.Option(
        help="LoRA adapters on every linear layer (all) or on query and value only (qv); "
             "default qv for lora, all for qlora")] = None,
    lora_head: Annotated[bool, typer.Option(
        "--lora-head/--no-lora-head",
        help="a LoRA adapter on the output head too (LitGPT lora_head)")] = False,
    lora_dropout: Annotated[float, typer.Option(
        help="LoRA dropout probability (its mask and output are kept for backward)")] = 0.0,
    chunked_loss: Annotated[bool, typer.Option(
        "--chunked-loss/--no-chunked-loss",
        help="the loss upcasts logits to fp32 one token chunk at a time (torchtune)")] = False,
    nf4_double_quant: Annotated[bool, typer.Option(
        "--nf4-double-quant/--no-nf4-double-quant",
        help="QLoRA NF4 with double-quantised constants (bnb.nf4-dq) or without (bnb.nf4)")
    ] = True,
    memory_format: Annotated[str, typer.Option(
        help="CNN activations: channels_last (NHWC) or nchw (PyTorch's default; costs layout "
             "transposes on tensor cores)")] = "channels_last",
    fused_attention: Annotated[bool, typer.Option(
        "--fused-attention/--no-fused-attention",
        help="FlashAttention/SDPA, or eager attention with the scores in memory")] = True,
    autocast: Annotated[bool, typer.Option(
        "--autocast/--no-autocast",
        help="fp16/bf16 via torch.autocast over an fp32 model (HF Trainer fp16=True): norms "
             "and residual stream stay fp32")] = False,
    data_loader: DataLoaderOpt = "none",
    cpu_cores: CpuCoresOpt = None,
    master_weights: Annotated[bool, typer.Option(
        "--master-weights/--no-master-weights",
        help="fp32 master weights (mixed precision, AMP); --no-master-weights: pure bf16/fp16 "
             "weights, gradients and optimizer states (torchtune dtype: bf16)")] = True,
    optimizer_in_backward: Annotated[bool, typer.Option(
        "--optimizer-in-backward/--no-optimizer-in-backward",
        help="step each parameter as soon as its gradient is ready and free the gradient "
             "(torchtune optimizer_in_bwd): no full gradient buffer")] = False,
    framework: Annotated[str, typer.Option(
        help="whose layer code: generic (separate q, k, v projections: Hugging Face, "
             "torchtune) or litgpt (fused QKV; QLoRA through Lightning's bitsandbytes plugin, "
             "head included)")] = "generic",
    bitsandbytes: Annotated[str | None, typer.Option(
        help="QLoRA: your bitsandbytes version; before 0.43.2 its 4-bit matmul kept each "
             "frozen layer's input for backward (default: 0.43.2 or later)")] = None,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Estimate one training step: memory per GPU, step time, throughput, MFU."""
    if optimizer not in ("adamw", "adamw8bit", "paged_adamw8bit", "sgd"):
        from rigwise.errors import InputError
        raise InputError("--optimizer must be adamw, adamw8bit, paged_adamw8bit or sgd")
    m, g = model_by_name(model), gpu_by_name(gpu)
    cfg = TrainConfig(task=task, precision=precision, batch_size=batch_size, seq_len=seq_len,
                      optimizer=optimizer, checkpointing=checkpointing, lora_rank=lora_rank,
                      gpus=gpus, chunked_loss=chunked_loss, nf4_double_quant=nf4_double_quant,
                      memory_format=memory_format, data_loader=data_loader,
                      cpu_cores=cpu_cores, fused_attention=fused_attention,
                      autocast=autocast, lora_targets=lora_targets,
                      lora_dropout=lora_dropout, optimizer_impl=optimizer_impl,
                      master_weights=master_weights,
                      optimizer_in_backward=optimizer_in_backward, grad_accum=grad_accum,
                      framework=framework, lora_head=lora_head,
                      bnb_saves_input=bitsandbytes is not None
                      and bnb_saves_input(bitsandbytes), mean_seq_len=mean_seq_len)
    e = estimate_train(m, g, cfg)
    if plot is not None:
        from rigwise.report.charts import plot_estimate

        plot_estimate(train_json(e), plot, model=m, gpu=g, config=cfg)
    if as_json:
        print_json(train_json(e))
    else:
        console.print(train_view(e, g.name, m.name))


@app.command("infer")
def infer(
    model: ModelOpt,
    gpu: GpuOpt,
    weights: Annotated[str, typer.Option(help="f32, f16, bf16, fp8, int8, int4 or a GGUF type "
                                         "(q8_0, q6_k, q5_k_m, q4_k_m, q4_0, ...)")] = "bf16",
    batch_size: Annotated[int, typer.Option(help="concurrent sequences")] = 1,
    prompt_tokens: Annotated[int, typer.Option(help="prompt length (tokens)")] = 512,
    output_tokens: Annotated[int, typer.Option(help="generated tokens")] = 256,
    engine: EngineOpt = "generic",
    gpus: GpusOpt = 1,
    kv_cache: KvCacheOpt = "bf16",
    concurrency: Annotated[str | None, typer.Option(
        help="also estimate serving many requests with continuous batching: 'max' (as many "
             "sequences in flight as the KV cache and the engine allow) or a number")] = None,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Estimate serving: memory, prefill time and decode tokens/s; with --concurrency, the
    throughput of many requests at once."""
    m, g = model_by_name(model), gpu_by_name(gpu)
    cfg = InferConfig(weights=weights, batch_size=batch_size, prompt_tokens=prompt_tokens,
                      output_tokens=output_tokens, engine=engine, gpus=gpus,
                      kv_bytes=kv_cache_bytes_of(kv_cache), serve=concurrency is not None,
                      concurrency=parse_concurrency(concurrency))
    e = estimate_infer(m, g, cfg)
    if plot is not None:
        from rigwise.report.charts import plot_estimate

        plot_estimate(infer_json(e), plot, model=m, gpu=g, config=cfg)
    if as_json:
        print_json(infer_json(e))
    else:
        console.print(infer_view(e, g.name, m.name))
