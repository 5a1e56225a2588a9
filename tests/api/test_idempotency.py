"""Idempotency-Key: a repeat returns the first answer and changes nothing."""

from __future__ import annotations


def test_repeated_order_pays_once(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    body = {"amount": "75.00", "payment_method_id": pm}
    first = api.post(f"/v1/tenants/{tid}/credits/orders", body,
                     headers={"Idempotency-Key": "order-1"}, expect=201)
    again = api.post(f"/v1/tenants/{tid}/credits/orders", body,
                     headers={"Idempotency-Key": "order-1"}, expect=201)
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    c = api.credits(tid)
    assert c["balance"] == "75.00" and len(c["lots"]) == 1
    api.post(f"/v1/tenants/{tid}/credits/orders", body, headers={"Idempotency-Key": "order-2"},
             expect=201)
    assert api.credits(tid)["balance"] == "150.00"


def test_same_key_other_request_is_refused(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    api.post(f"/v1/tenants/{tid}/credits/orders", {"amount": "75.00", "payment_method_id": pm},
             headers={"Idempotency-Key": "k"}, expect=201)
    r = api.post(f"/v1/tenants/{tid}/credits/orders", {"amount": "80.00",
                                                       "payment_method_id": pm},
                 headers={"Idempotency-Key": "k"}, expect=409)
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert api.credits(tid)["balance"] == "75.00"


def test_failed_request_can_be_retried_with_its_key(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    body = {"amount": "10.00", "payment_method_id": pm}
    api.post(f"/v1/tenants/{tid}/credits/orders", body, headers={"Idempotency-Key": "x"},
             expect=422)
    api.rt.settings.min_order = api.rt.settings.min_order.__class__("5")
    api.post(f"/v1/tenants/{tid}/credits/orders", body, headers={"Idempotency-Key": "x"},
             expect=201)
    assert api.credits(tid)["balance"] == "10.00"


def test_other_writes_are_idempotent(api):
    body = {"name": "Once", "country": "US", "commerce": "legacy"}
    a = api.post("/v1/tenants", body, headers={"Idempotency-Key": "t1"}, expect=201)
    b = api.post("/v1/tenants", body, headers={"Idempotency-Key": "t1"}, expect=201)
    assert a.json() == b.json()
    assert len(api.get("/v1/tenants").json()) == 1


def test_keys_are_per_caller(api):
    t1, t2 = api.tenant(), api.tenant()
    k1, k2 = api.new_key("billing_admin", t1), api.new_key("billing_admin", t2)
    p1, p2 = api.card(t1), api.card(t2)
    h = {"Idempotency-Key": "same"}
    api.post(f"/v1/tenants/{t1}/credits/orders", {"amount": "50", "payment_method_id": p1},
             key=k1, headers=h, expect=201)
    api.post(f"/v1/tenants/{t2}/credits/orders", {"amount": "50", "payment_method_id": p2},
             key=k2, headers=h, expect=201)
    assert api.credits(t1)["balance"] == api.credits(t2)["balance"] == "50.00"


def test_new_api_key_is_never_stored_for_replay(api):
    h = {"Idempotency-Key": "key-1"}
    first = api.post("/v1/api-keys", {"role": "switch"}, headers=h, expect=201).json()
    replay = api.post("/v1/api-keys", {"role": "switch"}, headers=h, expect=201).json()
    assert first["key"] and replay["key"] is None and replay["id"] == first["id"]
    with api.rt.db.uow() as uow:
        stored = " ".join(r[0] or "" for r in uow.conn.exec_driver_sql(
            "SELECT response_body FROM idempotency_keys"))
    assert first["key"] not in stored
