"""The software stack: CUDA runtime, cuDNN, NCCL and the PyTorch/JAX/TensorFlow builds.

Versions come from package metadata (``importlib.metadata``), from the frameworks' own build
files read as text (``torch/version.py``, ``tensorflow/python/platform/build_info.py``) and
from the system headers of a CUDA/cuDNN/NCCL install, so no framework is imported here.
Driver requirements come from NVIDIA's tables in ``catalog/data/bench/cuda_drivers.toml``.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import importlib.util
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rigwise.catalog.load import DATA_DIR


@dataclass(frozen=True, slots=True)
class Component:
    """One installed component: its version and where the version was read."""

    name: str
    version: str
    origin: str


@dataclass(frozen=True, slots=True)
class Framework:
    """A deep-learning framework and the CUDA version it was built for (None: CPU build or
    unknown)."""

    name: str
    version: str
    cuda: str | None
    origin: str


@dataclass(frozen=True, slots=True)
class Stack:
    """CUDA runtime, cuDNN and NCCL installs (pip wheels and system), and frameworks."""

    cuda_runtime: tuple[Component, ...]
    cudnn: tuple[Component, ...]
    nccl: tuple[Component, ...]
    frameworks: tuple[Framework, ...]


def _dist_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _torch() -> Framework | None:
    version = _dist_version("torch")
    if version is None:
        return None
    pkg = _package_dir("torch")
    text = _read(pkg / "version.py") if pkg else ""
    m = re.search(r"^cuda\s*(?::[^=]+)?=\s*['\"]([\d.]+)['\"]", text, re.MULTILINE)
    return Framework("torch", version, m.group(1) if m else None, "torch/version.py")


def _jax() -> Framework | None:
    version = _dist_version("jax")
    if version is None:
        return None
    for major in ("13", "12", "11"):
        for plugin in (f"jax-cuda{major}-plugin", f"jax-cuda{major}-pjrt"):
            if _dist_version(plugin):
                return Framework("jax", version, major, plugin)
    return Framework("jax", version, None, "jax (no CUDA plugin installed)")


def _tensorflow() -> Framework | None:
    version = _dist_version("tensorflow") or _dist_version("tensorflow-cpu")
    if version is None:
        return None
    pkg = _package_dir("tensorflow")
    text = _read(pkg / "python/platform/build_info.py") if pkg else ""
    m = re.search(r"['\"]cuda_version['\"]\s*:\s*['\"]([\d.]+)['\"]", text)
    return Framework("tensorflow", version, m.group(1) if m else None,
                     "tensorflow build_info.py")


def _wheels(prefixes: tuple[str, ...]) -> list[Component]:
    out = []
    for dist in prefixes:
        v = _dist_version(dist)
        if v:
            out.append(Component(dist, v, "pip wheel"))
    return out


def _header_version(path: Path, prefix: str) -> str | None:
    text = _read(path)
    parts = [re.search(rf"#define\s+{prefix}_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR")]
    patch = re.search(rf"#define\s+{prefix}_(?:PATCHLEVEL|PATCH)\s+(\d+)", text)
    if not all(parts):
        return None
    nums = [p.group(1) for p in parts if p] + ([patch.group(1)] if patch else [])
    return ".".join(nums)


def _system_cuda(roots: tuple[Path, ...]) -> list[Component]:
    out = []
    for root in roots:
        try:
            data = json.loads(_read(root / "version.json") or "{}")
        except json.JSONDecodeError:
            continue
        v = data.get("cuda_cudart", data.get("cuda", {})).get("version")
        if v:
            out.append(Component("CUDA toolkit", v, str(root)))
    return out


def _system_header(name: str, prefix: str, files: tuple[Path, ...]) -> list[Component]:
    for f in files:
        v = _header_version(f, prefix)
        if v:
            return [Component(name, v, str(f))]
    return []


_INCLUDE = (Path("/usr/include"), Path("/usr/include/x86_64-linux-gnu"),
            Path("/usr/local/cuda/include"))


def software_stack(*, cuda_roots: tuple[Path, ...] = (Path("/usr/local/cuda"),),
                   include_dirs: tuple[Path, ...] = _INCLUDE) -> Stack:
    """Versions of the CUDA runtime, cuDNN, NCCL and the frameworks installed here."""
    cudnn_headers = tuple(d / n for d in include_dirs
                          for n in ("cudnn_version.h", "cudnn_version_v9.h", "cudnn_version_v8.h"))
    nccl_headers = tuple(d / "nccl.h" for d in include_dirs)
    cu = ("cu13", "cu12", "cu11")
    frameworks = tuple(f for f in (_torch(), _jax(), _tensorflow()) if f is not None)
    return Stack(
        cuda_runtime=tuple(_wheels((*(f"nvidia-cuda-runtime-{c}" for c in cu),
                                    "nvidia-cuda-runtime")) + _system_cuda(cuda_roots)),
        cudnn=tuple(_wheels(tuple(f"nvidia-cudnn-{c}" for c in cu))
                    + _system_header("cuDNN", "CUDNN", cudnn_headers)),
        nccl=tuple(_wheels(tuple(f"nvidia-nccl-{c}" for c in cu))
                   + _system_header("NCCL", "NCCL", nccl_headers)),
        frameworks=frameworks,
    )


def version_tuple(version: str) -> tuple[int, ...]:
    """``"550.54.14"`` -> ``(550, 54, 14)``; non-numeric parts end the tuple."""
    out = []
    for part in version.split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group(0)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DriverNeed:
    """Drivers a CUDA X.Y build needs (NVIDIA's tables, with the source)."""

    cuda: str
    minor_compat_min: str | None
    ga_min: str | None
    source: str


@functools.cache
def _driver_table() -> dict[str, dict[str, dict[str, str]]]:
    with (DATA_DIR / "bench" / "cuda_drivers.toml").open("rb") as fh:
        return tomllib.load(fh)


def driver_need(cuda: str) -> DriverNeed:
    """The minimum drivers for a framework built for CUDA ``cuda`` (``"12.4"``).

    ``ga_min`` is the driver of the newest toolkit release not newer than ``cuda`` in
    NVIDIA's table (None when the table has nothing for that major version).
    """
    table = _driver_table()
    want = version_tuple(cuda)[:2]
    major = str(want[0]) if want else ""
    compat = table["minor_compat_min"].get(major, {}).get("value")
    known = [k for k in table["ga_min"] if version_tuple(k)[0] == (want[0] if want else -1)
             and version_tuple(k) <= want]
    ga = table["ga_min"][max(known, key=version_tuple)]["value"] if known else None
    src = table["sources"]["cuda-release-notes"]
    return DriverNeed(cuda, compat, ga, str(src["url"]))
