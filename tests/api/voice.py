"""A voice tenant for the charging tests: a rate deck, users with every kind of license."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
1,United States,any,0.0100,0.0000,60
1800,United States toll-free,toll_free,0.0000,0.0000,60
1900,United States premium,premium,1.0000,0.0000,60
44,United Kingdom,any,0.0200,0.0000,60
447,United Kingdom mobile,mobile,0.1000,0.0500,1
33,France,any,0.0300,0.0100,6
86,China,any,0.0500,0.0000,60
1,US toll-free inbound,toll_free_inbound,0.0500,0.0000,60
44,UK toll-free inbound,toll_free_inbound,0.0800,0.0000,60
44,United Kingdom SMS,sms,0.0500,0.0000,1
1,United States SMS,sms,0.0100,0.0000,1
"""

US = "+14255550100"
UK = "+442079460123"
UK_MOBILE = "+447400123456"
FRANCE = "+33612345678"
CHINA = "+8613800138000"
JAPAN = "+81312345678"  # no rate in the deck
PREMIUM = "+19005550100"
TOLL_FREE = "+18005550100"

USERS = {
    "payg@contoso.com": ["MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"],
    "dom@contoso.com": ["MCOEV", "MCOPSTN1", "MCOPSTNPP"],
    "nocred@contoso.com": ["MCOEV", "MCOPSTN1"],
    "conf@contoso.com": ["MCOMEETADD", "MCOPSTNPP"],
    "bare@contoso.com": ["MCOEV"],
}


@dataclass
class Voice:
    api: Any
    tid: str
    switch: str
    card: str

    def call(self, call_id: str, to: str, upn: str | None = "payg@contoso.com",
             call_type: str = "user_out", frm: str = US, **extra: Any) -> dict[str, Any]:
        body = {"call_id": call_id, "tenant_id": self.tid, "call_type": call_type,
                "from": frm, "to": to, **extra}
        if upn:
            body["upn"] = upn
        return self.api.post("/v1/calls", body, key=self.switch, expect=200).json()

    def interim(self, call_id: str, elapsed: int) -> dict[str, Any]:
        return self.api.post(f"/v1/calls/{call_id}/interim", {"elapsed_s": elapsed},
                             key=self.switch, expect=200).json()

    def end(self, call_id: str, duration: int) -> dict[str, Any]:
        return self.api.post(f"/v1/calls/{call_id}/end", {"duration_s": duration},
                             key=self.switch, expect=200).json()

    def fund(self, amount: str) -> None:
        self.api.rt.settings.min_order = Decimal("0.01")
        self.api.order(self.tid, amount, self.card)

    def credits(self) -> dict[str, Any]:
        return self.api.credits(self.tid)

    def notices(self) -> list[str]:
        return [n["kind"] for n in self.api.get(f"/v1/tenants/{self.tid}/notifications").json()]

    def txn_kinds(self) -> list[str]:
        return [t["kind"] for t in
                self.api.get(f"/v1/tenants/{self.tid}/credits/transactions").json()]


def make_voice(api: Any, commerce: str = "legacy") -> Voice:
    api.set_clock("2030-03-10T12:00:00Z")
    r = api.client.put("/v1/rate-decks/USD", content=DECK.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    tid = api.tenant("US", commerce)
    for sku in ("MCOEV", "MCOPSTN1", "MCOPSTN_PAYG", "MCOMEETADD"):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 10}, expect=201)
    for upn, skus in USERS.items():
        api.post(f"/v1/tenants/{tid}/users", {"upn": upn, "display_name": upn.split("@")[0],
                                              "usage_location": "US"}, expect=201)
        for sku in skus:
            api.put(f"/v1/tenants/{tid}/users/{upn}/licenses/{sku}", expect=200)
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["billing@contoso.com"]})
    card = api.card(tid) if commerce == "legacy" else ""
    return Voice(api, tid, api.new_key("switch"), card)


def ledger_ok(api: Any) -> None:
    """``ledger verify`` finds nothing wrong."""
    from commcredits.services.ledger import verify
    with api.rt.db.uow() as uow:
        _, problems = verify(uow)
    assert problems == []
