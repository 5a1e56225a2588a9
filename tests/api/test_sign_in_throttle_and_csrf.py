"""Issue 19, points 4 and 5: a sign-in throttle that cannot be aimed at the owner, and sign-in
forms another site cannot post.

* 100 failed sign-ins for one account from many addresses lock it for a new browser, but the
  browser the admin signed in with before (its device cookie) still gets in; that browser is
  held by a limit of its own instead.
* ``X-Forwarded-For`` is believed only from ``COMMCREDITS_TRUSTED_PROXIES`` (none by
  default; uvicorn's own default believed it from 127.0.0.1).
* ``POST /login`` (and ``/operator/login``) without the sign-in page's token signs nobody in.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commcredits.adapters.db.schema import console_sessions
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.embedded import serving
from tests.api.console import console_admin, csrf, login_token, post_login

BOSS, PASSWORD = "boss@contoso.com", "pass-word-1"


def _browser(api, host: str, app=None) -> TestClient:
    return TestClient(app or api.client.app, client=(host, 1000),
                      raise_server_exceptions=False)


def _signed_out_browser_of_the_admin(api) -> TestClient:
    """The admin's own browser: signed in once (so it holds a device cookie), signed out."""
    admins_browser = _browser(api, "198.51.100.7")
    assert post_login(admins_browser, BOSS, PASSWORD, follow_redirects=False).status_code == 303
    assert admins_browser.cookies.get("cc_device")
    admins_browser.post("/logout", data={"csrf": csrf(admins_browser.get("/console").text)})
    assert admins_browser.get("/console", follow_redirects=False).status_code == 303
    return admins_browser


