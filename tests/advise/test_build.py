"""Whole-machine plans and parts-list checks against the hardware guide's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigwise.advise.build import (
    OVERSIZED_RAM_RATIO,
    Feed,
    cores_needed,
    cpu_platform,
    gpu_slots_at_x8,
    lanes_needed,
    pick_ram_kit,
    plan_build,
)
from rigwise.advise.check import check_parts, load_parts_list
from rigwise.advise.power import limit_to_fit, size_psu, speed_at_power
from rigwise.catalog.load import catalog
from rigwise.catalog.parts import Motherboard, RamKit, parts
from rigwise.errors import ConfigFileError, InputError, UnknownNameError
from rigwise.units import GIB


def test_psu_reproduces_dettmers_worked_example() -> None:
    # Dettmers (2018), PSU section: "4 GPUs with each 250 watts TDP and a CPU with 150 watts
    # TDP ... 4x250 + 150 + 100 = 1250 watts ... another 10% ... 1375 Watts ... a 1400 watts PSU"
    s = size_psu([250.0] * 4, 150.0)
    assert s.sustained_w == 1250.0
    assert s.required_w == pytest.approx(1375.0)
    assert s.recommended_w == 1400.0


def test_psu_spike_counts_only_16pin_cards_three_times() -> None:
    s = size_psu([450.0], 105.0, spiking_w=450.0)
    assert s.spike_w == pytest.approx(3 * 450 + 105 + 100)


def test_power_limit_curve_is_sourced_and_bounded() -> None:
    assert speed_at_power(1.0) == 1.0
    assert speed_at_power(0.8) == pytest.approx(0.95)  # Puget: 280/350 W keeps > 95 %
    assert speed_at_power(0.5) is None  # no sourced figure below 60 %
    lim = limit_to_fit(350.0, 4, 150.0, 1600.0)
    assert lim is not None
    assert 0.8 < lim.fraction < 0.9 and 0.95 < lim.speed_kept < 1.0
    # the limited machine meets the guide's rule on the 1600 W PSU
    assert size_psu([lim.per_gpu_w] * 4, 150.0).required_w == pytest.approx(1600.0)


@pytest.mark.parametrize(("n", "data", "cores", "lanes"), [
    (1, "on-the-fly", 2, 16), (4, "on-the-fly", 8, 32), (4, "preprocessed", 4, 32)])
def test_cpu_needs_follow_the_guide(n: int, data: str, cores: int, lanes: int) -> None:
    assert cores_needed(n, data) == cores
    assert lanes_needed(n) == lanes


def test_single_4090_plan_meets_every_rule_and_totals_its_prices() -> None:
    gpu = catalog().gpu("RTX 4090")
    plan = plan_build(gpu, 1)
    by = {c.part: c for c in plan.choices}
    assert plan.unpriced == ()
    assert plan.total_usd == pytest.approx(sum(c.price_usd * c.quantity for c in plan.choices
                                               if c.price_usd is not None))
    cpu = catalog().cpu(by["cpu"].item or "")
    assert cpu.cores >= 2 and cpu.pcie_lanes >= 16
    ram = parts().get("ram", by["ram"].item or "")
    assert ram.capacity_gib.value * GIB >= gpu.memory_bytes  # type: ignore[attr-defined]
    psu = parts().get("psu", by["psu"].item or "")
    assert psu.wattage_w.value >= plan.psu.recommended_w  # type: ignore[attr-defined]
    assert f"-> {plan.psu.recommended_w:,.0f} W" in by["psu"].reason


def test_two_4090s_get_a_psu_rated_for_their_spikes() -> None:
    plan = plan_build(catalog().gpu("RTX 4090"), 2)
    psu = parts().get("psu", next(c.item for c in plan.choices if c.part == "psu") or "")
    assert psu.atx_version is not None  # type: ignore[attr-defined]
    assert psu.wattage_w.value * 2.0 >= plan.psu.spike_w  # type: ignore[attr-defined]


def test_four_open_air_cards_get_water_cooling_at_the_guides_price() -> None:
    plan = plan_build(catalog().gpu("RTX 3090"), 4)
    by = {c.part: c for c in plan.choices}
    assert by["gpu cooling"].price_usd == 4 * 100 + 50
    assert "Full Tower" in by["case"].reason
    assert catalog().cpu(by["cpu"].item or "").pcie_lanes >= 32


def _board(plan_item: str | None) -> Motherboard:
    board = parts().get("motherboard", plan_item or "")
    assert isinstance(board, Motherboard)
    return board


def test_two_4090s_get_an_x8_x8_board_of_the_cpus_socket() -> None:
    plan = plan_build(catalog().gpu("RTX 4090"), 2)
    by = {c.part: c for c in plan.choices}
    board = _board(by["motherboard"].item)
    assert gpu_slots_at_x8(board) >= 2  # the 1-slot ROG Strix X870E-E (x16 + x4) is not enough
    assert board.socket.value == cpu_platform(catalog().cpu(by["cpu"].item or "")).socket
    assert plan.unpriced == ()
    # the cheapest board that meets the rule: no cheaper priced x8/x8 board of that socket
    rivals = [b for b in parts().of("motherboard") if isinstance(b, Motherboard) and b.price
              and b.socket.value == board.socket.value and gpu_slots_at_x8(b) >= 2]
    assert board.price and board.price.usd == min(b.price.usd for b in rivals if b.price)


@pytest.mark.parametrize("gpu", ["RTX 4090", "RTX 6000 Ada"])
def test_four_gpu_plan_is_a_priced_workstation_with_rdimm(gpu: str) -> None:
    plan = plan_build(catalog().gpu(gpu), 4)
    by = {c.part: c for c in plan.choices}
    cpu = catalog().cpu(by["cpu"].item or "")
    board = _board(by["motherboard"].item)
    assert gpu_slots_at_x8(board) >= 4 and board.socket.value == cpu_platform(cpu).socket
    assert cpu.segment in ("workstation", "server") and cpu.pcie_lanes >= 32
    # a dated street price beats the $5,889 launch price of the Xeon w9-3495X
    assert by["cpu"].price_usd is not None and by["cpu"].price_usd < 5889
    ram = parts().get("ram", by["ram"].item or "")
    assert isinstance(ram, RamKit) and ram.registered and ram.registered.value
    assert by["cpu cooler"].item is not None and plan.unpriced == ()
    assert plan.total_usd > 4 * (by["gpu"].price_usd or 0.0)  # GPUs plus the priced rest


def test_cpu_and_board_are_the_cheapest_priced_pair() -> None:
    plan = plan_build(catalog().gpu("RTX 4090"), 4)
    by = {c.part: c for c in plan.choices}
    chosen = (by["cpu"].price_usd or 0.0) + (by["motherboard"].price_usd or 0.0)
    for cpu in catalog().cpus.values():
        price = cpu.purchase_price_usd()
        if price is None or cpu.pcie_lanes < 32 or cpu.vendor == "nvidia" or cpu.cores < 8:
            continue
        sock = cpu_platform(cpu).socket
        boards = [b.price.usd for b in parts().of("motherboard") if isinstance(b, Motherboard)
                  and b.socket.value == sock and b.price and gpu_slots_at_x8(b) >= 4]
        if boards and sock not in ("AM4", "AM5", "LGA1700"):
            assert chosen <= price[0] + min(boards)


def test_desktop_plans_keep_unbuffered_ram_and_desktop_coolers() -> None:
    plan = plan_build(catalog().gpu("RTX 4090"), 1)
    by = {c.part: c for c in plan.choices}
    ram = parts().get("ram", by["ram"].item or "")
    assert isinstance(ram, RamKit) and not (ram.registered and ram.registered.value)
    assert by["cpu cooler"].item == "Noctua NH-D15"


def test_workstation_parts_carry_dated_sourced_prices() -> None:
    for kind in ("motherboard", "ram", "cooler"):
        for part in parts().of(kind):
            if part.price is not None:
                assert part.price.source in parts().sources[kind]
                assert part.price.date <= parts().source_of(kind, part.price.source).as_of
    cpu = catalog().cpu("Threadripper PRO 7965WX")
    assert cpu.street_price_usd and cpu.street_price_date is not None
    assert cpu.purchase_price_usd() == (cpu.street_price_usd, "street, 2026-04")


def test_blower_cards_need_no_water() -> None:
    plan = plan_build(catalog().gpu("RTX A6000"), 4)
    assert not any(c.part == "gpu cooling" and c.price_usd for c in plan.choices)


def test_sxm_modules_are_refused() -> None:
    with pytest.raises(InputError, match="sxm"):
        plan_build(catalog().gpu("H100 SXM5 80GB"), 8)


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_check_finds_the_guides_problems(tmp_path: Path) -> None:
    path = _write(tmp_path, "rig.toml", """
