"""Many instances on one PostgreSQL database (issue 11 §1).

Three ``commcredits serve`` instances (one of them with ``--workers 2``) on different ports
share one database behind a client that spreads requests over them, like a load balancer.
A mixed load runs from this process: calls answered and ended, calls abandoned (the
``calls`` job lapses them), orders with an ``Idempotency-Key``, auto-recharges started by
the calls (run in the request and retried by the ``recharge`` job), every notification
delivered over SMTP. Half way through, the instance holding the jobs lease is killed with
SIGKILL (its whole process group) with requests and jobs in flight; requests it did not
answer are sent again to another instance. Then, a year later, the new holder's ``expire``
job forfeits the lots and the recharges that starts.
A recharge is attempted by the request whose call crossed the trigger and by the
``recharge`` job of the lease holder, on different instances: they take turns on the
payment attempt (``payments.charge_and_settle``), so the gateway sees each key once.

Afterwards: another instance took the lease, exactly one held it at any time; every charge
the gateway made became exactly one funded payment (none lost, none doubled; at most one key
charged by two instances, and only when the first was the one killed mid-charge: the retry
with the same idempotency key); each lot expired once; no reservation is left; every
notification was delivered (a kill between sending and committing may repeat that one
message, no more); ``ledger verify`` is clean.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from commcredits.adapters.payments import read_statement
from commcredits.entrypoints.embedded import free_port

CLI = [sys.executable, "-m", "commcredits.entrypoints.cli"]
TAKEN = "runs the background jobs"
DECK = "prefix,destination,number_type,per_minute,connection_fee,increment_s\n" \
       "44,United Kingdom,any,1.0000,0.0000,60\n"
TENANTS = 4
CALLS = 12  # per tenant, 5 minutes each at 1.00/min: 60.00, three recharge crossings
ABANDONED = 2  # per tenant: authorized, never answered nor ended


def _plain(text: str) -> str:
    return " ".join(text.split())


class SlowInbox:
    """An SMTP server that takes its time per message, so the notify job is busy."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio
        await asyncio.sleep(0.02)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            for to in envelope.rcpt_tos:
                self.received.append((to, _plain(str(msg["Subject"])),
                                      _plain(msg.get_content())))
        return "250 accepted"


@dataclass
class Instance:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path
    statement: Path
    handle: IO[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its worker processes
        self.proc.wait(10)


def _start(n: int, env: dict[str, str], tmp: Path, workers: int) -> Instance:
    port = free_port()
    statement = tmp / f"statement-{n}.jsonl"
    log = tmp / f"serve-{n}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", str(workers)],
        env={**env, "COMMCREDITS_PAYMENT_GATEWAY": f"recording:{statement}"},
        stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    return Instance(proc, f"http://127.0.0.1:{port}", log, statement, handle)


def _wait_up(inst: Instance) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{inst.base}/healthz", timeout=1).status_code == 200:
                return
        assert inst.proc.poll() is None, inst.log_text()
        time.sleep(0.2)
    raise AssertionError(f"serve did not start: {inst.log_text()}")


