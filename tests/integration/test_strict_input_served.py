"""Issue 19 point 6 on ``serve``'s own protocol (the switch's hot path answers there without
the ASGI front): a name sent twice or a UTF-16 body is refused with 422 naming the field and
authorizes nothing; OPTIONS and other methods answer 405 with ``Allow``. Both databases."""

from __future__ import annotations

import json
from typing import Any

import httpx

from commcredits.entrypoints.embedded import serving
from tests.api.voice import UK, US, make_voice


def test_the_served_hot_path_refuses_what_the_app_refuses(api: Any) -> None:
    voice = make_voice(api)
    voice.fund("50.00")
    body = {"call_id": "srv-1", "tenant_id": voice.tid, "call_type": "user_out", "from": US,
            "to": UK, "upn": "payg@contoso.com"}
    auth = {"Authorization": f"Bearer {voice.switch}", "Content-Type": "application/json"}
    with serving(api.rt) as base, httpx.Client(base_url=base, timeout=10) as http:
        twice = json.dumps(body)[:-1] + ', "upn": "dom@contoso.com"}'
        r = http.post("/v1/calls", content=twice.encode(), headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["field"] == "upn"
        r = http.post("/v1/calls", content=json.dumps(body).encode("utf-16"), headers=auth)
        assert r.status_code == 422 and "not UTF-8" in r.text, r.text
        r = http.post("/v1/calls/srv-1/end", content=b'{"duration_s": 60, "duration_s": 1}',
                      headers=auth)
        assert r.status_code == 422 and "duration_s" in r.text, r.text
        ok = http.post("/v1/calls", content=json.dumps(body).encode(), headers=auth)
        assert ok.status_code == 200 and ok.json()["decision"] == "allowed", ok.text
        for method in ("OPTIONS", "GET", "PUT"):
            r = http.request(method, "/v1/calls", headers=auth)
            assert (r.status_code, r.headers.get("allow")) == (405, "POST"), (method, r.text)
        r = http.request("OPTIONS", f"/v1/tenants/{voice.tid}")
        assert (r.status_code, r.headers.get("allow")) == (405, "GET, PATCH")