gpu = "RTX 4090"
gpus = 4
cpu = "Ryzen 9 7950X"
motherboard = "Asus ROG STRIX X870E-E GAMING WIFI"
psu = "MSI MEG Ai1300P PCIE5"
ram_gib = 16
""")
    c = check_parts(load_parts_list(path))
    codes = {f.code for f in c.findings}
    assert {"slots", "cpu-lanes", "psu-overload", "ram-small", "open-air-stacked",
            "connector", "transients"} <= codes
    assert not c.ok
    stacked = next(f for f in c.findings if f.code == "open-air-stacked")
    assert "10%-25%" in stacked.message


def test_check_flags_socket_mismatch_and_small_psu(tmp_path: Path) -> None:
    path = _write(tmp_path, "rig.yaml", """
gpu: RTX 3090
gpus: 2
cpu: Ryzen 9 5950X
motherboard: Asus ROG STRIX X870E-E GAMING WIFI
psu_w: 850
""")
    c = check_parts(load_parts_list(path))
    by = {f.code: f for f in c.findings}
    assert by["socket"].severity == "error"
    assert by["psu-small"].severity == "warning"
    assert "power-limit" in by["psu-small"].message  # 850 W fits at a sourced power limit


def test_check_prices_an_oversized_cpu(tmp_path: Path) -> None:
    path = _write(tmp_path, "rig.toml", 'gpu = "RTX 3060 12GB"\ncpu = "EPYC 9654"\n')
    waste = [f for f in check_parts(load_parts_list(path)).findings if f.severity == "waste"]
    assert waste and "$" in waste[0].message


def test_a_sound_list_has_no_findings(tmp_path: Path) -> None:
    path = _write(tmp_path, "rig.toml", """
