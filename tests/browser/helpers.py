"""Helpers shared by the browser tests: console admins and signing in."""

from __future__ import annotations

import secrets

from playwright.sync_api import Page

from tests.conftest import Api

PASSWORD = "correct-horse-42"


def add_admin(api: Api, tid: str, role: str) -> str:
    """A console admin of ``tid`` with ``role`` (password :data:`PASSWORD`); its email."""
    email = f"{role}-{secrets.token_hex(3)}@example.com"
    api.post(f"/v1/tenants/{tid}/admins", {"email": email, "password": PASSWORD, "role": role},
             expect=201)
    return email


def login(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
