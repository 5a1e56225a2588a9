"""A call's clock as a switch reports it — pure rules.

Ringing is not billable: billing and the silent-call clock run from the switch's *answer*
event. A switch that never sends one keeps working as before: ``end {duration_s}`` bills the
talk it reports, and every interim is a sign of life. An authorization that is neither
answered nor heard from lapses after ``auth_ttl_s`` and costs nothing (the switch refused the
call, or gave up waiting for our answer).

Every grant answer tells the switch when to ask again (``validity_s``, Diameter's
Validity-Time) and whether more time can ever come (``final``, Diameter's
Final-Unit-Indication), so a switch neither polls in a loop nor cuts a funded call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# what a switch answers a blocked call with (RFC 3261 responses)
SIP_RESPONSES: dict[str, tuple[int, str]] = {
    "insufficient_credits": (402, "Payment Required"),
    "daily_cap_reached": (402, "Payment Required"),
    "invalid_number": (484, "Address Incomplete"),
    "tenant_unresolved": (404, "Not Found"),
}
DEFAULT_SIP_RESPONSE = (403, "Forbidden")  # licence, plan and policy refusals
UNREACHABLE_SIP_RESPONSE = (503, "Service Unavailable")  # fail-closed switch


def sip_response(reason: str) -> tuple[int, str]:
    """The SIP final response a switch should send for a blocked call."""
    return SIP_RESPONSES.get(reason, DEFAULT_SIP_RESPONSE)


class SilentCharge(StrEnum):
    """How much of an answered call's unreported grant a silent call is charged."""

    REPORTED = "reported"  # what the switch last reported (interim elapsed_s)
    GRANTED = "granted"  # the whole grant (the switch never cut it, as far as we know)


def talk_start(started_at: datetime, answered_at: datetime | None) -> datetime:
    """When billable time began: the answer, or (a switch without answer events) the
    authorization."""
    return answered_at or started_at


def answer_time(reported: datetime | None, started_at: datetime, now: datetime) -> datetime:
    """The answer instant to record: the switch's own, kept between authorization and now."""
    if reported is None:
        return now
    return min(max(reported, started_at), now)


def interim_lead_s(slice_s: int) -> int:
    """How long before the grant runs out a switch should ask for more."""
    return max(2, min(30, slice_s // 10))


def validity_s(max_s: int | None, elapsed_s: int, final: bool, slice_s: int) -> int | None:
    """Seconds until the switch should send its next interim (None: no need — the grant is
    final, or unlimited)."""
    if final or max_s is None:
        return None
    return max(1, max_s - elapsed_s - interim_lead_s(slice_s))


def is_final(max_s: int | None, wanted_s: int, recharge_pending: bool) -> bool:
    """No more time will be granted: the grant fell short of what was asked and no
    auto-recharge can bring more."""
    return max_s is not None and max_s < wanted_s and not recharge_pending


@dataclass(frozen=True, slots=True)
class SilentCall:
    """What to do with a call the switch has gone quiet on."""

    action: str  # "expire" (never answered: release, charge nothing) | "settle"
    duration_s: int = 0


def silent_action(*, now: datetime, started_at: datetime, answered_at: datetime | None,
                  heard: bool, last_seen_at: datetime, elapsed_s: int, max_s: int | None,
                  auth_ttl_s: int, grace_s: int, idle_s: int,
                  policy: SilentCharge) -> SilentCall | None:
    """None while the call may still be going on; else expire or settle it.

    ``heard``: an interim arrived (a sign of life from a switch without answer events).
    """
    if answered_at is None and not heard:
        if now >= started_at + timedelta(seconds=auth_ttl_s):
            return SilentCall("expire")
        return None
    start = talk_start(started_at, answered_at)
    if max_s is not None:
        if now < start + timedelta(seconds=max_s + grace_s):
            return None
        charged = max_s if policy is SilentCharge.GRANTED else min(elapsed_s, max_s)
        return SilentCall("settle", charged)
    if now < last_seen_at + timedelta(seconds=idle_s):
        return None
    return SilentCall("settle", elapsed_s)
