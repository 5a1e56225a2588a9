"""Tenant administration: seats, users, license assignment rules, bulk assignment."""

from __future__ import annotations

import pytest


@pytest.fixture
def tenant(api):
    tid = api.tenant("US")
    for sku, qty in (("MCOEV", 5), ("MCOPSTN1", 5), ("MCOMEETADD", 5), ("SPE_E5", 1)):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": qty}, expect=201)
    return tid


def user(api, tid, upn, location="US", **extra):
    body = {"upn": upn, "display_name": upn.split("@")[0].title(), "usage_location": location,
            **extra}
    return api.post(f"/v1/tenants/{tid}/users", body, expect=201).json()


def assign(api, tid, upn, sku):
    return api.put(f"/v1/tenants/{tid}/users/{upn}/licenses/{sku}")


def test_subscriptions_count_seats(api, tenant):
    r = api.post(f"/v1/tenants/{tenant}/subscriptions", {"sku": "MCOEV", "quantity": 3},
                 expect=201)
    assert r.json() == {"sku": "MCOEV", "quantity": 8, "assigned": 0}
    user(api, tenant, "a@contoso.com")
    assign(api, tenant, "a@contoso.com", "MCOEV")
    subs = {s["sku"]: s for s in api.get(f"/v1/tenants/{tenant}/subscriptions").json()}
    assert subs["MCOEV"] == {"sku": "MCOEV", "quantity": 8, "assigned": 1}
    api.post(f"/v1/tenants/{tenant}/subscriptions", {"sku": "NOPE", "quantity": 1}, expect=404)
    api.post(f"/v1/tenants/{tenant}/subscriptions", {"sku": "MCOEV", "quantity": 0}, expect=422)


def test_users(api, tenant):
    u = user(api, tenant, "alice@contoso.com", "GB", phone_number="+44 20 7946 0123")
    assert u["phone_number"] == "+442079460123" and u["licenses"] == []
    got = api.get(f"/v1/tenants/{tenant}/users/alice@contoso.com", expect=200).json()
    assert got["upn"] == "alice@contoso.com" and got["usage_location"] == "GB"
    r = api.post(f"/v1/tenants/{tenant}/users", {"upn": "alice@contoso.com",
                                                 "usage_location": "US"}, expect=409)
    assert r.json()["error"]["code"] == "already_exists"
    api.post(f"/v1/tenants/{tenant}/users", {"upn": "b@contoso.com", "usage_location": "QQ"},
             expect=422)
    api.post(f"/v1/tenants/{tenant}/users", {"upn": "c@contoso.com", "usage_location": "US",
                                             "phone_number": "12"}, expect=422)
    api.get(f"/v1/tenants/{tenant}/users/nobody@contoso.com", expect=404)


@pytest.mark.parametrize(("held", "allowed"), [
    ([], False),
    (["MCOEV"], False),
    (["MCOPSTN1"], False),
    (["MCOEV", "MCOPSTN1"], True),
    (["MCOMEETADD"], True),
    (["SPE_E5"], True),
])
def test_credits_license_prerequisite(api, tenant, held, allowed):
    user(api, tenant, "u@contoso.com")
    for sku in held:
        assign(api, tenant, "u@contoso.com", sku)
    r = assign(api, tenant, "u@contoso.com", "MCOPSTNPP")
    if allowed:
        assert r.status_code == 200, r.text
        assert "MCOPSTNPP" in r.json()["licenses"]
    else:
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "prerequisite_missing"
        got = api.get(f"/v1/tenants/{tenant}/users/u@contoso.com").json()
        assert "MCOPSTNPP" not in got["licenses"]


def test_seats_and_unknown_sku(api, tenant):
    user(api, tenant, "a@contoso.com")
    user(api, tenant, "b@contoso.com")
    assert assign(api, tenant, "a@contoso.com", "SPE_E5").status_code == 200
    assert assign(api, tenant, "a@contoso.com", "SPE_E5").status_code == 200  # already held
    r = assign(api, tenant, "b@contoso.com", "SPE_E5")
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_seats_available"
    r = assign(api, tenant, "b@contoso.com", "MCOPSTN2")  # no subscription at all
    assert r.json()["error"]["code"] == "no_seats_available"
    r = assign(api, tenant, "b@contoso.com", "FOO")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_sku"


def test_credits_license_is_free_and_unlimited(api, tenant):
    for i in range(7):  # more users than any paid seat count
        user(api, tenant, f"u{i}@contoso.com")
        api.post(f"/v1/tenants/{tenant}/subscriptions", {"sku": "MCOMEETADD", "quantity": 1})
        assert assign(api, tenant, f"u{i}@contoso.com", "MCOMEETADD").status_code == 200
        assert assign(api, tenant, f"u{i}@contoso.com", "MCOPSTNPP").status_code == 200


