"""``commcredits ingest nats`` against the real NATS JetStream (issue 11 §2): every CDR message
charged exactly once (redelivery, ``kill -9``, consumers in parallel), unratable ones
dead-lettered with their error, transient failures redelivered, progress in /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from tests.api.voice import UK, US, ledger_ok, make_voice

runner = CliRunner()
CLI = [sys.executable, "-m", "commcredits.entrypoints.cli"]


def _cdr(tid: str, call_id: str, duration: int = 61, to: str = UK,
         upn: str = "payg@contoso.com", **extra: Any) -> dict[str, Any]:
    return {"call_id": call_id, "tenant_id": tid, "call_type": "user_out", "from": US,
            "to": to, "upn": upn, "organizer_upn": "", "start_time": "2030-03-10T11:00:00Z",
            "duration_s": duration, **extra}


def _ingest(bus, db_url: str, *extra: str, durable: str = "ingest") -> Any:
    return runner.invoke(cli, [*bus.ingest_args(durable), "--once", "--db", db_url, *extra],
                         env={"COMMCREDITS_MANUAL_CLOCK": "true"})


def _usage(api) -> list[tuple[str, Decimal]]:
    with api.rt.db.uow() as uow:
        return [(r[0], r[1]) for r in uow.conn.exec_driver_sql(
            "SELECT ref, charge FROM usage_records ORDER BY ref")]


def test_each_cdr_is_charged_once_whatever_is_redelivered(api, db_url, bus):
    voice = make_voice(api)
    voice.fund("10.00")
    cdrs = [_cdr(voice.tid, "a"), _cdr(voice.tid, "b", 125, US, "dom@contoso.com"),
            _cdr(voice.tid, "c", upn="bare@contoso.com")]
    assert bus.publish(cdrs) == 3
    assert bus.publish(cdrs[:1]) == 0  # same Nats-Msg-Id: JetStream drops it
    # the same CDR again without the header (past the duplicate window, say): stored twice
    assert bus.publish_raw([(json.dumps(cdrs[0]).encode(), None)]) == 1
    r = _ingest(bus, db_url)
    assert r.exit_code == 0, (r.output, r.exc_info)
    assert "2 rated, 1 duplicate, 1 blocked, 0 dead" in r.output
    assert voice.credits()["balance"] == "9.96"  # a: 2 min * 0.02; b: in the domestic pool
    # a second consumer reads the whole stream again: everything is a duplicate
    again = _ingest(bus, db_url, durable="again")
    assert again.exit_code == 0, again.output
    assert "0 rated, 4 duplicate, 0 blocked, 0 dead" in again.output  # c was stored blocked
    assert voice.credits()["balance"] == "9.96"
    assert [ref for ref, _ in _usage(api)] == ["a", "b"]
    assert bus.messages(bus.dead_stream) == []
    ledger_ok(api)
    metrics = api.client.get("/metrics").text
    for durable, outcome, n in (("ingest", "rated", 2), ("ingest", "blocked", 1),
                                ("ingest", "duplicate", 1), ("again", "duplicate", 4)):
        assert (f'commcredits_ingest_cdrs_total{{durable="{durable}_{bus.tag}",'
                f'outcome="{outcome}",stream="{bus.stream}"}} {n}.0') in metrics
    assert f'commcredits_ingest_pending{{durable="ingest_{bus.tag}",stream="{bus.stream}"}} 0.0' \
        in metrics


def test_unratable_messages_are_dead_lettered_with_their_error(api, db_url, bus):
    voice = make_voice(api)
    voice.fund("10.00")
    good = _cdr(voice.tid, "ok-1")
    bus.publish_raw([
        (b"{not json", "bad-json"),
        (json.dumps(_cdr(voice.tid, "late", duration="soon")).encode(), "late"),
        (json.dumps(_cdr("ten_nobody", "lost")).encode(), "lost"),
        (json.dumps(_cdr(voice.tid, "mine")).encode(), "someone-else"),
        (json.dumps({**_cdr(voice.tid, "extra"), "price": "1"}).encode(), "extra"),
        (json.dumps(good).encode(), "ok-1"),
    ])
    r = _ingest(bus, db_url)
    assert r.exit_code == 0, r.output
    assert "1 rated, 0 duplicate, 0 blocked, 5 dead" in r.output
    dead = bus.messages(bus.dead_stream, want=5)
    errors = {h["Commcredits-Msg-Id"]: h["Commcredits-Error"] for _, _, h in dead}
    assert set(errors) == {"bad-json", "late", "lost", "someone-else", "extra"}
    assert errors["bad-json"].startswith("not JSON")
    assert "duration_s 'soon'" in errors["late"]
    assert "ten_nobody" in errors["lost"]
    assert "Nats_Msg-Id 'someone-else' is not the call_id 'mine'" in errors["someone-else"]
    assert "unknown fields price" in errors["extra"]
    subjects = {s for s, _, _ in dead}
    assert subjects == {bus.dead_subject}
    assert b"{not json" in [body for _, body, _ in dead]  # the message as it came
    assert [ref for ref, _ in _usage(api)] == ["ok-1"]
    # run again: nothing left, and the dead letters in the CDR stream are passed over
    again = _ingest(bus, db_url)
    assert "0 rated, 0 duplicate, 0 blocked, 0 dead, 0 skipped" in again.output
    fresh = _ingest(bus, db_url, durable="fresh")
    assert "0 rated, 1 duplicate, 0 blocked, 5 dead, 5 skipped" in fresh.output
    assert len(bus.messages(bus.dead_stream)) == 5  # same ids: JetStream kept one of each


def test_a_database_away_is_retried_not_dead_lettered(api, db_url, bus, monkeypatch):
    from commcredits.services import cdrs, ingest
    voice = make_voice(api)
    voice.fund("10.00")
    bus.publish([_cdr(voice.tid, f"t{i}") for i in range(5)])
    real = cdrs.rate_all

    def away(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("SELECT", {}, ConnectionError("server closed the "
                                                                   "connection"))
    monkeypatch.setattr(ingest.cdrs, "rate_all", away)
    r = _ingest(bus, db_url, "--retry", "0")
    assert r.exit_code == 1
    assert "transient failure" in r.output and "server closed the connection" in r.output
    assert _usage(api) == []
    monkeypatch.setattr(ingest.cdrs, "rate_all", real)
    ok = _ingest(bus, db_url)  # the nak'ed batch comes again
    assert ok.exit_code == 0, ok.output
    assert "5 rated, 0 duplicate, 0 blocked, 0 dead" in ok.output
    assert len(_usage(api)) == 5
    assert bus.messages(bus.dead_stream) == []


# -- crashes and parallel consumers (real processes) -----------------------------------------
def _env(db_url: str) -> dict[str, str]:
    return {**os.environ, "COMMCREDITS_DB": db_url, "COMMCREDITS_MANUAL_CLOCK": "true"}


def _stored_calls(db_url: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM calls").scalar() or 0)
    finally:
        engine.dispose()


def _many(tid: str, n: int) -> tuple[list[dict[str, Any]], Decimal]:
    """``n`` pay-as-you-go calls to the UK (0.02 a started minute) and what they cost."""
    cdrs = [_cdr(tid, f"k{i:05d}", 20 + (i * 37) % 300) for i in range(n)]
    cost = sum((-(-c["duration_s"] // 60) * Decimal("0.02") for c in cdrs), Decimal(0))
    return cdrs, cost


def _charged_once(api, voice, cdrs: list[dict[str, Any]], cost: Decimal) -> None:
    refs = [ref for ref, _ in _usage(api)]
    assert refs == sorted(c["call_id"] for c in cdrs)  # each once, none missing
    assert Decimal(voice.credits()["balance"]) == Decimal("1000.00") - cost
    ledger_ok(api)


def test_kill_9_mid_stream_then_restart_loses_and_doubles_nothing(api, db_url, bus):
    voice = make_voice(api)
    voice.fund("1000.00")
    cdrs, cost = _many(voice.tid, 1500)
    assert bus.publish(cdrs) == 1500
    args = [*CLI, *bus.ingest_args(), "--batch", "100", "--ack-wait", "2"]
    proc = subprocess.Popen(args, env=_env(db_url), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _stored_calls(db_url) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = _stored_calls(db_url)
    assert 300 <= done < 1500, done  # killed mid-stream, with batches fetched and unacked
    again = subprocess.run([*args, "--once"], env=_env(db_url), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert " 0 dead" in again.stdout
    _charged_once(api, voice, cdrs, cost)


def test_consumers_in_parallel_share_the_stream_and_charge_once(api, db_url, bus):
    voice = make_voice(api)
    voice.fund("1000.00")
    cdrs, cost = _many(voice.tid, 1500)
    assert bus.publish(cdrs) == 1500
    # two share one durable; a third, on a durable of its own, gets every message as well,
    # at the same time: the same CDRs rated concurrently by two processes
    shared = [*CLI, *bus.ingest_args(), "--batch", "100", "--once"]
    own = [*CLI, *bus.ingest_args("other"), "--batch", "100", "--once"]
    procs = [subprocess.Popen(args, env=_env(db_url), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for args in (shared, shared, own)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs

    def count(out: str, what: str) -> int:
        return int(out.split(f" {what}")[0].split()[-1])
    # the shared durable handed every message to one of the two, none to both
    assert sum(count(out, "rated") + count(out, "duplicate") for out, _ in outputs[:2]) == 1500
    assert count(outputs[2][0], "rated") + count(outputs[2][0], "duplicate") == 1500
    assert sum(count(out, "rated") for out, _ in outputs) == 1500  # each CDR rated once
    _charged_once(api, voice, cdrs, cost)
