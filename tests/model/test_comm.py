"""Collectives on system tiers: ring/tree formulas, busbw, hierarchy, overlap, compression."""

from __future__ import annotations

import math

import pytest

from rigwise.catalog.systems import builtin_systems, get_system
from rigwise.errors import ConfigFileError, InputError, UnknownNameError
from rigwise.model import comm
from rigwise.model.comm import Group, bus_factor, collective_time


def test_every_builtin_system_loads_with_sources() -> None:
    systems = builtin_systems()
    assert {"dgx-a100", "dgx-h100", "gb200-nvl72", "tpu-v5p-pod", "mi300x-platform",
            "workstation-4x-rtx-4090", "pcie-server-4x-a100", "pcie-server-8x-a100",
            "dgx-h100-superpod"} <= set(systems)
    for s in systems.values():
        assert s.provenance and all(k in s.sources for k in s.provenance.values())


def test_ring_all_reduce_matches_alpha_beta_formula() -> None:
    s = get_system("dgx-h100")
    size = 1e9
    t = collective_time("all_reduce", size, s, Group(8, 8), algorithm="ring")
    bw = 450e9 * 0.81
    expected = 2 * 7 * 5e-6 + 2 * 7 / 8 * size / bw
    assert t.time_s == pytest.approx(expected, rel=1e-9)
    # nccl-tests: busbw = algbw * 2(n-1)/n, and equals the tier's achievable rate here
    assert t.busbw_bytes_per_s == pytest.approx(bw, rel=0.02)  # less the latency term


@pytest.mark.parametrize(("op", "factor"), [("all_reduce", 2 * 7 / 8), ("all_gather", 7 / 8),
                                            ("reduce_scatter", 7 / 8), ("send_recv", 1.0)])
def test_bus_factor_is_nccl_tests_definition(op: comm.Collective, factor: float) -> None:
    assert bus_factor(op, 8) == pytest.approx(factor)


def test_tree_wins_small_messages_ring_ties_large_ones() -> None:
    s = get_system("dgx-h100-superpod")
    small = collective_time("all_reduce", 1e4, s, Group(1024, 8))
    assert small.algorithm == "tree"
    ring = collective_time("all_reduce", 1e4, s, Group(1024, 8), algorithm="ring")
    assert ring.time_s > 10 * small.time_s  # 2(n-1) latency steps vs 2 log2 n


def test_crossing_nodes_is_bound_by_the_nics() -> None:
    s = get_system("dgx-a100")
    inside = collective_time("all_reduce", 1e9, s, Group(8, 8)).time_s
    across = collective_time("all_reduce", 1e9, s, Group(16, 8)).time_s
    one_rail = collective_time("all_reduce", 1e9, s, Group(16, 1)).time_s
    assert across > inside
    assert one_rail > 5 * across  # one GPU per node only has its own 200 Gb/s rail


def test_no_p2p_halves_pcie_bandwidth() -> None:
    ws = get_system("workstation-4x-rtx-4090")
    server = get_system("pcie-server-4x-a100")
    t_ws = collective_time("all_reduce", 1e9, ws, Group(4, 4)).time_s
    t_srv = collective_time("all_reduce", 1e9, server, Group(4, 4)).time_s
    assert t_ws / t_srv == pytest.approx(2 * 0.75 / 0.8, rel=0.05)


def test_mesh_pair_gets_one_link_nvswitch_pair_gets_all() -> None:
    mi = get_system("mi300x-platform")
    pair = collective_time("all_reduce", 1e9, mi, Group(2, 2)).busbw_bytes_per_s
    eight = collective_time("all_reduce", 1e9, mi, Group(8, 8)).busbw_bytes_per_s
    assert eight / pair == pytest.approx(7, rel=0.05)


def test_group_across_nodes_without_network_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no network"):
        collective_time("all_reduce", 1e6, get_system("mi300x-platform"), Group(16, 8))


def test_bad_sizes_and_names() -> None:
    s = get_system("dgx-h100")
    with pytest.raises(InputError):
        collective_time("all_reduce", -1.0, s, Group(8, 8))
    with pytest.raises(InputError):
        collective_time("broadcast", 1.0, s, Group(8, 8))  # type: ignore[arg-type]
    assert collective_time("all_reduce", 1e6, s, Group(1, 1)).time_s == 0.0
    with pytest.raises(UnknownNameError):
        get_system("dgx-z9000")


