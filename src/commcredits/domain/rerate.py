"""Re-rating: price settled calls again with another deck, and replay the FIFO draws.

The rule (README § Concepts, "Re-rating"): after a correction the tenant's balance, each
lot's remaining amount and each forfeiture are exactly what the new prices would have left
had they been used from the first corrected call on. So:

1. :func:`reprice` prices a settled call's seconds again. The split of the talk (pool
   seconds, credit seconds, overage seconds, whether the connection fee applies) is the one
   the call was settled with (``domain.calls.split``); only the rate changes, and the price
   comes from the live rule (``domain.calls.price``, ``Rate.charge``). A deck changes prices,
   never which seconds an included pool paid, so pool counters are left as they are.
2. :func:`replay` takes the tenant's lots as they stood just before the first corrected
   charge and every ledger event from there on, in ledger order (charges with their new
   amounts, fundings, expiries, other lot movements as they happened), and draws each charge
   FIFO from the lots live at its time, capped by what they hold (the rest is
   ``uncollected``, as for any charge). Each charge's new draws minus the draws the ledger
   holds are its per-lot deltas; a lot forfeited since gets its forfeiture corrected
   instead (money never moves from an expired lot into a live balance).
3. :func:`postings` turns a charge's deltas into correcting postings, never touching a
   settled entry.

Pure: no I/O; ``tests/domain/test_rerate.py`` proves a replay with deck B from deck A's
ledger ends where rating with deck B from the start ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from commcredits.domain import calls
from commcredits.domain.calls import Grant, Route, Settlement
from commcredits.domain.ledger import Posting, external_account, lot_account
from commcredits.domain.lots import Draw, Lot, fifo
from commcredits.domain.money import ZERO
from commcredits.domain.rating import Rate


# -- pricing one call again ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Settled:
    """What a call's usage record says it was settled at."""

    duration_s: int
    included_minutes: int
    credit_charge: Decimal  # credits charged + uncollected: what credits were asked
    overage_charge: Decimal


def reprice(route: Route, grant: Grant, settled: Settled, currency: str,
            new_rate: Rate | None, *, check: bool = True
            ) -> tuple[Settlement, Settlement] | None:
    """(old, new) settlement of a settled call at ``new_rate``; None when the stored split
    cannot be reproduced from the call's route and grant (the call is then left alone).
    ``check=False`` for a call a re-rate corrected already: its stored charges are at that
    run's prices, not its route's.

    A call no rate priced (its route is free) keeps its settlement; a call whose number the
    new deck does not price becomes free past its pool, as a live call would be."""
    pool_left = max(0, settled.included_minutes * 60 - grant.pool_s)
    covered = settled.credit_charge if route.overage else None
    sp = calls.split(route, grant, settled.duration_s, currency, pool_left, covered)
    old = calls.price(route, grant, sp, currency)
    if check and (old.credit_charge, old.overage_charge, old.pool_minutes) != (
            settled.credit_charge, settled.overage_charge, settled.included_minutes):
        return None
    if route.rate is None:
        return old, old
    return old, calls.price(replace(route, rate=new_rate), grant, sp, currency)


# -- replaying the draws ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Charge:
    """A charge on credits (a call or an SMS), at its place in the ledger."""

    ref: str  # the usage record id
    at: datetime
    asked: Decimal  # what credits are asked for (the new price; unchanged for other charges)
    old_draws: tuple[Draw, ...]  # what the ledger took for it, net, per lot


@dataclass(frozen=True, slots=True)
class Fund:
    lot: Lot  # a lot funded inside the window (remaining = its amount)


@dataclass(frozen=True, slots=True)
class Expire:
    lot_id: str
    forfeited: Decimal  # what the ledger forfeited


@dataclass(frozen=True, slots=True)
class Fixed:
    """Any other movement of lots (an adjustment), replayed as it happened."""

    deltas: tuple[tuple[str, Decimal], ...]


Event = Charge | Fund | Expire | Fixed


