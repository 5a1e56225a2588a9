"""Issue 9, done when: a month of calls under Microsoft's rules — GB, US, CA and DE users, a
dial-out pool, an NCE tenant with overage off then on, calls overrunning their grant — checked
against a hand calculation written out below (not computed by the code under test)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from commcredits.services.ledger import verify

DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
1,United States and Canada,any,0.0100,0.0000,60
44,United Kingdom,any,0.0200,0.0000,60
49,Germany,any,0.0300,0.0500,60
"""
US, CA, GB, DE = "+14255550100", "+16135550100", "+442079460123", "+493012345678"

# user -> (usage location, licences)
PEOPLE = {
    "us1@contoso.com": ("US", ["MCOEV", "MCOPSTN1", "MCOPSTNPP"]),
    "ca1@contoso.com": ("CA", ["MCOEV", "MCOPSTN1", "MCOPSTNPP"]),
    "gb1@contoso.com": ("GB", ["MCOEV", "MCOPSTN1", "MCOPSTNPP"]),
    "de1@contoso.com": ("DE", ["MCOEV", "MCOPSTN2", "MCOPSTNPP"]),
    "org@contoso.com": ("DE", ["MCOMEETADD", "MCOPSTNPP"]),
}


class Switch:
    def __init__(self, api: Any, tid: str) -> None:
        self.api, self.tid, self.key = api, tid, api.new_key("switch")

    def call(self, call_id: str, upn: str, to: str, call_type: str = "user_out") -> Any:
        body = {"call_id": call_id, "tenant_id": self.tid, "call_type": call_type,
                "from": US, "to": to}
        body["organizer_upn" if call_type == "conf_out" else "upn"] = upn
        return self.api.post("/v1/calls", body, key=self.key, expect=200).json()

    def end(self, call_id: str, seconds: int) -> Any:
        return self.api.post(f"/v1/calls/{call_id}/end", {"duration_s": seconds},
                             key=self.key, expect=200).json()


def _setup(api: Any, commerce: str, people: dict[str, tuple[str, list[str]]],
           seats: dict[str, int]) -> str:
    tid = api.tenant("US", commerce)
    for sku, qty in seats.items():
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": qty}, expect=201)
    for upn, (where, skus) in people.items():
        api.post(f"/v1/tenants/{tid}/users", {"upn": upn, "usage_location": where},
                 expect=201)
        for sku in skus:
            api.put(f"/v1/tenants/{tid}/users/{upn}/licenses/{sku}", expect=200)
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["billing@contoso.com"]})
    api.post(f"/v1/tenants/{tid}/admins", {"email": f"boss-{commerce}@contoso.com",
                                          "password": "a-long-password",
                                          "role": "global_admin"}, expect=201)
    return tid


def _pools(api: Any, tid: str, month: str) -> dict[str, tuple[int, int]]:
    return {p["pool"]: (p["minutes_total"], p["minutes_used"]) for p in api.get(
        f"/v1/tenants/{tid}/reports/minute-pools?month={month}", expect=200).json()}


def _report(api: Any, tid: str) -> dict[str, dict[str, str]]:
    text = api.get(f"/v1/tenants/{tid}/reports/pstn-usage?from=2030-03-01&to=2030-04-30"
                   "&format=csv", expect=200).text
    return {r["Call ID"]: r for r in csv.DictReader(io.StringIO(text))}


