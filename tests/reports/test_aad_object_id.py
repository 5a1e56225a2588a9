"""Issue 23: a user's Entra ID (Azure AD) object id, given when the user is created, is what
the usage exports carry in their ``AAD ObjectId`` column (JSON, CSV, XLSX; on PostgreSQL the
database formats those cells itself, so both paths are checked through the API). A user
created without one leaves the column empty, never an internal ``usr_…`` id."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl

from tests.reports.test_reports import (
    ALICE_AAD,
    PSTN_COLUMNS,
    SMS_COLUMNS,
    UK,
    UK_MOBILE,
    Voice,
    add_user,
)

BOB_UPN = "bob@contoso.com"


def _csv(voice: Voice, name: str) -> list[dict[str, str]]:
    text = voice.report(name, format="csv").content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def _xlsx(voice: Voice, name: str) -> list[dict[str, Any]]:
    ws = openpyxl.load_workbook(io.BytesIO(voice.report(name, format="xlsx").content),
                                read_only=True).worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_exports_carry_the_users_guid_and_nothing_for_a_user_without_one(voice: Voice):
    bob = add_user(voice.api, voice.tid, BOB_UPN, ["MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"])
    assert bob["aad_object_id"] is None and bob["id"].startswith("usr")
    voice.call("call-alice", UK, 60)
    voice.api.set_clock("2030-03-10T12:10:00Z")
    voice.call("call-bob", UK, 60, upn=BOB_UPN)
    voice.sms("sms-alice", UK_MOBILE)
    want = {"call-alice": ALICE_AAD, "call-bob": None}
    assert {r["Call ID"]: r["AAD ObjectId"]
            for r in voice.report("pstn-usage").json()} == want
    assert {r["Call ID"]: r["AAD ObjectId"] for r in _csv(voice, "pstn-usage")} == \
        {"call-alice": ALICE_AAD, "call-bob": ""}
    assert {r["Call ID"]: r["AAD ObjectId"] for r in _xlsx(voice, "pstn-usage")} == want
    assert [list(r) for r in _csv(voice, "pstn-usage")] == [PSTN_COLUMNS, PSTN_COLUMNS]
    for rows in (voice.report("sms-usage").json(), _csv(voice, "sms-usage"),
                 _xlsx(voice, "sms-usage")):
        assert [(r["Message ID"], r["AAD ObjectId"]) for r in rows] == \
            [("sms-alice", ALICE_AAD)]
        assert list(rows[0]) == SMS_COLUMNS
    assert voice.api.get(f"/v1/tenants/{voice.tid}/users/alice@contoso.com",
                         expect=200).json()["aad_object_id"] == ALICE_AAD


def test_a_bad_or_taken_guid_is_refused_and_creates_nothing(voice: Voice):
    users = f"/v1/tenants/{voice.tid}/users"
    before = voice.api.get(users, expect=200).json()
    bad = voice.api.post(users, {"upn": "carol@contoso.com", "usage_location": "US",
                                 "aad_object_id": "not-a-guid"}, expect=422).json()
    assert bad["error"]["code"] == "validation_error"
    taken = voice.api.post(users, {"upn": "carol@contoso.com", "usage_location": "US",
                                   "aad_object_id": "{" + ALICE_AAD.upper() + "}"},
                           expect=409).json()
    assert taken["error"]["code"] == "already_exists"
    assert voice.api.get(users, expect=200).json() == before


def test_the_same_guid_may_name_a_user_of_another_tenant(voice: Voice):
    other = voice.api.tenant("US")
    user = voice.api.post(f"/v1/tenants/{other}/users",
                          {"upn": "alice@fabrikam.com", "usage_location": "US",
                           "aad_object_id": ALICE_AAD}, expect=201).json()
    assert user["aad_object_id"] == ALICE_AAD
