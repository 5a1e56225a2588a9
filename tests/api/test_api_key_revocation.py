"""API keys can be revoked (401 at once, on every instance) and show when they were last used,
written at most once a minute so that the hot path does not pay a write per request
(issue 10, operator console: API keys create, revoke, last used)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from commcredits.entrypoints.api.app import create_app
from commcredits.services.access import hash_key


def _key_id(api, key: str) -> str:
    with api.rt.db.uow(readonly=True) as uow:
        return uow.access.api_key_by_hash(hash_key(key)).id


def _listed(api, key_id: str, **kw) -> dict:
    rows = api.get("/v1/api-keys", **kw).json()
    return next(r for r in rows if r["id"] == key_id)


def test_a_revoked_key_answers_401_at_once_on_every_instance(api, second):
    tid = api.tenant()
    key = api.new_key("billing_admin", tid)
    with TestClient(create_app(runtime=second)) as other:
        path = f"/v1/tenants/{tid}/credits"
        auth = {"Authorization": f"Bearer {key}"}
        assert api.client.get(path, headers=auth).status_code == 200
        assert other.get(path, headers=auth).status_code == 200  # known there too
        key_id = _key_id(api, key)
        r = api.delete(f"/v1/api-keys/{key_id}", expect=200).json()
        assert r["id"] == key_id and r["revoked_at"] is not None
        for client in (api.client, other):
            gone = client.get(path, headers=auth)
            assert gone.status_code == 401
            assert gone.json()["error"]["code"] == "unauthorized"
    # revoking again changes nothing; an unknown key is 404
    again = api.delete(f"/v1/api-keys/{key_id}", expect=200).json()
    assert again["revoked_at"] == r["revoked_at"]
    assert api.delete("/v1/api-keys/key_nope").status_code == 404
    entries = api.get(f"/v1/tenants/{tid}/audit", expect=200).json()["entries"]
    assert [e["action"] for e in entries].count("api_key.revoke") == 1


def test_last_used_is_recorded_at_most_once_a_minute(api):
    tid = api.tenant()
    key = api.new_key("reports_reader", tid)
    key_id = _key_id(api, key)
    assert _listed(api, key_id)["last_used_at"] is None
    api.set_clock("2031-01-01T10:00:00Z")
    api.get(f"/v1/tenants/{tid}/credits", key=key, expect=200)
    first = _listed(api, key_id)["last_used_at"]
    assert first.startswith("2031-01-01T10:00:00")
    api.set_clock("2031-01-01T10:00:30Z")
    api.get(f"/v1/tenants/{tid}/credits", key=key, expect=200)
    assert _listed(api, key_id)["last_used_at"] == first  # no write within the minute
    from commcredits.entrypoints.api import deps
    deps._USED.pop(key_id)  # as if another process (or a minute of this one) had passed
    api.set_clock("2031-01-01T10:00:40Z")
    api.get(f"/v1/tenants/{tid}/credits", key=key, expect=200)
    assert _listed(api, key_id)["last_used_at"] == first  # the database refuses it too
    deps._USED.pop(key_id)
    api.set_clock("2031-01-01T10:02:00Z")
    api.get(f"/v1/tenants/{tid}/credits", key=key, expect=200)
    assert _listed(api, key_id)["last_used_at"].startswith("2031-01-01T10:02:00")


def test_a_global_admin_lists_and_revokes_only_its_own_tenants_keys(api):
    own, other = api.tenant(), api.tenant()
    admin = api.new_key("global_admin", own)
    mine = _key_id(api, api.new_key("reports_reader", own))
    theirs = _key_id(api, api.new_key("reports_reader", other))
    operator_key = _key_id(api, api.operator)
    listed = {r["id"] for r in api.get("/v1/api-keys", key=admin, expect=200).json()}
    assert mine in listed and theirs not in listed and operator_key not in listed
    assert api.delete(f"/v1/api-keys/{theirs}", key=admin).status_code == 404
    assert api.delete(f"/v1/api-keys/{operator_key}", key=admin).status_code == 404
    assert api.delete(f"/v1/api-keys/{mine}", key=admin).status_code == 200
    assert api.get(f"/v1/api-keys?tenant_id={other}", expect=200).json()[0]["id"] == theirs
    for role in ("billing_admin", "user_admin", "reports_reader"):
        k = api.new_key(role, own)
        assert api.get("/v1/api-keys", key=k).status_code == 403
        assert api.delete(f"/v1/api-keys/{mine}", key=k).status_code == 403
    assert api.get("/v1/api-keys", key=api.new_key("switch")).status_code == 403
