"""Issue 19 point 7 through the API: a card is checked before it is saved (Luhn, an expiry
that has not passed: 422, never 201), the same card twice is one entry, and no card number
is ever stored. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from commcredits.adapters.db.schema import payment_methods
from commcredits.services import payment_methods as pm_service


def _add(api: Any, tid: str, number: str = "4242 4242 4242 4242", month: int = 12,
         year: int = 2035) -> Any:
    return api.post(f"/v1/tenants/{tid}/payment-methods",
                    {"type": "card", "card_number": number, "exp_month": month,
                     "exp_year": year})


def _saved(api: Any, tid: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()


@pytest.mark.parametrize(("number", "month", "year", "words"), [
    ("4242424242424242", 12, 2020, "the card expired at the end of 12/2020"),
    ("4242424242424242", 2, 2030, "the card expired at the end of 02/2030"),  # clock: 2030-03
    ("4242424242424241", 12, 2035, "Luhn"),
    ("4242", 12, 2035, "12 to 19 digits"),
])
def test_a_card_that_cannot_pay_is_not_saved(api: Any, number: str, month: int, year: int,
                                             words: str) -> None:
    api.set_clock("2030-03-10T12:00:00Z")
    tid = api.tenant("US")
    r = _add(api, tid, number, month, year)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert words in r.json()["error"]["message"]
    assert _saved(api, tid) == []
    # the month the card expires in is still good
    assert _add(api, tid, "4242424242424242", 3, 2030).status_code == 201


def test_the_same_card_twice_is_one_entry(api: Any) -> None:
    tid = api.tenant("US")
    first = _add(api, tid)
    assert first.status_code == 201, first.text
    again = _add(api, tid, "4242-4242-4242-4242")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    other_expiry = _add(api, tid, year=2036)
    assert other_expiry.json()["id"] != first.json()["id"]
    assert len(_saved(api, tid)) == 2
    # another tenant's same card is its own
    other = api.tenant("US")
    assert _add(api, other).json()["id"] != first.json()["id"]
    # once removed, the card can be added afresh
    with api.rt.db.uow() as uow:
        pm_service.remove(uow, tid, first.json()["id"])
        uow.commit()
    assert _add(api, tid).json()["id"] != first.json()["id"]
    assert len(_saved(api, tid)) == 2


def test_no_card_number_is_stored(api: Any) -> None:
    tid = api.tenant("US")
    assert _add(api, tid).status_code == 201
    with api.rt.db.uow() as uow:
        rows = [dict(r._mapping) for r in uow.conn.execute(sa.select(payment_methods))]
    assert rows and all("4242424242424242" not in str(v) for row in rows for v in row.values())
    assert rows[0]["last4"] == "4242" and rows[0]["token"]


def test_the_same_card_added_at_once_twice_is_one_entry(api: Any) -> None:
    """Two requests adding one card at the same moment (a double click) take turns."""
    from concurrent.futures import ThreadPoolExecutor

    from commcredits.adapters.payments import TestGateway
    from commcredits.services import credits

    tid = api.tenant("US")

    def add(_: int) -> str:
        with api.rt.db.uow() as uow:
            view = credits.add_card(uow, TestGateway(), tid, "4242424242424242", 12, 2035)
            uow.commit()
        return str(view["id"])

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(add, range(8)))
    assert len(ids) == 1 and len(_saved(api, tid)) == 1
