"""Re-rating's pure rules: repricing a settled call and replaying FIFO draws.

The differential property: a month charged at prices A, then replayed at prices B from A's
ledger, ends with the lots and forfeitures that charging at B from the start leaves — lots
that expire in between and charges that go uncollected included."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commcredits.domain import calls, rerate
from commcredits.domain import lots as lotrules
from commcredits.domain.calls import Grant, Route
from commcredits.domain.ledger import derive
from commcredits.domain.lots import Draw, Lot
from commcredits.domain.money import ZERO
from commcredits.domain.pools import PoolKey
from commcredits.domain.rating import Rate
from commcredits.domain.rerate import Charge, Expire, Fund, Settled
from tests.domain.helpers import T0, cents, make_lot

A = Rate("44", "United Kingdom", "any", Decimal("0.02"), Decimal("0"), 60)
B = Rate("44", "United Kingdom", "any", Decimal("0.015"), Decimal("0.01"), 60)
PAID = Route(credits=True, rate=A, capability="MCOPSTNPP")


def test_reprice_keeps_the_split_and_changes_the_price() -> None:
    grant = Grant(credit_s=300, credit_reserved=Decimal("0.10"), with_fee=True)
    old, new = rerate.reprice(PAID, grant, Settled(150, 0, Decimal("0.06"), ZERO), "USD", B)
    assert (old.credit_charge, new.credit_charge) == (Decimal("0.06"), Decimal("0.06"))
    # 150 s → 3 increments of 60 s: 3 x 0.015 + 0.01 fee = 0.055 → 0.06 (half up)
    old, new = rerate.reprice(PAID, grant, Settled(600, 0, Decimal("0.20"), ZERO), "USD", B)
    assert new.credit_charge == Decimal("0.16") and new.connection_fee == Decimal("0.01")


def test_reprice_leaves_pool_seconds_alone() -> None:
    route = replace(PAID, pool=PoolKey("domestic", "GB", "MCOPSTN1"))
    grant = Grant(pool_s=120, credit_s=180, credit_reserved=Decimal("0.06"), with_fee=False)
    old, new = rerate.reprice(route, grant, Settled(300, 2, Decimal("0.06"), ZERO), "USD", B)
    assert old.pool_minutes == new.pool_minutes == 2
    assert new.credit_charge == Decimal("0.05") and new.connection_fee == ZERO  # no fee


def test_reprice_refuses_what_it_cannot_reproduce() -> None:
    grant = Grant(credit_s=300, credit_reserved=Decimal("0.10"), with_fee=True)
    assert rerate.reprice(PAID, grant, Settled(150, 0, Decimal("9.99"), ZERO), "USD", B) is None


def test_a_number_the_new_deck_does_not_price_becomes_free_and_unpriced_calls_stay() -> None:
    grant = Grant(credit_s=300, credit_reserved=Decimal("0.10"), with_fee=True)
    _, new = rerate.reprice(PAID, grant, Settled(120, 0, Decimal("0.04"), ZERO), "USD", None)
    assert new.credit_charge == ZERO
    free = Route(free=True, capability=calls.FREECALL)
    old, new = rerate.reprice(free, Grant(tail="free"), Settled(120, 0, ZERO, ZERO), "USD", B)
    assert old == new


def test_replay_gives_back_to_the_lot_drawn_and_corrects_a_forfeiture() -> None:
    l1 = make_lot("l1", "1.00", seq=1, purchased_at=T0, expires_at=T0 + timedelta(days=10))
    l2 = make_lot("l2", "5.00", seq=2, purchased_at=T0 + timedelta(days=1))
    at = T0 + timedelta(days=2)
    # old: a call cost 1.50 (l1 emptied, 0.50 from l2); new price 0.60: l1 keeps 0.40, which
    # it forfeits at expiry instead of nothing
    events = [Charge("u1", at, Decimal("0.60"), (Draw("l1", Decimal("1.00")),
                                                   Draw("l2", Decimal("0.50")))),
              Expire("l1", ZERO)]
    out = rerate.replay([l1, l2], events)
    (redrawn,) = out.charges
    assert redrawn.deltas == (("l1", Decimal("-0.40")), ("l2", Decimal("-0.50")))
    assert out.forfeit_deltas == {"l1": Decimal("0.40")}
    back, take = rerate.postings("t1", redrawn, out.forfeited)
    assert [(p.debit, p.credit, p.amount) for p in back] == [
        ("ext:t1:usage", "ext:t1:forfeited", Decimal("0.40")),
        ("ext:t1:usage", "lot:l2", Decimal("0.50"))]
    assert take == ()


def test_a_dearer_charge_goes_uncollected_when_the_lots_fall_short() -> None:
    lot = make_lot("l1", "1.00")
    out = rerate.replay([lot], [Charge("u1", T0, Decimal("1.50"),
                                       (Draw("l1", Decimal("0.80")),))])
    assert out.charges[0].uncollected == Decimal("0.50")
    assert out.remaining == {"l1": ZERO}


# -- the differential property ------------------------------------------------------------
@dataclass
class World:
    """Charging as the live path does it: FIFO over live lots (``lots.allocate``), capped
    by what they hold, the rest uncollected; expiry forfeits what is left."""

    lots: dict[str, Lot]
    postings: list[tuple[str, str, Decimal]]
    draws: dict[str, tuple[Draw, ...]]
    forfeited: dict[str, Decimal]

    def charge(self, ref: str, amount: Decimal, at: datetime) -> None:
        live = sum((x.remaining for x in self.lots.values() if x.is_live(at)), ZERO)
        draws = lotrules.allocate(self.lots.values(), min(amount, live), at)
        for lot in lotrules.apply(list(self.lots.values()), draws):
            self.lots[lot.id] = lot
        self.draws[ref] = tuple(d for d in draws if d.amount)
        self.postings += [(f"lot:{d.lot_id}", "usage", d.amount) for d in draws if d.amount]

    def expire(self, lot_id: str) -> None:
        lot = self.lots[lot_id]
        self.forfeited[lot_id] = lot.remaining
        self.lots[lot_id] = replace(lot, remaining=ZERO)


def run(lots: list[Lot], plan: list[tuple[str, object]], prices: dict[str, Decimal]) -> World:
    world = World({}, [], {}, {})
    for kind, item in plan:
        if kind == "fund":
            assert isinstance(item, Lot)
            world.lots[item.id] = item
            world.postings.append(("funding", f"lot:{item.id}", item.amount))
        elif kind == "expire":
            world.expire(str(item))
        else:
            ref, at = item  # type: ignore[misc]
            world.charge(ref, prices[ref], at)
    return world


DAYS = st.integers(0, 40)


@st.composite
def months(draw: st.DrawFn) -> tuple[list[tuple[str, object]], dict[str, Decimal],
                                     dict[str, Decimal]]:
    """Fundings, charges (old and new price) and expiries in time order."""
    n_lots = draw(st.integers(1, 4))
    items: list[tuple[datetime, int, str, object]] = []
    for i in range(n_lots):
        bought = T0 + timedelta(days=draw(DAYS))
        life = timedelta(days=draw(st.integers(1, 60)))
        lot = make_lot(f"l{i}", str(draw(cents(1, 500))), seq=i, purchased_at=bought,
                       expires_at=bought + life)
        items.append((bought, 0, "fund", lot))
        items.append((bought + life, 1, "expire", lot.id))
    old: dict[str, Decimal] = {}
    new: dict[str, Decimal] = {}
    for j in range(draw(st.integers(1, 12))):
        ref, at = f"u{j}", T0 + timedelta(days=draw(DAYS), hours=draw(st.integers(0, 23)))
        old[ref], new[ref] = draw(cents(0, 300)), draw(cents(0, 300))
        items.append((at, 2, "charge", (ref, at)))
    items.sort(key=lambda x: (x[0], x[1]))
    return [(kind, item) for _, _, kind, item in items], old, new


@settings(max_examples=300, deadline=None)
@given(months())
def test_replaying_new_prices_ends_where_charging_them_from_the_start_ends(month) -> None:
    plan, old_prices, new_prices = month
    before = run([], plan, old_prices)
    after = run([], plan, new_prices)
    # the replay starts from nothing (every lot is funded inside the window) and reads the
    # old world's ledger: its draws and forfeitures
    events: list[rerate.Event] = []
    for kind, item in plan:
        if kind == "fund":
            events.append(Fund(item))  # type: ignore[arg-type]
        elif kind == "expire":
            events.append(Expire(str(item), before.forfeited[str(item)]))
        else:
            ref, at = item  # type: ignore[misc]
            events.append(Charge(ref, at, new_prices[ref], before.draws[ref]))
    out = rerate.replay([], events)
    assert out.remaining == {k: lot.remaining for k, lot in after.lots.items()}
    for lot_id, forfeited in after.forfeited.items():
        assert before.forfeited[lot_id] + out.forfeit_deltas[lot_id] == forfeited
    # posting the corrections onto the old ledger gives the new world's balances
    ledger = list(before.postings)
    ledger += [(f"lot:{k}", "forfeited", v) for k, v in before.forfeited.items() if v]
    for redrawn in out.charges:
        back, take = rerate.postings("t", redrawn, out.forfeited)
        ledger += [(p.debit, p.credit, p.amount) for p in back + take]
        assert after.draws[redrawn.ref] == redrawn.draws
    balances = derive(ledger)
    for lot_id, lot in after.lots.items():
        assert balances.get(f"lot:{lot_id}", ZERO) == lot.remaining
    forfeited_new = sum(after.forfeited.values(), ZERO)
    assert balances.get("ext:t:forfeited", ZERO) + balances.get("forfeited", ZERO) \
        == forfeited_new
