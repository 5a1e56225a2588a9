"""Minute pools: who contributes, how many minutes, alerts, whole-minute consumption."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.licensing import CATALOG
from commcredits.domain.pools import (
    PoolKey,
    alerts_crossed,
    member_of,
    minutes_for,
    minutes_per_user,
    month_of,
    pools_of,
)
from tests.domain.helpers import utc

DOM1 = "MCOPSTN1"
DOM2 = "MCOPSTN2"
CONF = PoolKey("conferencing")


@pytest.mark.parametrize(
    ("key", "minutes"),
    [
        (PoolKey("domestic", "US", DOM1), 3000),
        (PoolKey("domestic", "PR", DOM1), 3000),
        (PoolKey("domestic", "CA", DOM2), 3000),
        (PoolKey("domestic", "GB", DOM1), 1200),  # Microsoft: 3000 only in US, PR, CA
        (PoolKey("domestic", "FR", DOM1), 1200),
        (PoolKey("domestic", "DE", DOM2), 1200),
        (PoolKey("domestic", "MX", DOM1), 1200),
        (PoolKey("international", "US", DOM2), 600),
        (PoolKey("international", "FR", DOM2), 600),
        (CONF, 60),
    ],
)
def test_minutes_per_user(key: PoolKey, minutes: int) -> None:
    assert minutes_per_user(key) == minutes


def test_hundred_us_users_share_three_hundred_thousand_minutes() -> None:
    key = PoolKey("domestic", "US", DOM1)
    users = [frozenset({"MCOEV", DOM1})] * 100
    assert sum(minutes_per_user(key) for lic in users if member_of(key, lic, "US")) == 300_000


@pytest.mark.parametrize(
    ("licenses", "location", "expected"),
    [
        (set(), "US", []),
        ({"MCOEV"}, "US", []),
        ({"MCOEV", DOM1}, "US", [PoolKey("domestic", "US", DOM1)]),
        ({"MCOEV", DOM1}, "FR", [PoolKey("domestic", "FR", DOM1)]),
        ({"MCOEV", DOM2}, "GB", [PoolKey("domestic", "GB", DOM2),
                                 PoolKey("international", "GB", DOM2)]),
        ({"MCOEV", "MCOPSTN_PAYG"}, "US", []),
        ({"MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"}, "US", []),
        ({"MCOMEETADD"}, "DE", [CONF]),
        ({"SPE_E5"}, "US", [CONF]),  # E5 counts as Audio Conferencing
        ({"SPE_E5", DOM1, "MCOPSTNPP"}, "CA", [PoolKey("domestic", "CA", DOM1), CONF]),
        ({"SPE_E5", DOM2}, "PR", [PoolKey("domestic", "PR", DOM2),
                                  PoolKey("international", "PR", DOM2), CONF]),
        ({"MCOEV", DOM1, DOM2, "MCOMEETADD"}, "US",
         [PoolKey("domestic", "US", DOM1), PoolKey("domestic", "US", DOM2),
          PoolKey("international", "US", DOM2), CONF]),
    ],
)
def test_pools_of_each_license_mix(licenses: set[str], location: str,
                                   expected: list[PoolKey]) -> None:
    assert pools_of(frozenset(licenses), location) == expected


def test_member_of() -> None:
    us1 = PoolKey("domestic", "US", DOM1)
    us2 = PoolKey("domestic", "US", DOM2)
    intl = PoolKey("international", "US", DOM2)
    plan1 = frozenset({"MCOEV", DOM1})
    plan2 = frozenset({"MCOEV", DOM2})
    assert member_of(us1, plan1, "US")
    assert not member_of(us1, plan1, "CA")  # the pool follows the usage location
    assert not member_of(us2, plan1, "US")  # per identical plan
    assert not member_of(intl, plan1, "US")
    assert member_of(us2, plan2, "US")
    assert member_of(intl, plan2, "US")
    assert not member_of(us1, plan2, "US")
    assert not member_of(PoolKey("domestic", "US", "MCOPSTN_PAYG"),
                         frozenset({"MCOEV", "MCOPSTN_PAYG"}), "US")
    assert not member_of(PoolKey("international", "US", DOM1), plan1, "US")
    assert member_of(CONF, frozenset({"SPE_E5"}), "JP")  # whatever the organizer's location
    assert member_of(CONF, frozenset({"MCOMEETADD"}), "US")
    assert not member_of(CONF, plan2, "US")


LOCATIONS = ("US", "CA", "GB", "FR")
ALL_KEYS = [CONF] + [PoolKey(kind, c, plan) for kind in ("domestic", "international")
                     for c in LOCATIONS for plan in (DOM1, DOM2, "MCOPSTN_PAYG")]


@given(st.frozensets(st.sampled_from(sorted(CATALOG))), st.sampled_from(LOCATIONS))
def test_member_of_agrees_with_pools_of(licenses: frozenset[str], location: str) -> None:
    mine = pools_of(licenses, location)
    assert len(mine) == len(set(mine))
    for key in ALL_KEYS:
        assert member_of(key, licenses, location) == (key in mine), key


@pytest.mark.parametrize(
    ("key", "code", "label"),
    [
        (PoolKey("domestic", "US", DOM1), "domestic:US:MCOPSTN1", "MCOPSTN1 domestic (US)"),
        (PoolKey("international", "FR", DOM2), "international:FR:MCOPSTN2",
         "MCOPSTN2 international (FR)"),
        (CONF, "conferencing", "Audio Conferencing dial-out"),
    ],
)
def test_pool_key_code_round_trip(key: PoolKey, code: str, label: str) -> None:
    assert key.code == code
    assert PoolKey.parse(code) == key
    assert key.label == label


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (utc(2027, 1, 1), "2027-01"),
        (utc(2027, 3, 31, 23, 59, 59, 999999), "2027-03"),
        (utc(2027, 12, 31, 23, 59, 59), "2027-12"),
        (utc(2028, 2, 29, 12), "2028-02"),
        (datetime(998, 7, 4), "0998-07"),
    ],
)
def test_month_of(now: datetime, month: str) -> None:
    assert month_of(now) == month


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(-5, 0), (0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (120, 2), (121, 3), (3600, 60)],
)
def test_minutes_for_rounds_up(seconds: int, minutes: int) -> None:
    assert minutes_for(seconds) == minutes


@pytest.mark.parametrize(
    ("total", "before", "after", "crossed"),
    [
        (100, 0, 79, []),
        (100, 0, 80, [80]),  # exactly 80 % crosses
        (100, 79, 80, [80]),
        (100, 80, 81, []),  # already past 80 %
        (100, 80, 99, []),
        (100, 99, 100, [100]),
        (100, 0, 100, [80, 100]),  # one jump crosses both
        (100, 50, 250, [80, 100]),
        (100, 100, 150, []),  # past 100 % already
        (100, 30, 30, []),
        (3000, 2399, 2400, [80]),
        (3000, 2399, 2399, []),
        (3, 2, 3, [80, 100]),  # 80 % of 3 is 2.4: using the 3rd minute crosses both
        (3, 1, 2, []),
        (0, 0, 10, []),  # an empty pool has nothing to alert about
        (60, 47, 48, [80]),
    ],
)
def test_alerts_crossed(total: int, before: int, after: int, crossed: list[int]) -> None:
    assert alerts_crossed(total, before, after) == crossed


@given(st.integers(1, 100_000), st.lists(st.integers(0, 5_000), min_size=1, max_size=30))
def test_each_alert_fires_once_as_usage_grows(total: int, steps: list[int]) -> None:
    used = 0
    fired: list[int] = []
    for step in steps:
        fired += alerts_crossed(total, used, used + step)
        used += step
    expected = [t for t in (80, 100) if used * 100 >= t * total]
    assert fired == expected
