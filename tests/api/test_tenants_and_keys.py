"""Operator set-up: tenants, currencies, commerce model, API keys, auth errors."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("country", "currency"), [("US", "USD"), ("DE", "EUR"), ("GB", "GBP"),
                                                   ("JP", "JPY"), ("CH", "CHF")])
def test_currency_follows_country(api, country, currency):
    r = api.post("/v1/tenants", {"name": "Acme", "country": country, "commerce": "legacy"},
                 expect=201)
    body = r.json()
    assert body["currency"] == currency
    assert body["country"] == country and body["commerce"] == "legacy"
    assert api.get(f"/v1/tenants/{body['id']}", expect=200).json() == body


def test_currency_can_be_given(api):
    r = api.post("/v1/tenants", {"name": "Acme", "country": "IE", "commerce": "nce",
                                 "currency": "USD"}, expect=201)
    assert r.json()["currency"] == "USD" and r.json()["commerce"] == "nce"


@pytest.mark.parametrize("body", [
    {"name": "Acme", "country": "XX", "commerce": "legacy"},
    {"name": "Acme", "country": "US", "commerce": "modern"},
    {"name": "", "country": "US", "commerce": "legacy"},
    {"name": "Acme", "country": "US", "commerce": "legacy", "currency": "ZZZ"},
    {"country": "US"},
])
def test_bad_tenant_is_refused_and_nothing_created(api, body):
    r = api.post("/v1/tenants", body, expect=422)
    assert r.json()["error"]["code"] == "validation_error"
    assert api.get("/v1/tenants", expect=200).json() == []


def test_unknown_tenant_is_404(api):
    r = api.get("/v1/tenants/tnt_nope", expect=404)
    assert r.json()["error"]["code"] == "not_found"


def test_auth_errors(api):
    tid = api.tenant()
    r = api.client.get(f"/v1/tenants/{tid}")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = api.get(f"/v1/tenants/{tid}", key="cc_not_a_key", expect=401)
    assert r.json()["error"]["code"] == "unauthorized"


def test_tenant_key_never_sees_another_tenant(api):
    mine, other = api.tenant(), api.tenant()
    key = api.new_key("global_admin", mine)
    api.get(f"/v1/tenants/{mine}", key=key, expect=200)
    for path in (f"/v1/tenants/{other}", f"/v1/tenants/{other}/credits",
                 f"/v1/tenants/{other}/users"):
        assert api.get(path, key=key, expect=404).json()["error"]["code"] == "not_found"


def test_role_rights(api):
    tid = api.tenant()
    reader = api.new_key("reports_reader", tid)
    switch = api.new_key("switch")
    api.get(f"/v1/tenants/{tid}/credits", key=reader, expect=200)
    r = api.post(f"/v1/tenants/{tid}/users", {"upn": "a@x.com", "usage_location": "US"},
                 key=reader, expect=403)
    assert r.json()["error"]["code"] == "forbidden"
    assert api.get(f"/v1/tenants/{tid}", key=switch, expect=403).json()["error"]["code"] \
        == "forbidden"
    assert api.post("/v1/tenants", {"name": "x", "country": "US"}, key=reader,
                    expect=403).json()["error"]["code"] == "forbidden"


def test_api_keys(api):
    tid = api.tenant()
    r = api.post("/v1/api-keys", {"role": "global_admin", "tenant_id": tid}, expect=201)
    body = r.json()
    assert body["role"] == "global_admin" and body["tenant_id"] == tid
    assert body["key"].startswith("cc_") and body["id"]
    admin = body["key"]
    api.get(f"/v1/tenants/{tid}", key=admin, expect=200)
    # a global admin creates tenant keys for its own tenant only
    r = api.post("/v1/api-keys", {"role": "reports_reader"}, key=admin, expect=201)
    assert r.json()["tenant_id"] == tid
    api.post("/v1/api-keys", {"role": "operator"}, key=admin, expect=403)
    other = api.tenant()
    api.post("/v1/api-keys", {"role": "reports_reader", "tenant_id": other}, key=admin,
             expect=404)
    api.post("/v1/api-keys", {"role": "billing_admin"}, expect=422)  # tenant role, no tenant
    api.post("/v1/api-keys", {"role": "switch", "tenant_id": tid}, expect=422)
    api.post("/v1/api-keys", {"role": "wizard"}, expect=422)


def test_keys_are_stored_hashed(api):
    r = api.post("/v1/api-keys", {"role": "operator"}, expect=201)
    key = r.json()["key"]
    with api.rt.db.uow() as uow:
        hashes = [row[0] for row in uow.conn.exec_driver_sql("SELECT key_hash FROM api_keys")]
    assert key not in hashes and all(len(h) == 64 for h in hashes)


def test_commerce_change_needs_auto_recharge_off(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    api.order(tid, "60.00", pm, auto_recharge={"enabled": True, "recharge_amount": "50.00",
                                              "trigger_amount": "10.00"})
    r = api.patch(f"/v1/tenants/{tid}", {"commerce": "nce"}, expect=409)
    assert r.json()["error"]["code"] == "auto_recharge_enabled"
    assert api.get(f"/v1/tenants/{tid}").json()["commerce"] == "legacy"
    api.put(f"/v1/tenants/{tid}/credits/auto-recharge", {"enabled": False}, expect=200)
    assert api.patch(f"/v1/tenants/{tid}", {"commerce": "nce"}, expect=200).json()["commerce"] \
        == "nce"
    # credits bought before the move stay spendable
    assert api.credits(tid)["balance"] == "60.00"
    # but no more can be bought
    r = api.order(tid, "50.00", pm)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_available_for_commerce_model"