def test_a_month_under_microsofts_rules(api):
    api.set_clock("2030-03-01T08:00:00Z")
    r = api.client.put("/v1/rate-decks/USD", content=DECK.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert api.rt.settings.grant_slice_s == 300  # every call below is granted 300 s at once

    # -- a legacy tenant with users in four countries and 2 purchased conferencing seats ---
    tid = _setup(api, "legacy", PEOPLE, {"MCOEV": 10, "MCOPSTN1": 10, "MCOPSTN2": 10,
                                         "MCOMEETADD": 2})
    api.order(tid, "50.00", api.card(tid))
    sw = Switch(api, tid)
    # Hand calculation of the pools (minutes per user; conferencing per purchased seat):
    #   US 1 x 3000, CA 1 x 3000, GB 1 x 1200 (not 3000), DE domestic 1 x 1200,
    #   DE international 1 x 600, conferencing 2 seats x 60 = 120 (one seat assigned)
    assert _pools(api, tid, "2030-03") == {
        "domestic:US:MCOPSTN1": (3000, 0), "domestic:CA:MCOPSTN1": (3000, 0),
        "domestic:GB:MCOPSTN1": (1200, 0), "domestic:DE:MCOPSTN2": (1200, 0),
        "international:DE:MCOPSTN2": (600, 0), "conferencing": (120, 0)}

    plan = [  # (day, call id, user, to, type, seconds, expected end)
        # US -> Canada is domestic; 600 s on a 300 s grant without interim: all pool, 10 min
        (2, "a1", "us1", CA, "user_out", 600, ("included", 10, "0.00")),
        # Canada -> US is domestic too: 125 s = 3 pool minutes
        (3, "a2", "ca1", US, "user_out", 125, ("included", 3, "0.00")),
        # GB: 71,940 s overrunning a 300 s grant: 1,199 of GB's 1,200 minutes
        (5, "a3", "gb1", GB, "user_out", 71940, ("included", 1199, "0.00")),
        # GB again, 180 s: the last pool minute (60 s), then 120 s on credits with no
        # connection fee (it started in the pool): 2 min x 0.02 = 0.04
        (6, "a4", "gb1", GB, "user_out", 180, ("credits", 1, "0.04")),
        # DE domestic, 61 s: 2 minutes of DE's domestic pool
        (8, "a5", "de1", DE, "user_out", 61, ("included", 2, "0.00")),
        # DE user calling the US: international pool of MCOPSTN2, 5 minutes
        (9, "a6", "de1", US, "user_out", 300, ("included", 5, "0.00")),
        # dial-out by a German organizer to the UK (Zone A): 6,000 s overrunning the grant,
        # 100 of the 120 pooled minutes
        (12, "a7", "org", GB, "conf_out", 6000, ("included", 100, "0.00")),
        # again 1,500 s: the pool's last 20 minutes (1,200 s), then 300 s on credits at the
        # destination's rate, no fee: 5 min x 0.02 = 0.10
        (20, "a8", "org", GB, "conf_out", 1500, ("credits", 20, "0.10")),
    ]
    for day, call_id, who, to, kind, seconds, (funding, minutes, charge) in plan:
        api.set_clock(f"2030-03-{day:02d}T10:00:00Z")
        d = sw.call(call_id, f"{who}@contoso.com", to, kind)
        assert d["decision"] == "allowed", (call_id, d)
        end = sw.end(call_id, seconds)
        assert (end["funding"], end["included_minutes"], end["charge"]) == (
            funding, minutes, charge), call_id

    # credits: 50.00 - 0.04 - 0.10 = 49.86
    c = api.credits(tid)
    assert (c["balance"], c["reserved"]) == ("49.86", "0.00")
    assert _pools(api, tid, "2030-03") == {
        "domestic:US:MCOPSTN1": (3000, 10), "domestic:CA:MCOPSTN1": (3000, 3),
        "domestic:GB:MCOPSTN1": (1200, 1200), "domestic:DE:MCOPSTN2": (1200, 2),
        "international:DE:MCOPSTN2": (600, 5), "conferencing": (120, 120)}
    rows = _report(api, tid)
    assert rows["a1"]["Domestic/International"] == "Domestic"  # US user, Canadian number
    assert rows["a2"]["Domestic/International"] == "Domestic"
    assert rows["a6"]["Domestic/International"] == "International"
    assert sum(Decimal(r["Charge"]) for r in rows.values()) == Decimal("0.14")
    # GB and conferencing crossed 80 % and 100 %: four alerts, each to the billing contact
    # and the global admin
    notes = api.get(f"/v1/tenants/{tid}/notifications").json()
    alerts = sorted((n["kind"], n["to"]) for n in notes if n["kind"].startswith("pool_"))
    assert alerts == sorted([(k, to) for k in ("pool_80", "pool_100", "pool_80", "pool_100")
                             for to in ("billing@contoso.com", "boss-legacy@contoso.com")])

    # -- an NCE tenant: overage off by default, then turned on -------------------------------
    api.set_clock("2030-03-25T10:00:00Z")
    nce = _setup(api, "nce", {"n1@contoso.com": ("US", ["MCOEV", "MCOPSTN1"])},
                 {"MCOEV": 1, "MCOPSTN1": 1})
    sw2 = Switch(api, nce)
    assert sw2.call("b1", "n1@contoso.com", GB) == {
        "call_id": "b1", "decision": "blocked", "reason": "overage_disabled",
        "sip_code": 403, "sip_reason": "Forbidden"}
    sw2.call("b2", "n1@contoso.com", US)
    assert (sw2.end("b2", 120)["funding"], api.get(
        f"/v1/tenants/{nce}/reports/minute-pools?month=2030-03").json()[0]["minutes_used"]) \
        == ("included", 2)
    admin = api.new_key("global_admin", nce)
    api.patch(f"/v1/tenants/{nce}", {"overage_enabled": True}, key=admin, expect=200)
    assert sw2.call("b3", "n1@contoso.com", GB)["funding"] == "overage"
    end = sw2.end("b3", 90)  # 2 min x 0.02 = 0.04, billed later, not from credits
    assert (end["funding"], end["charge"], end["overage_charge"]) == ("overage", "0.04", "0.04")
    nce_rows = _report(api, nce)
    assert sorted(nce_rows) == ["b2", "b3"]  # a blocked call leaves no usage record
    assert api.get(f"/v1/tenants/{nce}/credits/transactions").json() == []

    # a new month: the GB pool is full again
    api.set_clock("2030-04-01T09:00:00Z")
    sw.call("a9", "gb1@contoso.com", GB)
    assert sw.end("a9", 60)["funding"] == "included"
    assert _pools(api, tid, "2030-04")["domestic:GB:MCOPSTN1"] == (1200, 1)

    with api.rt.db.uow() as uow:
        checked, problems = verify(uow)
    assert checked == 2 and problems == []
