"""The suites on the CPU at tiny sizes: real work, counted right, raw samples kept."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from rigwise.bench.launch import run_distributed, slurm_env, srun_command, torchrun_command
from rigwise.bench.suites import BenchContext, TorchMissingError, gemm, import_torch, memory, models
from rigwise.bench.suites.collectives import bus_factor, busbw
from rigwise.bench.suites.scaling import efficiency

pytestmark = pytest.mark.torch


def test_gemm_counts_2mnk_and_skips_cuda_modes(cpu_ctx: BenchContext) -> None:
    cpu_ctx.precisions = ("fp32", "tf32", "int8")
    ms = gemm.run(cpu_ctx)
    assert {m.params["precision"] for m in ms} == {"fp32", "int8"}
    assert any("tf32" in n and "CUDA" in n for n in cpu_ctx.notes)
    for m in ms:
        p = m.params
        assert m.work == 2 * p["m"] * p["n"] * p["k"]
        assert m.timer == "perf_counter" and len(m.samples_s) == 3 and m.value > 0
        assert p["device"] == "cpu" and p["l2_flush"] is False
    best = gemm.summarise(ms)["fp32"]
    assert best["best_flop_per_s"] >= best["typical_flop_per_s"] > 0


def test_memory_copy_counts_read_and_write(cpu_ctx: BenchContext) -> None:
    ms = memory.run(cpu_ctx)
    copy = next(m for m in ms if m.kind == "memory_copy")
    assert copy.work == 2 * copy.params["bytes"]
    assert {m.kind for m in ms} == {"memory_copy", "memory_read"}
    assert any("host<->device" in n for n in cpu_ctx.notes)


def test_model_steps_run_on_cpu(cpu_ctx: BenchContext) -> None:
    ms = models.run(cpu_ctx)
    kinds = {m.kind: m for m in ms}
    assert set(kinds) == {"train_step", "attention", "decode"}
    resnet = next(m for m in ms if m.params.get("model") == "resnet50")
    assert resnet.metric == "samples_per_s" and resnet.work == 2
    gpt = next(m for m in ms if m.kind == "train_step" and m.params["model"] == "tiny")
    assert gpt.work == 2 * 32 and gpt.metric == "tokens_per_s"
    att = kinds["attention"]
    assert att.work == 4 * 1 * 2 * 64 * 64 * 32 / 2


def test_benchmark_nets_match_rigwise_shapes(torch: Any) -> None:
    from rigwise.bench.suites.nets import Gpt, cnn_module
    from rigwise.workload.cnn import resnet
    from rigwise.workload.models import get_model
    from rigwise.workload.params import count_params

    with torch.device("meta"):
        net = cnn_module(resnet(50))
        gpt2 = Gpt(get_model("gpt2").shape)  # type: ignore[arg-type]
    assert sum(p.numel() for p in net.parameters()) == 25_557_032  # torchvision ResNet-50
    assert sum(p.numel() for p in gpt2.parameters()) == count_params(
        get_model("gpt2").shape).total == 124_439_808  # type: ignore[arg-type]


def test_decode_step_matches_full_forward(torch: Any) -> None:
    from rigwise.bench.suites.models import TINY_GPT
    from rigwise.bench.suites.nets import Gpt

    torch.manual_seed(0)
    net = Gpt(TINY_GPT).eval()
    ids = torch.randint(0, TINY_GPT.vocab, (1, 6))
    cache = net.new_cache(1, 6, dtype=torch.float32, device="cpu")
    with torch.inference_mode():
        full = net(ids)[:, -1]
        for pos in range(6):
            last = net.decode_step(ids[:, pos:pos + 1], cache, pos)
    assert torch.allclose(full, last, atol=1e-4)


def test_bus_factors_are_nccl_tests() -> None:
    assert bus_factor("all_reduce", 8) == pytest.approx(1.75)
    assert bus_factor("all_gather", 8) == pytest.approx(0.875)
    assert bus_factor("reduce_scatter", 4) == pytest.approx(0.75)
    assert bus_factor("all_reduce", 1) == 0.0
    with pytest.raises(ValueError):
        bus_factor("broadcast", 2)


def test_collectives_two_ranks_with_torchrun_and_gloo() -> None:
    ms, _ = run_distributed("collectives", 2, size="tiny", device="cpu", quick=True,
                            timeout_s=120)
    assert {m.params["op"] for m in ms} == {"all_reduce", "all_gather", "reduce_scatter"}
    for m in ms:
        assert m.params["ranks"] == 2 and m.params["backend"] == "gloo"
        factor = 1.0 if m.params["op"] == "all_reduce" else 0.5
        assert busbw(m) == pytest.approx(m.value * factor)
        assert m.value == pytest.approx(m.work / m.stats.median_s)


def test_scaling_in_one_process(torch: Any, tmp_path: Any) -> None:
    import torch.distributed as dist

    from rigwise.bench.suites import scaling
    from rigwise.bench.timer import QUICK

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        ms = scaling.run(BenchContext(torch=torch, device="cpu", size="tiny", timer=QUICK))
    finally:
        dist.destroy_process_group()
    assert ms[0].params["ranks"] == 1 and ms[0].work == 2 * 32
    assert efficiency(ms) == {1: pytest.approx(1.0)}


def test_launch_commands_use_torchrun_and_srun(tmp_path: Any) -> None:
    cmd = torchrun_command("scaling", 4, size="full", device="cuda", out=tmp_path / "o.json")
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=4" in cmd and "rigwise.bench.launch" in cmd
    srun = srun_command("collectives", 2, 8, size="full", out=tmp_path / "o.json")
    assert srun[:4] == ["srun", "--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8"]


def test_slurm_task_environment_maps_to_torch_distributed() -> None:
    env = {"SLURM_PROCID": "9", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1",
           "MASTER_ADDR": "node001"}
    got = slurm_env(env)
    assert (got["RANK"], got["WORLD_SIZE"], got["LOCAL_RANK"], got["MASTER_ADDR"]) == (
        "9", "16", "1", "node001")
    assert slurm_env({"RANK": "0", "SLURM_PROCID": "3"}) == {}


def test_missing_torch_is_said_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(TorchMissingError, match="pip install"):
        import_torch()
