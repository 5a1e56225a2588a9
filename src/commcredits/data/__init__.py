"""Reference data shipped with the package (read-only)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def zone_a_countries() -> frozenset[str]:
    """Countries whose non-premium numbers Audio Conferencing dial-out minutes cover."""
    text = resources.files(__package__).joinpath("zone_a.txt").read_text(encoding="utf-8")
    return frozenset(line.split("#")[0].strip() for line in text.splitlines()
                     if line.split("#")[0].strip())
