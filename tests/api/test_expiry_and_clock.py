"""Lot expiry (12 months), the 30-day warning, and the manual clock that drives them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from commcredits.config import Settings
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime
from commcredits.services.ledger import verify


def ledger_ok(api) -> None:
    with api.rt.db.uow() as uow:
        _, problems = verify(uow)
    assert problems == []


def kinds(api, tid):
    return [n["kind"] for n in api.get(f"/v1/tenants/{tid}/notifications", expect=200).json()]


def test_lot_expires_after_twelve_months_and_is_forfeited(api):
    api.set_clock("2030-01-31T09:00:00Z")
    tid = api.tenant("US")
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["billing@contoso.com"]})
    pm = api.card(tid)
    first = api.order(tid, "80.00", pm).json()["lot_id"]
    api.set_clock("2030-06-15T00:00:00Z")
    second = api.order(tid, "50.00", pm).json()["lot_id"]

    # 30 days ahead: a warning, nothing forfeited
    ran = api.set_clock("2031-01-01T09:00:00Z")
    assert ran["jobs"]["expire"] == 1
    assert kinds(api, tid) == ["lot_expiring"]
    assert api.credits(tid)["balance"] == "130.00"
    # one second before expiry: still there
    api.set_clock("2031-01-31T08:59:59Z")
    assert api.credits(tid)["balance"] == "130.00"
    # at expiry: the oldest lot is forfeited with a ledger entry
    api.set_clock("2031-01-31T09:00:00Z")
    c = api.credits(tid)
    assert c["balance"] == c["available"] == "50.00"
    lots = {lot["id"]: lot["remaining"] for lot in c["lots"]}
    assert lots == {first: "0.00", second: "50.00"}
    txns = api.get(f"/v1/tenants/{tid}/credits/transactions").json()
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in txns] == [
        ("order", "80.00", "80.00"), ("order", "50.00", "130.00"),
        ("expiry", "-80.00", "50.00")]
    assert txns[-1]["lot_id"] == first
    assert sorted(kinds(api, tid)) == ["lot_expired", "lot_expiring"]
    notes = api.get(f"/v1/tenants/{tid}/notifications").json()
    assert {n["to"] for n in notes} == {"billing@contoso.com"}
    assert all(n["status"] == "pending" for n in notes)  # no SMTP configured here
    ledger_ok(api)

    # jobs running again change nothing
    api.set_clock("2031-01-31T09:30:00Z")
    assert len(api.get(f"/v1/tenants/{tid}/credits/transactions").json()) == 3
    assert len(kinds(api, tid)) == 2

    # the second lot goes too, a year after its own purchase; the balance reaches zero
    api.set_clock("2031-06-15T00:00:00Z")
    assert api.credits(tid)["balance"] == "0.00"
    assert kinds(api, tid).count("balance_zero") == 1
    ledger_ok(api)


def test_month_end_purchase_expires_on_the_month_end(api):
    api.set_clock("2028-02-29T12:00:00Z")
    tid = api.tenant("US")
    api.order(tid, "50", api.card(tid))
    [lot] = api.credits(tid)["lots"]
    assert lot["expires_at"].startswith("2029-02-28T12:00:00")
    api.set_clock("2029-02-28T11:59:59Z")
    assert api.credits(tid)["balance"] == "50.00"
    api.set_clock("2029-02-28T12:00:00Z")
    assert api.credits(tid)["balance"] == "0.00"


def test_expiry_notice_without_contacts_is_recorded(api):
    api.set_clock("2030-01-01T00:00:00Z")
    tid = api.tenant("US")
    api.order(tid, "50", api.card(tid))
    api.set_clock("2030-12-15T00:00:00Z")
    api.set_clock("2031-01-02T00:00:00Z")
    notes = api.get(f"/v1/tenants/{tid}/notifications").json()
    assert {(n["kind"], n["to"], n["status"]) for n in notes} == {
        ("lot_expiring", None, "no_recipient"), ("lot_expired", None, "no_recipient"),
        ("balance_zero", None, "no_recipient")}


def test_jumping_past_expiry_sends_no_late_warning(api):
    api.set_clock("2030-01-01T00:00:00Z")
    tid = api.tenant("US")
    api.order(tid, "50", api.card(tid))
    api.set_clock("2031-03-01T00:00:00Z")
    assert sorted(kinds(api, tid)) == ["balance_zero", "lot_expired"]


def test_clock_never_goes_backwards(api):
    api.set_clock("2030-01-01T00:00:00Z")
    r = api.post("/v1/clock", {"now": "2029-12-31T23:59:59Z"}, expect=409)
    assert r.json()["error"]["code"] == "clock_backwards"
    api.post("/v1/clock", {"now": "yesterday"}, expect=422)
    assert api.get("/v1/clock", expect=200).json()["now"].startswith("2030-01-01T00:00:00")
    tid = api.tenant()
    api.post("/v1/clock", {"now": "2031-01-01T00:00:00Z"}, key=api.new_key("global_admin", tid),
             expect=403)


@pytest.fixture
def real_clock_api(db_url):
    settings = Settings(db=db_url, manual_clock=False)
    rt = Runtime.from_settings(settings)
    with TestClient(create_app(runtime=rt)) as client:
        yield client, rt
    rt.db.engine.dispose()


def test_clock_is_404_without_manual_clock(real_clock_api):
    client, rt = real_clock_api
    from commcredits.services.access import create_api_key
    with rt.db.uow() as uow:
        _, key, _ = create_api_key(uow, "operator", None)
        uow.commit()
    r = client.post("/v1/clock", json={"now": "2040-01-01T00:00:00Z"},
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
