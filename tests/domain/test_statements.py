"""Statement lines from ledger movements (pure): each movement on one line, the identity
checked exactly, usage categories."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commcredits.domain import statements as st
from commcredits.domain.errors import DomainError

D = Decimal


def _build(movements: list[st.Movement], opening: str = "10.00",
           closing: str | None = None) -> st.Statement:
    total = D(opening) + sum((m.amount for m in movements), D(0))
    return st.build(tenant_id="t", tenant_name="T", month="2030-03", currency="USD",
                    final=True, opening=D(opening),
                    closing=D(closing) if closing is not None else total, movements=movements)


def test_each_movement_lands_on_its_line() -> None:
    s = _build([st.Movement("order", D("50")), st.Movement("auto_recharge", D("20")),
                st.Movement("usage", D("-1.50"), "international"),
                st.Movement("usage", D("-0.10"), "sms"),
                st.Movement("adjustment", D("0.50"), "international"),
                st.Movement("correction", D("-0.25")), st.Movement("expiry", D("-3"))])
    assert (s.purchases, s.auto_recharges, s.corrections, s.expired) == (
        D("50"), D("20"), D("-0.25"), D("3"))
    assert s.usage == {"domestic": D(0), "international": D("1.00"), "toll_free": D(0),
                       "conferencing": D(0), "sms": D("0.10")}
    assert s.closing == D("75.65")
    v = st.view(s)
    assert v["usage"]["total"] == "1.10" and v["closing_balance"] == "75.65"
    assert [k for k, _, _ in st.lines(v)][:4] == ["opening_balance", "purchases",
                                                  "auto_recharges", "usage.domestic"]


def test_lines_that_do_not_lead_to_the_closing_balance_are_refused() -> None:
    with pytest.raises(st.DoesNotReconcile):
        _build([st.Movement("order", D("50"))], closing="59.99")


@pytest.mark.parametrize(("kind", "call_type", "scope", "category"), [
    ("sms", "sms_out", "International", "sms"),
    ("call", "conf_out", "International", "conferencing"),
    ("call", "user_out_conf", "Domestic", "conferencing"),
    ("call", "conf_in", None, "toll_free"),
    ("call", "user_out", "International", "international"),
    ("call", "user_out", "Domestic", "domestic"),
    (None, None, None, "domestic"),
])
def test_usage_categories(kind: str | None, call_type: str | None, scope: str | None,
                          category: str) -> None:
    assert st.category(kind, call_type, scope) == category


@pytest.mark.parametrize("text", ["2030-13", "2030-1", "1969-12", "", "2030-03-01", "x"])
def test_bad_months_are_refused(text: str) -> None:
    with pytest.raises(DomainError):
        st.parse_month(text)


def test_a_month_runs_to_the_first_instant_of_the_next() -> None:
    start, end = st.parse_month("2030-12")
    assert (start.isoformat(), end.isoformat()) == ("2030-12-01T00:00:00+00:00",
                                                    "2031-01-01T00:00:00+00:00")
