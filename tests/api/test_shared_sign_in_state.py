"""Sign-in throttling and console sessions (tenant and operator) live in the database, so a
second instance of the service on the same database sees them (issue 8, item 6): a client
throttled on one instance is throttled on the other, and a session signed out on one no
longer works on the other."""

from __future__ import annotations

from fastapi.testclient import TestClient

from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime
from tests.api.console import console_admin, csrf, post_login


def _client(rt: Runtime, host: str) -> TestClient:
    return TestClient(create_app(runtime=rt), client=(host, 1000),
                      raise_server_exceptions=False)


def test_a_client_throttled_on_one_instance_is_throttled_on_the_other(api, second):
    console_admin(api)
    one = _client(api.rt, "203.0.113.5")
    other = _client(second, "203.0.113.5")
    for _ in range(5):
        r = post_login(one, "boss@contoso.com", "guess")
        assert r.status_code == 200
    r = post_login(other, "boss@contoso.com", "pass-word-1")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # per client too: an email sprayer is stopped by the other instance's count
    for i in range(15):
        post_login(other, f"u{i}@contoso.com", "guess")
    assert post_login(one, "new@contoso.com", "guess").status_code == 429
    # and the real admin, from elsewhere, is not locked out on either instance
    r = post_login(_client(second, "198.51.100.7"), "boss@contoso.com", "pass-word-1",
                   follow_redirects=False)
    assert r.status_code == 303


def test_a_session_signed_out_on_one_instance_ends_on_the_other(api, second):
    console_admin(api)
    one = _client(api.rt, "10.0.0.1")
    r = post_login(one, "boss@contoso.com", "pass-word-1", follow_redirects=False)
    assert r.status_code == 303
    other = _client(second, "10.0.0.1")
    other.cookies.set("cc_session", one.cookies.get("cc_session"))
    assert other.get("/console", follow_redirects=False).status_code == 200
    other.post("/logout", data={"csrf": csrf(other.get("/console").text)})
    one_again = one.get("/console", follow_redirects=False)
    assert one_again.status_code == 303 and one_again.headers["location"].endswith("/login")


def test_operator_sessions_are_server_side_and_revocable_across_instances(api, second):
    api.post("/v1/operator-admins", {"email": "op@example.com", "password": "op-pass-word"},
             expect=201)
    one = _client(api.rt, "10.0.0.2")
    r = post_login(one, "op@example.com", "op-pass-word", "/operator/login",
                   follow_redirects=False)
    assert r.status_code == 303
    stolen = one.cookies.get("cc_operator")
    other = _client(second, "10.0.0.3")
    other.cookies.set("cc_operator", stolen, path="/operator")
    assert other.get("/operator", follow_redirects=False).status_code == 200
    page = one.get("/operator").text
    one.post("/operator/logout", data={"csrf": csrf(page)}, follow_redirects=False)
    r = other.get("/operator", follow_redirects=False)  # the copied cookie no longer works
    assert r.status_code == 303 and r.headers["location"].endswith("/operator/login")


def test_operator_sign_in_is_throttled_across_instances(api, second):
    api.post("/v1/operator-admins", {"email": "op@example.com", "password": "op-pass-word"},
             expect=201)
    one, other = _client(api.rt, "203.0.113.8"), _client(second, "203.0.113.8")
    for _ in range(5):
        assert post_login(one, "op@example.com", "nope", "/operator/login").status_code == 200
    assert post_login(other, "op@example.com", "op-pass-word", "/operator/login").status_code == 429
