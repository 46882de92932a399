"""Plan a whole deep-learning machine around a GPU choice, with the reason for every part.

The rules are those of Dettmers, *A Full Hardware Guide to Deep Learning* (2018), with their
numbers kept in ``catalog/data/parts/rules.toml``:

* CPU: about 1 core per GPU when data is preprocessed beforehand, 2 when preprocessing runs
  during training; enough PCIe lanes for the GPU count (8 per GPU in a 4-GPU box), no more.
* RAM: at least the memory of the largest GPU.
* PSU: ``(sum of GPU TDP + CPU TDP + 100 W) x 1.1``, rounded up to 100 W (see ``power.py``).
* Cooling: air for one GPU or two with space between them; blower cards or water cooling
  (about $100 per GPU + $50) for 3-4 GPUs; open-air cards packed together run 10-25 % slower.
* Storage (rigwise's own rule): an NVMe drive of at least the dataset plus 500 GB for the
  system, environments and checkpoints.

Prices are dated observations (GPUs from the GPU catalog, CPUs at their dated street price
where the catalog has one, else at launch price, the other parts from the PCPartPicker snapshot
or the dated listing named in each part's source); the CPU and board are chosen together, as
the pair with the lowest known price that meets the rules. RDIMM kits go with workstation and
server CPUs. The plan's total lists any part without a price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rigwise.advise.power import PowerLimit, PsuSizing, gpu_connectors, limit_to_fit, size_psu
from rigwise.catalog.load import DATA_DIR, catalog, parse_file
from rigwise.catalog.models import Cpu, Gpu
from rigwise.catalog.parts import Case, Cooler, Motherboard, Psu, RamKit, Storage, parts
from rigwise.catalog.schema import CpuFile
from rigwise.errors import InputError
from rigwise.model.efficiency import loader_rates
from rigwise.model.loader import cores_to_feed
from rigwise.units import GIB, GIGA, format_bytes, format_usd

DESKTOP_SOCKETS = ("AM4", "AM5", "LGA1700")
SYSTEM_RESERVE_BYTES = 500 * GIGA
"""rigwise's own allowance on the dataset drive for OS, environments and checkpoints."""


@dataclass(frozen=True, slots=True)
class Choice:
    """One part of the plan: what, why, the number behind the reason, and its price."""

    part: str
    item: str | None
    reason: str
    price_usd: float | None
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class Feed:
    """An image workload the CPU must feed: ``images_per_s`` on all GPUs together, decoded by
    ``loader`` (:mod:`rigwise.model.loader`), described by ``what`` (model and setting)."""

    images_per_s: float
    loader: str
    what: str

    @property
    def cores(self) -> int:
        """Whole cores the loader needs for the rate."""
        return math.ceil(cores_to_feed(self.images_per_s, self.loader))


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """A whole machine: its parts with reasons, PSU arithmetic and total price (USD)."""

    gpu: Gpu
    gpus: int
    choices: tuple[Choice, ...]
    psu: PsuSizing
    power_limit: PowerLimit | None
    notes: tuple[str, ...] = field(default=())
    feed: Feed | None = None

    @property
    def total_usd(self) -> float:
        """Sum of the known prices."""
        return sum(c.price_usd * c.quantity for c in self.choices if c.price_usd is not None)

    @property
    def unpriced(self) -> tuple[str, ...]:
        """Parts whose price is not known (not counted in the total)."""
        return tuple(c.part for c in self.choices if c.price_usd is None)


@dataclass(frozen=True, slots=True)
class Platform:
    """What a CPU needs from the rest of the machine."""

    socket: str | None
    ddr: int | None


def cpu_platform(cpu: Cpu) -> Platform:
    """Socket and DDR generation of a catalog CPU, read from its data file."""
    f = parse_file(DATA_DIR / "cpus" / f"{cpu.id}.toml")
    assert isinstance(f, CpuFile)
    mem = f.specs.memory_type.value if f.specs.memory_type else ""
    ddr = 5 if mem.startswith("DDR5") else 4 if mem.startswith("DDR4") else None
    return Platform(f.socket, ddr)


