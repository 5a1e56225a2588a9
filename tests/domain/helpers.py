"""Builders and Hypothesis strategies shared by the domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from commcredits.domain.lots import Lot, LotSource, expiry_for

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def make_lot(lot_id: str, amount: str, *, seq: int = 1, remaining: str | None = None,
             purchased_at: datetime = T0, expires_at: datetime | None = None) -> Lot:
    return Lot(
        id=lot_id,
        seq=seq,
        amount=Decimal(amount),
        remaining=Decimal(amount if remaining is None else remaining),
        purchased_at=purchased_at,
        expires_at=expiry_for(purchased_at) if expires_at is None else expires_at,
        source=LotSource.ORDER,
    )


def cents(low: int = 0, high: int = 100_000) -> st.SearchStrategy[Decimal]:
    """Amounts with two decimal places, as a USD wallet holds them."""
    return st.integers(low, high).map(lambda n: Decimal(n).scaleb(-2))


# A handful of purchase instants so that ties on ``purchased_at`` are common.
PURCHASE_TIMES = [T0 + timedelta(days=d) for d in (0, 0, 40, 200, 365, 400)]


@st.composite
def lot_sets(draw: st.DrawFn, max_size: int = 8) -> list[Lot]:
    """Lots with unique ids and seqs, random remainders, some sharing a purchase instant."""
    n = draw(st.integers(0, max_size))
    seqs = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n, unique=True))
    out: list[Lot] = []
    for i, seq in enumerate(seqs):
        amount = draw(cents(1, 50_000))
        remaining = draw(st.integers(0, int(amount * 100)).map(lambda v: Decimal(v).scaleb(-2)))
        bought = draw(st.sampled_from(PURCHASE_TIMES))
        out.append(make_lot(f"lot{i}", str(amount), seq=seq, remaining=str(remaining),
                            purchased_at=bought))
    return draw(st.permutations(out))


_EXPIRIES = sorted({expiry_for(t) for t in PURCHASE_TIMES})
_BOUNDARIES = [e + timedelta(microseconds=d) for e in _EXPIRIES for d in (-1, 0)]

# "now" ranges from the first purchase to past the expiry of the later ones, with extra weight
# on the exact expiry instants and one microsecond before them.
nows = st.one_of(st.integers(0, 800 * 24).map(lambda h: T0 + timedelta(hours=h)),
                 st.sampled_from(_BOUNDARIES))


def live_total(lots: list[Lot], now: datetime) -> Decimal:
    """Spendable money computed from the rule itself, not from the code under test."""
    return sum((lot.remaining for lot in lots if lot.expires_at > now and lot.remaining > 0),
               Decimal(0))
