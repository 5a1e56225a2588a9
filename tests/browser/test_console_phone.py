"""Issue 23: at 390 px (a phone) the console's navigation is all on screen and the lots
table's Expires column is visible without scrolling sideways, in real headless Chromium.
(The page-width check in ``helpers.shoot`` could not see either: the navigation and the
table scrolled inside their own boxes, so the page itself was never wider than the phone.)"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import add_admin, login, shoot
from tests.browser.test_console_spend import tid  # noqa: F401 (the fixture)
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]
PHONE = 390


def _box(page: Page, selector: str) -> dict[str, Any]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return box


def _on_screen(page: Page, selector: str) -> None:
    """Every element matching ``selector`` lies inside the phone's width, and nothing
    clips it (no scrolled-away box around it)."""
    items = page.locator(selector)
    assert items.count() > 0, selector
    for i in range(items.count()):
        item = items.nth(i)
        box = item.bounding_box()
        assert box is not None and box["width"] > 0, f"{selector} #{i} is not displayed"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE, \
            f"{selector} #{i} ({item.inner_text()!r}) spans {box['x']:.0f}-" \
            f"{box['x'] + box['width']:.0f} px of {PHONE}"
        clipped = item.evaluate("""el => {
            const r = el.getBoundingClientRect();
            for (let p = el.parentElement; p; p = p.parentElement) {
                const s = getComputedStyle(p);
                if (s.overflowX === 'visible') continue;
                const b = p.getBoundingClientRect();
                if (r.left < b.left - 0.5 || r.right > b.right + 0.5) return true;
            }
            return false; }""")
        assert not clipped, f"{selector} #{i} ({item.inner_text()!r}) is cut by its box"


def test_navigation_and_the_lots_expiry_fit_a_phone(page: Page, server: str, api: Api,
                                                   tid: str) -> None:  # noqa: F811
    page.set_viewport_size({"width": PHONE, "height": 844})
    login(page, server, add_admin(api, tid, "global_admin"))
    expect(page.locator("#lots")).to_be_visible()
    _on_screen(page, "header.top nav a")  # every link: Credits … Audit log
    assert page.locator("header.top nav a").count() >= 8
    _on_screen(page, "#lots th:visible")
    _on_screen(page, "#lots td:visible")
    header = [t.strip().upper() for t in page.locator("#lots th:visible").all_inner_texts()]
    assert header == ["PURCHASED", "AMOUNT", "REMAINING", "EXPIRES"]  # the source moves:
    row = page.locator("#lots tbody tr").first
    assert row.locator("td:visible").first.inner_text().split() == \
        ["2030-01-01", "10:00", "UTC", "·", "order"]  # under the purchase date
    expires = row.locator("td:visible").nth(header.index("EXPIRES"))
    assert expires.inner_text().split() == ["2031-01-01", "10:00", "UTC"]  # a year later
    assert _box(page, "#lots")["width"] <= PHONE
    for other in ("/console/orders", "/console/reports?kind=pstn&days=28"):
        page.goto(f"{server}{other}")
        _on_screen(page, "header.top nav a")
    page.goto(f"{server}/console")
    shoot(page, "credits")  # and the page itself is no wider than the phone
    page.set_viewport_size({"width": 1280, "height": 900})  # wide: the Source column is back
    assert [t.strip().upper() for t in page.locator("#lots th:visible").all_inner_texts()] \
        == ["PURCHASED", "AMOUNT", "REMAINING", "EXPIRES", "SOURCE"]
    assert page.locator("#lots .phone-only:visible").count() == 0
