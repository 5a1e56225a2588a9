"""Applying a re-rate is safe while the service works: live calls of the tenant keep being
decided during an apply (no overspend, the ledger verifies), and a ``kill -9`` of
``commcredits rerate --apply`` half-way, then a new run, applies each correction exactly
once. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from commcredits.entrypoints.embedded import serving
from tests.api.voice import DECK, UK, UK_MOBILE, US, Voice, ledger_ok, make_voice
from tests.rerate.world import put_deck

SWITCHES = 32  # switches calling while the apply runs

DEAR = DECK.replace(
    "44,United Kingdom,any,0.0200,0.0000,60", "44,United Kingdom,any,0.0500,0.0000,60")


def _conservation(voice: Voice, funded: Decimal) -> None:
    """Nothing spent twice: what was funded is the balance plus what usage took, and the
    usage records say what the ledger says usage took."""
    api = voice.api
    c = voice.credits()
    with api.rt.db.uow() as uow:
        balances = uow.credits.account_balances(voice.tid)
        taken = uow.conn.execute(sa.text(
            "SELECT credits_charge FROM usage_records WHERE tenant_id = :t"),
            {"t": voice.tid}).scalars().all()
    usage = balances.get(f"ext:{voice.tid}:usage", Decimal(0))
    assert Decimal(c["balance"]) >= 0 and c["reserved"] == "0.00"
    assert Decimal(c["balance"]) + usage == funded
    scale = Decimal(10) ** 6
    assert sum(Decimal(t) / scale if isinstance(t, int) else Decimal(t) for t in taken) == usage


def test_live_calls_keep_working_during_an_apply(api, db_url):
    voice = make_voice(api)
    voice.fund("20.00")
    for i in range(10):  # 10 x 0.20 at deck A; deck B makes each 0.50: 3.00 more
        voice.call(f"old{i}", UK)
        voice.end(f"old{i}", 600)
    put_deck(api, DEAR)
    dry = api.post("/v1/rerates", {"tenant_id": voice.tid, "from": "2030-03-01",
                                   "to": "2030-03-31"}, expect=200).json()
    assert dry["tenants"][0]["corrected"] == 10
    stop = threading.Event()
    with serving(api.rt) as base:
        headers = {"Authorization": f"Bearer {voice.switch}"}

        def caller(t: int) -> list[dict]:
            ends = []
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                i = 0
                while True:  # until the apply has answered, then one call more (after it)
                    last = stop.is_set()
                    call_id = f"live{t}-{i}"
                    i += 1
                    d = client.post("/v1/calls", json={
                        "call_id": call_id, "tenant_id": voice.tid, "call_type": "user_out",
                        "from": US, "to": UK_MOBILE, "upn": "payg@contoso.com"})
                    assert d.status_code == 200, d.text
                    if d.json()["decision"] == "allowed":
                        e = client.post(f"/v1/calls/{call_id}/end", json={"duration_s": 20})
                        assert e.status_code == 200, e.text
                        ends.append(e.json())
                    if last and i >= 2:
                        return ends

        with ThreadPoolExecutor(max_workers=SWITCHES) as pool:
            futures = [pool.submit(caller, t) for t in range(SWITCHES)]
            time.sleep(0.3)
            with httpx.Client(base_url=base, timeout=120,
                              headers={"Authorization": f"Bearer {api.operator}"}) as op:
                r = op.post(f"/v1/rerates/{dry['id']}/apply")
            stop.set()
            ends = [e for f in futures for e in f.result()]
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == [{"tenant_id": voice.tid, "result": "applied"}]
    assert ends  # calls were decided while the apply ran: before its entries and after
    with api.rt.db.uow() as uow:
        seqs = uow.conn.execute(sa.text(
            "SELECT kind, reference, seq FROM ledger_transactions WHERE tenant_id = :t"),
            {"t": voice.tid}).all()
    live = [seq for kind, ref, seq in seqs if kind == "usage" and ref.startswith("call live")]
    fixed = [seq for kind, _, seq in seqs if kind == "correction"]
    assert live and fixed and min(live) < min(fixed) and max(fixed) < max(live)
    _conservation(voice, Decimal("20.00"))
    ledger_ok(api)
    result = CliRunner().invoke(cli, ["ledger", "verify", "--db", db_url])
    assert result.exit_code == 0, result.output


def _tenant(api) -> str:
    tid = api.tenant("US")
    for sku in ("MCOEV", "MCOPSTN_PAYG"):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 1}, expect=201)
    upn = "payg@contoso.com"
    api.post(f"/v1/tenants/{tid}/users", {"upn": upn, "display_name": "payg",
                                          "usage_location": "US"}, expect=201)
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{tid}/users/{upn}/licenses/{sku}", expect=200)
    api.order(tid, "1.00", api.card(tid))
    return tid


def test_kill_9_during_apply_then_a_new_run_applies_each_correction_once(api, db_url):
    voice = make_voice(api)  # the deck, the switch key, the clock
    api.rt.settings.min_order = Decimal("0.01")
    tenants = [_tenant(api) for _ in range(24)]
    for n, tid in enumerate(tenants):
        for i in range(2):
            Voice(api, tid, voice.switch, "").call(f"k{n}-{i}", UK)
            Voice(api, tid, voice.switch, "").end(f"k{n}-{i}", 600)  # 0.20, then 0.50
    put_deck(api, DEAR)
    env = {**os.environ, "COMMCREDITS_MANUAL_CLOCK": "1", "COMMCREDITS_DB": db_url}
    command = [sys.executable, "-m", "commcredits.entrypoints.cli", "rerate", "--all",
               "--from", "2030-03-01", "--to", "2030-03-31", "--apply"]
    engine = api.rt.db.engine
    held = None
    if engine.dialect.name == "postgresql":
        # the CLI waits at the 13th tenant (id order), whose wallet the test holds
        ordered = sorted([*tenants, voice.tid])
        held = engine.connect()
        held.execute(sa.text("SELECT 1 FROM wallets WHERE tenant_id = :t FOR UPDATE"),
                     {"t": ordered[12]})
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _kill_once_applied(proc, engine, 12 if held is not None else 1)
    finally:
        proc.wait(30)
        if held is not None:
            held.rollback()
            held.close()
    with engine.connect() as conn:
        at_kill = conn.execute(sa.text("SELECT count(*) FROM rerate_tenants")).scalar()
    # killed half-way: some tenants corrected (all or nothing each), others not yet
    print("corrected before the kill:", at_kill, "of", len(tenants) + 1)
    assert 0 < at_kill < len(tenants) + 1, at_kill
    ledger_ok(api)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with engine.connect() as conn:
        per_call = conn.execute(sa.text(
            "SELECT call_id, count(*) FROM usage_corrections GROUP BY call_id")).all()
        charges = conn.execute(sa.text(
            "SELECT ref, charge, uncollected, original_charge FROM usage_records "
            "WHERE ref LIKE 'k%'")).all()
    assert len(per_call) == 2 * len(tenants) and {n for _, n in per_call} == {1}
    scale = Decimal(10) ** 6
    for ref, charge, uncollected, original in charges:
        # each call is now 0.50: what the lot held (1.00 for two calls) and nothing twice
        assert (Decimal(charge) + Decimal(uncollected)) / scale == Decimal("0.50"), ref
        assert Decimal(original) / scale == Decimal("0.20"), ref
    for tid in tenants:
        c = api.credits(tid)
        assert c["balance"] == "0.00"
    ledger_ok(api)


def _kill_once_applied(proc: subprocess.Popen, engine: sa.Engine, tenants: int) -> None:
    """SIGKILL the CLI as soon as ``tenants`` tenants are corrected (read without taking any
    lock: on SQLite a plain read of the WAL, never behind the CLI's writes)."""
    if engine.dialect.name == "sqlite":
        import sqlite3
        conn = sqlite3.connect(engine.url.database, isolation_level=None)

        def count() -> int:
            return conn.execute("SELECT count(*) FROM rerate_tenants").fetchone()[0]
    else:
        pg = engine.connect().execution_options(isolation_level="AUTOCOMMIT")

        def count() -> int:
            return pg.execute(sa.text("SELECT count(*) FROM rerate_tenants")).scalar()
    try:
        deadline = time.monotonic() + 120
        while count() < tenants:
            assert proc.poll() is None, "the CLI ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        (conn if engine.dialect.name == "sqlite" else pg).close()
