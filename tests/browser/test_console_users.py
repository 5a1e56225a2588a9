"""Users → a user → Licenses, as the seed article's steps 1 and 3 in the console: switches
with the product names, seats, prerequisite errors next to the switch, search and paging,
and bulk assign/remove for selected users or a CSV upload, in real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import add_admin, login, shoot
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _user(api: Api, tid: str, upn: str, name: str) -> None:
    api.post(f"/v1/tenants/{tid}/users", {"upn": upn, "display_name": name,
                                          "usage_location": "US"}, expect=201)


@pytest.fixture
def tid(api: Api) -> str:
    tid = api.tenant("US")
    for sku, n in (("MCOEV", 5), ("MCOPSTN1", 1), ("MCOMEETADD", 5)):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": n}, expect=201)
    _user(api, tid, "ann@contoso.com", "Ann Lee")
    _user(api, tid, "bob@contoso.com", "Bob Ray")
    return tid


def _held(api: Api, tid: str, upn: str) -> set[str]:
    return set(api.get(f"/v1/tenants/{tid}/users/{upn}", expect=200).json()["licenses"])


def _switch(page: Page, name: str) -> Locator:
    """The row of the switch named ``name``: the switch, its seats and its error."""
    return page.locator("#licenses li").filter(
        has=page.get_by_role("switch", name=name, exact=True))


def test_license_switches_with_prerequisite_errors(page: Page, server: str, api: Api,
                                                   tid: str) -> None:
    login(page, server, add_admin(api, tid, "user_admin"))
    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Ann Lee").click()
    expect(page.get_by_role("heading", name="Ann Lee")).to_be_visible()
    expect(_switch(page, "Teams Phone Standard")).to_contain_text("0 of 5 assigned")
    expect(_switch(page, "Communications Credits")).to_contain_text("Free, unlimited")

    # credits alone: refused, the error next to its switch, nothing saved, the switch kept
    _switch(page, "Communications Credits").get_by_role("switch").check()
    page.get_by_role("button", name="Save").click()
    error = _switch(page, "Communications Credits").locator(".field-error")
    expect(error).to_have_text("Communications Credits needs Audio Conferencing, or Teams "
                               "Phone Standard with a Calling Plan (Microsoft 365 E5 counts "
                               "as both).")
    expect(_switch(page, "Communications Credits").get_by_role("switch")).to_be_checked()
    assert _held(api, tid, "ann@contoso.com") == set()

    # with Phone System and a Calling Plan in the same save it goes through
    _switch(page, "Teams Phone Standard").get_by_role("switch").check()
    _switch(page, "Domestic Calling Plan").get_by_role("switch").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_have_text("Licenses saved.")
    assert _held(api, tid, "ann@contoso.com") == {"MCOEV", "MCOPSTN1", "MCOPSTNPP"}
    expect(_switch(page, "Domestic Calling Plan")).to_contain_text("1 of 1 assigned")
    shoot(page, "user-licenses")

    # removing the calling plan under the credits license: refused in words
    _switch(page, "Domestic Calling Plan").get_by_role("switch").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(_switch(page, "Domestic Calling Plan").locator(".field-error")).to_contain_text(
        "Communications Credits needs Domestic Calling Plan")
    assert _held(api, tid, "ann@contoso.com") == {"MCOEV", "MCOPSTN1", "MCOPSTNPP"}

    # Bob cannot get the only Calling Plan seat
    page.goto(f"{server}/console/users/bob@contoso.com")
    _switch(page, "Domestic Calling Plan").get_by_role("switch").check()
    page.get_by_role("button", name="Save").click()
    expect(_switch(page, "Domestic Calling Plan").locator(".field-error")).to_have_text(
        "All 1 Domestic Calling Plan licenses are assigned; buy more before assigning one.")


def test_reports_reader_sees_switches_but_cannot_save(page: Page, server: str, api: Api,
                                                      tid: str) -> None:
    login(page, server, add_admin(api, tid, "reports_reader"))
    page.goto(f"{server}/console/users/ann@contoso.com")
    expect(_switch(page, "Audio Conferencing").get_by_role("switch")).to_be_disabled()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    r = page.request.post(f"{server}/console/users/ann@contoso.com/licenses",
                          form={"csrf": csrf, "licenses": "MCOMEETADD"})
    assert r.status == 403
    assert _held(api, tid, "ann@contoso.com") == set()


def test_a_form_without_the_csrf_token_is_refused(page: Page, server: str, api: Api,
                                                  tid: str) -> None:
    login(page, server, add_admin(api, tid, "global_admin"))
    r = page.request.post(f"{server}/console/users/ann@contoso.com/licenses",
                          form={"csrf": "forged", "licenses": "MCOMEETADD"})
    assert r.status == 403 and "Form expired" in r.text()
    assert _held(api, tid, "ann@contoso.com") == set()


def test_search_paging_and_bulk_for_selected_users(page: Page, server: str, api: Api,
                                                   tid: str) -> None:
    for i in range(60):
        _user(api, tid, f"user{i:02d}@fabrikam.com", f"Fabrikam User {i:02d}")
    login(page, server, add_admin(api, tid, "global_admin"))
    page.goto(f"{server}/console/users")
    expect(page.locator("#user-count")).to_have_text("62 users · page 1 of 2")
    expect(page.locator("#users tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Next \u203a").click()
    expect(page.locator("#users tbody tr")).to_have_count(12)

    page.get_by_label("Search users").fill("contoso")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#user-count")).to_have_text("2 users matching “contoso”")
    page.get_by_label("Select ann@contoso.com").check()
    page.get_by_label("Select bob@contoso.com").check()
    page.locator("#bulk-selected").get_by_label("License").select_option(
        label="Audio Conferencing")
    page.locator("#bulk-selected").get_by_role("button", name="Assign license").click()
    expect(page.locator("#bulk-summary")).to_contain_text("2 of 2 users done: 2 succeeded, "
                                                          "0 failed.")
    expect(page.locator("#bulk-results tbody tr")).to_have_count(2)
    assert _held(api, tid, "bob@contoso.com") == {"MCOMEETADD"}

    page.goto(f"{server}/console/users?q=ann")
    expect(page.locator("#users tbody tr td").nth(3)).to_have_text("Audio Conferencing")


def test_bulk_csv_upload_with_a_result_per_user(page: Page, server: str, api: Api, tid: str,
                                                tmp_path: Path) -> None:
    api.put(f"/v1/tenants/{tid}/users/ann@contoso.com/licenses/MCOMEETADD", expect=200)
    file = tmp_path / "users.csv"
    file.write_text("\ufeffDisplay name,UserPrincipalName,Licenses\n"
                    "Ann Lee,ann@contoso.com,Audio Conferencing\n"
                    "Bob Ray,bob@contoso.com,\n"
                    "Nobody,ghost@contoso.com,\n", encoding="utf-8")
    login(page, server, add_admin(api, tid, "user_admin"))
    page.goto(f"{server}/console/users")
    box = page.locator("#bulk-csv")
    box.get_by_label("Users (CSV file)").set_input_files(str(file))
    box.get_by_label("License").select_option(label="Communications Credits")
    box.get_by_role("button", name="Assign license").click()
    rows = page.locator("#bulk-results tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td")).to_have_text(["ann@contoso.com", "Assigned", ""])
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("Failed")
    expect(rows.nth(1).locator("td").nth(2)).to_contain_text("needs Audio Conferencing")
    expect(rows.nth(2).locator("td").nth(2)).to_have_text(
        "No user ghost@contoso.com in this organization.")
    expect(page.locator("#bulk-summary")).to_contain_text("1 succeeded, 2 failed")
    assert _held(api, tid, "ann@contoso.com") == {"MCOMEETADD", "MCOPSTNPP"}
    assert _held(api, tid, "bob@contoso.com") == set()

    # remove it again for the same file
    page.goto(f"{server}/console/users")
    box.get_by_label("Users (CSV file)").set_input_files(str(file))
    box.get_by_label("License").select_option(label="Communications Credits")
    box.get_by_role("button", name="Remove license").click()
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("Removed")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("Not assigned")
    assert _held(api, tid, "ann@contoso.com") == {"MCOMEETADD"}