gpu = "RTX 4090"
cpu = "Ryzen 7 7700X"
motherboard = "Asus ROG STRIX X870E-E GAMING WIFI"
psu = "MSI MPG A850G PCIE5"
ram = "Corsair Vengeance 32 GB (2 x 16 GB) DDR5-6000"
""")
    c = check_parts(load_parts_list(path))
    assert c.findings == () and c.ok


def test_unknown_part_lists_the_closest_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "rig.toml", 'gpu = "RTX 4090"\npsu = "MSI MEG Ai1300"\n')
    with pytest.raises(UnknownNameError) as err:
        check_parts(load_parts_list(path))
    assert "msi-meg-ai1300p-pcie5" in str(err.value)


@pytest.mark.parametrize(("name", "text", "match"), [
    ("bad.toml", 'gpu = "RTX 4090\n', "malformed TOML"),
    ("bad.yaml", "gpu: [RTX 4090\n", "malformed YAML"),
    ("bad.toml", 'gpu = "RTX 4090"\nwatts = 3\n', "watts"),
    ("bad.toml", 'gpus = 2\n', "gpu"),
    ("bad.json", "{}", ".toml, .yaml"),
])
def test_malformed_lists_are_one_line_errors(tmp_path: Path, name: str, text: str,
                                             match: str) -> None:
    with pytest.raises(ConfigFileError, match=match) as err:
        load_parts_list(_write(tmp_path, name, text))
    assert "\n" not in str(err.value)


def _kit(gib: int, modules: int, usd: float | None) -> RamKit:
    src = {"source": "test"}
    return RamKit.model_validate({
        "id": f"kit-{gib}-{modules}", "name": f"{gib} GiB ({modules} modules)",
        "price": {"usd": usd, "date": "2026-01-01", "source": "test"} if usd else None,
        "capacity_gib": {"value": gib, **src}, "modules": {"value": modules, **src},
        "ddr": {"value": 5, **src}, "speed_mt_s": {"value": 4800, **src},
        "registered": {"value": True, **src}})


def test_ram_pick_prefers_a_priced_kit_filling_half_the_channels_then_price() -> None:
    one_dimm, half, full, unpriced = (_kit(32, 1, 150.0), _kit(64, 4, 600.0),
                                      _kit(256, 8, 9000.0), _kit(32, 4, None))
    kits = [full, one_dimm, half, unpriced]
    assert pick_ram_kit(kits, 8) is half       # 1 of 8 channels is too sparse; 4 of 8 is not
    assert pick_ram_kit(kits, 4) is half       # fills all 4 channels of a 4-channel CPU
    assert pick_ram_kit(kits, None) is one_dimm  # channels unknown: price alone
    assert pick_ram_kit([unpriced, full], 8) is full
    with pytest.raises(ValueError):
        pick_ram_kit([], 8)


def test_four_gpu_ram_meets_the_rule_and_says_channels_and_oversize() -> None:
    gpu = catalog().gpu("RTX 4090")
    plan = plan_build(gpu, 4)
    by = {c.part: c for c in plan.choices}
    cpu = catalog().cpu(by["cpu"].item or "")
    ram = parts().get("ram", by["ram"].item or "")
    assert isinstance(ram, RamKit) and ram.registered and ram.registered.value
    assert ram.capacity_gib.value * GIB >= gpu.memory_bytes
    assert f"of {cpu.memory_channels} memory channels" in by["ram"].reason \
        or f"all {cpu.memory_channels} memory channels" in by["ram"].reason
    # the only priced RDIMM kit is 256 GiB, >4x the 24 GiB rule: the plan says so
    over = ram.capacity_gib.value * GIB / gpu.memory_bytes
    assert (over >= OVERSIZED_RAM_RATIO) == ("what the rule asks" in by["ram"].reason)
    # every cheaper priced RDIMM kit that meets the rule would have been chosen instead
    cheaper = [k for k in parts().of("ram") if isinstance(k, RamKit) and k.registered
               and k.registered.value and k.price and ram.price and k.price.usd < ram.price.usd
               and k.capacity_gib.value * GIB >= gpu.memory_bytes
               and 2 * k.modules.value >= (cpu.memory_channels or 0)]
    assert cheaper == []


def test_an_image_model_feed_sizes_the_cpu_by_its_data_loader() -> None:
    """Four RTX 4090s train ResNet-50 at thousands of images/s: Pillow at 160 images/s per
    core needs far more than the guide's 2 cores per GPU; the plan's CPU has them and says so."""
    g = catalog().gpu("nvidia-rtx-4090")
    rule = plan_build(g, 4)
    feed = Feed(5600.0, "pillow", "ResNet-50 training")
    fed = plan_build(g, 4, feed=feed)
    assert feed.cores == 35
    cpu = next(c for c in fed.choices if c.part == "cpu")
    assert cpu.item is not None
    assert catalog().cpu(cpu.item).cores >= 35
    assert "35 cores of pillow" in cpu.reason and "DALI" in cpu.reason
    assert fed.total_usd > rule.total_usd


def test_advice_for_an_image_model_says_how_many_cpu_cores_feed_each_option() -> None:
    from rigwise.advise.rank import Constraints, Workload, advise
    from rigwise.workload.models import get_model

    a = advise(get_model("resnet50"), Workload(task="train"),
               [catalog().gpu("nvidia-rtx-4090")], Constraints(gpus=1))
    o = a.options[0]
    assert f"needs {-(-o.throughput // 160):.0f} CPU cores (Pillow)" in o.why


def test_a_slow_cpu_loader_caps_every_option_and_favours_cheaper_gpus() -> None:
    """With 4 cores of Pillow (640 images/s) no GPU trains ResNet-50 faster than the CPU
    decodes; cards faster than that lose value, and say the data loader is the limit."""
    from rigwise.advise.rank import Constraints, Workload
    from rigwise.advise.rank import advise as rank
    from rigwise.workload.models import get_model

    model = get_model("resnet50")
    gpus = [catalog().gpu(n) for n in ("RTX 3060 12GB", "RTX 4070", "RTX 4090")]
    fed = rank(model, Workload(task="train", data_loader="pillow", cpu_cores=4), gpus,
               Constraints(gpus=1), sort="speed", top=3)
    assert all(o.throughput <= 640 + 1e-6 for o in fed.options)
    fast = next(o for o in fed.options if o.gpu.id == "nvidia-rtx-4090")
    assert "data loader (CPU)" in fast.why
    free = rank(model, Workload(task="train"), gpus, Constraints(gpus=1), sort="speed", top=3)
    assert free.options[0].throughput > 2 * 640


def test_two_device_boards_take_one_slot_per_board(tmp_path: Path) -> None:
    # A Tesla K80 carries two GK210 GPUs on one card (AnandTech, 2014-11-17): four GPUs are two
    # cards and fit the board's slots; eight are four cards and do not.
    def slot_findings(n: int) -> list[str]:
        path = _write(tmp_path, f"k80-{n}.toml", f"""
gpu = "Tesla K80"
gpus = {n}
motherboard = "Asus ROG STRIX X870E-E GAMING WIFI"
""")
        return [f.message for f in check_parts(load_parts_list(path)).findings
                if f.code == "slots"]

    assert slot_findings(4) == []
    assert slot_findings(8) and "on 4 boards" in slot_findings(8)[0]


def test_plan_for_two_k80_gpus_is_one_two_slot_card() -> None:
    # two GK210 GPUs share one dual-slot K80 card and its x16 link (AnandTech, 2014-11-17)
    plan = plan_build(catalog().gpu("Tesla K80"), 2)
    board = next(c for c in plan.choices if c.part == "motherboard")
    assert "for 1 card" in board.reason and "2-slot" in board.reason
    assert "16 lanes" in next(c for c in plan.choices if c.part == "cpu").reason
