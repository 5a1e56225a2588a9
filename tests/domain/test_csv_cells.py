"""A CSV cell a spreadsheet would run as a formula gets a leading quote; numbers do not."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.csv_cells import FORMULA_STARTS, NUMBER_PATTERN, neutral, neutral_row


@pytest.mark.parametrize("cell", [
    '=HYPERLINK("http://evil.example/x","open")', "=1+2", "+cmd|' /C calc'!A0", "-2+3",
    "@SUM(A1:A9)", "\t=1+2", "\r=1+2", "+", "-", "=", "@", "+1 425", "+1-425", "--1",
    "-1.", "+.5", "-1e3",
])
def test_formula_starts_get_a_quote(cell: str) -> None:
    assert neutral(cell) == "'" + cell


@pytest.mark.parametrize("cell", [
    "+14255550100", "+44", "-1.50", "+3", "-12", "0.04", "Alice", "a=b", "ref-1", "", None,
    12, -5, "'=already", " =1+2", "ünï=",
])
def test_numbers_e164_and_plain_text_stay_as_they_are(cell: object) -> None:
    assert neutral(cell) == cell


def test_a_row_is_neutralised_cell_by_cell() -> None:
    assert neutral_row(("=1+2", "+14255550100", None, 90, "@x")) == [
        "'=1+2", "+14255550100", None, 90, "'@x"]


@given(st.text(alphabet=st.sampled_from("=+-@\t\r0123456789.a \u0661'"), max_size=8))
def test_the_fast_checks_agree_with_the_rule(cell: str) -> None:
    formula = bool(cell) and cell[0] in FORMULA_STARTS and not re.fullmatch(NUMBER_PATTERN,
                                                                            cell)
    assert neutral(cell) == ("'" + cell if formula else cell)
    assert neutral_row([cell]) == [neutral(cell)]
