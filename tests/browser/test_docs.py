"""``/docs`` (Swagger UI) and ``/redoc`` work without internet: their scripts and styles come
from the server itself (the fastapi-offline package), never from a CDN."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, Route, expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _offline(page: Page, server: str) -> list[str]:
    """Refuse every request that leaves the test server; return the refused URLs."""
    refused: list[str] = []
    own = urlparse(server).netloc

    def handle(route: Route) -> None:
        if urlparse(route.request.url).netloc == own:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()
    page.route("**/*", handle)
    return refused


def test_swagger_ui_renders_offline(page: Page, server: str) -> None:
    refused = _offline(page, server)
    page.goto(f"{server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("commcredits")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert refused == []


def test_redoc_renders_offline(page: Page, server: str) -> None:
    refused = _offline(page, server)
    page.goto(f"{server}/redoc")
    # ReDoc renders the whole spec in the browser: on a loaded 2-core machine that alone
    # took over 5 s (this checks that it renders offline, not how fast)
    expect(page.locator("h1").first).to_contain_text("commcredits", timeout=30_000)
    expect(page.get_by_text("/v1/tenants").first).to_be_attached()
    # ReDoc's bundle links only its own "powered by" logo from its CDN: the page does not
    # need it (the image is simply missing offline)
    assert [u for u in refused if not u.endswith("/logo-mini.svg")] == []
