"""Validate catalog data files: ``python -m rigwise.catalog.check [FILE ...]``.

With no arguments, checks every file of the built-in catalog. Prints one line per problem and
exits 1 if there is any; used by maintainers while editing data, and by the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rigwise.catalog.load import DATA_DIR, check_file


def main(argv: list[str] | None = None) -> int:
    """Check the given files (or the whole catalog); return the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted(
        p for kind in ("gpus", "cpus", "prices", "interconnects")
        for p in (DATA_DIR / kind).glob("*.toml"))
    problems = 0
    for path in paths:
        for problem in check_file(path):
            print(f"{path}: {problem}")
            problems += 1
    print(f"{len(paths)} files, {problems} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
