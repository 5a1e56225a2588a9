"""The license catalog and the rules for assigning and removing licenses (SPEC §2 Licenses).

The Communications Credits license (``MCOPSTNPP``) may be held only with Audio Conferencing,
or with Phone System plus a Calling Plan (domestic, international or pay-as-you-go), or both.
Enterprise E5 counts as Phone System and Audio Conferencing. It is free with unlimited seats;
every other SKU is limited by the tenant's subscriptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from commcredits.domain.errors import DomainError, ErrorKind, conflict

PHONE_SYSTEM = "MCOEV"
DOMESTIC_PLAN = "MCOPSTN1"
INTERNATIONAL_PLAN = "MCOPSTN2"
PAYG_PLAN = "MCOPSTN_PAYG"
AUDIO_CONFERENCING = "MCOMEETADD"
CREDITS = "MCOPSTNPP"
E5 = "SPE_E5"

CALLING_PLANS = frozenset({DOMESTIC_PLAN, INTERNATIONAL_PLAN, PAYG_PLAN})


@dataclass(frozen=True, slots=True)
class Sku:
    code: str
    name: str
    free_unlimited: bool = False
    bundles: frozenset[str] = frozenset()


CATALOG: dict[str, Sku] = {
    s.code: s
    for s in (
        Sku(PHONE_SYSTEM, "Phone System"),
        Sku(DOMESTIC_PLAN, "Domestic Calling Plan"),
        Sku(INTERNATIONAL_PLAN, "Domestic and International Calling Plan"),
        Sku(PAYG_PLAN, "Pay-As-You-Go Calling Plan"),
        Sku(AUDIO_CONFERENCING, "Audio Conferencing"),
        Sku(CREDITS, "Communications Credits", free_unlimited=True),
        Sku(E5, "Enterprise E5", bundles=frozenset({PHONE_SYSTEM, AUDIO_CONFERENCING})),
    )
}


def sku(code: str) -> Sku:
    try:
        return CATALOG[code]
    except KeyError:
        raise DomainError(
            "unknown_sku",
            f"unknown SKU {code!r}; known: {', '.join(sorted(CATALOG))}",
            ErrorKind.NOT_FOUND,
        ) from None


def effective(held: Iterable[str]) -> frozenset[str]:
    """What a set of licenses amounts to, bundles expanded (E5 → Phone System + Conferencing)."""
    out: set[str] = set()
    for code in held:
        out.add(code)
        out |= CATALOG[code].bundles if code in CATALOG else frozenset()
    return frozenset(out)


def credits_prerequisite_met(held: Iterable[str]) -> bool:
    have = effective(held)
    return AUDIO_CONFERENCING in have or (PHONE_SYSTEM in have and bool(have & CALLING_PLANS))


_PREREQ_TEXT = (
    "the Communications Credits license (MCOPSTNPP) needs Audio Conferencing (MCOMEETADD), "
    "or Phone System (MCOEV) with a Calling Plan (MCOPSTN1, MCOPSTN2 or MCOPSTN_PAYG); "
    "Enterprise E5 (SPE_E5) counts as Phone System and Audio Conferencing"
)


def check_assign(held: frozenset[str], code: str, seats_free: int | None) -> bool:
    """Check that ``code`` may be added to a user holding ``held``.

    ``seats_free`` is the tenant's unassigned seats of ``code`` (ignored for free SKUs).
    Returns False when the user already holds it (nothing to do), True when it is to be added.
    """
    item = sku(code)
    if code in held:
        return False
    if code == CREDITS and not credits_prerequisite_met(held):
        raise conflict("prerequisite_missing", f"{_PREREQ_TEXT}; the user holds "
                       f"{', '.join(sorted(held)) or 'no licenses'}")
    if not item.free_unlimited and (seats_free is None or seats_free <= 0):
        raise conflict(
            "no_seats_available",
            f"all {item.code} seats are assigned; add seats to the subscription first",
        )
    return True


def check_remove(held: frozenset[str], code: str, *, cascade: bool = False) -> frozenset[str]:
    """Return the licenses to remove when ``code`` is taken away from a user holding ``held``.

    Removing a prerequisite of a held Communications Credits license is refused
    (``license_required_by``) unless ``cascade`` asks to remove the credits license too.
    """
    sku(code)
    if code not in held:
        return frozenset()
    remaining = held - {code}
    if CREDITS in remaining and not credits_prerequisite_met(remaining):
        if not cascade:
            raise conflict(
                "license_required_by",
                f"{code} is required by the Communications Credits license (MCOPSTNPP) the user "
                "holds; remove MCOPSTNPP first, or pass cascade=true to remove both",
            )
        return frozenset({code, CREDITS})
    return frozenset({code})
