"""Licenses: the Communications Credits prerequisites, seats, removal and its cascade."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.licensing import CATALOG, check_assign, check_remove, effective

PP = "MCOPSTNPP"
PAID = ["MCOEV", "MCOPSTN1", "MCOPSTN2", "MCOPSTN_PAYG", "MCOMEETADD", "SPE_E5"]


def _held(*codes: str) -> frozenset[str]:
    return frozenset(codes)


@pytest.mark.parametrize(
    ("held", "allowed"),
    [
        (_held(), False),
        (_held("MCOMEETADD"), True),
        (_held("MCOEV"), False),
        (_held("MCOPSTN1"), False),
        (_held("MCOPSTN2", "MCOPSTN_PAYG"), False),
        (_held("MCOEV", "MCOPSTN1"), True),
        (_held("MCOEV", "MCOPSTN2"), True),
        (_held("MCOEV", "MCOPSTN_PAYG"), True),
        (_held("MCOMEETADD", "MCOEV", "MCOPSTN1"), True),
        (_held("SPE_E5"), True),
        (_held("SPE_E5", "MCOPSTN2"), True),
        (_held("MCOEV", "MCOMEETADD"), True),
        (_held("UNKNOWN_OLD_SKU"), False),
    ],
)
@pytest.mark.parametrize("seats_free", [None, 0, 5])
def test_credits_license_prerequisites(held: frozenset[str], allowed: bool,
                                       seats_free: int | None) -> None:
    # MCOPSTNPP is free with unlimited seats: seats_free never matters.
    if allowed:
        assert check_assign(held, PP, seats_free) is True
        return
    with pytest.raises(DomainError) as e:
        check_assign(held, PP, seats_free)
    assert (e.value.code, e.value.kind) == ("prerequisite_missing", ErrorKind.CONFLICT)
    assert "MCOMEETADD" in e.value.message


def test_already_held_is_a_no_op() -> None:
    assert check_assign(_held("MCOMEETADD", PP), PP, None) is False
    assert check_assign(_held("MCOEV"), "MCOEV", 0) is False  # no seat needed either


@pytest.mark.parametrize("code", PAID)
@pytest.mark.parametrize("seats_free", [None, 0, -1])
def test_paid_sku_without_seats(code: str, seats_free: int | None) -> None:
    with pytest.raises(DomainError) as e:
        check_assign(_held(), code, seats_free)
    assert (e.value.code, e.value.kind) == ("no_seats_available", ErrorKind.CONFLICT)


@pytest.mark.parametrize("code", PAID)
def test_paid_sku_with_a_seat(code: str) -> None:
    assert check_assign(_held(), code, 1) is True


@pytest.mark.parametrize("code", ["FOO", "mcopstnpp", "", "MCOPSTN3"])
def test_unknown_sku(code: str) -> None:
    for call in (lambda: check_assign(_held(), code, 10), lambda: check_remove(_held(), code)):
        with pytest.raises(DomainError) as e:
            call()
        assert (e.value.code, e.value.kind) == ("unknown_sku", ErrorKind.NOT_FOUND)


def test_e5_expands_to_phone_system_and_conferencing() -> None:
    assert effective(["SPE_E5"]) == {"SPE_E5", "MCOEV", "MCOMEETADD"}
    assert effective(["MCOPSTN1", "LEGACY_X"]) == {"MCOPSTN1", "LEGACY_X"}


@given(st.frozensets(st.sampled_from(sorted(CATALOG))))
def test_credits_rule_property(held: frozenset[str]) -> None:
    conferencing = bool(held & {"MCOMEETADD", "MCOMEETACPEA", "SPE_E5"})
    phone = bool(held & {"MCOEV", "SPE_E5"})
    plan = bool(held & {"MCOPSTN1", "MCOPSTN2", "MCOPSTN5", "MCOPSTN6", "MCOPSTN_PAYG"})
    if PP in held:
        assert check_assign(held, PP, 0) is False
    elif conferencing or (phone and plan):
        assert check_assign(held, PP, 0) is True
    else:
        with pytest.raises(DomainError, match="MCOPSTNPP"):
            check_assign(held, PP, 0)


# -- removal -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("held", "code"),
    [
        (_held("MCOMEETADD", PP), "MCOMEETADD"),
        (_held("MCOEV", "MCOPSTN1", PP), "MCOPSTN1"),
        (_held("MCOEV", "MCOPSTN_PAYG", PP), "MCOEV"),
        (_held("SPE_E5", PP), "SPE_E5"),
        (_held("SPE_E5", "MCOPSTN1", PP), "SPE_E5"),
    ],
)
def test_removing_a_needed_prerequisite(held: frozenset[str], code: str) -> None:
    with pytest.raises(DomainError) as e:
        check_remove(held, code)
    assert (e.value.code, e.value.kind) == ("license_required_by", ErrorKind.CONFLICT)
    assert PP in e.value.message
    assert check_remove(held, code, cascade=True) == {code, PP}


@pytest.mark.parametrize(
    ("held", "code"),
    [
        (_held("MCOMEETADD", "MCOEV", "MCOPSTN1", PP), "MCOMEETADD"),  # phone+plan remain
        (_held("MCOMEETADD", "MCOEV", "MCOPSTN1", PP), "MCOPSTN1"),  # conferencing remains
        (_held("MCOEV", "MCOPSTN1", "MCOPSTN2", PP), "MCOPSTN1"),  # another plan remains
        (_held("SPE_E5", "MCOEV", PP), "MCOEV"),  # E5 still brings Phone System
        (_held("SPE_E5", "MCOMEETADD", PP), "SPE_E5"),
        (_held("MCOMEETADD"), "MCOMEETADD"),  # no credits license to protect
        (_held("MCOMEETADD", PP), PP),  # the credits license itself
    ],
)
@pytest.mark.parametrize("cascade", [False, True])
def test_removing_a_spare_license(held: frozenset[str], code: str, cascade: bool) -> None:
    assert check_remove(held, code, cascade=cascade) == {code}


def test_removing_a_license_not_held() -> None:
    assert check_remove(_held("MCOMEETADD", PP), "MCOEV") == frozenset()
