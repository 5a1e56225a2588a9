"""Issue 19 point 6: bodies that must be refused are refused (422 naming the field, nothing
changed): a name twice, JSON not in UTF-8, numbers as timestamps, impossible months; a CDR
column nobody reads is named; every 405 says what is allowed. Both databases."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Route
from typer.testing import CliRunner

from commcredits.entrypoints.api import front
from commcredits.entrypoints.api.strict_json import check, has_duplicate_names
from commcredits.entrypoints.cli import app as cli
from tests.api.voice import UK, US, Voice

runner = CliRunner()


def _post(api: Any, path: str, raw: bytes, key: str | None = None) -> Any:
    return api.client.post(path, content=raw, headers={
        "Authorization": f"Bearer {key or api.operator}", "Content-Type": "application/json"})


def _refused(r: Any, field: str | None, words: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    if field is not None:  # a body's field (query parameters are named in the message)
        assert error["details"][0]["field"] == field, error
    assert words in error["message"], error


def test_an_amount_sent_twice_is_refused_and_nothing_is_charged(voice: Voice) -> None:
    api, tid = voice.api, voice.tid
    before = voice.credits()["balance"]
    raw = (f'{{"amount": "60.00", "payment_method_id": "{voice.card}", '
           f'"amount": "6000.00"}}').encode()
    _refused(_post(api, f"/v1/tenants/{tid}/credits/orders", raw), "amount",
             "more than once")
    assert voice.credits()["balance"] == before
    # nested objects too
    raw = (f'{{"amount": "60.00", "payment_method_id": "{voice.card}", "auto_recharge": '
           f'{{"enabled": true, "enabled": false}}}}').encode()
    _refused(_post(api, f"/v1/tenants/{tid}/credits/orders", raw), "enabled", "more than once")
    assert voice.credits()["balance"] == before


def test_the_switch_front_refuses_a_name_sent_twice(voice: Voice) -> None:
    body = {"call_id": "dup-1", "tenant_id": voice.tid, "call_type": "user_out",
            "from": US, "to": UK, "upn": "payg@contoso.com"}
    raw = json.dumps(body)[:-1] + ', "to": "+33612345678"}'
    _refused(_post(voice.api, "/v1/calls", raw.encode(), voice.switch), "to", "more than once")
    # nothing was authorized: the same call id is still free
    assert voice.call("dup-1", UK)["decision"] == "allowed"
    raw = b'{"duration_s": 60, "duration_s": 6}'
    _refused(_post(voice.api, "/v1/calls/dup-1/end", raw, voice.switch), "duration_s",
             "more than once")
    assert voice.end("dup-1", 60)["charge"] == "0.02"


def test_the_hot_path_hands_duplicates_to_the_application() -> None:
    """Both ways in (the ASGI front and serve's protocol) use ``engine_request``."""
    route, _ = front.route_of("/v1/calls/c-1/end") or (None, None)
    assert route is not None
    assert front.engine_request(route, "c-1", b'{"duration_s": 5}', "") is not None
    assert front.engine_request(route, "c-1", b'{"duration_s": 5, "duration_s": 6}',
                                "") is None
    assert not has_duplicate_names(b'{"a": "x\\":", "b": {"c": [1, {"d": 2}]}}',
                                   {"a": 'x":', "b": {"c": [1, {"d": 2}]}})
    assert has_duplicate_names(b'{"a": 1, "b": {"c": 1, "c": 2}}', {"a": 1, "b": {"c": 2}})
    assert has_duplicate_names(b'[{"a": 1}, {"a": 1 , "a" : 2}]', [{"a": 1}, {"a": 2}])
    # a dropped name cannot be hidden by colons written as escapes in the kept values
    sly = b'{"amount": "1", "amount": "1000", "x": "\\u003a"}'
    assert has_duplicate_names(sly, json.loads(sly))
    assert not has_duplicate_names(b'{"t": "12:00:00", "u": "sip:a@b"}',
                                   {"t": "12:00:00", "u": "sip:a@b"})


_JSON_TEXT = st.text(alphabet=st.sampled_from('ab:"\\ \u00e9'), max_size=4)
_MEMBERS = st.lists(st.tuples(st.sampled_from(["a", "b", "c:", 'd"']),
                              st.one_of(_JSON_TEXT, st.integers(), st.none())), max_size=5)


@given(members=_MEMBERS, spaced=st.booleans())
def test_the_quick_count_agrees_with_a_strict_parse(members: list[tuple[str, Any]],
                                                    spaced: bool) -> None:
    sep = " : " if spaced else ":"
    raw = ("{" + ",".join(json.dumps(k) + sep + json.dumps(v) for k, v in members)
           + "}").encode()
    twice = len({k for k, _ in members}) < len(members)
    assert has_duplicate_names(raw, json.loads(raw)) is twice
    assert (check(raw) is not None) is twice


def test_json_that_is_not_utf8_is_refused(voice: Voice) -> None:
    api = voice.api
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        raw = json.dumps({"name": "Sixteen", "country": "US"}).encode(encoding)
        _refused(_post(api, "/v1/tenants", raw), "body", "not UTF-8")
        body = {"call_id": f"u16-{encoding}", "tenant_id": voice.tid, "call_type": "user_out",
                "from": US, "to": UK, "upn": "payg@contoso.com"}
        _refused(_post(api, "/v1/calls", json.dumps(body).encode(encoding), voice.switch),
                 "body", "not UTF-8")
    _refused(_post(api, "/v1/tenants", b'{"name": "\xff\xfe", "country": "US"}'), "body",
             "not UTF-8")
    assert not [t for t in api.get("/v1/tenants", expect=200).json()
                if t["name"] == "Sixteen"]
    # a UTF-8 byte order mark is allowed (RFC 8259 lets a parser ignore it)
    raw = b"\xef\xbb\xbf" + json.dumps({"name": "Bom", "country": "US"}).encode()
    assert _post(api, "/v1/tenants", raw).status_code == 201


def test_malformed_json_says_where(voice: Voice) -> None:
    r = _post(voice.api, "/v1/tenants", b'{"name": "Acme", "country": "US" "x": 1}')
    _refused(r, "body", "body is not valid JSON")
    assert "line 1, column 34" in r.json()["error"]["message"]
    r = _post(voice.api, "/v1/tenants", b'{\n  "name": "Acme",\n  "country": "US",\n}')
    assert "(line 4, column 1)" in r.json()["error"]["message"]
    assert check(b'{"a": 1}') is None and check(b"12345678901234567890123") is None


@pytest.mark.parametrize("value", [0, 1700000000, 1.5, "1700000000", "2030-03-10",
                                   "20300310T120000Z", True])
def test_a_number_is_not_a_timestamp(voice: Voice, value: Any) -> None:
    voice.call("ts-1", UK)
    r = voice.api.post("/v1/calls/ts-1/answer", {"answered_at": value}, key=voice.switch)
    _refused(r, "answered_at", "RFC 3339")
    r = voice.api.post("/v1/calls/ts-1/end", {"duration_s": 5, "answered_at": value},
                       key=voice.switch)
    _refused(r, "answered_at", "RFC 3339")
    cdr = {"call_id": "ts-cdr", "tenant_id": voice.tid, "call_type": "user_out", "from": US,
           "to": UK, "upn": "payg@contoso.com", "start_time": value, "duration_s": 60}
    r = voice.api.post("/v1/cdrs", {"cdrs": [cdr]}, key=voice.switch)
    _refused(r, "cdrs.0.start_time", "RFC 3339")
    # a real one is taken
    voice.api.post("/v1/calls/ts-1/end", {"duration_s": 5,
                                          "answered_at": "2030-03-10T12:00:01Z"},
                   key=voice.switch, expect=200)


@pytest.mark.parametrize("value", [0, 20300310, 1700000000, "20300310", "2030-03-10"])
def test_a_cdr_object_with_a_number_for_start_time_is_refused(value: Any) -> None:
    """CDRs as JSON objects (the NATS stream): ``20300310`` was read as 2030-03-10."""
    from commcredits.domain.errors import DomainError
    from commcredits.services import cdrs
    row = {"call_id": "n-1", "tenant_id": "t", "call_type": "user_out", "from": US, "to": UK,
           "start_time": value, "duration_s": 60}
    with pytest.raises(DomainError) as e:
        cdrs.from_rows([row])
    assert "RFC 3339" in e.value.details[0]["message"]
    assert cdrs.from_rows([{**row, "start_time": "2030-03-10T12:00:00Z"}])


def test_a_cdr_file_with_a_number_for_start_time_is_refused(voice: Voice, db_url: str,
                                                           tmp_path: Any) -> None:
    before = voice.credits()["balance"]
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"a,{voice.tid},user_out,{US},{UK},payg@contoso.com,,0,61\n"
        f"b,{voice.tid},user_out,{US},{UK},payg@contoso.com,,20300301T090000Z,61\n"
        f"c,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61\n")
    r = runner.invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 1, r.output
    assert "line 2" in r.output and "line 3" in r.output and "RFC 3339" in r.output
    assert voice.credits()["balance"] == before