def test_user_system_file(tmp_path: object) -> None:
    from pathlib import Path
    assert isinstance(tmp_path, Path)
    src = (Path(__file__).parents[2] / "src/rigwise/catalog/data/systems/dgx-a100.toml")
    mine = tmp_path / "mine.toml"
    mine.write_text(src.read_text().replace('id = "dgx-a100"', 'id = "my-box"'))
    assert get_system(str(mine)).gpus_per_node == 8
    bad = tmp_path / "bad.toml"
    bad.write_text(src.read_text().replace('source = "hgx-a100-blog"', 'source = "nope"'))
    with pytest.raises(ConfigFileError, match="unknown source"):
        get_system(str(bad))
    with pytest.raises(ConfigFileError):
        get_system(str(tmp_path / "missing.toml"))


def test_overlap_and_prefetch() -> None:
    assert comm.exposed_time(1.0, 2.0, 0.8) == pytest.approx(0.0)
    assert comm.exposed_time(1.0, 0.5, 0.8) == pytest.approx(0.6)
    assert comm.exposed_time(1.0, 10.0, 0.8, tail_s=0.1) == pytest.approx(0.1)
    # first layer's gather exposed, the rest hidden behind compute
    assert comm.prefetch_exposed(0.01, 0.05, 10, 0.8) == pytest.approx(0.01)
    assert comm.prefetch_exposed(0.1, 0.05, 10, 0.8) == pytest.approx(0.1 + 9 * 0.06)


def test_8bit_compression_quarters_fp32_bytes_but_costs_kernels() -> None:
    wire = comm.compressed_bytes(4e9, 4.0)
    assert wire == pytest.approx(1e9 * (1 + 4 / 256))
    assert comm.compression_overhead_s(4e9, 4.0, 1e12, 8) > 0
    assert math.isclose(comm.compression_overhead_s(4e9, 4.0, 1e12, 1), 0.0)


def test_dgx1_cube_mesh_uses_every_link_only_at_eight_gpus() -> None:
    """DGX-1 whitepapers: 6 NVLink 2 links of 25 GB/s (V100), 4 NVLink 1 links of 20 GB/s
    (P100) per GPU; three (two) edge-disjoint 8-GPU rings use them all, a pair shares one."""
    v, p = get_system("dgx-1-v100").intra, get_system("dgx-1-p100").intra
    assert v.busbw(8) == pytest.approx(6 * 25e9 * v.efficiency)
    assert v.busbw(2) == pytest.approx(25e9 * v.efficiency)
    assert p.busbw(8) == pytest.approx(4 * 20e9 * p.efficiency)
    assert p.busbw(4) == pytest.approx(3 * 20e9 * p.efficiency)
    assert v.busbw(2) < v.busbw(4) < v.busbw(8)


def test_dgx1_all_reduce_sits_between_nvswitch_and_pcie() -> None:
    """1 GB all-reduce on 8 GPUs: the cube mesh (120 GB/s busbw) is slower than a DGX A100's
    NVSwitch (243 GB/s) and faster than 8 PCIe 4.0 cards (24 GB/s)."""
    g = Group(size=8, per_node=8)
    t = {s: collective_time("all_reduce", 1e9, get_system(s), g).time_s
         for s in ("dgx-a100", "dgx-1-v100", "pcie-server-8x-a100")}
    assert t["dgx-a100"] < t["dgx-1-v100"] < t["pcie-server-8x-a100"]


def test_hgx_4gpu_mesh_gives_a_pair_one_bundle() -> None:
    """XE8545 / HGX A100 4-GPU: 12 NVLink 3 links, 4 to each peer: a pair has 100 GB/s per
    direction, a 4-GPU ring all 300 (A100 whitepaper)."""
    t = get_system("XE8545").intra
    assert t.busbw(4) == pytest.approx(3 * t.busbw(2))
    assert t.busbw(4) == pytest.approx(300e9 * 0.81)
