"""A month of calls for the re-rating tests, placed through the switch's own API (the
charging engine) on a manual clock: a lot that expires mid-month, an SMS, a pooled call and
a call credits cannot fully pay."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.api.voice import DECK, FRANCE, UK, US, USERS, Voice

DECK_A = DECK
# cheaper UK (with a fee), dearer France, cheaper US
DECK_B = (DECK.replace("44,United Kingdom,any,0.0200,0.0000,60",
                       "44,United Kingdom,any,0.0150,0.0100,60")
          .replace("33,France,any,0.0300,0.0100,6", "33,France,any,0.0500,0.0000,6")
          .replace("1,United States,any,0.0100,0.0000,60", "1,United States,any,0.0050,0.0000,60"))
# cheaper UK, dearer France and US: lot 1 is emptied before it expires (B forfeited some)
DECK_C = (DECK.replace("44,United Kingdom,any,0.0200,0.0000,60",
                       "44,United Kingdom,any,0.0100,0.0000,60")
          .replace("33,France,any,0.0300,0.0100,6", "33,France,any,0.0400,0.0000,6")
          .replace("1,United States,any,0.0100,0.0000,60", "1,United States,any,0.0200,0.0000,60"))

# (call id, when, number, seconds, who)
CALLS = [("c1", "2030-03-10T13:00:00", UK, 600, "payg@contoso.com"),
         ("c2", "2030-03-12T09:00:00", FRANCE, 300, "payg@contoso.com"),
         ("c3", "2030-03-15T09:00:00", UK, 1200, "payg@contoso.com"),
         ("c4", "2030-03-18T09:00:00", US, 2400, "payg@contoso.com"),
         ("pool", "2030-03-19T09:00:00", US, 300, "dom@contoso.com"),
         ("c5", "2030-03-22T09:00:00", UK, 3000, "payg@contoso.com"),
         ("c6", "2030-03-25T09:00:00", FRANCE, 3000, "payg@contoso.com")]
SMS_AT = "2030-03-21T09:00:00"


def put_deck(api: Any, deck: str) -> None:
    r = api.client.put("/v1/rate-decks/USD", content=deck.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text


def _funded(api: Any, deck: str) -> Voice:
    api.set_clock("2029-03-20T12:00:00Z")
    put_deck(api, deck)
    tid = api.tenant("US")
    for sku in ("MCOEV", "MCOPSTN1", "MCOPSTN_PAYG", "MCOMEETADD"):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 10}, expect=201)
    for upn, skus in USERS.items():
        api.post(f"/v1/tenants/{tid}/users", {"upn": upn, "display_name": upn.split("@")[0],
                                              "usage_location": "US"}, expect=201)
        for sku in skus:
            api.put(f"/v1/tenants/{tid}/users/{upn}/licenses/{sku}", expect=200)
    voice = Voice(api, tid, api.new_key("switch"), api.card(tid))
    voice.fund("1.00")
    api.set_clock("2030-03-10T12:00:00Z")
    voice.fund("2.00")
    return voice


def month(api: Any, deck: str) -> Voice:
    """A tenant funded in March 2029 (lot 1: 1.00, expires 2030-03-20) and 2030 (lot 2: 2.00)
    and the month of March 2030 rated with ``deck``."""
    voice = _funded(api, deck)
    tid = voice.tid
    for call_id, at, number, seconds, upn in CALLS:
        if at > SMS_AT and not _sent(voice):
            api.set_clock(SMS_AT + "Z")
            api.post("/v1/sms", {"message_id": "m1", "tenant_id": tid, "upn": upn,
                                 "from": US, "to": US, "direction": "out", "segments": 2},
                     key=voice.switch, expect=200)
        api.set_clock(at + "Z")
        voice.call(call_id, number, upn=upn)
        end = datetime.fromisoformat(at) + timedelta(seconds=seconds)
        api.set_clock(end.isoformat() + "Z")
        voice.end(call_id, seconds)
    api.set_clock("2030-03-31T12:00:00Z")
    return voice


def cdr_month(api: Any, deck: str) -> Voice:
    """The same month sent as CDRs (``POST /v1/cdrs``, through the engine's CDR path) in two
    batches, one before lot 1 expires and one after."""
    voice = _funded(api, deck)
    for batch, at in ((CALLS[:4], "2030-03-19T00:00:00Z"), (CALLS[4:], "2030-03-26T00:00:00Z")):
        api.set_clock(at)
        body = {"cdrs": [{"call_id": call_id, "tenant_id": voice.tid, "call_type": "user_out",
                          "from": US, "to": number, "upn": upn, "start_time": when + "Z",
                          "duration_s": seconds}
                         for call_id, when, number, seconds, upn in batch]}
        r = api.post("/v1/cdrs", body, key=voice.switch, expect=200).json()
        assert all(x.get("decision", "allowed") != "blocked" for x in r["results"]), r
    api.set_clock("2030-03-31T12:00:00Z")
    return voice


def _sent(voice: Voice) -> bool:
    return any(t["reference"] == "sms m1" for t in
               voice.api.get(f"/v1/tenants/{voice.tid}/credits/transactions").json())


def state(voice: Voice) -> dict[str, Any]:
    """What re-rating must leave exactly as rating with the new deck from the start would."""
    api = voice.api
    credits = voice.credits()
    with api.rt.db.uow() as uow:
        balances = uow.credits.account_balances(voice.tid)
    report = api.get(f"/v1/tenants/{voice.tid}/reports/pstn-usage?from=2030-03-01"
                     f"&to=2030-03-31").json()
    rows = report["rows"] if isinstance(report, dict) else report
    zero = Decimal(0)
    return {
        "balance": credits["balance"], "available": credits["available"],
        "lots": [(lot["amount"], lot["remaining"]) for lot in
                 sorted(credits["lots"], key=lambda x: x["purchased_at"])],
        "forfeited": balances.get(f"ext:{voice.tid}:forfeited", zero),
        "usage": balances.get(f"ext:{voice.tid}:usage", zero),
        "calls": sorted((r["Call ID"], r["Charge"], r.get("Uncollected"),
                         r["Connection Fee"]) for r in rows),
        "pools": api.get(f"/v1/tenants/{voice.tid}/reports/minute-pools?month=2030-03").json(),
    }
