"""The console's session cookie says who signed in; rights come from the database."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.schema import admins
from tests.api.console import console_admin, csrf, post_login


def sign_in(api, email, password):
    r = post_login(api.client, email, password, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


def test_a_demoted_or_removed_admin_loses_rights_at_once(api):
    tid = api.tenant("US")
    api.post(f"/v1/tenants/{tid}/admins", {"email": "boss@contoso.com",
                                           "password": "pass-word-1", "role": "global_admin"},
             expect=201)
    sign_in(api, "boss@contoso.com", "pass-word-1")
    assert 'id="add-funds"' in api.client.get("/console").text
    with api.rt.db.uow() as uow:
        uow.conn.execute(sa.update(admins).values(role="reports_reader"))
        uow.commit()
    page = api.client.get("/console")
    assert page.status_code == 200 and 'id="add-funds"' not in page.text
    with api.rt.db.uow() as uow:
        uow.conn.execute(sa.delete(admins))
        uow.commit()
    r = api.client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/login")


def test_sign_in_is_throttled_after_five_failures(api):
    tid = api.tenant("US")
    api.post(f"/v1/tenants/{tid}/admins", {"email": "slow@contoso.com",
                                           "password": "right-pass-1", "role": "global_admin"},
             expect=201)
    for _ in range(5):
        r = post_login(api.client, "slow@contoso.com", "nope")
        assert r.status_code == 200 and "Wrong email or password" in r.text
    r = post_login(api.client, "slow@contoso.com", "right-pass-1")
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    # other accounts are not affected
    api.post(f"/v1/tenants/{tid}/admins", {"email": "other@contoso.com",
                                           "password": "right-pass-2", "role": "global_admin"},
             expect=201)
    sign_in(api, "other@contoso.com", "right-pass-2")


def test_a_signed_out_cookie_no_longer_works(api):
    console_admin(api)
    sign_in(api, "boss@contoso.com", "pass-word-1")
    cookie = api.client.cookies.get("cc_session")
    token = csrf(api.client.get("/console").text)
    api.client.post("/logout", data={"csrf": token}, follow_redirects=False)
    api.client.cookies.set("cc_session", cookie)  # a copy kept by whoever stole it
    r = api.client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/login")


def test_sign_out_everywhere_ends_every_session(api):
    from fastapi.testclient import TestClient
    console_admin(api)
    laptop = TestClient(api.client.app, client=("10.0.0.1", 1000))
    phone = TestClient(api.client.app, client=("10.0.0.2", 1000))
    for c in (laptop, phone):
        r = post_login(c, "boss@contoso.com", "pass-word-1", follow_redirects=False)
        assert r.status_code == 303
    listed = laptop.get("/console/sessions").text
    assert "10.0.0.1" in listed and "10.0.0.2" in listed
    laptop.post("/logout", data={"csrf": csrf(listed), "everywhere": "on"})
    assert phone.get("/console", follow_redirects=False).status_code == 303
    assert laptop.get("/console", follow_redirects=False).status_code == 303


def test_an_attacker_cannot_lock_the_real_admin_out(api):
    from fastapi.testclient import TestClient
    console_admin(api)
    attacker = TestClient(api.client.app, client=("203.0.113.9", 1000))
    for _ in range(6):
        post_login(attacker, "boss@contoso.com", "guess")
    assert post_login(attacker, "boss@contoso.com", "pass-word-1").status_code == 429
    admin = TestClient(api.client.app, client=("198.51.100.7", 1000))
    r = post_login(admin, "boss@contoso.com", "pass-word-1", follow_redirects=False)
    assert r.status_code == 303  # the real admin, from elsewhere, still gets in


def test_one_client_cannot_spray_many_emails(api):
    from fastapi.testclient import TestClient
    sprayer = TestClient(api.client.app, client=("203.0.113.10", 1000))
    answers = [post_login(sprayer, f"user{i}@contoso.com", "Winter2030!").status_code
               for i in range(30)]
    assert answers[:20] == [200] * 20 and set(answers[20:]) == {429}


def test_passwords_are_argon2id_and_unknown_emails_cost_the_same(api, monkeypatch):
    from commcredits.services import access
    console_admin(api)
    with api.rt.db.uow() as uow:
        stored = uow.conn.execute(sa.select(admins.c.password_hash)).scalar()
    assert stored.startswith("$argon2id$")
    checked = []
    real = access.check_password
    monkeypatch.setattr(access, "check_password",
                        lambda pw, h: checked.append(h[:9]) or real(pw, h))
    post_login(api.client, "nobody@contoso.com", "x" * 10)
    post_login(api.client, "boss@contoso.com", "x" * 10)
    assert checked == ["$argon2id", "$argon2id"]  # the same work either way


def test_an_old_scrypt_hash_still_signs_in_and_is_upgraded(api):
    import hashlib
    console_admin(api)
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"pass-word-1", salt=salt, n=2**14, r=8, p=1)
    with api.rt.db.uow() as uow:
        uow.conn.execute(sa.update(admins).values(
            password_hash=f"scrypt${salt.hex()}${digest.hex()}"))
        uow.commit()
    sign_in(api, "boss@contoso.com", "pass-word-1")
    with api.rt.db.uow() as uow:
        assert uow.conn.execute(sa.select(admins.c.password_hash)).scalar().startswith(
            "$argon2id$")


def test_a_password_is_kept_exactly_as_typed(api):
    """Found by schemathesis: bodies are trimmed, and so were passwords, so an admin whose
    password ends in a space could never sign in with it (the sign-in form does not trim)."""
    console_admin(api, "space@contoso.com", " pass word ")
    r = post_login(api.client, "space@contoso.com", " pass word ", follow_redirects=False)
    assert r.status_code == 303
    tid = api.tenant()
    short = api.post(f"/v1/tenants/{tid}/admins", {"email": "s@contoso.com",
                                                   "password": " 1234567", "role":
                                                   "global_admin"})
    assert short.status_code == 201  # eight characters, the space included
