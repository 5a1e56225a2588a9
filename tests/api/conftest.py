"""Fixtures of the telephony tests: a voice tenant funded with 50.00."""

from __future__ import annotations

import pytest

from tests.api.voice import Voice, make_voice


@pytest.fixture
def voice(api) -> Voice:  # type: ignore[no-untyped-def]
    v = make_voice(api)
    v.fund("50.00")
    return v
