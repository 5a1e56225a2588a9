"""The charging engine's batches (many CDRs decided in memory in one transaction, rows written
in bulk) leave exactly what the charging rules leave on a database unit of work of their own:
the same generated CDRs rated one per transaction through ``authorize_call`` + ``end_call``
on a plain ``UnitOfWork`` and through ``cdrs.rate_all`` give the same results, calls, usage
records, ledger transactions and postings, lots, wallets, pool counters and notices, on every
kind of tenant and call."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
import sqlalchemy as sa

from commcredits.charging import engine
from commcredits.charging.requests import Kind, Request, rate_cdr
from commcredits.domain.errors import DomainError
from commcredits.services import cdrs
from tests.api.voice import (
    CHINA,
    FRANCE,
    JAPAN,
    PREMIUM,
    TOLL_FREE,
    UK,
    UK_MOBILE,
    US,
    Voice,
    ledger_ok,
    make_voice,
)

TOLL_FREE_B = "+18005550199"  # the second tenant's own toll-free number (numbers are unique)
UPNS = ("payg@contoso.com", "dom@contoso.com", "nocred@contoso.com", "conf@contoso.com",
        "bare@contoso.com", "nobody@contoso.com", "PAYG@contoso.com")
DIALLED = (US, US, UK, UK_MOBILE, FRANCE, CHINA, JAPAN, PREMIUM, "+999")


def _cdrs(rng: random.Random, tag: str, tid: str, toll_free: str, n: int) -> list[str]:
    rows = []
    for i in range(n):
        kind = rng.choice(("user_out", "user_out", "user_out", "user_out_transfer", "user_in",
                           "conf_out", "ucap_out", "ucap_in"))
        upn = rng.choice(UPNS)
        to, frm, organizer = rng.choice((*DIALLED, toll_free)), US, ""
        if kind in ("user_in", "ucap_in"):
            to, frm = rng.choice((toll_free, toll_free, US)), rng.choice((UK, US, "", JAPAN))
        if kind == "conf_out":
            organizer = rng.choice(("conf@contoso.com", "payg@contoso.com", "bare@contoso.com"))
        if kind == "ucap_out":
            upn = ""
        long = upn == "dom@contoso.com" and rng.random() < 0.7
        duration = rng.randint(30000, 120000) if long else rng.choice(
            (0, 1, 5, 59, 60, 61, rng.randint(1, 900)))
        day = rng.randint(1, 9) if rng.random() < 0.8 else rng.randint(20, 28)
        month = "03" if rng.random() < 0.85 else "02"
        rows.append(f"{tag}{i},{tid},{kind},{frm},{to},{upn},{organizer},"
                    f"2030-{month}-{day:02d}T{rng.randint(0, 23):02d}:{i % 60:02d}:00Z,"
                    f"{duration}\n")
    return rows


def _text(rows: list[str]) -> str:
    return "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n" + \
        "".join(rows)


def _tenants(api: Any, toll_free: str) -> list[Voice]:
    """A legacy tenant with two lots that run out part-way, an nce tenant on overage, and
    one with a per-user daily cap (rated by the live code even in a batch)."""
    legacy, nce, capped = make_voice(api), make_voice(api, "nce"), make_voice(api)
    api.post(f"/v1/tenants/{legacy.tid}/numbers", {"number": toll_free, "type": "toll_free"},
             expect=201)
    legacy.fund("0.75")
    legacy.fund("1.30")
    api.patch(f"/v1/tenants/{nce.tid}", {"overage_enabled": True}, expect=200)
    capped.fund("5.00")
    api.patch(f"/v1/tenants/{capped.tid}", {"user_daily_cap": "0.20"}, expect=200)
    for voice in (legacy, capped):  # authorized, never ended: its CDR settles it
        voice.call(f"open-{voice.tid}", UK)
    return [legacy, nce, capped]


def _snapshot(api: Any, voice: Voice, toll_free: str) -> dict[str, Any]:
    """Everything the import wrote for one tenant, its own ids replaced by stable names."""
    tid = voice.tid
    q = {
        "calls": "SELECT * FROM calls WHERE tenant_id = :t ORDER BY call_id",
        "usage": "SELECT * FROM usage_records WHERE tenant_id = :t ORDER BY ref",
        "txns": "SELECT * FROM ledger_transactions WHERE tenant_id = :t ORDER BY seq",
        "postings": "SELECT p.debit_account, p.credit_account, p.amount, t.seq "
                    "FROM ledger_postings p JOIN ledger_transactions t "
                    "ON t.id = p.transaction_id WHERE p.tenant_id = :t ORDER BY t.seq, p.id",
        "lots": "SELECT seq, amount, remaining FROM lots WHERE tenant_id = :t ORDER BY seq",
        "wallet": "SELECT balance, reserved, txn_seq, ar_armed, zero_notified FROM wallets "
                  "WHERE tenant_id = :t",
        "pools": "SELECT month, pool, used_minutes, reserved_s, alerted FROM pool_usage "
                 "WHERE tenant_id = :t ORDER BY month, pool",
        "notices": "SELECT kind, recipient, subject, dedupe, status FROM notifications "
                   "WHERE tenant_id = :t ORDER BY kind, dedupe, recipient",
    }
    with api.rt.db.uow() as uow:
        names = {tid: "TENANT", toll_free[1:]: TOLL_FREE[1:], "cdrA": "cdr", "cdrB": "cdr"}
        names[uow.conn.execute(sa.text("SELECT name FROM tenants WHERE id = :t"),
                               {"t": tid}).scalar_one()] = "NAME"
        for seq, lot_id in uow.conn.execute(sa.text(
                "SELECT seq, id FROM lots WHERE tenant_id = :t"), {"t": tid}):
            names[lot_id] = f"LOT{seq}"
        for upn, user_id in uow.conn.execute(sa.text(
                "SELECT upn, id FROM users WHERE tenant_id = :t"), {"t": tid}):
            names[user_id] = f"USER:{upn}"
        out: dict[str, Any] = {}
        for key, sql in q.items():
            rows = []
            for row in uow.conn.execute(sa.text(sql), {"t": tid}).mappings():
                cells = {k: v for k, v in row.items() if k not in ("id", "transaction_id")}
                text = repr(sorted(cells.items()))
                for raw, name in names.items():
                    text = text.replace(raw, name)
                text = re.sub(r"\b[a-z]{3}_[0-9a-f]{24}\b", "ID", text)  # orders...
                # each tenant's calls were priced by the deck loaded with it (its version)
                rows.append(re.sub(r'"deck_version": ?\d+', '"deck_version": V', text))
            out[key] = rows
    return out


def _live(db: Any, cdr: cdrs.Cdr) -> cdrs.CdrResult:
    """The CDR rated by the charging rules on a database unit of work of its own (every read
    and write a statement of its own: no batch, nothing kept in memory)."""
    request = Request(Kind.CDR, cdr.body, who=cdrs.SYSTEM, cdr=cdr)
    with db.uow() as uow:
        try:
            request.result = rate_cdr(uow, cdr)
            uow.commit()
        except DomainError as e:
            request.error = e
    return cdrs._result(cdr, request)


def test_the_batch_path_leaves_exactly_what_the_live_path_leaves(api, db_url, monkeypatch):
    monkeypatch.setattr(engine, "STREAM_EVERY", 5)  # rows written while deciding on
    rng = random.Random(20301)
    one, batched = _tenants(api, TOLL_FREE), _tenants(api, TOLL_FREE_B)
    lines_one: list[str] = []
    lines_batched: list[str] = []
    for i, (a, b) in enumerate(zip(one, batched, strict=True)):
        seed = rng.randint(0, 10**9)  # the same calls for both (call ids are global)
        lines_one += _cdrs(random.Random(seed), f"cdrA{i}-", a.tid, TOLL_FREE, 70)
        lines_batched += _cdrs(random.Random(seed), f"cdrB{i}-", b.tid, TOLL_FREE_B, 70)
        lines_one.append(f"open-{a.tid},{a.tid},user_out,{US},{UK},payg@contoso.com,,"
                         "2030-03-10T11:59:00Z,95\n")
        lines_batched.append(f"open-{b.tid},{b.tid},user_out,{US},{UK},payg@contoso.com,,"
                             "2030-03-10T11:59:00Z,95\n")
    order = list(range(len(lines_one)))
    rng.shuffle(order)  # the tenants' CDRs interleaved in the file
    db = api.rt.db
    alone = [_live(db, c) for c in cdrs.parse(_text([lines_one[i] for i in order]))]
    together = list(cdrs.rate_all(db, cdrs.parse(_text([lines_batched[i] for i in order])),
                                  batch=16))

    def view(results: list[cdrs.CdrResult]) -> list[tuple[Any, ...]]:
        return [(r.line, r.status, r.charge, r.detail, r.uncollected, r.currency)
                for r in results]
    assert view(together) == view(alone)
    assert {"rated", "blocked"} <= {r.status for r in together}
    details = " ".join(r.detail or "" for r in together)
    for funding in ("credits", "included", "overage", "free", "uncollected"):
        assert funding in details, funding  # every way a call is paid was exercised
    for a, b in zip(one, batched, strict=True):
        left, right = _snapshot(api, a, TOLL_FREE), _snapshot(api, b, TOLL_FREE_B)
        assert left["usage"] and left["calls"]
        for key in left:
            assert right[key] == left[key], key
    legacy = _snapshot(api, batched[0], TOLL_FREE_B)
    assert any("LOT1" in p and "LOT2" in p for p in legacy["usage"])  # a charge split FIFO
    notices = [n for v in batched for n in _snapshot(api, v, TOLL_FREE_B)["notices"]]
    assert any("'pool_100'" in n for n in notices)  # queued by the batch (it once was not)
    ledger_ok(api)
    again = list(cdrs.rate_all(db, cdrs.parse(_text([lines_batched[i] for i in order]))))
    assert {r.status for r in again} <= {"duplicate", "error"}
    for a, b in zip(one, batched, strict=True):
        assert _snapshot(api, b, TOLL_FREE_B) == _snapshot(api, a, TOLL_FREE)



def test_the_quick_row_check_refuses_what_the_full_check_refuses():
    good = {"call_id": "q1", "tenant_id": "t", "call_type": "user_out", "from": US, "to": UK,
            "upn": "a@b.c", "organizer_upn": "", "start_time": "2030-03-01T09:00:00Z",
            "duration_s": "61"}
    assert cdrs.from_rows([good])[0].body["upn"] == "a@b.c"
    bad = {"call_id": ("q 1", "call_id may hold only printable ASCII"),
           "tenant_id": ("t/1", "tenant_id may hold only printable ASCII"),
           "call_type": ("fax", "call_type 'fax' is not one of"),
           "from": ("+1" * 21, "from must be at most 40 characters"),
           "to": ("", "empty to"),
           "upn": ("a\x00@b.c", "upn must not contain control characters"),
           "organizer_upn": ("x" * 321, "organizer_upn must be at most 320 characters"),
           "start_time": ("2030-13-01", "start_time '2030-13-01' is not an RFC 3339 date-time"),
           "duration_s": (str(7 * 24 * 3600 + 1), "must be whole seconds (at most a week)")}
    for field, (value, message) in bad.items():
        with pytest.raises(DomainError) as e:
            cdrs.from_rows([{**good, field: value}])
        assert message in e.value.details[0]["message"], field


def test_a_big_import_refreshes_the_planner_statistics(api, db_url):
    """A ``ledger verify`` planned on empty-table statistics after a million-row import
    joined a million rows to a million; the import analyzes what it filled (PostgreSQL)."""
    postgres = db_url.startswith("postgresql")
    assert cdrs.refresh_statistics(api.rt.db) is postgres
    if postgres:
        with api.rt.db.uow() as uow:
            analyzed = uow.conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('calls', "
                "'usage_records', 'ledger_transactions', 'ledger_postings') "
                "AND schemaname = current_schema() AND last_analyze IS NOT NULL")).scalar_one()
        assert analyzed == 4