class Balancer:
    """Round robin over the live instances; a request that fails on the way is sent again
    to the next one (every request of the load is idempotent)."""

    def __init__(self, instances: list[Instance], key: str) -> None:
        self.instances = instances
        self.headers = {"Authorization": f"Bearer {key}"}
        self.turn = 0
        self.lock = threading.Lock()

    def request(self, method: str, path: str, body: Any = None, *, key: str | None = None,
                content: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        h = {**self.headers, **(headers or {})}
        if key:
            h["Authorization"] = f"Bearer {key}"
        for _ in range(20):
            with self.lock:
                live = [i for i in self.instances if i.proc.poll() is None]
                inst = live[self.turn % len(live)]
                self.turn += 1
            try:
                r = httpx.request(method, inst.base + path, json=body, content=content,
                                  headers=h, timeout=30)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if r.status_code in (502, 503):
                time.sleep(0.1)
                continue
            return r
        raise AssertionError(f"{method} {path}: no instance answered")

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        r = self.request(method, path, body, **kw)
        assert r.status_code in (200, 201), (method, path, r.status_code, r.text)
        return r.json()


def _tenant(lb: Balancer, n: int) -> tuple[str, str]:
    tid = lb.ok("POST", "/v1/tenants", {"name": f"Scale {n}", "country": "US"},
                headers={"Idempotency-Key": f"tenant-{n}"})["id"]
    for sku in ("MCOEV", "MCOPSTN_PAYG"):
        lb.ok("POST", f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 5},
              headers={"Idempotency-Key": f"subs-{n}-{sku}"})
    lb.ok("POST", f"/v1/tenants/{tid}/users", {"upn": "u@contoso.com", "display_name": "U",
                                                "usage_location": "US"},
          headers={"Idempotency-Key": f"user-{n}"})
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        lb.ok("PUT", f"/v1/tenants/{tid}/users/u@contoso.com/licenses/{sku}")
    lb.ok("PUT", f"/v1/tenants/{tid}/billing-contacts", {"emails": [f"billing{n}@contoso.com"]})
    card = lb.ok("POST", f"/v1/tenants/{tid}/payment-methods",
                 {"type": "card", "card_number": "4242424242424242", "exp_month": 12,
                  "exp_year": 2040}, headers={"Idempotency-Key": f"card-{n}"})["id"]
    lb.ok("POST", f"/v1/tenants/{tid}/credits/orders",
          {"amount": "30.00", "payment_method_id": card,
           "auto_recharge": {"enabled": True, "recharge_amount": "20.00",
                             "trigger_amount": "15.00"}},
          headers={"Idempotency-Key": f"order-{n}"})
    return tid, card


@dataclass
class Load:
    switch: str
    ended: list[str]
    orders: list[str]
    errors: list[BaseException]


def _calls(lb: Balancer, load: Load, tenant: tuple[str, str], n: int) -> None:
    try:
        _place_calls(lb, load, tenant, n)
    except BaseException as e:  # reported by the test, not lost in the thread
        load.errors.append(e)


def _place_calls(lb: Balancer, load: Load, tenant: tuple[str, str], n: int) -> None:
    """Calls, and an order every fourth call (each with its Idempotency-Key, retried on
    another instance when the one it went to dies)."""
    tid, card = tenant
    switch = load.switch
    for i in range(CALLS + ABANDONED):
        if i % 4 == 3:
            key = f"load-order-{n}-{i}"
            lb.ok("POST", f"/v1/tenants/{tid}/credits/orders",
                  {"amount": "5.00", "payment_method_id": card},
                  headers={"Idempotency-Key": key})
            load.orders.append(key)
        call_id = f"scale-{n}-{i}"
        body = {"call_id": call_id, "tenant_id": tid, "call_type": "user_out",
                "from": "+14255550100", "to": "+442079460123", "upn": "u@contoso.com"}
        decision = lb.ok("POST", "/v1/calls", body, key=switch)
        if i >= CALLS:
            continue  # abandoned: the calls job lapses it
        assert decision["decision"] == "allowed", decision
        lb.ok("POST", f"/v1/calls/{call_id}/answer", {}, key=switch)
        lb.ok("POST", f"/v1/calls/{call_id}/end", {"duration_s": 300}, key=switch)
        load.ended.append(call_id)


def _quiet(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return not conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM lots l, clock c WHERE l.expires_at <= c.now "
            "        AND l.remaining > 0)"
            " + (SELECT count(*) FROM recharges WHERE status = 'pending')"
            " + (SELECT count(*) FROM notifications WHERE status IN ('pending', 'retrying'))"
            " + (SELECT count(*) FROM calls WHERE status = 'active')"
            " + (SELECT count(*) FROM payment_attempts WHERE status = 'pending')")).scalar()


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.fail("the instances test needs PostgreSQL (parametrized below)")
    return db_url


