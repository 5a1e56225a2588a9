"""Fixtures of the charging engine tests: the voice tenant of the telephony tests."""

from __future__ import annotations

from tests.api.conftest import voice

__all__ = ["voice"]
