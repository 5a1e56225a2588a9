"""One commcredits (HTTP + Diameter) + Kamailio (ims_charging) + SIPp gateway for the whole
session (see harness.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ro_sip.harness import ROOT, Stack, start_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # logs of every process and SIPp run stay in var/ro/<run> for a look after a failure
    run = os.environ.get("COMMCREDITS_RO_RUN_DIR")
    workdir = Path(run) if run else ROOT / "var" / "ro" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    yield from start_stack(workdir)
