"""Included minute pools (SPEC §2 Minute pools).

Calling-plan minutes are pooled per tenant, per usage-location country, per identical plan,
per calendar month (UTC): 100 US users on a 3000-minute plan share 300,000 minutes. The
3000-minute countries are US, PR and CA (GB is 1200, like every other country); the
``MCOPSTN5``/``MCOPSTN6`` plans give 120/240 minutes wherever they are sold.
Audio Conferencing dial-out minutes are one tenant-wide pool: 60 per **purchased** Audio
Conferencing licence (E5 counts), whoever holds them. The pay-per-minute variant has none.
A call consumes whole minutes: its pooled seconds rounded up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from commcredits.domain import licensing

HIGH_DOMESTIC_COUNTRIES = frozenset({"US", "PR", "CA"})
DOMESTIC_MINUTES_HIGH = 3000
DOMESTIC_MINUTES_OTHER = 1200
FIXED_DOMESTIC_MINUTES = {licensing.DOMESTIC_120: 120, licensing.DOMESTIC_240: 240}
#: Licences whose purchased seats size the conferencing pool.
CONFERENCING_POOL_SKUS = frozenset({licensing.AUDIO_CONFERENCING, licensing.E5})
INTERNATIONAL_MINUTES = 600
CONFERENCING_MINUTES = 60
ALERT_THRESHOLDS = (80, 100)


@dataclass(frozen=True, slots=True, order=True)
class PoolKey:
    kind: str  # domestic | international | conferencing
    country: str | None = None
    plan: str | None = None

    @property
    def code(self) -> str:
        """A stable storage key, e.g. ``domestic:US:MCOPSTN1`` or ``conferencing``."""
        return ":".join(p for p in (self.kind, self.country, self.plan) if p)

    @classmethod
    def parse(cls, code: str) -> PoolKey:
        parts = code.split(":")
        return cls(parts[0], parts[1] if len(parts) > 1 else None,
                   parts[2] if len(parts) > 2 else None)

    @property
    def label(self) -> str:
        if self.kind == "conferencing":
            return "Audio Conferencing dial-out"
        scope = "domestic" if self.kind == "domestic" else "international"
        return f"{self.plan} {scope} ({self.country})"


def month_of(now: datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


def minutes_per_user(key: PoolKey) -> int:
    if key.kind == "conferencing":
        return CONFERENCING_MINUTES
    if key.kind == "international":
        return INTERNATIONAL_MINUTES
    assert key.country is not None
    if key.plan in FIXED_DOMESTIC_MINUTES:
        return FIXED_DOMESTIC_MINUTES[key.plan]
    return (DOMESTIC_MINUTES_HIGH if key.country in HIGH_DOMESTIC_COUNTRIES
            else DOMESTIC_MINUTES_OTHER)


def member_of(key: PoolKey, licenses: frozenset[str], usage_location: str) -> bool:
    """Does a user with these licenses count towards (and draw from) this pool?"""
    have = licensing.effective(licenses)
    if key.kind == "conferencing":
        return licensing.AUDIO_CONFERENCING in have
    if usage_location != key.country or key.plan not in have:
        return False
    if key.kind == "international":
        return key.plan == licensing.INTERNATIONAL_PLAN
    return key.plan in licensing.DOMESTIC_PLANS


def pools_of(licenses: frozenset[str], usage_location: str) -> list[PoolKey]:
    """Every pool a user contributes minutes to."""
    have = licensing.effective(licenses)
    keys = []
    for plan in sorted(licensing.DOMESTIC_PLANS):
        if plan in have:
            keys.append(PoolKey("domestic", usage_location, plan))
    if licensing.INTERNATIONAL_PLAN in have:
        keys.append(PoolKey("international", usage_location, licensing.INTERNATIONAL_PLAN))
    if licensing.AUDIO_CONFERENCING in have:
        keys.append(PoolKey("conferencing"))
    return keys


def minutes_for(seconds: int) -> int:
    return math.ceil(seconds / 60) if seconds > 0 else 0


def alerts_crossed(total: int, used_before: int, used_after: int) -> list[int]:
    """Thresholds (percent of ``total``) crossed by going from ``used_before`` to ``used_after``."""
    if total <= 0:
        return []
    return [t for t in ALERT_THRESHOLDS
            if used_before * 100 < t * total <= used_after * 100]
