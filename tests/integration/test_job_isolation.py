"""One poisoned row never stops the background jobs (issue 8, item 1): it is reported in the
log and ``/metrics``, skipped, and every other row and job goes on."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from commcredits.services import expiry, recharge, settlement
from commcredits.services import jobs as jobs_module
from tests.api.voice import UK, make_voice


def failures(job: str, scope: str = "row") -> float:
    return REGISTRY.get_sample_value("commcredits_job_failures_total",
                                     {"job": job, "scope": scope}) or 0.0


def test_a_long_call_id_is_refused_before_it_can_poison_anything(api):
    voice = make_voice(api)
    voice.fund("50.00")
    body = {"tenant_id": voice.tid, "call_type": "user_out", "from": "+14255550100",
            "to": UK, "upn": "payg@contoso.com"}
    for n in (196, 200):
        r = api.post("/v1/calls", {**body, "call_id": "c" * n}, key=voice.switch)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "validation_error"
    longest = "c" * 128
    voice.call(longest, UK)
    assert voice.end(longest, 61)["charge"] == "0.04"
    refs = [t["reference"] for t in api.get(f"/v1/tenants/{voice.tid}/credits/transactions")
            .json()]
    assert f"call {longest}" in refs
    sms = {"message_id": "m" * 200, "tenant_id": voice.tid, "upn": "payg@contoso.com",
           "to": UK}
    assert api.post("/v1/sms", sms, key=voice.switch).status_code == 422


def test_a_poisoned_call_is_skipped_and_the_other_jobs_run(api, monkeypatch):
    voice = make_voice(api)
    voice.fund("50.00")
    voice.call("poison", UK)
    voice.call("healthy", UK)
    real = settlement.settle_stale

    def settle(uow, call, *args):
        if call.call_id == "poison":
            raise RuntimeError("a row this version cannot settle")
        return real(uow, call, *args)
    monkeypatch.setattr(settlement, "settle_stale", settle)
    before = failures("calls")
    # a year on: both calls are stale, and the order's lot is due for its 30-day warning
    ran = api.set_clock("2031-02-15T00:00:00Z")
    assert ran["jobs"]["calls"] == 1  # the healthy one
    assert ran["jobs"]["expire"] == 1  # the jobs after it still ran
    assert failures("calls") == before + 1
    assert "commcredits_job_failures_total" in api.client.get("/metrics").text
    c = voice.credits()
    assert c["reserved"] == "0.10"  # only the poisoned call still holds its reservation
    monkeypatch.setattr(settlement, "settle_stale", real)
    api.set_clock("2031-02-15T00:01:00Z")  # once mended, the next run settles it
    assert voice.credits()["reserved"] == "0.00"


def test_a_poisoned_tenant_does_not_stop_expiry_of_the_others(api, monkeypatch):
    api.set_clock("2030-01-01T00:00:00Z")
    sick, well = api.tenant("US"), api.tenant("US")
    for tid in (sick, well):
        api.order(tid, "60.00", api.card(tid))
    real = expiry.get_tenant  # the expiry job's chunks (services.expiry) read the tenant

    def get_tenant(uow, tid):
        if tid == sick:
            raise RuntimeError("poisoned tenant row")
        return real(uow, tid)
    monkeypatch.setattr(expiry, "get_tenant", get_tenant)
    before = failures("expire")
    ran = api.set_clock("2031-01-02T00:00:00Z")
    assert ran["jobs"]["expire"] == 1  # the well tenant's lot expired
    assert failures("expire") == before + 2  # the sick one, in both expiry steps
    assert api.credits(well)["balance"] == "0.00"
    assert api.credits(sick)["balance"] == "60.00"


def test_a_poisoned_recharge_does_not_stop_the_others(api, monkeypatch):
    api.set_clock("2030-01-01T00:00:00Z")
    tids = [api.tenant("US"), api.tenant("US")]
    sick = {tids[0], tids[1]}  # while setting up: nothing recharges at once
    real = recharge.attempt

    def attempt(db, tenant_id, *args, **kw):
        if tenant_id in sick:
            raise RuntimeError("poisoned recharge")
        return real(db, tenant_id, *args, **kw)
    monkeypatch.setattr(recharge, "attempt", attempt)
    for tid in tids:
        pm = api.card(tid)
        api.order(tid, "60.00", pm)
        # below the trigger already: a recharge is queued (its first try fails quietly)
        api.put(f"/v1/tenants/{tid}/credits/auto-recharge",
                {"enabled": True, "trigger_amount": "100.00", "recharge_amount": "50.00",
                 "payment_method_id": pm}, expect=200)
    sick.discard(tids[1])
    before = failures("recharge")
    ran = api.set_clock("2030-01-01T02:00:00Z")
    assert ran["jobs"]["recharge"] == 1
    assert failures("recharge") == before + 1
    assert api.credits(tids[1])["balance"] == "110.00"
    assert api.credits(tids[0])["balance"] == "60.00"


@pytest.mark.parametrize("job", ["expire", "calls"])
def test_a_whole_job_failing_leaves_the_others_running(api, monkeypatch, job):
    def broken(ctx):
        raise RuntimeError("database away")
    monkeypatch.setitem(jobs_module.JOBS, job, [broken])
    before = failures(job, "job")
    ran = api.set_clock("2030-01-01T00:00:00Z")
    assert set(ran["jobs"]) == set(jobs_module.ORDER)
    assert failures(job, "job") == before + 1


def test_a_cdr_with_a_long_call_id_refuses_the_file_up_front(api, db_url, tmp_path):
    from typer.testing import CliRunner

    from commcredits.entrypoints.cli import app as cli
    voice = make_voice(api)
    voice.fund("10.00")
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"a,{voice.tid},user_out,,{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61\n"
        f"{'x' * 198},{voice.tid},user_out,,{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61\n"
        f"b,{voice.tid},user_out,,{UK},pay\x01g@contoso.com,,2030-03-01T09:00:00Z,61\n")
    r = CliRunner().invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 1, r.output
    assert "line 3" in r.output and "call_id must be at most 128" in r.output
    assert "line 4" in r.output
    assert voice.credits()["balance"] == "10.00"  # nothing rated


def test_a_poisoned_payment_does_not_stop_reconciliation(api, monkeypatch):
    from commcredits.services import payments
    api.set_clock("2030-01-01T00:00:00Z")
    tids = [api.tenant("US"), api.tenant("US")]
    pms = [api.card(t) for t in tids]
    real_settle, real_charge = payments.settle, payments.charge
    monkeypatch.setattr(payments, "settle", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("killed after the charge")))
    for tid, pm in zip(tids, pms, strict=True):
        assert api.order(tid, "60.00", pm).status_code == 500
    monkeypatch.setattr(payments, "settle", real_settle)
    with api.rt.db.uow() as uow:
        sick = next(a.id for a in uow.payments.all() if a.tenant_id == tids[0])

    def charge(db, gateway, attempt_id):
        if attempt_id == sick:
            raise RuntimeError("gateway answered garbage")
        return real_charge(db, gateway, attempt_id)
    monkeypatch.setattr(payments, "charge", charge)
    before = failures("payments")
    ran = api.set_clock("2030-01-01T01:00:00Z")  # past the 5 minutes a payment may be in flight
    assert ran["jobs"]["payments"] == 1
    assert failures("payments") == before + 1
    assert api.credits(tids[1])["balance"] == "60.00"
    assert api.credits(tids[0])["balance"] == "0.00"  # still pending: the next run retries
    monkeypatch.setattr(payments, "charge", real_charge)
    api.set_clock("2030-01-01T02:00:00Z")
    assert api.credits(tids[0])["balance"] == "60.00"
