"""The hardware catalog: every file valid and sourced, invariants, datasheet anchors, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigwise.catalog.load import DATA_DIR, catalog, check_file, parse_file
from rigwise.catalog.schema import GpuFile, Sourced
from rigwise.errors import UnknownNameError

GPU_FILES = sorted((DATA_DIR / "gpus").glob("*.toml"))
ALL_FILES = sorted(p for k in ("gpus", "cpus", "prices", "interconnects")
                   for p in (DATA_DIR / k).glob("*.toml"))

REQUIRED = [
    "nvidia-gtx-1060-6gb", "nvidia-gtx-1080-ti", "nvidia-rtx-2080-ti", "nvidia-rtx-3090",
    "nvidia-rtx-4090", "nvidia-rtx-5090", "nvidia-quadro-rtx-8000", "nvidia-rtx-a6000",
    "nvidia-rtx-6000-ada", "nvidia-rtx-pro-6000-blackwell", "nvidia-tesla-k80",
    "nvidia-p100-pcie-16gb", "nvidia-v100-sxm2-32gb", "nvidia-t4", "nvidia-a10", "nvidia-a30",
    "nvidia-a40", "nvidia-a100-pcie-40gb", "nvidia-a100-sxm4-80gb", "nvidia-l4", "nvidia-l40s",
    "nvidia-h100-pcie-80gb", "nvidia-h100-sxm5-80gb", "nvidia-h100-nvl-94gb",
    "nvidia-h200-sxm-141gb", "nvidia-gh200-96gb", "nvidia-b200-180gb", "nvidia-jetson-tx2",
    "nvidia-jetson-agx-orin-64gb", "amd-mi250x", "amd-mi300x", "amd-mi325x", "amd-rx-7900-xtx",
    "intel-gaudi-2", "intel-gaudi-3", "google-tpu-v4", "google-tpu-v5e", "google-tpu-v5p",
    "google-tpu-v6e", "apple-m2-ultra", "apple-m3-max", "apple-m4-max",
]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_catalog_file_validates(path: Path) -> None:
    assert check_file(path) == []


@pytest.mark.parametrize("path", GPU_FILES, ids=lambda p: p.stem)
def test_every_gpu_value_has_a_dated_source(path: Path) -> None:
    f = parse_file(path)
    assert isinstance(f, GpuFile)
    for name, item in f.specs:
        if isinstance(item, Sourced):
            src = f.sources[item.source]
            assert src.url.startswith("http"), f"{name}: {src.url}"
            assert src.as_of.year >= 2010


def test_catalog_has_at_least_70_accelerators_and_the_required_ones() -> None:
    gpus = catalog().gpus
    assert len(gpus) >= 70
    assert [g for g in REQUIRED if g not in gpus] == []


def test_cpus_and_interconnects() -> None:
    c = catalog()
    assert len(c.cpus) >= 15
    assert all(cpu.pcie_lanes > 0 and cpu.cores > 0 for cpu in c.cpus.values())
    assert {"pcie", "nvlink", "infiniband", "ethernet"} <= set(c.interconnects)
    pcie = {g.name: g for g in c.interconnects["pcie"].generation}
    gen4 = next(g for n, g in pcie.items() if "4" in n)
    assert gen4.per == "lane"
    assert gen4.gb_per_s_per_direction == pytest.approx(1.969, rel=0.01)


@pytest.mark.parametrize("gpu", catalog().gpus.values(), ids=lambda g: g.id)
def test_physical_invariants(gpu) -> None:  # type: ignore[no-untyped-def]
    assert gpu.memory_bandwidth_bytes_per_s > 0
    assert gpu.memory_bytes > 0
    assert gpu.sparsity_factor >= 1.0
    for p, peak in gpu.peak_flop_per_s.items():
        assert peak > 0, p
        assert peak * gpu.sparsity_factor >= peak
    if gpu.scaleup_fabric != "none":
        assert (gpu.scaleup_bytes_per_s_per_direction or 0) > 0
    for obs in gpu.prices:
        assert (obs.usd or obs.usd_per_h or 0) > 0


# Datasheet anchors (dense peaks), shared/research/hw-data.md §5, from NVIDIA's H100 and A100
# datasheets and the Ada whitepaper appendix; T4 datasheet; AMD MI300X data sheet.
ANCHORS = [
    ("nvidia-h100-sxm5-80gb", "bf16", 989.4e12, 3350e9, 700),
    ("nvidia-a100-sxm4-80gb", "bf16", 312e12, 2039e9, 400),
    ("nvidia-rtx-4090", "bf16", 165.2e12, 1008e9, 450),
    ("nvidia-rtx-3090", "fp16", 71e12, 936e9, 350),
    ("nvidia-t4", "fp16", 65e12, 320e9, 70),
    ("amd-mi300x", "bf16", 1307.4e12, 5300e9, 750),
]


@pytest.mark.parametrize(("gid", "precision", "peak", "bandwidth", "tdp"), ANCHORS)
def test_datasheet_anchors(gid: str, precision: str, peak: float, bandwidth: float,
                           tdp: float) -> None:
    g = catalog().gpus[gid]
    assert g.peak(precision) == pytest.approx(peak, rel=0.01)
    assert g.memory_bandwidth_bytes_per_s == pytest.approx(bandwidth, rel=0.02)
    assert g.tdp_w == pytest.approx(tdp, rel=0.01)


@pytest.mark.parametrize(("gid", "gib", "bandwidth", "fp32", "tdp", "launch"), [
    # AnandTech, Tesla K80 launch (2014-11-17): per GK210 12 GB, 240 GB/s, 4.37 TFLOPS fp32,
    # half of the 300 W board and of its $5,000 launch price.
    ("nvidia-tesla-k80", 12, 240e9, 4.37e12, 150, 2500),
    # AMD CDNA 2 white paper: per GCD 64 GB, 1.6384 TB/s, 23.95 TFLOPS vector fp32; ROCm: 560 W.
    ("amd-mi250x", 64, 1638.4e9, 23.95e12, 280, 7250),
])
def test_two_device_boards_are_one_gpu_per_device(gid: str, gib: float, bandwidth: float,
                                                  fp32: float, tdp: float,
                                                  launch: float) -> None:
    # CUDA/ROCm and clouds count one GK210 or one GCD as one GPU; so does every estimate
    g = catalog().gpus[gid]
    assert g.devices_per_board == 2
    assert g.memory_bytes == pytest.approx(gib * 2**30)
    assert g.memory_bandwidth_bytes_per_s == pytest.approx(bandwidth)
    assert g.peak("fp32") == pytest.approx(fp32, rel=0.005)
    assert g.tdp_w == pytest.approx(tdp)
    price = g.purchase_price_usd("new")
    assert price is not None and price[0] == pytest.approx(launch)
    assert "1/2 of a 2-device board" in price[1]


def test_dense_and_sparse_kept_apart() -> None:
    h100 = catalog().gpus["nvidia-h100-sxm5-80gb"]
    # the datasheet headline 1,979 TFLOPS bf16 is the 2:4-sparse figure
    assert h100.peak("bf16") * h100.sparsity_factor == pytest.approx(1979e12, rel=0.01)


@pytest.mark.parametrize(("name", "gid"), [
    ("rtx-4090", "nvidia-rtx-4090"),
    ("RTX 4090", "nvidia-rtx-4090"),
    ("NVIDIA GeForce RTX 4090", "nvidia-rtx-4090"),
    ("A100 SXM4 80GB", "nvidia-a100-sxm4-80gb"),
    ("NVIDIA A100-SXM4-80GB", "nvidia-a100-sxm4-80gb"),
    ("H100 PCIe", "nvidia-h100-pcie-80gb"),
])
def test_names_resolve(name: str, gid: str) -> None:
    assert catalog().gpu(name).id == gid


def test_ambiguous_name_lists_candidates() -> None:
    with pytest.raises(UnknownNameError) as err:
        catalog().gpu("A100")
    assert len(err.value.candidates) >= 2
    assert all("a100" in c for c in err.value.candidates)


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        catalog().gpu("RTX 4099")
    assert "nvidia-rtx-4090" in err.value.candidates


def test_prices_known_for_the_advice_markets() -> None:
    gpus = catalog().gpus.values()
    assert sum(1 for g in gpus if g.cloud_price_usd_per_h()) >= 15
    assert sum(1 for g in gpus if g.purchase_price_usd("used")) >= 10
    assert sum(1 for g in gpus if g.purchase_price_usd("new")) >= 40
