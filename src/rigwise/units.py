"""SI constants, and parsing and formatting of quantities.

This is the only module that holds decimal and binary prefixes (STYLE.md, convention 1).
Inside rigwise every quantity is SI: bytes, seconds, FLOP, FLOP/s, bytes/s, watts, US dollars.
Data files and the command line use the units in their key names (``memory_gib``,
``memory_bandwidth_gb_per_s``, ``bf16_dense_tflops``); they are converted here, once.
"""

from __future__ import annotations

KILO = 1e3
MEGA = 1e6
GIGA = 1e9
TERA = 1e12
PETA = 1e15

KIB = 2**10
MIB = 2**20
GIB = 2**30
TIB = 2**40

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0


def gib_to_bytes(gib: float) -> float:
    """Binary gibibytes (2**30 B) to bytes."""
    return gib * GIB


def gb_to_bytes(gb: float) -> float:
    """Decimal gigabytes (1e9 B) to bytes."""
    return gb * GIGA


def mib_to_bytes(mib: float) -> float:
    """Binary mebibytes (2**20 B) to bytes."""
    return mib * MIB


def tflops_to_flop_per_s(tflops: float) -> float:
    """Tera-FLOP per second (1e12) to FLOP/s."""
    return tflops * TERA


def gb_per_s_to_bytes_per_s(gb_per_s: float) -> float:
    """Decimal GB/s (1e9 B/s) to bytes/s."""
    return gb_per_s * GIGA


def gbit_per_s_to_bytes_per_s(gbit_per_s: float) -> float:
    """Decimal Gb/s (1e9 bit/s) to bytes/s."""
    return gbit_per_s * GIGA / 8.0


def bytes_to_gib(n_bytes: float) -> float:
    """Bytes to binary gibibytes."""
    return n_bytes / GIB


def bytes_to_gb(n_bytes: float) -> float:
    """Bytes to decimal gigabytes."""
    return n_bytes / GIGA


def flop_per_s_to_tflops(flop_per_s: float) -> float:
    """FLOP/s to TFLOPS."""
    return flop_per_s / TERA


def format_bytes(n_bytes: float) -> str:
    """Human-readable binary size: ``format_bytes(17.2 * 2**30) == '17.2 GiB'``."""
    for unit, size in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n_bytes) >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def format_duration(seconds: float) -> str:
    """Human-readable duration, from microseconds to days."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120.0:
        return f"{seconds:.2f} s"
    if seconds < 2 * SECONDS_PER_HOUR:
        return f"{seconds / 60.0:.1f} min"
    if seconds < 2 * SECONDS_PER_DAY:
        return f"{seconds / SECONDS_PER_HOUR:.1f} h"
    return f"{seconds / SECONDS_PER_DAY:.1f} days"


def format_rate(per_s: float, unit: str) -> str:
    """A rate with an SI prefix: ``format_rate(12345.0, 'tok/s') == '12.3 k tok/s'``."""
    for prefix, size in (("G", GIGA), ("M", MEGA), ("k", KILO)):
        if abs(per_s) >= size:
            return f"{per_s / size:.1f} {prefix} {unit}"
    if abs(per_s) >= 10:
        return f"{per_s:.0f} {unit}"
    return f"{per_s:.2f} {unit}"


def format_usd(usd: float) -> str:
    """Dollars with thousands separators; cents only below $100."""
    if abs(usd) < 100:
        return f"${usd:,.2f}"
    return f"${usd:,.0f}"