def test_removing_a_prerequisite(api, tenant):
    user(api, tenant, "a@contoso.com")
    for sku in ("MCOEV", "MCOPSTN1", "MCOPSTNPP"):
        assert assign(api, tenant, "a@contoso.com", sku).status_code == 200
    r = api.delete(f"/v1/tenants/{tenant}/users/a@contoso.com/licenses/MCOPSTN1", expect=409)
    assert r.json()["error"]["code"] == "license_required_by"
    assert "MCOPSTN1" in api.get(f"/v1/tenants/{tenant}/users/a@contoso.com").json()["licenses"]
    r = api.delete(f"/v1/tenants/{tenant}/users/a@contoso.com/licenses/MCOPSTN1?cascade=true",
                   expect=200)
    assert r.json()["licenses"] == ["MCOEV"]
    # the seat is free again
    subs = {s["sku"]: s for s in api.get(f"/v1/tenants/{tenant}/subscriptions").json()}
    assert subs["MCOPSTN1"]["assigned"] == 0
    r = api.delete(f"/v1/tenants/{tenant}/users/a@contoso.com/licenses/MCOEV", expect=200)
    assert r.json()["licenses"] == []


def test_bulk_assignment(api, tenant):
    user(api, tenant, "a@contoso.com")
    user(api, tenant, "b@contoso.com")
    user(api, tenant, "c@contoso.com")
    assign(api, tenant, "a@contoso.com", "MCOMEETADD")
    assign(api, tenant, "b@contoso.com", "MCOMEETADD")
    assign(api, tenant, "b@contoso.com", "MCOPSTNPP")
    r = api.post(f"/v1/tenants/{tenant}/licenses/assign",
                 {"sku": "MCOPSTNPP", "upns": ["a@contoso.com", "b@contoso.com",
                                              "c@contoso.com", "ghost@contoso.com"]},
                 expect=200)
    results = {x["upn"]: x for x in r.json()["results"]}
    assert results["a@contoso.com"]["status"] == "assigned"
    assert results["b@contoso.com"]["status"] == "already_assigned"
    assert results["c@contoso.com"] == {**results["c@contoso.com"], "status": "error",
                                        "error": "prerequisite_missing"}
    assert results["ghost@contoso.com"]["error"] == "not_found"
    assert "MCOPSTNPP" in api.get(f"/v1/tenants/{tenant}/users/a@contoso.com").json()["licenses"]
    api.post(f"/v1/tenants/{tenant}/licenses/assign", {"sku": "NOPE", "upns": ["a@contoso.com"]},
             expect=404)


def test_user_admin_manages_users_but_not_billing(api, tenant):
    key = api.new_key("user_admin", tenant)
    api.post(f"/v1/tenants/{tenant}/users", {"upn": "x@contoso.com", "usage_location": "US"},
             key=key, expect=201)
    api.put(f"/v1/tenants/{tenant}/users/x@contoso.com/licenses/MCOEV", key=key, expect=200)
    api.post(f"/v1/tenants/{tenant}/numbers", {"number": "+18005550100", "type": "toll_free"},
             key=key, expect=201)
    api.put(f"/v1/tenants/{tenant}/billing-contacts", {"emails": ["a@b.com"]}, key=key,
            expect=403)
    api.post(f"/v1/tenants/{tenant}/payment-methods",
             {"type": "enterprise_agreement", "agreement_number": "EA-1"}, key=key, expect=403)


def test_numbers_and_contacts(api, tenant):
    r = api.post(f"/v1/tenants/{tenant}/numbers", {"number": "+1 800 555 0100",
                                                   "type": "toll_free"}, expect=201)
    assert r.json()["number"] == "+18005550100"
    api.post(f"/v1/tenants/{tenant}/numbers", {"number": "+18005550100", "type": "toll_free"},
             expect=409)
    api.post(f"/v1/tenants/{tenant}/numbers", {"number": "+18005550101", "type": "fax"},
             expect=422)
    api.post(f"/v1/tenants/{tenant}/numbers", {"number": "hello", "type": "user"}, expect=422)
    r = api.put(f"/v1/tenants/{tenant}/billing-contacts",
                {"emails": ["Billing@Contoso.com", "cfo@contoso.com"]}, expect=200)
    assert r.json()["emails"] == ["billing@contoso.com", "cfo@contoso.com"]
    api.put(f"/v1/tenants/{tenant}/billing-contacts", {"emails": ["not-an-email"]}, expect=422)
    assert api.get(f"/v1/tenants/{tenant}/billing-contacts").json()["emails"] == [
        "billing@contoso.com", "cfo@contoso.com"]


def test_console_admin_creation(api, tenant):
    r = api.post(f"/v1/tenants/{tenant}/admins", {"email": "boss@contoso.com",
                                                  "password": "s3cret-pass",
                                                  "role": "billing_admin"}, expect=201)
    assert r.json()["role"] == "billing_admin" and "password" not in r.json()
    with api.rt.db.uow() as uow:
        stored = uow.conn.exec_driver_sql("SELECT password_hash FROM admins").scalar_one()
    assert "s3cret-pass" not in stored and stored.startswith("$argon2id$")
    api.post(f"/v1/tenants/{tenant}/admins", {"email": "boss@contoso.com",
                                              "password": "another-pass",
                                              "role": "global_admin"}, expect=409)
    api.post(f"/v1/tenants/{tenant}/admins", {"email": "x@contoso.com", "password": "short",
                                              "role": "global_admin"}, expect=422)
