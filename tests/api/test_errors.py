"""Bad input gets a clear 4xx error in the contract's shape, never a 5xx."""

from __future__ import annotations

import pytest


def test_malformed_json(api):
    tid = api.tenant()
    r = api.client.post(f"/v1/tenants/{tid}/credits/orders", content=b"{not json",
                        headers={"Authorization": f"Bearer {api.operator}",
                                 "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("body", [None, [], "text", 42, {"amount": {"x": 1}},
                                  {"amount": "50", "payment_method_id": None}])
def test_wrong_shapes(api, body):
    tid = api.tenant()
    r = api.post(f"/v1/tenants/{tid}/credits/orders", body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["message"]


def test_unknown_path_and_method(api):
    r = api.get("/v1/nothing-here", expect=404)
    assert r.json()["error"]["code"] == "not_found"
    r = api.call("DELETE", "/v1/tenants", expect=405)
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_card_number_never_echoed(api):
    tid = api.tenant()
    r = api.post(f"/v1/tenants/{tid}/payment-methods",
                 {"type": "card", "card_number": "4242424242424242", "exp_month": "soon",
                  "exp_year": 2035}, expect=422)
    assert "4242424242424242" not in r.text


def test_health_and_metrics(api):
    assert api.client.get("/healthz").json()["status"] == "ok"
    api.tenant()
    text = api.client.get("/metrics").text
    assert "commcredits_http_requests_total" in text
    assert api.client.get("/openapi.json").json()["info"]["title"] == "commcredits"
