"""Helpers shared by the browser tests: console admins and signing in."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[2]
# var/screenshots on every run; ./scripts/screenshots refreshes the committed docs/screenshots
SCREENSHOTS = Path(os.environ.get("COMMCREDITS_SCREENSHOTS") or ROOT / "var" / "screenshots")
WIDTHS = {"phone": 390, "desktop": 1280}


def shoot(page: Page, name: str) -> None:
    """Save ``{name}-desktop.png`` (1280 px) and ``{name}-phone.png`` (390 px) under
    :data:`SCREENSHOTS`, and check that nothing is wider than the phone screen."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1280, "height": 1000}
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        if label == "phone":
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{name}: the page is {overflow} px wide at {width} px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)
