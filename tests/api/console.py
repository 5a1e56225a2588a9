"""Helpers for the console tests: a tenant with a console admin, and a page's CSRF token."""

from __future__ import annotations

import re
from typing import Any


def console_admin(api: Any, email: str = "boss@contoso.com",
                  password: str = "pass-word-1") -> str:
    """A new US tenant with a global admin who can sign in to the console; its id."""
    tid: str = api.tenant("US")
    api.post(f"/v1/tenants/{tid}/admins", {"email": email, "password": password,
                                           "role": "global_admin"}, expect=201)
    return tid


def csrf(page: str) -> str:
    """The CSRF token of the (first) form on a console page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[:300]
    return found.group(1)


def login_token(client: Any, path: str = "/login") -> str:
    """The sign-in form's token (its page also sets the pre-session cookie it belongs to)."""
    page = client.get(path, follow_redirects=False)
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found is not None, (page.status_code, page.text[:300])
    return found.group(1)


def post_login(client: Any, email: str, password: str, path: str = "/login",
               **options: Any) -> Any:
    """Sign in through the form as a browser does: the page first, then its form."""
    return client.post(path, data={"email": email, "password": password,
                                   "login_token": login_token(client, path)}, **options)
