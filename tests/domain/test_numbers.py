"""Number classification: country, rate-deck number type, domestic or international."""

from __future__ import annotations

import pytest

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.numbers import Number, classify


@pytest.mark.parametrize(
    ("raw", "e164", "country", "number_type"),
    [
        ("+14255550100", "+14255550100", "US", "geographic"),  # US: fixed line or mobile
        ("+18002530000", "+18002530000", "US", "toll_free"),
        ("+19002530000", "+19002530000", "US", "premium"),
        ("+17875550100", "+17875550100", "PR", "geographic"),
        ("+16135550100", "+16135550100", "CA", "geographic"),
        ("+442079460000", "+442079460000", "GB", "geographic"),
        ("+447400123456", "+447400123456", "GB", "mobile"),
        ("+448081570000", "+448081570000", "GB", "toll_free"),
        ("+449098790879", "+449098790879", "GB", "premium"),
        ("+33123456789", "+33123456789", "FR", "geographic"),
        ("+33612345678", "+33612345678", "FR", "mobile"),
        ("+33800123456", "+33800123456", "FR", "toll_free"),
        ("+33891234567", "+33891234567", "FR", "premium"),
        ("+80012345678", "+80012345678", None, "toll_free"),  # international freephone
    ],
)
def test_classify(raw: str, e164: str, country: str | None, number_type: str) -> None:
    assert classify(raw) == Number(e164, e164[1:], country, number_type)


@pytest.mark.parametrize("raw", ["+1 425 555 0100", " +1 (425) 555-0100 ", "14255550100",
                                 "+1-425-555-0100"])
def test_classify_normalises_formatting(raw: str) -> None:
    n = classify(raw)
    assert (n.e164, n.digits, n.country) == ("+14255550100", "14255550100", "US")


@pytest.mark.parametrize("raw", ["", "   ", "+", "abc", "+1 234", "+99912345678",
                                 "+4420794600001", "+1234567890123456789", "+44 abc def"])
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(DomainError) as e:
        classify(raw)
    assert e.value.code == "invalid_number"
    assert e.value.kind is ErrorKind.INVALID


def test_scope_for_usage_location() -> None:
    us = classify("+14255550100")
    assert us.is_domestic_for("US")
    assert us.scope_for("US") == "Domestic"
    assert us.scope_for("CA") == "Domestic"  # US <-> Canada is domestic both ways
    assert classify("+16135550100").scope_for("US") == "Domestic"
    assert us.scope_for("MX") == "International"
    gb = classify("+447400123456")
    assert gb.scope_for("GB") == "Domestic"
    assert gb.scope_for("FR") == "International"
    # a non-geographic number is international from everywhere
    freephone = classify("+80012345678")
    assert not freephone.is_domestic_for("US")
    assert freephone.scope_for("US") == "International"
