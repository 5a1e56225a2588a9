"""Issue 19 point 8 through the API: an amount above the maximum is called so (not "not a
decimal number"), wherever it comes, whatever its length."""

from __future__ import annotations

import pytest

from commcredits.domain.errors import DomainError
from commcredits.domain.money import parse_amount


@pytest.mark.parametrize("amount", ["1000000000000", "99999999999999.99", "1" + "0" * 30])
def test_an_amount_above_the_maximum_says_so(api, amount: str) -> None:
    tid = api.tenant("US")
    pm = api.card(tid)
    r = api.order(tid, amount, pm)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "amount_above_maximum"
    assert "above the maximum of 100000" in error["message"], error
    r = api.put(f"/v1/tenants/{tid}/credits/auto-recharge",
                {"enabled": True, "trigger_amount": "10.00", "recharge_amount": amount,
                 "payment_method_id": pm})
    assert r.status_code == 422 and "above the maximum of 100000" in r.text, r.text
    assert api.credits(tid)["balance"] == "0.00"


def test_parse_amount_names_the_limit_and_keeps_its_other_messages() -> None:
    with pytest.raises(DomainError, match=r"above the maximum of 999999999999$"):
        parse_amount("1000000000000", "USD")
    with pytest.raises(DomainError, match="is not a decimal number"):
        parse_amount("ten", "USD")
    with pytest.raises(DomainError, match="more decimal places than USD allows"):
        parse_amount("1.0000000000001", "USD")
    with pytest.raises(DomainError, match="out of range"):
        parse_amount("-10000000000000", "USD")
    assert str(parse_amount("0000000000050.5", "USD")) == "50.50"