def cores_needed(gpus: int, data: str) -> int:
    """CPU cores for the data pipeline of ``gpus`` GPUs (Dettmers 2018)."""
    if data not in ("on-the-fly", "preprocessed"):
        raise InputError("data must be 'on-the-fly' or 'preprocessed'")
    key = "cores_per_gpu_preprocess" if data == "on-the-fly" else "cores_per_gpu_preprocessed"
    return int(parts().rules.value("cpu", key)) * gpus


def lanes_needed(gpus: int) -> int:
    """CPU PCIe lanes for the GPUs: x16 for one, 8 per GPU beyond (Dettmers 2018)."""
    return 16 if gpus == 1 else int(parts().rules.value("cpu", "lanes_per_gpu")) * gpus


def gpu_slots_at_x8(board: Motherboard) -> int:
    """Slots of ``board`` that keep at least 8 lanes with every GPU slot populated."""
    return sum(1 for s in board.gpu_slots.value if s.lanes >= 8)


def board_fits(board: Motherboard, gpus: int) -> bool:
    """True if ``board`` takes ``gpus`` GPUs: an x16 slot for one, x8 or more each for several."""
    if gpus == 1:
        return any(s.max_lanes >= 16 for s in board.gpu_slots.value)
    return gpu_slots_at_x8(board) >= gpus


