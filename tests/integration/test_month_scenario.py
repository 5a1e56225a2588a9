"""A month of calls for several tenants, as a switch following API.md would run it; then
every charge, pool minute, lot remainder, email and report row is cross-checked."""

from __future__ import annotations

import csv
import io
import random
from decimal import Decimal

from commcredits.services.ledger import verify
from tests.api.voice import FRANCE, UK, UK_MOBILE, US, make_voice

DESTINATIONS = [US, UK, UK_MOBILE, FRANCE]
CALLERS = ["payg@contoso.com", "dom@contoso.com", "nocred@contoso.com"]


def test_a_month_for_three_tenants(api):
    rnd = random.Random(7)
    voices = [make_voice(api) for _ in range(3)]  # make_voice sets the clock to 2030-03-10
    for v in voices:
        v.fund("20.00")
    for v in voices[:2]:
        api.put(f"/v1/tenants/{v.tid}/credits/auto-recharge",
                {"enabled": True, "recharge_amount": "50.00", "trigger_amount": "5.00",
                 "payment_method_id": v.card}, expect=200)
    api.rt.settings.min_order = Decimal("50")
    expected: dict[str, dict[str, Decimal | int]] = {
        v.tid: {"charged": Decimal(0), "calls": 0, "pool": 0} for v in voices}
    for day in range(11, 32):
        api.set_clock(f"2030-03-{day:02d}T09:00:00Z")
        for v in voices:
            for n in range(rnd.randint(2, 6)):
                call_id = f"{v.tid}-{day}-{n}"
                d = v.call(call_id, rnd.choice(DESTINATIONS), upn=rnd.choice(CALLERS))
                if d["decision"] != "allowed":
                    continue
                duration = rnd.randint(0, 1800)
                if "max_duration_s" in d:
                    elapsed = 0
                    while elapsed + 300 < duration:  # the switch's interim updates
                        elapsed += 240
                        step = v.interim(call_id, elapsed)
                        if not step["continue"]:
                            break
                    duration = min(duration, step["max_duration_s"] if elapsed else
                                   d["max_duration_s"])
                end = v.end(call_id, duration)
                expected[v.tid]["charged"] += Decimal(end["charge"])
                expected[v.tid]["calls"] += 1
                expected[v.tid]["pool"] += end["included_minutes"]

    for v in voices:
        exp = expected[v.tid]
        txns = api.get(f"/v1/tenants/{v.tid}/credits/transactions").json()
        usage = -sum(Decimal(t["amount"]) for t in txns if t["kind"] == "usage")
        funded = sum(Decimal(t["amount"]) for t in txns if t["kind"] in {"order",
                                                                          "auto_recharge"})
        c = v.credits()
        # every charge is in the ledger, and the balance is what was paid in less it
        assert usage == exp["charged"]
        assert Decimal(c["balance"]) == funded - usage
        assert sum(Decimal(lot["remaining"]) for lot in c["lots"]) == Decimal(c["balance"])
        assert c["reserved"] == "0.00"
        # pool minutes
        pools = {p["pool"]: p for p in api.get(
            f"/v1/tenants/{v.tid}/reports/minute-pools?month=2030-03").json()}
        assert pools["domestic:US:MCOPSTN1"]["minutes_used"] == exp["pool"]
        # report rows: one per ended call, charges adding up to the ledger
        text = api.get(f"/v1/tenants/{v.tid}/reports/pstn-usage?from=2030-03-01&to=2030-03-31"
                       "&format=csv").text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == exp["calls"]
        assert sum(Decimal(r["Charge"]) for r in rows) == exp["charged"]
        # a recharge email for every auto-recharge lot
        recharged = sum(lot["source"] == "auto_recharge" for lot in c["lots"])
        kinds = [n["kind"] for n in api.get(f"/v1/tenants/{v.tid}/notifications").json()]
        assert kinds.count("recharge_succeeded") == recharged
    assert sum(lot["source"] == "auto_recharge" for v in voices[:2]
               for lot in v.credits()["lots"]) >= 1
    with api.rt.db.uow() as uow:
        checked, problems = verify(uow)
    assert checked == 3 and problems == []


