"""Identifiers: a short type prefix and 24 random hex digits (``lot_3f9a...``)."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