def plan_build(gpu: Gpu, gpus: int = 1, *, data: str = "on-the-fly",
               dataset_bytes: float = 0.0, market: str = "new",
               feed: Feed | None = None) -> BuildPlan:
    """Plan a machine for ``gpus`` x ``gpu``. With ``feed`` (an image model's training rate)
    the CPU needs the cores its data loader takes at that rate, when that is more than the
    guide's cores per GPU.

    Raises:
        InputError: a GPU count outside 1-8, an SXM/OAM module, a negative dataset size.
    """
    if not 1 <= gpus <= 8:
        raise InputError("--gpus must be between 1 and 8")
    if gpu.form_factor != "pcie":
        raise InputError(f"{gpu.name} is a {gpu.form_factor} module: it comes in a vendor "
                         "server (HGX/OAM baseboard), not a self-built machine")
    if dataset_bytes < 0:
        raise InputError("--dataset-gb must not be negative")
    cards = -(-gpus // gpu.devices_per_board)  # a K80 card carries two GPUs
    cpu, board, cpu_choice = _choose_platform(gpus, data, feed, cards=cards)
    plat = cpu_platform(cpu) if cpu else Platform(None, None)
    choices = [_gpu_choice(gpu, gpus, market), cpu_choice,
               _board_choice(board, plat, gpu, cards),
               _ram_choice(gpu, cpu, plat, board), _storage_choice(dataset_bytes)]
    sizing = size_psu([gpu.tdp_w or 0.0] * gpus, cpu.tdp_w if cpu else 0.0,
                      spiking_w=_spiking_w(gpu, gpus))
    psu_choice, limit = _psu_choice(gpu, gpus, sizing, cpu.tdp_w if cpu else 0.0)
    choices += [psu_choice, *_cooling_choices(gpu, cards, plat, cpu, board)]
    notes = [f"Power limit: at {p.power_fraction:.0%} of TDP a GPU keeps "
             f"{p.speed_fraction:.0%} of its speed ({parts().rules.sources[p.source].title})"
             for p in parts().rules.power_limit if p.power_fraction == 0.8]
    return BuildPlan(gpu, gpus, tuple(choices), sizing, limit, tuple(notes), feed)


def _spiking_w(gpu: Gpu, n: int) -> float:
    return (gpu.tdp_w or 0.0) * n if gpu_connectors(gpu).kind == "16-pin" else 0.0


def _gpu_choice(gpu: Gpu, n: int, market: str) -> Choice:
    bought = gpu.purchase_price_usd(market)
    mem = format_bytes(gpu.memory_bytes)
    reason = f"{n} x {gpu.name} ({mem}, {gpu.tdp_w or 0:.0f} W)"
    if bought:
        reason += f"; price {format_usd(bought[0])} ({bought[1]})"
    return Choice("gpu", gpu.name, reason, bought[0] if bought else None, n)


def _choose_platform(gpus: int, data: str, feed: Feed | None = None, *,
                     cards: int | None = None
                     ) -> tuple[Cpu | None, Motherboard | None, Choice]:
    """The CPU and board with the lowest known price together that meet the guide's rules.

    A CPU qualifies with enough cores (per GPU) and PCIe lanes (per card, ``cards``: a board
    with two GPUs shares one link) and, for 3+ cards, a non-desktop socket; it is paired with
    the cheapest catalog board of its socket that takes the cards.
    Pairs with a priced board come first, then pairs with an unpriced board, then CPUs with
    no board in the catalog; within each group the lowest CPU + board price wins.
    """
    cards = gpus if cards is None else cards
    cores, lanes = cores_needed(gpus, data), lanes_needed(cards)
    rule = f"the guide asks {cores} cores ({data} data pipeline)"
    if feed is not None and feed.cores > cores:
        cores = feed.cores
        rule = (f"{feed.what} at {feed.images_per_s:,.0f} images/s needs {cores} cores of "
                f"{feed.loader} decoding ({loader_rates()[feed.loader]:.0f} images/s per core;"
                " the guide's 1-2 per GPU predates such GPUs; decoding on the GPU with DALI "
                f"brings it back to {cores_needed(gpus, data)})")
    ok = [(c, p) for c in catalog().cpus.values()
          if (p := c.purchase_price_usd()) is not None and c.cores >= cores
          and c.pcie_lanes >= lanes and c.vendor != "nvidia"
          and (cards <= 2 or cpu_platform(c).socket not in DESKTOP_SOCKETS)]
    if not ok:
        return None, None, Choice("cpu", None, f"no catalog CPU with a price has >= {cores} "
                                  f"cores and >= {lanes} PCIe lanes", None)
    paired = [(c, p, _choose_board(cpu_platform(c), cards)) for c, p in ok]

    def cost(item: tuple[Cpu, tuple[float, str], Motherboard | None]) -> tuple[object, ...]:
        cpu, (usd, _), board = item
        board_usd = board.price.usd if board and board.price else None
        return (board is None, board_usd is None, usd + (board_usd or 0.0), cpu.cores)

    best, (usd, how), board = min(paired, key=cost)
    why = (f"{best.cores} cores / {best.pcie_lanes} PCIe {best.pcie_gen}.0 lanes for {gpus} "
           f"GPU(s): {rule}; {lanes} lanes; "
           f"price {format_usd(usd)} ({how}); lowest CPU + board price in the catalog")
    return best, board, Choice("cpu", best.name, why, usd)


def _choose_board(plat: Platform, gpus: int) -> Motherboard | None:
    boards = [b for b in parts().of("motherboard") if isinstance(b, Motherboard)
              and b.socket.value == plat.socket and board_fits(b, gpus)]
    return min(boards, key=lambda b: (b.price is None, b.price.usd if b.price else 0.0,
                                      -gpu_slots_at_x8(b))) if boards else None


def _board_choice(board: Motherboard | None, plat: Platform, gpu: Gpu, gpus: int) -> Choice:
    """The board's line of the plan; ``gpus`` counts cards (slots)."""
    split = "/".join(["x8"] * gpus) if gpus > 1 else "x16"
    width = (gpu.slots or 2) * gpu.devices_per_board  # a K80's devices share a 2-slot card
    if board is None:
        return Choice("motherboard", None, f"no board in the parts catalog for socket "
                      f"{plat.socket} with {gpus} slot(s) at x8 or more; buy one whose manual "
                      f"lists a {split} split and {width}-slot spacing (the guide: "
                      "check the PCIe section of the spec sheet)", None)
    slots = ", ".join(f"x{s.lanes}{f' (x{s.lanes_alone} alone)' if s.lanes_alone else ''} "
                      f"Gen{s.gen} ({s.via})" for s in board.gpu_slots.value)
    form = f" {board.form_factor.value}" if board.form_factor else ""
    fit = ("an x16 slot for 1 card" if gpus == 1
           else f"{gpu_slots_at_x8(board)} at x8 or more for {gpus} cards")
    why = (f"socket {plat.socket}{form}; GPU slots {slots}: {fit}; cheapest such board in the "
           f"catalog. Slot spacing is not in the catalog: check the manual fits {gpus} x "
           f"{width}-slot cards")
    if board.price is None:
        why += "; no dated price found for this board"
    return Choice("motherboard", board.name, why, board.price.usd if board.price else None)


def _ram_choice(gpu: Gpu, cpu: Cpu | None, plat: Platform, board: Motherboard | None) -> Choice:
    need = gpu.memory_bytes * parts().rules.value("ram", "min_ratio_to_largest_gpu")
    if cpu is None or plat.ddr is None:
        return Choice("ram", None, f">= {format_bytes(need)} of memory (no CPU chosen, or its "
                      "memory type is not in the catalog)", None)
    rdimm = cpu.segment in ("workstation", "server")
    kind = "registered ECC (RDIMM)" if rdimm else "unbuffered"
    slots = board.memory_slots.value if board and board.memory_slots else None
    kits = [k for k in parts().of("ram") if isinstance(k, RamKit) and k.ddr.value == plat.ddr
            and k.capacity_gib.value * GIB >= need
            and (slots is None or k.modules.value <= slots)
            and bool(k.registered and k.registered.value) == rdimm]
    if not kits:
        return Choice("ram", None, f">= {format_bytes(need)} of {kind} DDR{plat.ddr} for "
                      f"{cpu.name} (no such kit in the parts catalog); the guide: RAM at least "
                      "the largest GPU's memory", None)
    kit = pick_ram_kit(kits, cpu.memory_channels)
    which = "the only such kit" if len(kits) == 1 else "cheapest such kit"
    why = (f"{kit.capacity_gib.value:.0f} GiB {kind} DDR{plat.ddr} >= {format_bytes(need)}, "
           f"the largest GPU's memory (the guide); {which} in the catalog")
    if kit.price:
        why += f" ({kit.price.date:%Y-%m} price)"
    why += _channel_note(kit.modules.value, cpu.memory_channels)
    over = kit.capacity_gib.value * GIB / need if need else 1.0
    if over >= OVERSIZED_RAM_RATIO:
        why += (f"; {over:.0f}x what the rule asks: no smaller priced {kind} DDR{plat.ddr} "
                "kit is in the catalog")
    return Choice("ram", kit.name, why, kit.price.usd if kit.price else None)


OVERSIZED_RAM_RATIO = 4.0
"""rigwise's own threshold: a kit this many times the guide's RAM need is flagged as oversized."""


def pick_ram_kit(kits: list[RamKit], channels: int | None) -> RamKit:
    """The kit to buy among ``kits`` (all already meeting the capacity rule).

    Priced kits come first; among them, kits that populate at least half of the CPU's
    ``channels`` (one module per channel; fewer cuts memory bandwidth in proportion) come
    before kits that populate fewer; then the lowest price. ``channels`` None: price alone.

    Raises:
        ValueError: ``kits`` is empty.
    """
    if not kits:
        raise ValueError("no RAM kit to pick from")

    def key(k: RamKit) -> tuple[bool, bool, float]:
        sparse = channels is not None and 2 * k.modules.value < channels
        return (k.price is None, sparse, k.price.usd if k.price else 0.0)

    return min(kits, key=key)


def _channel_note(modules: int, channels: int | None) -> str:
    """How many of the CPU's memory channels ``modules`` DIMMs populate (one per channel)."""
    if not channels:
        return ""
    if modules >= channels:
        return f"; {modules} modules fill all {channels} memory channels"
    return (f"; {modules} modules fill {modules} of {channels} memory channels (about "
            f"{modules / channels:.0%} of the CPU's peak memory bandwidth)")


def _storage_choice(dataset_bytes: float) -> Choice:
    need = dataset_bytes + SYSTEM_RESERVE_BYTES
    drives = [d for d in parts().of("storage") if isinstance(d, Storage)
              and d.capacity_gb.value * GIGA >= need]
    if not drives:
        return Choice("storage", None, f"no single NVMe drive >= {need / 1e12:.1f} TB in the "
                      "parts catalog: use several drives or an HDD array for the dataset", None)
    d = min(drives, key=lambda x: x.price.usd if x.price else 1e12)
    why = (f"{d.capacity_gb.value / 1000:.0f} TB NVMe >= dataset {dataset_bytes / 1e12:.2f} TB "
           "+ 0.5 TB for system and checkpoints (rigwise rule)")
    return Choice("storage", d.name, why, d.price.usd if d.price else None)


def _psu_choice(gpu: Gpu, n: int, s: PsuSizing, cpu_w: float) -> tuple[Choice, PowerLimit | None]:
    conn = gpu_connectors(gpu)
    psus = sorted((p for p in parts().of("psu") if isinstance(p, Psu)),
                  key=lambda p: (p.wattage_w.value, p.price.usd if p.price else 1e12))
    arithmetic = (f"({n} x {gpu.tdp_w or 0:.0f} W + CPU {cpu_w:.0f} W + {s.other_w:.0f} W) x "
                  f"{s.headroom:g} = {s.required_w:,.0f} W -> {s.recommended_w:,.0f} W")
    fits = sorted((p for p in psus if p.wattage_w.value >= s.recommended_w),
                  key=lambda p: (conn.kind == "16-pin" and not _spike_ok(p, s),
                                 conn.kind == "16-pin" and not _native_ok(p, n),
                                 p.wattage_w.value, p.price.usd if p.price else 1e12))
    if fits:
        p = fits[0]
        why = f"{arithmetic} (Dettmers 2018); {p.wattage_w.value:.0f} W {p.efficiency.value}"
        if conn.kind == "16-pin":
            why += _sixteen_pin_note(p, n, s)
        return Choice("psu", p.name, why, p.price.usd if p.price else None), None
    big = psus[-1]
    limit = limit_to_fit(gpu.tdp_w or 0.0, n, cpu_w, big.wattage_w.value)
    if limit is None:
        return Choice("psu", None, f"{arithmetic}: more than the largest PSU in the catalog "
                      f"({big.wattage_w.value:.0f} W) even at the lowest sourced power limit; "
                      "use two PSUs or fewer GPUs", None), None
    why = (f"{arithmetic} exceeds the largest PSU; power-limit each GPU to "
           f"{limit.per_gpu_w:.0f} W ({limit.fraction:.0%}), keeping ~{limit.speed_kept:.0%} of "
           f"its speed, to fit {big.wattage_w.value:.0f} W")
    return Choice("psu", big.name, why, big.price.usd if big.price else None), limit


def _spike_ok(p: Psu, s: PsuSizing) -> bool:
    """An ATX 3.x PSU whose 100 us excursion rating covers the cards' spikes."""
    factor = parts().rules.value("psu", "atx3_excursion_factor")
    return p.atx_version is not None and p.wattage_w.value * factor >= s.spike_w


def _native_ok(p: Psu, n: int) -> bool:
    return p.connectors_16pin is not None and p.connectors_16pin.value >= n


def _sixteen_pin_note(p: Psu, n: int, s: PsuSizing) -> str:
    r = parts().rules
    native = str(p.connectors_16pin.value) if p.connectors_16pin else "an unknown number of"
    note = (f"; {n} card(s) with a 16-pin plug ({r.value('psu', 'connector_16pin_w'):.0f} W "
            f"each), PSU has {native} native")
    if p.atx_version:
        cap = p.wattage_w.value * r.value("psu", "atx3_excursion_factor")
        note += (f"; 100 us spikes up to {s.spike_w:,.0f} W vs {cap:,.0f} W ATX "
                 f"{p.atx_version.value} excursion rating")
    else:
        note += "; no ATX 3.x excursion rating known: 100 us spikes may trip its protection"
    return note


def _cooling_choices(gpu: Gpu, n: int, plat: Platform, cpu: Cpu | None,
                     board: Motherboard | None = None) -> list[Choice]:
    r = parts().rules
    lo, hi = (r.value("cooling", k) for k in ("open_air_stacked_slowdown_low",
                                                "open_air_stacked_slowdown_high"))
    out: list[Choice] = []
    water = False
    if gpu.cooling == "open-air" and n >= 3:
        per = r.value("cooling", "water_usd_per_gpu")
        fixed = r.value("cooling", "water_usd_upfront")
        water = True
        out.append(Choice("gpu cooling", "water cooling (AIO or custom loop)",
                          f"{n} open-air cards side by side throttle {lo:.0%}-{hi:.0%} (the "
                          f"guide); water keeps them cool: ${per:.0f}/GPU + ${fixed:.0f}, or buy "
                          "blower cards", per * n + fixed))
    elif gpu.cooling == "open-air" and n == 2:
        out.append(Choice("gpu cooling", "the cards' own fans", "2 open-air cards are fine on air "
                          f"with a free slot between them (the guide); {gpu.slots or 2}-slot "
                          "cards need slots spaced accordingly", 0.0))
    elif gpu.cooling == "blower" and n >= 2:
        out.append(Choice("gpu cooling", "the cards' blowers", "blower cards exhaust out of the "
                          f"case: ~{r.value('cooling', 'blower_slowdown'):.0%} penalty when "
                          "packed (the guide: 10-15%)", 0.0))
    elif gpu.cooling == "passive":
        out.append(Choice("gpu cooling", None, "passive datacenter cards need server-chassis "
                          "airflow; a desktop case cannot cool them", None))
    out.append(_cpu_cooler_choice(plat, cpu))
    out.append(_case_choice(n, water, board))
    return out


def _cpu_cooler_choice(plat: Platform, cpu: Cpu | None) -> Choice:
    coolers = [x for x in parts().of("cooler") if isinstance(x, Cooler)
               and x.cooling.value == "air"]
    if plat.socket in DESKTOP_SOCKETS:
        fit = [x for x in coolers if x.sockets is None]
        why = "the guide: a standard heat sink or AIO is fine"
    else:
        fit = [x for x in coolers if x.sockets and plat.socket in x.sockets.value]
        why = f"its source lists a socket {plat.socket} mount"
    if not fit:
        return Choice("cpu cooler", None, f"a cooler for socket {plat.socket} (not in the parts "
                      "catalog)", None)
    c = min(fit, key=lambda x: x.price.usd if x.price else 1e12)
    return Choice("cpu cooler", c.name, f"air tower for a {cpu.tdp_w if cpu else 0:.0f} W CPU; "
                  f"{why}", c.price.usd if c.price else None)


def _case_choice(n: int, water: bool, board: Motherboard | None = None) -> Choice:
    want = "ATX Full Tower" if n >= 3 or water else "ATX Mid Tower"
    cases = [c for c in parts().of("case") if isinstance(c, Case) and c.type.value == want]
    c = min(cases, key=lambda x: x.price.usd if x.price else 1e12)
    why = (f"{want}: {n} GPU(s){' and radiators' if water else ''}; the guide: the case must "
           "take full-length GPUs (check 2 expansion slots per GPU)")
    ff = board.form_factor.value if board and board.form_factor else None
    if board is not None and ff not in ("ATX", "Micro ATX", "Mini ITX"):
        why += (f"; the board is {ff or 'of unsourced size'}: check the case takes "
                f"{'it' if ff else 'the board'}")
    return Choice("case", c.name, why, c.price.usd if c.price else None)
