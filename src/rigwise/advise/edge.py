"""Inference under a power cap and a latency target: which devices meet it, at what batch.

For a car computer at 150 W, a single-slot card at 75 W (Dettmers' answer to an in-car 150 W
server: a single-slot 75 W card), or a Jetson module. A device qualifies when its board power
fits the cap, or when a power limit down to the cap keeps a sourced fraction of its speed
(``rules.toml``: no figure below 60 % of TDP, so no limit below that). For each device the
largest batch (1, 2, 4, ...) that fits in memory and meets the latency target is chosen,
from :func:`rigwise.model.infer.estimate_infer` divided by the speed kept.

Latency is the time per generated token (``token``) or the whole request, prefill plus all
output tokens (``request``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rigwise.advise.power import lowest_power_fraction, speed_at_power
from rigwise.catalog.models import Gpu
from rigwise.errors import InputError, UnsupportedError
from rigwise.model.infer import InferConfig, InferEstimate, estimate_infer
from rigwise.workload.schema import Model

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True, slots=True)
class EdgeOption:
    """One device at its best batch under the caps.

    ``power_w`` is the board power used (TDP, or the power limit); ``speed_kept`` the fraction
    of full speed at that limit; ``latency_s`` per token or per request; ``tokens_per_s`` for
    the whole batch.
    """

    gpu: Gpu
    power_w: float
    power_limited: bool
    speed_kept: float
    batch: int
    latency_s: float
    tokens_per_s: float
    tokens_per_joule: float
    meets: bool
    weights: str
    why: str


@dataclass(frozen=True, slots=True)
class EdgeAdvice:
    """Devices meeting the caps (fastest first), then the nearest misses, then exclusions."""

    model: Model
    max_power_w: float
    max_latency_s: float
    latency: str
    options: tuple[EdgeOption, ...]
    excluded: tuple[tuple[str, str], ...] = field(default=())


def edge_options(model: Model, gpus: Iterable[Gpu], *, max_power_w: float,
                 max_latency_s: float, latency: str = "token", weights: str = "int4",
                 prompt_tokens: int = 512, output_tokens: int = 128, engine: str = "generic",
                 max_slots: int | None = None) -> EdgeAdvice:
    """Rank ``gpus`` for serving ``model`` within ``max_power_w`` and ``max_latency_s``.

    Raises:
        InputError: non-positive caps, an unknown latency kind, a model without decode.
    """
    if max_power_w <= 0 or max_latency_s <= 0:
        raise InputError("--max-power and --max-latency-ms must be positive")
    if latency not in ("token", "request"):
        raise InputError("--latency must be 'token' or 'request'")
    floor = lowest_power_fraction()
    options: list[EdgeOption] = []
    excluded: list[tuple[str, str]] = []
    for gpu in gpus:
        reason = _prefilter(gpu, max_power_w, max_slots, floor)
        if reason:
            excluded.append((gpu.id, reason))
            continue
        assert gpu.tdp_w is not None
        limited = gpu.tdp_w > max_power_w
        power = min(gpu.tdp_w, max_power_w)
        kept = speed_at_power(power / gpu.tdp_w)
        assert kept is not None
        try:
            opt = _best_batch(model, gpu, power, limited, kept, max_latency_s, latency,
                              weights, prompt_tokens, output_tokens, engine)
        except UnsupportedError as exc:
            excluded.append((gpu.id, str(exc)))
            continue
        if opt is None:
            excluded.append((gpu.id, f"{model.name} does not fit in {gpu.name}'s memory"))
            continue
        options.append(opt)
    options.sort(key=lambda o: (not o.meets, -o.tokens_per_s if o.meets else o.latency_s))
    return EdgeAdvice(model, max_power_w, max_latency_s, latency, tuple(options),
                      tuple(excluded))


def _prefilter(gpu: Gpu, cap: float, max_slots: int | None, floor: float) -> str | None:
    if gpu.tdp_w is None:
        return "no published board power"
    if gpu.form_factor not in ("pcie", "module", "soc"):
        return f"{gpu.form_factor} module: a server part, not an edge device"
    if max_slots is not None and (gpu.form_factor != "pcie" or (gpu.slots or 99) > max_slots):
        return f"{gpu.slots or '?'}-slot card > {max_slots} slot(s)" \
            if gpu.form_factor == "pcie" else "not a PCIe card"
    if gpu.tdp_w > cap and (gpu.form_factor != "pcie" or gpu.tdp_w * floor > cap):
        return f"TDP {gpu.tdp_w:.0f} W > {cap:.0f} W" + (
            f" even at a {floor:.0%} power limit (lowest sourced)" if gpu.form_factor == "pcie"
            else "")
    return None


def _best_batch(model: Model, gpu: Gpu, power: float, limited: bool, kept: float,
                target: float, latency: str, weights: str, prompt: int, output: int,
                engine: str) -> EdgeOption | None:
    best: EdgeOption | None = None
    first: EdgeOption | None = None
    for b in BATCHES:
        e = estimate_infer(model, gpu, InferConfig(weights=_weights(gpu, weights), batch_size=b,
                                                   prompt_tokens=prompt, output_tokens=output,
                                                   engine=engine))
        if not e.fits:
            break
        opt = _option(gpu, e, power, limited, kept, target, latency)
        first = first or opt
        if not opt.meets:
            break
        best = opt
    return best or first


def _weights(gpu: Gpu, weights: str) -> str:
    if weights == "bf16" and not gpu.supports("bf16"):
        return "f16"
    return weights


def _option(gpu: Gpu, e: InferEstimate, power: float, limited: bool, kept: float, target: float,
            latency: str) -> EdgeOption:
    per_token = e.decode_time_per_token_s / kept
    lat = per_token if latency == "token" else (
        e.prefill_time_s / kept + e.config.output_tokens * per_token)
    tps = e.decode_tokens_per_s * kept
    meets = lat <= target
    how = f"power-limited to {power:.0f} W (~{kept:.0%} speed)" if limited else f"{power:.0f} W TDP"
    why = f"{how}; decode {e.bottleneck}-bound"
    return EdgeOption(gpu, power, limited, kept, e.config.batch_size, lat, tps, tps / power, meets,
                      e.config.weights, why)
