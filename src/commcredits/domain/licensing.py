"""The license catalog and the rules for assigning and removing licenses (SPEC §2 Licenses).

The Communications Credits license (``MCOPSTNPP``) may be held only with Audio Conferencing
(``MCOMEETADD``, or its pay-per-minute variant ``MCOMEETACPEA``), or with Phone System plus a
Calling Plan (domestic, the 120/240-minute domestic plans, international or pay-as-you-go), or
both. Enterprise E5 counts as Phone System and Audio Conferencing. It is free with unlimited
seats; every other SKU is limited by the tenant's subscriptions. The 120- and 240-minute
domestic plans (``MCOPSTN5``/``MCOPSTN6``) are not sold to users located in the US.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from commcredits.domain.errors import DomainError, ErrorKind, conflict

PHONE_SYSTEM = "MCOEV"
DOMESTIC_PLAN = "MCOPSTN1"
DOMESTIC_120 = "MCOPSTN5"
DOMESTIC_240 = "MCOPSTN6"
INTERNATIONAL_PLAN = "MCOPSTN2"
PAYG_PLAN = "MCOPSTN_PAYG"
AUDIO_CONFERENCING = "MCOMEETADD"
CONFERENCING_PPM = "MCOMEETACPEA"  # Audio Conferencing pay-per-minute: no pool
CREDITS = "MCOPSTNPP"
E5 = "SPE_E5"

#: Plans whose minutes cover domestic calls, in the order a domestic call draws on them.
DOMESTIC_PLANS = (DOMESTIC_PLAN, INTERNATIONAL_PLAN, DOMESTIC_120, DOMESTIC_240)
CALLING_PLANS = frozenset({*DOMESTIC_PLANS, PAYG_PLAN})
CONFERENCING = frozenset({AUDIO_CONFERENCING, CONFERENCING_PPM})
#: SKUs Microsoft does not sell to users located in these countries.
NOT_SOLD_IN = {DOMESTIC_120: frozenset({"US"}), DOMESTIC_240: frozenset({"US"})}


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
        Sku(DOMESTIC_120, "Domestic Calling Plan (120 minutes)"),
        Sku(DOMESTIC_240, "Domestic Calling Plan (240 minutes)"),
        Sku(INTERNATIONAL_PLAN, "Domestic and International Calling Plan"),
        Sku(PAYG_PLAN, "Pay-As-You-Go Calling Plan"),
        Sku(AUDIO_CONFERENCING, "Audio Conferencing"),
        Sku(CONFERENCING_PPM, "Audio Conferencing pay-per-minute"),
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
    return bool(have & CONFERENCING) or (PHONE_SYSTEM in have and bool(have & CALLING_PLANS))


_PREREQ_TEXT = (
    "the Communications Credits license (MCOPSTNPP) needs Audio Conferencing (MCOMEETADD or "
    "MCOMEETACPEA), or Phone System (MCOEV) with a Calling Plan (MCOPSTN1, MCOPSTN2, "
    "MCOPSTN5, MCOPSTN6 or MCOPSTN_PAYG); Enterprise E5 (SPE_E5) counts as Phone System and "
    "Audio Conferencing"
)


def check_assign(held: frozenset[str], code: str, seats_free: int | None,
                 usage_location: str | None = None) -> bool:
    """Check that ``code`` may be added to a user holding ``held``, located in
    ``usage_location``.

    ``seats_free`` is the tenant's unassigned seats of ``code`` (ignored for free SKUs).
    Returns False when the user already holds it (nothing to do), True when it is to be added.
    """
    item = sku(code)
    if code in held:
        return False
    if usage_location is not None and usage_location in NOT_SOLD_IN.get(code, frozenset()):
        raise conflict("not_available_in_country",
                       f"{code} ({item.name}) is not available to users located in "
                       f"{usage_location}")
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
