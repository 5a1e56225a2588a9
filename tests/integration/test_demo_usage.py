"""Issue 23: ``commcredits demo --usage DAYS`` fills the demo tenant's last DAYS days with
calls and SMS charged through the real charging path (the charging engine, as the switch's
requests are), each at the time it would have happened, so reports, the spend chart,
exports and the forecast show something on a first start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from typer.testing import CliRunner

from commcredits.adapters.db import schema
from commcredits.entrypoints import demo_usage
from commcredits.entrypoints.cli import app as cli
from commcredits.entrypoints.demo import load_demo
from commcredits.services import ledger

NOW = datetime(2030, 3, 15, 12, 0, tzinfo=UTC)  # a Friday


def _keys(lines: list[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if line.startswith("COMMCREDITS_"))


def test_a_week_of_usage_charged_through_the_engine(api, runtime, monkeypatch):
    api.set_clock(NOW.isoformat())
    sent: list[str] = []
    real = demo_usage._switch

    def counted(rt, who, step, done):  # the one place the demo reaches charging
        sent.append(step.action)
        return real(rt, who, step, done)
    monkeypatch.setattr(demo_usage, "_switch", counted)
    before = runtime.engine.decided
    lines = load_demo(runtime, usage_days=7)
    tid = _keys(lines)["COMMCREDITS_DEMO_TENANT"]
    summary = next(line for line in lines if line.startswith("# demo usage over 7 days"))
    # every request went to the charging engine, one for each step the switch sent
    assert runtime.engine.decided - before == len(sent) > 200
    assert {"authorize", "answer", "interim", "end", "sms"} <= set(sent)
    assert f"{len(sent)} requests" in summary
    with runtime.db.uow(readonly=True) as uow:
        assert uow.now == NOW  # the service's own clock is untouched
        calls = list(uow.conn.execute(sa.select(schema.calls).where(
            schema.calls.c.tenant_id == tid)))
        usage = list(uow.conn.execute(sa.select(schema.usage_records).where(
            schema.usage_records.c.tenant_id == tid)))
        lot = uow.conn.execute(sa.select(schema.lots).where(
            schema.lots.c.tenant_id == tid)).one()
        wallet = uow.tenants.wallet(tid)
        checked, mismatches = ledger.verify(uow)
    assert checked >= 1 and mismatches == []
    # the tenant bought its credits a week ago, then the calls came, day after day
    assert lot.purchased_at == NOW - timedelta(days=7)
    starts = sorted(u.start_time for u in usage)
    assert NOW - timedelta(days=7) <= starts[0] and starts[-1] < NOW
    assert len({s.date() for s in starts}) >= 5
    # each call was decided and settled: none still open, nothing left reserved
    assert {c.status for c in calls} <= {"ended", "blocked"}
    assert wallet.reserved == 0
    statuses = {c.status for c in calls}
    assert statuses == {"ended", "blocked"}  # some calls are refused (premium, no plan)
    fundings = {u.funding for u in usage if u.kind == "call"}
    assert {"included", "credits", "free"} <= fundings
    # every charge is what the wallet lost: the report and the balance agree
    charged = sum((u.charge for u in usage), Decimal(0))
    assert charged > 0
    assert wallet.balance == Decimal("100.00") - charged
    credits = api.credits(tid)
    assert Decimal(credits["balance"]) == Decimal("100.00") - charged
    first = (NOW - timedelta(days=7)).date()
    report = api.get(f"/v1/tenants/{tid}/reports/pstn-usage?from={first}&to={NOW.date()}",
                     expect=200).json()
    assert len(report) == sum(u.kind == "call" for u in usage)
    assert {r["AAD ObjectId"] for r in report} >= {"3f1c2b7a-5d4e-4f60-9a8b-0c1d2e3f4a5b"}
    # a second run adds keys, and no usage
    again = load_demo(runtime, usage_days=7)
    assert any("only a newly created demo tenant" in line for line in again)
    with runtime.db.uow(readonly=True) as uow:
        assert uow.conn.scalar(sa.select(sa.func.count()).select_from(
            schema.usage_records).where(schema.usage_records.c.tenant_id == tid)) == len(usage)


def test_the_same_seed_makes_the_same_usage():
    start, end = NOW - timedelta(days=3), NOW
    one = demo_usage.plan("tnt_x", start, end, demo_usage.random.Random(5))
    two = demo_usage.plan("tnt_x", start, end, demo_usage.random.Random(5))
    assert [(s.at, s.action, s.call.body if s.call else s.sms) for s in one] == \
        [(s.at, s.action, s.call.body if s.call else s.sms) for s in two]
    assert all(start <= s.at < end for s in one)
    # office hours in each person's own time zone (Carol in London, the others in Seattle)
    zones = {p.upn: ZoneInfo(p.zone) for p in demo_usage.PEOPLE}
    for s in one:
        body = s.call.body if s.call else s.sms
        person = getattr(body, "organizer_upn", None) or body.upn
        if person and s.action == "authorize":
            assert 8 <= s.at.astimezone(zones[person]).hour < 18, (person, s.at)


def test_the_cli_option(db_url):
    out = CliRunner().invoke(cli, ["demo", "--usage", "2", "--db", db_url])
    assert out.exit_code == 0, out.output
    assert "# demo usage over 2 days:" in out.stdout
    bad = CliRunner().invoke(cli, ["demo", "--usage", "-1", "--db", db_url])
    assert bad.exit_code == 2
