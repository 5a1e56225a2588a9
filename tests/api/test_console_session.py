"""The console's session cookie says who signed in; rights come from the database."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.schema import admins


def sign_in(api, email, password):
    r = api.client.post("/login", data={"email": email, "password": password},
                        follow_redirects=False)
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
        r = api.client.post("/login", data={"email": "slow@contoso.com", "password": "nope"})
        assert r.status_code == 200 and "Wrong email or password" in r.text
    r = api.client.post("/login", data={"email": "slow@contoso.com",
                                        "password": "right-pass-1"})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    # other accounts are not affected
    api.post(f"/v1/tenants/{tid}/admins", {"email": "other@contoso.com",
                                           "password": "right-pass-2", "role": "global_admin"},
             expect=201)
    sign_in(api, "other@contoso.com", "right-pass-2")
