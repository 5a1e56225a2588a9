"""Batched CDR rating is the live charging code, one transaction per batch: the results, the
balances, the usage records, the pool counters and the ledger come out exactly as when each
CDR is rated in a transaction of its own; and the file check streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from commcredits.domain.errors import DomainError
from commcredits.services import cdr_files, cdrs, ledger
from tests.api.voice import CHINA, FRANCE, PREMIUM, UK, UK_MOBILE, US, make_voice

HEADER = "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"


def _file(tid: str, tag: str) -> str:
    """Pool minutes, credits, a connection fee, blocked calls, an unknown user and a tenant
    that does not exist; the 0.60 funded runs out part-way, inside a batch."""
    calls = [("user_out", UK, "payg@contoso.com", 61), ("user_out", US, "dom@contoso.com", 125),
             ("user_out", UK_MOBILE, "payg@contoso.com", 30),
             ("user_out", US, "bare@contoso.com", 60), ("user_out", PREMIUM, "payg", 60),
             ("user_out", FRANCE, "payg@contoso.com", 200),
             ("user_out", US, "dom@contoso.com", 3000), ("user_in", US, "payg@contoso.com", 90),
             ("user_out", CHINA, "payg@contoso.com", 300),
             ("user_out", UK, "nobody@contoso.com", 60),
             ("user_out", UK, "payg@contoso.com", 600), ("user_out", UK, "payg@contoso.com", 9)]
    lines = [f"{tag}{i},{tid},{kind},{US},{to},{upn},,2030-03-0{1 + i % 9}T09:00:00Z,{secs}\n"
             for i, (kind, to, upn, secs) in enumerate(calls)]
    lines.append(f"{tag}-none,tnt_missing,user_out,{US},{UK},payg@contoso.com,,"
                 "2030-03-01T09:00:00Z,60\n")
    return HEADER + "".join(lines)


def _state(api: Any, tid: str) -> dict[str, Any]:
    with api.rt.db.uow() as uow:
        usage = uow.conn.execute(sa.text(
            "SELECT ref, duration_s, charge, credits_charge, uncollected, funding, "
            "included_minutes, capability FROM usage_records WHERE tenant_id = :t "
            "ORDER BY ref"), {"t": tid}).all()
        pools = [(r.pool, r.used_minutes, r.reserved_s, r.alerted)
                 for r in uow.charging.pools(tid, "2030-03")]
        txns = [(t.kind, t.amount, t.balance_after, t.reference)
                for t in uow.credits.ledger(tid)]
        wallet = uow.tenants.wallet(tid)
    return {"usage": [tuple(r) for r in usage], "pools": pools, "ledger": txns,
            "balance": wallet.balance, "reserved": wallet.reserved}


def _view(results: list[cdrs.CdrResult]) -> list[tuple[Any, ...]]:
    return [(r.line, r.call_id, r.status, r.charge, r.detail) for r in results]


def test_batches_rate_exactly_like_one_cdr_at_a_time(api, db_url):
    one, batched = make_voice(api), make_voice(api)
    for voice in (one, batched):
        voice.fund("0.60")
    db = api.rt.db
    alone = [cdrs.rate_one(db, c) for c in cdrs.parse(_file(one.tid, "a"))]
    together = list(cdrs.rate_all(db, cdrs.parse(_file(batched.tid, "b")), batch=4))
    assert [v[:1] + v[2:] for v in _view(together)] == [v[:1] + v[2:] for v in _view(alone)]
    statuses = [r.status for r in together]
    assert {"rated", "blocked", "error"} <= set(statuses)
    # credits ran out mid-batch: the calls that happened are rated, what credits could not pay
    # recorded as uncollected (never dropped as blocked)
    assert any("uncollected" in (r.detail or "") for r in together)
    s1, s2 = _state(api, one.tid), _state(api, batched.tid)
    assert [u[1:] for u in s2["usage"]] == [u[1:] for u in s1["usage"]]
    assert s2["pools"] == s1["pools"] and s2["pools"]
    assert [t[:3] for t in s2["ledger"]] == [t[:3] for t in s1["ledger"]]
    assert (s2["balance"], s2["reserved"]) == (s1["balance"], s1["reserved"])
    assert s2["balance"] < s2["ledger"][0][1]  # something was charged
    with db.uow() as uow:
        assert ledger.verify(uow)[1] == []
    again = list(cdrs.rate_all(db, cdrs.parse(_file(batched.tid, "b")), batch=5))
    assert [r.status for r in again] == ["duplicate"] * 12 + ["error"]
    assert _state(api, batched.tid) == s2


def _write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "cdrs.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def test_streamed_check_names_repeats_far_apart_and_counts(tmp_path):
    rows = [f"id{i},t1,user_out,,{UK},u@x.com,,2030-03-01T09:00:00Z,60\n" for i in range(3000)]
    rows.append(f"id17,t1,user_out,,{UK},u@x.com,,2030-03-01T09:00:00Z,60\n")
    path = _write(tmp_path, rows)
    with pytest.raises(DomainError) as e:
        cdr_files.check_file(path)
    assert e.value.details == [{"line": 3002, "message": "call_id 'id17' repeats line 19"}]
    path = _write(tmp_path, rows[:-1])
    assert cdr_files.check_file(path) == 3000
    assert [c.body["call_id"] for c in cdr_files.read_file(path)][-1] == "id2999"


def test_streamed_check_lists_at_most_max_listed(tmp_path, monkeypatch):
    monkeypatch.setattr(cdr_files, "MAX_LISTED", 3)
    rows = [f"id{i},t1,user_out,,{UK},u@x.com,,yesterday,60\n" for i in range(5)]
    with pytest.raises(DomainError) as e:
        cdr_files.check_file(_write(tmp_path, rows))
    assert [d["line"] for d in e.value.details] == [2, 3, 4, 4]
    assert e.value.details[-1]["message"] == "and 2 more bad lines"


def test_rows_from_a_json_body_are_checked_like_a_file():
    good = {"call_id": "j1", "tenant_id": "t", "call_type": "user_out", "to": UK,
            "start_time": "2030-03-01T09:00:00Z", "duration_s": 61, "upn": "a@b.c"}
    [cdr] = cdrs.from_rows([good])
    assert (cdr.line, cdr.duration_s, cdr.body["upn"]) == (1, 61, "a@b.c")
    with pytest.raises(DomainError) as e:
        cdrs.from_rows([good, {**good, "call_type": "fax"}, good])
    assert [d["line"] for d in e.value.details] == [2, 3]