def _distributed_guess(api, tries: int = 100) -> None:
    """``tries`` wrong passwords for the admin from as many addresses (4 each: below the
    per-address limits)."""
    for i in range(tries // 4):
        attacker = _browser(api, f"203.0.113.{i + 1}")
        for _ in range(4):
            r = post_login(attacker, BOSS, "Winter2030!")
            assert r.status_code == 200 and "Wrong email or password" in r.text


def test_a_distributed_guess_locks_new_browsers_out_but_not_the_admins_own(api):
    console_admin(api)
    admins_browser = _signed_out_browser_of_the_admin(api)
    _distributed_guess(api)
    stranger = _browser(api, "192.0.2.44")  # never signed in here: the account-wide limit
    r = post_login(stranger, BOSS, PASSWORD, follow_redirects=False)
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    forged = _browser(api, "192.0.2.45")  # a device cookie not signed by the service
    forged.cookies.set("cc_device", "W1siYWJjIiwieHl6Il1d.forged.sig")
    assert post_login(forged, BOSS, PASSWORD, follow_redirects=False).status_code == 429
    r = post_login(admins_browser, BOSS, PASSWORD, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console"
    assert admins_browser.get("/console", follow_redirects=False).status_code == 200


def test_a_device_cookie_has_a_failure_limit_of_its_own(api):
    console_admin(api)
    device = _signed_out_browser_of_the_admin(api).cookies.get("cc_device")
    # whoever holds the cookie, from many addresses (below the per-address limits)
    for i in range(10):  # SignInLimits.device
        thief = _browser(api, f"203.0.113.{100 + i}")
        thief.cookies.set("cc_device", device)
        assert post_login(thief, BOSS, "guess").status_code == 200
    thief = _browser(api, "203.0.113.200")
    thief.cookies.set("cc_device", device)
    assert post_login(thief, BOSS, PASSWORD, follow_redirects=False).status_code == 429
    # the account itself is not locked: another browser (no cookie) still signs in
    assert post_login(_browser(api, "192.0.2.9"), BOSS, PASSWORD,
                      follow_redirects=False).status_code == 303


def test_the_operator_console_has_device_cookies_too(api):
    api.post("/v1/operator-admins", {"email": "op@example.com", "password": "op-pass-word"},
             expect=201)
    mine = _browser(api, "198.51.100.8")
    assert post_login(mine, "op@example.com", "op-pass-word", "/operator/login",
                      follow_redirects=False).status_code == 303
    mine.cookies.delete("cc_operator", path="/operator")  # signed out, the cookie stays
    for i in range(25):
        attacker = _browser(api, f"203.0.113.{i + 1}")
        for _ in range(4):
            post_login(attacker, "op@example.com", "guess", "/operator/login")
    assert post_login(_browser(api, "192.0.2.50"), "op@example.com", "op-pass-word",
                      "/operator/login", follow_redirects=False).status_code == 429
    assert post_login(mine, "op@example.com", "op-pass-word", "/operator/login",
                      follow_redirects=False).status_code == 303


def _sessions_clients(api) -> list[str]:
    with api.rt.db.uow(readonly=True) as uow:
        return list(uow.conn.scalars(sa.select(console_sessions.c.client)))


def test_forwarded_for_from_localhost_is_ignored_by_default(api):
    console_admin(api)
    local = _browser(api, "127.0.0.1")
    for i in range(5):  # one local client posing as five addresses: still one client
        r = local.post("/login", data={"email": BOSS, "password": "guess",
                                       "login_token": login_token(local)},
                       headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
        assert r.status_code == 200
    r = local.post("/login", data={"email": BOSS, "password": PASSWORD,
                                   "login_token": login_token(local)},
                   headers={"X-Forwarded-For": "203.0.113.99"})
    assert r.status_code == 429


def test_forwarded_for_is_ignored_by_the_server_itself(api):
    """As ``serve`` runs (uvicorn): its default trusted X-Forwarded-For from 127.0.0.1."""
    console_admin(api)
    with serving(api.rt) as base, httpx.Client(base_url=base) as browser:
        token = login_token(browser)
        r = browser.post("/login", data={"email": BOSS, "password": PASSWORD,
                                         "login_token": token},
                         headers={"X-Forwarded-For": "203.0.113.77"})
        assert r.status_code == 303
    assert _sessions_clients(api) == ["127.0.0.1"]


def test_forwarded_for_is_honoured_from_a_configured_proxy(api):
    console_admin(api)
    settings = api.rt.settings.model_copy(update={"trusted_proxies": "127.0.0.1, 10.9.0.0/16"})
    rt = dataclasses.replace(api.rt, settings=settings)
    app = create_app(runtime=rt)
    for proxy in ("127.0.0.1", "10.9.3.4"):
        through = _browser(api, proxy, app)
        for i in range(5):  # five real clients behind the proxy: each its own count
            r = through.post("/login", data={"email": BOSS, "password": "guess",
                                             "login_token": login_token(through)},
                             headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
            assert r.status_code == 200
        r = through.post("/login", data={"email": BOSS, "password": PASSWORD,
                                         "login_token": login_token(through)},
                         headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.99"},
                         follow_redirects=False)
        assert r.status_code == 303
        through.post("/logout", data={"csrf": csrf(through.get("/console").text)})
    # the address the proxy saw (the rightmost untrusted one), not the one a client wrote
    assert sorted(_sessions_clients(api)) == ["203.0.113.99", "203.0.113.99"]
    # a proxy not named is not believed
    other = _browser(api, "10.8.0.1", app)
    for i in range(5):
        other.post("/login", data={"email": BOSS, "password": "guess",
                                   "login_token": login_token(other)},
                   headers={"X-Forwarded-For": f"192.0.2.{i + 1}"})
    r = other.post("/login", data={"email": BOSS, "password": PASSWORD,
                                   "login_token": login_token(other)},
                   headers={"X-Forwarded-For": "192.0.2.99"})
    assert r.status_code == 429


def test_a_bad_trusted_proxies_setting_refuses_to_start(api):
    settings = api.rt.settings.model_copy(update={"trusted_proxies": "10.0.0.0/33"})
    with pytest.raises(ValueError, match="COMMCREDITS_TRUSTED_PROXIES"):
        create_app(runtime=dataclasses.replace(api.rt, settings=settings))


# -- login CSRF ---------------------------------------------------------------------------------
def test_a_cross_site_sign_in_signs_nobody_in(api):
    console_admin(api)
    victim = _browser(api, "192.0.2.60")
    # another site's form: the victim's browser posts the attacker's credentials, no token
    r = victim.post("/login", data={"email": BOSS, "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 403 and "expired or came from another site" in r.text
    assert not victim.cookies.get("cc_session") and _sessions_clients(api) == []
    # a token from the attacker's own browser does not fit the victim's pre-session cookie
    attackers_token = login_token(_browser(api, "203.0.113.61"))
    victim.get("/login")
    r = victim.post("/login", data={"email": BOSS, "password": PASSWORD,
                                    "login_token": attackers_token}, follow_redirects=False)
    assert r.status_code == 403 and _sessions_clients(api) == []
    # the form it shows again carries a token that works
    r = victim.post("/login", data={"email": BOSS, "password": PASSWORD,
                                    "login_token": csrf_of_login(r.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and _sessions_clients(api) == ["192.0.2.60"]


def csrf_of_login(page: str) -> str:
    import re
    found = re.search(r'name="login_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_cross_site_operator_sign_in_signs_nobody_in(api):
    api.post("/v1/operator-admins", {"email": "op@example.com", "password": "op-pass-word"},
             expect=201)
    victim = _browser(api, "192.0.2.61")
    r = victim.post("/operator/login", data={"email": "op@example.com",
                                             "password": "op-pass-word"},
                    follow_redirects=False)
    assert r.status_code == 403 and not victim.cookies.get("cc_operator")
    assert _sessions_clients(api) == []


def test_sign_out_still_needs_its_token(api):
    console_admin(api)
    browser = _browser(api, "192.0.2.62")
    post_login(browser, BOSS, PASSWORD)
    browser.post("/logout", data={"csrf": "not-the-token"})  # another site's sign-out form
    assert browser.get("/console", follow_redirects=False).status_code == 200

