"""Re-rating equals rating with the new deck from the start (issue 21): a month rated with
deck A through the charging engine, deck B imported and the month re-rated and applied,
ends with the balance, lots, forfeitures, usage rows and pool minutes that a second database
rated with deck B from the start has — a lot that expired in between included — on SQLite
and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from tests.api.voice import UK, US, ledger_ok, make_voice
from tests.rerate.world import DECK_A, DECK_B, DECK_C, cdr_month, month, put_deck, state


def test_rerating_a_month_ends_where_rating_it_with_the_new_deck_ends(api, other_api):
    old = month(api, DECK_A)
    fresh = month(other_api, DECK_B)
    before, target = state(old), state(fresh)
    assert before != target  # the decks differ where the month called
    assert target["forfeited"] > 0 and before["forfeited"] == 0  # lot 1 had some left in B

    put_deck(api, DECK_B)
    dry = api.post("/v1/rerates", {"tenant_id": old.tid, "from": "2030-03-01",
                                   "to": "2030-03-31"}, expect=200).json()
    assert dry["status"] == "dry_run"
    assert state(old) == before  # a dry run changes nothing
    (tenant,) = dry["tenants"]
    assert tenant["calls"] == 7 and tenant["corrected"] == 6
    assert tenant["balance_delta"] == "0.00"  # lot 2 is emptied either way
    assert Decimal(tenant["forfeiture_delta"]) == target["forfeited"]  # 0.08 more forfeited

    applied = api.post(f"/v1/rerates/{dry['id']}/apply", expect=200).json()
    assert applied["status"] == "applied"
    assert applied["applied"] == [{"tenant_id": old.tid, "result": "applied"}]
    assert state(old) == target
    ledger_ok(api)

    again = api.post(f"/v1/rerates/{dry['id']}/apply", expect=200).json()
    assert again["applied"] == [{"tenant_id": old.tid, "result": "already_applied"}]
    rerun = api.post("/v1/rerates", {"tenant_id": old.tid, "from": "2030-03-01",
                                     "to": "2030-03-31", "apply": True}, expect=200).json()
    assert rerun["tenants"][0]["corrected"] == 0 and rerun["calls"] == []
    assert state(old) == target
    ledger_ok(api)


def test_rerating_twice_ends_where_rating_with_the_last_deck_ends(api, other_api):
    """A → B → C: the second run reads back what the first corrected (lots and forfeitures
    included) and ends where rating with C from the start ends."""
    old = month(api, DECK_A)
    fresh = month(other_api, DECK_C)
    target = state(fresh)
    forfeited = []
    for deck in (DECK_B, DECK_C):
        put_deck(api, deck)
        api.post("/v1/rerates", {"tenant_id": old.tid, "from": "2030-03-01",
                                 "to": "2030-03-31", "apply": True}, expect=200)
        ledger_ok(api)
        forfeited.append(state(old)["forfeited"])
    # B left lot 1 something to forfeit; C empties it before it expires: forfeiture undone
    assert forfeited[0] > 0 and forfeited[1] == target["forfeited"] == 0
    assert state(old) == target


def test_rerating_cdrs_ends_where_rating_them_with_the_new_deck_ends(api, other_api):
    """The same for calls rated from CDRs (the engine's CDR path, in batches)."""
    old = cdr_month(api, DECK_A)
    target = state(cdr_month(other_api, DECK_B))
    assert state(old) != target
    put_deck(api, DECK_B)
    api.post("/v1/rerates", {"tenant_id": old.tid, "from": "2030-03-01", "to": "2030-03-31",
                             "apply": True}, expect=200)
    assert state(old) == target
    ledger_ok(api)


def _uncollected_batch(api, deck: str):
    voice = make_voice(api)
    put_deck(api, deck)
    voice.fund("1.00")
    body = {"cdrs": [{"call_id": f"b{i}", "tenant_id": voice.tid, "call_type": "user_out",
                      "from": US, "to": UK, "upn": "payg@contoso.com",
                      "start_time": f"2030-03-09T1{i}:00:00Z", "duration_s": 600}
                     for i in range(4)]}
    api.post("/v1/cdrs", body, key=voice.switch, expect=200)
    return voice


def test_charges_that_took_nothing_collect_in_their_order_when_prices_fall(api, other_api):
    """A batch of CDRs at one instant: at 0.05/min the last two took nothing from the lot;
    at 0.03/min the third is paid in full and the fourth in part, as rating at 0.03 does."""
    dear = DECK_A.replace("44,United Kingdom,any,0.0200,0.0000,60",
                          "44,United Kingdom,any,0.0500,0.0000,60")
    cheap = DECK_A.replace("44,United Kingdom,any,0.0200,0.0000,60",
                           "44,United Kingdom,any,0.0300,0.0000,60")
    old = _uncollected_batch(api, dear)
    target = state(_uncollected_batch(other_api, cheap))
    assert [c[2] for c in state(old)["calls"]] == ["0.00", "0.00", "0.50", "0.50"]
    put_deck(api, cheap)
    api.post("/v1/rerates", {"tenant_id": old.tid, "from": "2030-03-01", "to": "2030-03-31",
                             "apply": True}, expect=200)
    got = state(old)
    assert [c[1:3] for c in got["calls"]] == [("0.30", "0.00"), ("0.30", "0.00"),
                                              ("0.30", "0.00"), ("0.10", "0.20")]
    assert got == target
    ledger_ok(api)
