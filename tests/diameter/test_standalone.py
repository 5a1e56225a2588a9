"""``commcredits diameter`` as a process of its own beside the API (another process here, the
test's): it charges on the same database, and delivers as an ASR the cut an operator asked
for through the API, which had no receiver for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.voice import UK, ledger_ok, make_voice
from tests.diameter.client import INITIAL, TERMINATION, UPDATE, Client, find, result
from tests.diameter.conftest import PHONE, UPN


def _free_port() -> int:
    for port in range(13870, 13900):  # this suite's Diameter ports
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 13870-13899")


@pytest.fixture
def standalone(api: Any, db_url: str) -> Iterator[tuple[Any, int]]:
    voice = make_voice(api)
    voice.fund("50.00")
    api.post(f"/v1/tenants/{voice.tid}/users", {"upn": UPN, "usage_location": "US",
                                                "phone_number": PHONE}, expect=201)
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{voice.tid}/users/{UPN}/licenses/{sku}", expect=200)
    port = _free_port()
    env = {**os.environ, "COMMCREDITS_MANUAL_CLOCK": "1", "COMMCREDITS_DB": db_url}
    env.pop("COMMCREDITS_SWITCH_CUT_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "commcredits.entrypoints.cli", "diameter", "--port", str(port),
         "--origin-host", "ocs.test", "--origin-realm", "test", "--peer", "kamailio.test"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "commcredits diameter did not listen"
                time.sleep(0.1)
        yield voice, port
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_diameter_command_charges_and_delivers_cuts(standalone: tuple[Any, int]) -> None:
    voice, port = standalone
    api = voice.api
    cl = Client(port)
    assert result(cl.cer()) == 2001
    sub = (0, PHONE.lstrip("+"))
    assert result(cl.ccr("s-cli", INITIAL, 0, sub=sub, called=f"tel:{UK}")) == 2001
    assert result(cl.ccr("s-cli", UPDATE, 1, used=30)) == 2001
    # the API process has no receiver: the Diameter process delivers the cut (ASR)
    api.post("/v1/calls/cut", {"call_id": "ro:s-cli"}, expect=200)
    cl.sock.settimeout(15)
    asr = cl.read()
    assert asr is not None and asr.header.command_code == 274
    assert find(asr.avps, 263) == "s-cli"
    cl.asa(asr)
    for _ in range(100):
        rows = [r for r in api.get("/v1/switch-cuts", expect=200).json()
                if r["call_id"] == "ro:s-cli"]
        if rows and rows[0]["status"] == "sent":
            break
        time.sleep(0.1)
    assert rows[0]["status"] == "sent", rows
    assert result(cl.ccr("s-cli", TERMINATION, 2, used=30)) == 2001
    assert voice.credits()["balance"] == "49.98"  # 60 s to the UK at 0.02/min
    ledger_ok(api)