@pytest.mark.parametrize("month", ["0000-01", "2030-13", "2030-00", "9999-12", "2030-1",
                                   "\uff12\uff10\uff13\uff10-01", "1999-12"])
def test_impossible_months_are_refused(voice: Voice, month: str) -> None:
    r = voice.api.get(f"/v1/tenants/{voice.tid}/reports/minute-pools?month={month}")
    _refused(r, None, "month")
    voice.api.get(f"/v1/tenants/{voice.tid}/reports/minute-pools?month=2030-03", expect=200)


def test_unknown_cdr_columns_are_named_in_the_summary(voice: Voice, db_url: str,
                                                      tmp_path: Any) -> None:
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s,"
        "duration,cost\n"
        f"a,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61,90,9\n")
    r = runner.invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "1 rated" in r.output
    assert "unknown columns ignored: duration, cost" in r.output.replace("\n", " ")

    cdr = {"call_id": "j-1", "tenant_id": voice.tid, "call_type": "user_out", "from": US,
           "to": UK, "upn": "payg@contoso.com", "start_time": "2030-03-01T10:00:00Z",
           "duration_s": 60, "durration": 5}
    out = voice.api.post("/v1/cdrs", {"cdrs": [cdr, {**cdr, "call_id": "j-2",
                                                     "cost": "1"}]},
                         key=voice.switch, expect=200).json()
    assert [x["status"] for x in out["results"]] == ["rated", "rated"]
    assert out["unknown_fields"] == ["durration", "cost"]
    plain = voice.api.post("/v1/cdrs", {"cdrs": [{**cdr, "call_id": "j-3"}]},
                           key=voice.switch, expect=200).json()
    assert plain["unknown_fields"] == ["durration"]
    del cdr["durration"]
    clean = voice.api.post("/v1/cdrs", {"cdrs": [{**cdr, "call_id": "j-4"}]},
                           key=voice.switch, expect=200).json()
    assert clean["unknown_fields"] == []


def _routes(routes: Any) -> Any:
    for r in routes:
        if isinstance(r, Route):
            yield r
        elif hasattr(r, "original_router"):  # FastAPI's included routers
            yield from _routes(r.original_router.routes)
        elif hasattr(r, "routes"):
            yield from _routes(r.routes)


def test_every_405_names_every_method_the_path_answers(api: Any) -> None:
    routes = list(_routes(api.client.app.routes))
    assert len(routes) > 50
    for path in sorted({r.path for r in routes}):
        url = re.sub(r"\{[^}]+\}", "x", path)
        expected = set().union(*(r.methods or () for r in routes if r.path_regex.match(url)))
        for method in ("OPTIONS", "TRACE"):
            r = api.client.request(method, url)
            assert r.status_code == 405, (method, path, r.status_code)
            allow = {m.strip() for m in r.headers["allow"].split(",")}
            assert allow == expected, (method, path, allow, expected)
    r = api.client.request("POST", "/console/static/console.css")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
