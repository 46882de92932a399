"""Stored benchmark runs for the ``/runs`` pages, read from rigwise's run store
(:mod:`rigwise.store.db`) when its file exists; the web app never creates a store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rigwise.errors import InputError

_RUN_REF = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def store_path(path: Path | None) -> Path:
    """The store file the app reads: ``path``, else ``$RIGWISE_DB`` or the default."""
    from rigwise.store.db import default_path

    return path or default_path()


def stored_runs(path: Path | None, *, limit: int = 200) -> tuple[str | None, list[dict[str, Any]]]:
    """``(store path, runs newest first)``; ``(None, [])`` when there is no store file."""
    from rigwise.store.db import Store

    p = store_path(path)
    if not p.is_file():
        return None, []
    with Store(p) as store:
        return str(p), store.history(limit=limit)


def run_result(path: Path | None, ref: str) -> dict[str, Any]:
    """One stored run as ``rigwise bench show --json`` gives it (with its comparisons).

    Raises:
        InputError: a malformed id, no store, or no such run.
    """
    from rigwise.bench.expect import compare_all
    from rigwise.bench.present import run_json
    from rigwise.catalog.load import catalog
    from rigwise.store.db import Store

    if not _RUN_REF.match(ref):
        raise InputError("a run id has letters, digits and dashes only")
    p = store_path(path)
    if not p.is_file():
        raise InputError("no benchmark store on this machine yet: run rigwise bench")
    with Store(p) as store:
        run = store.run(ref)
    gpu = catalog().gpus.get(run.catalog_id) if run.catalog_id else None
    return run_json(run, compare_all(run.measurements, gpu), [], stored_in=str(p))
