"""The errors rigwise raises, in one tree.

::

    RigwiseError                  base of everything rigwise raises on purpose
    ├── InputError                bad input from a user: the CLI prints the message, exits 2
    │   ├── UnknownNameError      a GPU or model name that resolves to nothing or to several
    │   ├── ConfigFileError       a config.json or parts list that cannot be read or parsed
    │   └── UnsupportedError      a precision or weight format the device cannot run
    └── CatalogError              a data file in the built-in catalog is invalid (a bug in rigwise)

A configuration that does not fit in memory is not an error: estimates answer ``fits=False``.
"""

from __future__ import annotations

from collections.abc import Sequence


class RigwiseError(Exception):
    """Base of every error rigwise raises on purpose."""


class InputError(RigwiseError, ValueError):
    """Bad user input; the message says what was wrong and how to fix it."""


class UnknownNameError(InputError, LookupError):
    """A name that matches no catalog entry, or more than one.

    Attributes:
        kind: what was looked up (``"GPU"``, ``"model"``, ``"CPU"``).
        name: the name as given.
        candidates: the closest catalog ids, best first.
    """

    def __init__(self, kind: str, name: str, candidates: Sequence[str], *, ambiguous: bool = False):
        self.kind = kind
        self.name = name
        self.candidates = list(candidates)
        self.ambiguous = ambiguous
        what = "is ambiguous" if ambiguous else "is not in the catalog"
        hint = f"; did you mean: {', '.join(self.candidates)}" if self.candidates else ""
        super().__init__(f"{kind} {name!r} {what}{hint}")


class ConfigFileError(InputError):
    """A file given by the user (config.json, parts list) is missing or malformed."""


class UnsupportedError(InputError):
    """A precision, weight format or task that the chosen device or model cannot run."""


class CatalogError(RigwiseError):
    """A built-in data file failed validation; this is a bug in rigwise's data."""
