"""Identifiers: a short type prefix and 24 random hex digits (``lot_3f9a...``).

The random digits come from the operating system's generator (``secrets``), drawn a few
hundred ids at a time per thread: a batch of CDRs makes several ids a call, and one system
call each cost more than the rest of making them."""

from __future__ import annotations

import os
import secrets
import threading

_DIGITS = 24
_AHEAD = 256  # ids drawn per system call
_local = threading.local()


def _forget() -> None:  # a forked child draws its own: never the parent's ids again
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_forget)


def new_id(prefix: str) -> str:
    pool: list[str] | None = getattr(_local, "pool", None)
    if not pool:
        text = secrets.token_hex(_DIGITS // 2 * _AHEAD)
        pool = _local.pool = [text[i:i + _DIGITS] for i in range(0, len(text), _DIGITS)]
    return f"{prefix}_{pool.pop()}"
