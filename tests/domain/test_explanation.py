"""The parts of a charge (pure): lots + overage + uncollected = charge, and billed seconds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commcredits.domain import explanation as ex


def _make(lots: list[str], overage: str, uncollected: str, collected: str) -> ex.Explanation:
    return ex.assemble(
        usage_id="use_1", kind="call", ref="c1", call_type="user_out", funding="credits",
        currency="USD", collected=Decimal(collected), connection_fee=Decimal(0),
        seconds=ex.Seconds(720, 120, 300, 300, 60), segments=None, rate=None,
        pool=ex.PoolTake("domestic:US:MCOPSTN1", 2, 5998, 6000),
        lots=[ex.LotTake(f"lot_{i}", Decimal(a), None) for i, a in enumerate(lots)],
        overage=Decimal(overage), uncollected=Decimal(uncollected),
        ledger_transaction_ids=["txn_1"])


def test_the_parts_add_up_to_the_charge() -> None:
    e = _make(["0.03", "0.02"], "0.05", "0.00", "0.10")
    assert e.charge == Decimal("0.10")
    view = ex.view(e)
    assert [x["amount"] for x in view["lots"]] == ["0.03", "0.02"]
    assert (view["charge"], view["overage"], view["billed_s"]) == ("0.10", "0.05", 600)
    assert view["ledger_transaction_id"] == "txn_1" and view["corrections"] == []


def test_uncollected_is_part_of_the_charge_not_of_what_was_collected() -> None:
    e = _make(["0.02"], "0", "0.04", "0.02")
    assert (e.charge, e.collected) == (Decimal("0.06"), Decimal("0.02"))


def test_parts_that_do_not_add_up_are_refused() -> None:
    with pytest.raises(ex.PartsDoNotAddUp):
        _make(["0.03", "0.01"], "0.05", "0.00", "0.10")


@pytest.mark.parametrize(("seconds", "increment", "billed"),
                         [(0, 60, 0), (1, 60, 60), (60, 60, 60), (61, 60, 120), (61, 6, 66),
                          (7, None, 7)])
def test_seconds_are_billed_in_whole_increments(seconds: int, increment: int | None,
                                                billed: int) -> None:
    assert ex.billed(seconds, increment) == billed
