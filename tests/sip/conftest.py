"""One commcredits + Kamailio + SIPp gateway for the whole session (see harness.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sip.harness import ROOT, Stack, start_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # logs of every process and SIPp run stay in var/sip/<run> for a look after a failure
    run = os.environ.get("COMMCREDITS_SIP_RUN_DIR")
    workdir = Path(run) if run else ROOT / "var" / "sip" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    yield from start_stack(Path(workdir))
