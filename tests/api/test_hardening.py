"""Issue 8: no 5xx for any input, JSON errors for everything, free seats closed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from commcredits.services import credits as credits_service


def _error(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code


# -- NUL and friends ----------------------------------------------------------------------
def test_nul_in_body_path_and_query_is_refused(api):
    tid = api.tenant()
    user = {"upn": "a\x00b@contoso.com", "display_name": "x", "usage_location": "US"}
    _error(api.post(f"/v1/tenants/{tid}/users", user), 422, "validation_error")
    _error(api.post(f"/v1/tenants/{tid}/users", {**user, "upn": "ok@contoso.com",
                                                  "display_name": "a\x00"}),
           422, "validation_error")
    _error(api.post("/v1/tenants", {"name": "bad\x00name", "country": "US"}),
           422, "validation_error")
    _error(api.get("/v1/tenants/a%00b/credits"), 422, "validation_error")
    _error(api.get(f"/v1/tenants/{tid}/reports/pstn-usage?from=2030-01-01%00"),
           422, "validation_error")
    _error(api.get("/v1/tenants/%ff%fe/credits"), 422, "validation_error")
    assert api.get(f"/v1/tenants/{tid}/users", expect=200).json() == []


def test_nul_in_a_rate_deck_changes_nothing(api):
    deck = ("prefix,destination,number_type,per_minute,connection_fee,increment_s\n"
            "1,United\x00States,any,0.0100,0.0000,60\n")
    r = api.client.put("/v1/rate-decks/USD", content=deck.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 422, r.text


# -- dates at the end of time ----------------------------------------------------------------
def test_the_clock_refuses_the_year_9999_and_stays_put(api):
    api.set_clock("2030-01-01T00:00:00Z")
    _error(api.post("/v1/clock", {"now": "9999-12-31T00:00:00Z"}), 422, "validation_error")
    assert api.client.get("/v1/clock", headers={
        "Authorization": f"Bearer {api.operator}"}).json()["now"].startswith("2030-01-01")


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_reports_refuse_dates_past_the_span(api, fmt):
    tid = api.tenant()
    r = api.get(f"/v1/tenants/{tid}/reports/pstn-usage?from=9999-01-01&to=9999-12-31"
                f"&format={fmt}")
    _error(r, 422, "validation_error")


# -- the database away ----------------------------------------------------------------------
def test_a_lost_database_connection_answers_503_with_retry_after(api, monkeypatch):
    tid = api.tenant()

    def lost(*args, **kw):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    monkeypatch.setattr(credits_service, "credits_view", lost)
    r = api.get(f"/v1/tenants/{tid}/credits")
    _error(r, 503, "unavailable")
    assert int(r.headers["Retry-After"]) > 0


def test_an_order_retried_after_a_lost_connection_has_its_effect_once(api, monkeypatch):
    from commcredits.services import payments
    tid = api.tenant()
    pm = api.card(tid)
    real = payments.settle
    calls = []

    def settle_then_lose_the_answer(*args, **kw):
        out = real(*args, **kw)  # committed ...
        if not calls:
            calls.append(1)  # ... but the connection drops before the answer
            raise sa.exc.OperationalError("COMMIT", {}, Exception("connection reset"))
        return out
    monkeypatch.setattr(payments, "settle", settle_then_lose_the_answer)
    headers = {"Authorization": f"Bearer {api.operator}", "Idempotency-Key": "retry-me"}
    body = {"amount": "60.00", "payment_method_id": pm}
    first = api.client.post(f"/v1/tenants/{tid}/credits/orders", json=body, headers=headers)
    _error(first, 503, "unavailable")
    again = api.client.post(f"/v1/tenants/{tid}/credits/orders", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert api.credits(tid)["balance"] == "60.00"


# -- malformed requests -----------------------------------------------------------------------
def test_405_says_what_is_allowed(api):
    r = api.call("DELETE", "/v1/tenants")
    _error(r, 405, "method_not_allowed")
    assert "POST" in {m.strip() for m in r.headers["Allow"].split(",")}


@pytest.mark.parametrize("raw", [b'{"name": "\xff\xfe", "country": "US"}',
                                 b"[" * 5000 + b"]" * 5000])
def test_undecodable_and_deep_bodies_are_422(api, raw):
    r = api.client.post("/v1/tenants", content=raw, headers={
        "Authorization": f"Bearer {api.operator}", "Content-Type": "application/json"})
    _error(r, 422, "validation_error")


def test_bodies_above_the_limit_are_refused_unread(api):
    big = b'{"name": "' + b"x" * (9 * 1024 * 1024) + b'", "country": "US"}'
    headers = {"Authorization": f"Bearer {api.operator}", "Content-Type": "application/json"}
    _error(api.client.post("/v1/tenants", content=big, headers=headers), 413,
           "payload_too_large")

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * (1024 * 1024)
    _error(api.client.post("/v1/tenants", content=chunks(), headers=headers), 413,
           "payload_too_large")


def test_booleans_and_integers_are_strict(api):
    tid = api.tenant()
    _error(api.put(f"/v1/tenants/{tid}/credits/auto-recharge", {"enabled": 0.0}), 422,
           "validation_error")
    for quantity in (2.5, "2", True):
        _error(api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": "MCOEV",
                                                             "quantity": quantity}),
               422, "validation_error")
    # JSON Schema (and so the OpenAPI) counts 2.0 as the integer 2
    r = api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": "MCOEV", "quantity": 2.0})
    assert r.status_code == 201 and r.json()["quantity"] == 2
    switch = api.new_key("switch")
    _error(api.post("/v1/calls/x/end", {"duration_s": False}, key=switch), 422,
           "validation_error")


def test_a_call_id_is_taken_exactly_as_sent(api):
    switch = api.new_key("switch")
    tid = api.tenant()
    body = {"call_id": " padded ", "tenant_id": tid, "call_type": "user_out", "to": "+1425"}
    _error(api.post("/v1/calls", body, key=switch), 422, "validation_error")


# -- seats are the operator's ----------------------------------------------------------------
@pytest.mark.parametrize("role", ["global_admin", "billing_admin", "user_admin",
                                  "reports_reader", "switch"])
def test_only_the_operator_adds_seats(api, role):
    tid = api.tenant()
    key = api.new_key(role, None if role == "switch" else tid)
    r = api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": "MCOEV", "quantity": 10_000_000},
                 key=key)
    _error(r, 403, "forbidden")
    api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": "MCOEV", "quantity": 5}, expect=201)
    if role != "switch":
        subs = api.get(f"/v1/tenants/{tid}/subscriptions", key=key, expect=200).json()
        assert [(s["sku"], s["quantity"]) for s in subs] == [("MCOEV", 5)]


def test_a_rate_deck_has_a_size_limit(api, monkeypatch):
    from commcredits.domain import rating
    monkeypatch.setattr(rating, "MAX_DECK_ROWS", 3)
    rows = "".join(f"{p},Dest {p},any,0.0100,0.0000,60\n" for p in range(10, 14))
    deck = "prefix,destination,number_type,per_minute,connection_fee,increment_s\n" + rows
    r = api.client.put("/v1/rate-decks/USD", content=deck.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    _error(r, 422, "validation_error")
    assert "at most 3 rates" in r.json()["error"]["message"]