@dataclass(frozen=True, slots=True)
class Redrawn:
    ref: str
    asked: Decimal
    draws: tuple[Draw, ...]  # the new draws, FIFO
    deltas: tuple[tuple[str, Decimal], ...]  # per lot: new draw - old draw (non-zero only)

    @property
    def collected(self) -> Decimal:
        return sum((d.amount for d in self.draws), ZERO)

    @property
    def uncollected(self) -> Decimal:
        return self.asked - self.collected


@dataclass(slots=True)
class Outcome:
    charges: list[Redrawn] = field(default_factory=list)
    remaining: dict[str, Decimal] = field(default_factory=dict)  # each lot, as replayed
    forfeit_deltas: dict[str, Decimal] = field(default_factory=dict)  # new - old forfeiture
    forfeited: set[str] = field(default_factory=set)  # lots expired inside the replay

    @property
    def changed(self) -> list[Redrawn]:
        return [c for c in self.charges if c.deltas]


def replay(lots: Sequence[Lot], events: Iterable[Event]) -> Outcome:
    """Replay ``events`` (in ledger order) over ``lots`` (each lot's ``remaining`` as it
    stood before the first event; lots funded later come as :class:`Fund`)."""
    state = {lot.id: lot for lot in lots}
    out = Outcome()
    for event in events:
        if isinstance(event, Fund):
            state[event.lot.id] = event.lot
        elif isinstance(event, Expire):
            lot = state[event.lot_id]
            out.forfeit_deltas[lot.id] = lot.remaining - event.forfeited
            out.forfeited.add(lot.id)
            state[lot.id] = replace(lot, remaining=ZERO)
        elif isinstance(event, Fixed):
            for lot_id, delta in event.deltas:
                lot = state[lot_id]
                left = lot.remaining + delta
                if left < ZERO or left > lot.amount:
                    raise ValueError(f"lot {lot_id} would go out of range ({left})")
                state[lot_id] = replace(lot, remaining=left)
        else:
            out.charges.append(_draw(state, event))
    out.remaining = {lot_id: lot.remaining for lot_id, lot in state.items()}
    return out


def _draw(state: dict[str, Lot], charge: Charge) -> Redrawn:
    """FIFO over the lots live at the charge's time, capped by what they hold."""
    left = charge.asked
    draws: list[Draw] = []
    for lot in fifo(lot for lot in state.values() if lot.is_live(charge.at)):
        if left <= ZERO:
            break
        take = min(lot.remaining, left)
        draws.append(Draw(lot.id, take))
        state[lot.id] = replace(lot, remaining=lot.remaining - take)
        left -= take
    net: dict[str, Decimal] = {}
    for d in draws:
        net[d.lot_id] = net.get(d.lot_id, ZERO) + d.amount
    for d in charge.old_draws:
        net[d.lot_id] = net.get(d.lot_id, ZERO) - d.amount
    deltas = tuple((lot_id, delta) for lot_id, delta in net.items() if delta != ZERO)
    return Redrawn(charge.ref, charge.asked, tuple(draws), deltas)


def postings(tenant_id: str, redrawn: Redrawn, forfeited: set[str]
             ) -> tuple[tuple[Posting, ...], tuple[Posting, ...]]:
    """A charge's correcting postings as (what goes back, what is taken): a lot drawn less
    gets money back from usage, a lot drawn more gives it; a lot forfeited since is
    represented by the forfeiture account (its forfeiture grows or shrinks instead).
    Returns first and takes second, so that posting every return of a run before any take
    keeps each lot within range at every step."""
    usage = external_account(tenant_id, "usage")
    forfeit = external_account(tenant_id, "forfeited")
    back: list[Posting] = []
    take: list[Posting] = []
    for lot_id, delta in redrawn.deltas:
        account = forfeit if lot_id in forfeited else lot_account(lot_id)
        if delta < ZERO:
            back.append(Posting(usage, account, -delta))
        else:
            take.append(Posting(account, usage, delta))
    return tuple(back), tuple(take)