@pytest.fixture
def smtp() -> Iterator[tuple[int, SlowInbox]]:
    port, inbox = free_port(), SlowInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_instances_kill_9_the_lease_holder(pg_url: str, tmp_path: Path,
                                                 smtp: tuple[int, SlowInbox]) -> None:
    smtp_port, inbox = smtp
    env = {**os.environ, "COMMCREDITS_DB": pg_url, "COMMCREDITS_MANUAL_CLOCK": "1",
           "COMMCREDITS_JOBS_INTERVAL_S": "1", "COMMCREDITS_MIN_ORDER": "1",
           "COMMCREDITS_GATEWAY_DELAY_MS": "150", "COMMCREDITS_MAX_RECHARGES_PER_DAY": "50",
           "COMMCREDITS_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
           "COMMCREDITS_SECRET_KEY": secrets.token_urlsafe(32)}
    env.pop("COMMCREDITS_DB_REPLICA", None)
    made = subprocess.run([*CLI, "keys", "create", "--role", "operator"], env=env,
                          capture_output=True, text=True, check=True)
    operator = made.stdout.strip().splitlines()[-1].strip()
    instances = [_start(n, env, tmp_path, workers=2 if n == 0 else 1) for n in range(3)]
    engine = sa.create_engine(pg_url)
    try:
        for inst in instances:
            _wait_up(inst)
        lb = Balancer(instances, operator)
        lb.ok("POST", "/v1/clock", {"now": "2030-01-10T12:00:00Z"})
        lb.ok("PUT", "/v1/rate-decks/USD", content=DECK.encode(),
              headers={"Content-Type": "text/csv"})
        switch = lb.ok("POST", "/v1/api-keys", {"role": "switch"},
                       headers={"Idempotency-Key": "switch-key"})["key"]
        tenants = [_tenant(lb, n) for n in range(TENANTS)]
        holders = [i for i in instances if TAKEN in i.log_text()]
        assert len(holders) == 1, [i.log_text() for i in instances]
        holder = holders[0]

        load = Load(switch, [], [], [])
        threads = [threading.Thread(target=_calls, args=(lb, load, tenant, n))
                   for n, tenant in enumerate(tenants)]
        for t in threads:
            t.start()
        # half way through the load, the lease holder dies with requests and jobs in flight
        deadline = time.monotonic() + 60
        while len(load.ended) < TENANTS * CALLS // 2 and not load.errors:
            assert time.monotonic() < deadline, "the load did not get half way"
            time.sleep(0.05)
        holder.kill()
        survivors = [i for i in instances if i is not holder]
        for t in threads:
            t.join(90)
        assert not load.errors, load.errors
        assert len(load.ended) == TENANTS * CALLS

        # a year on: every lot expires, each tenant's balance crosses its trigger again and
        # the abandoned authorizations lapse: the new lease holder's jobs do all that
        lb.ok("POST", "/v1/clock", {"now": "2031-02-01T12:00:00Z"})
        deadline = time.monotonic() + 30
        while not _quiet(engine):
            assert time.monotonic() < deadline, "the jobs did not finish after the kill"
            time.sleep(0.3)
        time.sleep(1.5)  # one more job tick: anything done twice would show now
        assert _quiet(engine)
        assert sum(TAKEN in i.log_text() for i in survivors) == 1, \
            [i.log_text() for i in survivors]
        # the killed one took it once; the survivor that took over, once
        assert sum(i.log_text().count(TAKEN) for i in instances) == 2

        _check_money(engine, instances, holder, load)
        _check_notifications(engine, inbox)
        verify = subprocess.run([*CLI, "ledger", "verify"], env=env, capture_output=True,
                                text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        for inst in instances:
            inst.kill()
            inst.handle.close()
        engine.dispose()


def _check_money(engine: sa.Engine, instances: list[Instance], killed: Instance,
                 load: Load) -> None:
    charged: dict[str, list[Instance]] = {}
    for inst in instances:
        for line in read_statement(inst.statement):
            charged.setdefault(line["key"], []).append(inst)
    twice = {k: v for k, v in charged.items() if len(v) > 1}
    # a key is charged again only to finish the one charge the killed instance had in
    # flight (the recording gateway charges one at a time per process)
    assert len(twice) <= 1 and all(len(v) == 2 and killed in v for v in twice.values()), \
        {k: [i.base for i in v] for k, v in twice.items()}
    with engine.connect() as conn:
        funded = dict(conn.execute(sa.text(
            "SELECT id, source FROM payment_attempts WHERE status = 'succeeded'")).all())
        assert set(funded) == set(charged), "a charge without a lot, or a lot without a charge"
        statuses = Counter(conn.execute(sa.text("SELECT status FROM recharges")).scalars())
        assert statuses["succeeded"] >= TENANTS * 2, statuses  # during the calls and at expiry
        assert set(statuses) <= {"succeeded", "capped"}, statuses
        per_recharge = conn.execute(sa.text(
            "SELECT r.id, count(p.id) FROM recharges r LEFT JOIN payment_attempts p "
            "ON p.recharge_id = r.id AND p.tenant_id = r.tenant_id "
            "AND p.status = 'succeeded' WHERE r.status = 'succeeded' GROUP BY r.id")).all()
        assert all(n == 1 for _, n in per_recharge), per_recharge
        lots_per_order = conn.execute(sa.text(
            "SELECT o.id, count(l.id) FROM orders o LEFT JOIN lots l ON l.order_id = o.id "
            "AND l.tenant_id = o.tenant_id GROUP BY o.id")).all()
        assert all(n == 1 for _, n in lots_per_order), lots_per_order
        expiries = Counter(conn.execute(sa.text(
            "SELECT reference FROM ledger_transactions WHERE kind = 'expiry'")).scalars())
        assert expiries and set(expiries.values()) == {1}, expiries
        open_lots = conn.execute(sa.text(
            "SELECT count(*) FROM lots l, clock c WHERE l.expires_at <= c.now "
            "AND l.remaining > 0")).scalar()
        assert open_lots == 0
        usage = Counter(conn.execute(sa.text(
            "SELECT ref FROM usage_records WHERE kind = 'call'")).scalars())
        assert set(usage) == set(load.ended) and set(usage.values()) == {1}
        for key in load.orders:  # each order paid once, whichever instance finished it
            paid = conn.execute(sa.text(
                "SELECT count(*) FROM payment_attempts WHERE client_key = :k "
                "AND status = 'succeeded'"), {"k": key}).scalar()
            assert paid == 1, key
        assert len(load.orders) == TENANTS * ((CALLS + ABANDONED) // 4)
        assert conn.execute(sa.text("SELECT count(*) FROM calls WHERE status = 'expired'")
                            ).scalar() == TENANTS * ABANDONED
        assert conn.execute(sa.text("SELECT sum(reserved) FROM wallets")).scalar() == 0


def _check_notifications(engine: sa.Engine, inbox: SlowInbox) -> None:
    with engine.connect() as conn:
        rows = Counter((to, _plain(subject), _plain(body)) for to, subject, body in conn.execute(
            sa.text("SELECT recipient, subject, body FROM notifications "
                    "WHERE recipient <> ''")))
    assert len(rows) >= TENANTS * 2, rows
    with inbox.lock:
        got = Counter(inbox.received)
    missing = rows - got
    assert not missing, f"notifications never delivered: {missing}"
    extra = got - rows
    assert sum(extra.values()) <= 1, f"delivered more than once: {extra}"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_lease_moves_when_its_holder_is_cut_off(pg_url: str) -> None:
    """The server ends the holder's session (as it does when its keepalive probes go
    unanswered): another instance takes the lease, and the old holder knows it lost it."""
    from commcredits.adapters.db.engine import make_engine
    from commcredits.entrypoints.lease import JobsLease
    engines = [make_engine(pg_url, pool_size=2) for _ in range(3)]
    a, b = JobsLease(engines[0]), JobsLease(engines[1])
    try:
        assert a.hold() and not b.hold()
        assert a._conn is not None
        assert a._conn.exec_driver_sql("SHOW tcp_keepalives_idle").scalar() == "10"
        pid = a._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with engines[2].begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        deadline = time.monotonic() + 10
        while not b.hold():
            assert time.monotonic() < deadline, "nobody took the lease over"
            time.sleep(0.1)
        assert a.hold() is False
    finally:
        a.release()
        b.release()
        for e in engines:
            e.dispose()
