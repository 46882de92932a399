"""Stored benchmark runs for the ``/runs`` page, read from rigwise's SQLite store when it
exists (issue 5's ``rigwise bench``); never created or written by the web app."""

from __future__ import annotations

from typing import Any


def stored_runs() -> tuple[str | None, list[dict[str, Any]]]:
    """``(store path, runs newest first)``; ``(None, [])`` when there is no store yet."""
    return None, []
