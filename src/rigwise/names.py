"""Resolve names people type to catalog ids, case and punctuation insensitive.

``"NVIDIA GeForce RTX 4090"``, ``"rtx-4090"`` and ``"RTX 4090"`` all reach ``nvidia-rtx-4090``.
A name matches an entry when its normalised form equals the normalised id, name or an alias,
or the same with the vendor word removed. No match, or several, raises
:class:`~rigwise.errors.UnknownNameError` with the closest candidates (difflib ratio).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from rigwise.errors import UnknownNameError

_VENDOR_WORDS = ("nvidia", "geforce", "tesla", "amd", "radeon", "instinct", "intel", "habana",
                 "google", "cloud", "apple", "meta", "llama", "mistralai", "qwen")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise(name: str) -> str:
    """Lower case, alphanumerics only: ``normalise("A100-SXM4 80GB") == "a100sxm480gb"``."""
    return _NON_ALNUM.sub("", name.lower())


def _strip_vendor(name: str) -> str:
    words = [w for w in _NON_ALNUM.split(name.lower()) if w]
    kept = [w for w in words if w not in _VENDOR_WORDS]
    return "".join(kept)


class NameIndex:
    """An index from normalised names to ids.

    Args:
        names: for each id, the names that should reach it (id, display name, aliases).
    """

    def __init__(self, kind: str, names: Mapping[str, Iterable[str]]) -> None:
        self.kind = kind
        self._exact: dict[str, set[str]] = {}
        self._loose: dict[str, set[str]] = {}
        for ident, aliases in names.items():
            for alias in (ident, *aliases):
                self._exact.setdefault(normalise(alias), set()).add(ident)
                self._loose.setdefault(_strip_vendor(alias), set()).add(ident)

    def resolve(self, name: str) -> str:
        """The id that ``name`` designates.

        Raises:
            UnknownNameError: no entry matches, or several do.
        """
        for table, key in ((self._exact, normalise(name)), (self._loose, _strip_vendor(name))):
            hits = table.get(key)
            if hits and len(hits) == 1:
                return next(iter(hits))
            if hits:
                raise UnknownNameError(self.kind, name, sorted(hits), ambiguous=True)
        raise UnknownNameError(self.kind, name, self.closest(name))

    def closest(self, name: str, n: int = 5) -> list[str]:
        """Up to ``n`` ids whose names are most like ``name``, best first."""
        key = _strip_vendor(name) or normalise(name)
        prefixed = sorted({i for k, ids in self._loose.items() if key and k.startswith(key)
                           for i in ids})
        if 1 < len(prefixed) <= n:
            return prefixed
        close = difflib.get_close_matches(key, list(self._loose), n=n * 2, cutoff=0.5)
        out: list[str] = []
        for k in close:
            for ident in sorted(self._loose[k]):
                if ident not in out:
                    out.append(ident)
        return out[:n]
