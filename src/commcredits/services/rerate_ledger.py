"""A tenant's ledger as re-rating replays it (``domain.rerate``), and the correcting entries.

Every transaction of the tenant is read in ``seq`` order and becomes an event: a funding
(the lot appears), a charge (a call's or an SMS's ``usage`` entry, with the ``adjustment``
of a silent call corrected later and every earlier ``correction`` of it folded in, all at
the place of its first entry), an expiry, or any other movement of lots as it happened. A
charge that took nothing from the lots (free, or all of it uncollected) has no entry: it
takes its place after the entries of the instant it was settled.

The lots' state just before the first corrected charge is what every event before it left;
from there the events are replayed with the new prices. Each (charge, lot) difference is one
``correction`` transaction (reference: the usage id, ``lot_id``: the lot), so a later run
reads back exactly which lot each correction moved, the forfeited ones included. Every
return is posted before any take, which keeps each lot within range at every step.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from commcredits.domain import ledger as ledger_rules
from commcredits.domain import rerate
from commcredits.domain.ledger import Transaction, TxnKind
from commcredits.domain.lots import Draw, Lot, LotSource
from commcredits.domain.money import ZERO
from commcredits.services import ledger

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import UnitOfWork

_FUNDING = {TxnKind.ORDER.value, TxnKind.AUTO_RECHARGE.value}
# the second part of an event's order key is the ledger sequence number (an integer)
_LAST = sys.maxsize  # a charge seen only through its correction: after anything at its instant
_FIRST = -sys.maxsize  # an expiry without an entry: before anything at its instant


@dataclass(slots=True)
class _Charge:
    usage_id: str
    key: tuple[datetime, int]
    at: datetime
    asked: Decimal
    draws: dict[str, Decimal] = field(default_factory=dict)


@dataclass(slots=True)
class Plan:
    """The replay of one tenant: its outcome and what the old world held."""

    outcome: rerate.Outcome
    asked: dict[str, Decimal]  # usage id → what credits are asked for now

    @property
    def balance_delta(self) -> Decimal:
        """What the corrections add to the balance (negative: the tenant pays more)."""
        total = ZERO
        for redrawn in self.outcome.changed:
            for lot_id, delta in redrawn.deltas:
                if lot_id not in self.outcome.forfeited:
                    total -= delta
        return total

    @property
    def forfeiture_delta(self) -> Decimal:
        return sum(self.outcome.forfeit_deltas.values(), ZERO)


def plan(uow: UnitOfWork, tenant_id: str, new_asked: dict[str, Decimal]) -> Plan | None:
    """Replay the tenant's ledger with ``new_asked`` (usage id → the credits a corrected
    charge asks for); None when nothing is corrected."""
    if not new_asked:
        return None
    by_ref = uow.rerates.usage_by_refs(tenant_id)  # (kind, ref) → (id, settled at, asked)
    settled_at = {uid: settled for uid, settled, _ in by_ref.values()}
    asked = {uid: a for uid, _, a in by_ref.values()}
    asked.update(new_asked)
    lot_rows = {r.id: r for r in uow.rerates.lot_rows(tenant_id)}
    charges: dict[str, _Charge] = {}
    others: list[tuple[tuple[datetime, int], rerate.Event, dict[str, Decimal]]] = []

    def charge_of(uid: str, key: tuple[datetime, int], at: datetime) -> _Charge:
        if uid not in charges:
            charges[uid] = _Charge(uid, key, at, asked.get(uid, ZERO))
        return charges[uid]

    for txn, legs in uow.rerates.ledger(tenant_id):
        key = (txn.at, int(txn.seq))
        moved = _lot_moves(legs)
        if txn.kind == TxnKind.CORRECTION.value and txn.reference in settled_at:
            # a correction comes long after its charge: a charge first seen through one
            # took nothing from the lots when it settled, and takes that place
            settled = settled_at[txn.reference] or txn.at
            _fold_correction(charge_of(txn.reference, (settled, _LAST), settled),
                             txn.lot_id, legs, tenant_id)
            continue
        ref = _charge_ref(txn.kind, txn.reference)
        if ref is not None and ref in by_ref:
            charge = charge_of(by_ref[ref][0], key, txn.at)
            for lot_id, amount in moved.items():
                charge.draws[lot_id] = charge.draws.get(lot_id, ZERO) - amount
            continue
        if txn.kind in _FUNDING and txn.lot_id in lot_rows:
            others.append((key, rerate.Fund(_lot(lot_rows[txn.lot_id])), moved))
        elif txn.kind == TxnKind.EXPIRY.value and len(moved) == 1:
            (lot_id, amount), = moved.items()
            others.append((key, rerate.Expire(lot_id, -amount), moved))
        else:
            others.append((key, rerate.Fixed(tuple(moved.items())), moved))
    for uid, settled, a in by_ref.values():  # charges the lots paid nothing of
        if uid not in charges and (a > ZERO or uid in new_asked) and settled is not None:
            charge_of(uid, (settled, _LAST), settled)
    expired = {e.lot_id for _, e, _ in others if isinstance(e, rerate.Expire)}
    for row in lot_rows.values():  # expired with nothing left: the job wrote no entry
        if row.id not in expired and row.expires_at <= uow.now:
            others.append(((row.expires_at, _FIRST), rerate.Expire(row.id, row.remaining), {}))
    start = min(charges[uid].key for uid in new_asked if uid in charges)
    events: list[tuple[tuple[datetime, int], rerate.Event]] = []
    amounts = {lot_id: ZERO for lot_id in lot_rows}
    for key, event, moved in others:
        if key < start:
            for lot_id, amount in moved.items():
                amounts[lot_id] += amount
        else:
            events.append((key, event))
    for charge in charges.values():
        if charge.key < start:
            for lot_id, amount in charge.draws.items():
                amounts[lot_id] -= amount
        else:
            events.append((charge.key, rerate.Charge(
                charge.usage_id, charge.at, asked[charge.usage_id],
                tuple(Draw(k, v) for k, v in charge.draws.items() if v))))
    funded_later = {e.lot.id for k, e in events if isinstance(e, rerate.Fund)}
    lots = [_lot(row, amounts[row.id]) for row in lot_rows.values()
            if row.id not in funded_later and row.purchased_at is not None]
    events.sort(key=lambda item: item[0])
    # the expiry of a forfeited lot keeps its own amount even when it came before the window
    outcome = rerate.replay(lots, [e for _, e in events])
    outcome.forfeited |= _forfeited_before(others, start)
    return Plan(outcome, {uid: asked[uid] for uid in asked})


def post(uow: UnitOfWork, wallet: WalletRow, tenant_id: str, p: Plan) -> int:
    """Post the plan's corrections, returns first; returns how many transactions."""
    backs: list[tuple[str, str, ledger_rules.Posting]] = []
    takes: list[tuple[str, str, ledger_rules.Posting]] = []
    for redrawn in p.outcome.changed:
        back, take = rerate.postings(tenant_id, redrawn, p.outcome.forfeited)
        lots_of = [lot_id for lot_id, delta in redrawn.deltas if delta < ZERO]
        backs += [(redrawn.ref, lot_id, posting) for lot_id, posting in zip(lots_of, back,
                                                                             strict=True)]
        lots_of = [lot_id for lot_id, delta in redrawn.deltas if delta > ZERO]
        takes += [(redrawn.ref, lot_id, posting) for lot_id, posting in zip(lots_of, take,
                                                                             strict=True)]
    for usage_id, lot_id, posting in backs + takes:
        ledger.post(uow, wallet, Transaction(TxnKind.CORRECTION, (posting,), lot_id=lot_id,
                                             reference=usage_id))
    return len(backs) + len(takes)


def draws_json(redrawn: rerate.Redrawn) -> str:
    """The usage record's ``lots`` column: the charge's draws as replayed."""
    return json.dumps([[d.lot_id, str(d.amount)] for d in redrawn.draws if d.amount])


# -- reading the ledger --------------------------------------------------------------------
def _lot_moves(legs: list[tuple[str, str, Decimal]]) -> dict[str, Decimal]:
    """What a transaction's postings move into (+) or out of (-) each lot."""
    out: dict[str, Decimal] = {}
    for debit, credit, amount in legs:
        for account, sign in ((credit, 1), (debit, -1)):
            lot_id = ledger_rules.lot_of(account)
            if lot_id is not None:
                out[lot_id] = out.get(lot_id, ZERO) + sign * amount
    return out


def _charge_ref(kind: str, reference: str | None) -> tuple[str, str] | None:
    """The (kind, ref) of the usage record a ``usage`` or silent-call ``adjustment`` entry
    belongs to."""
    if reference is None or kind not in {TxnKind.USAGE.value, TxnKind.ADJUSTMENT.value}:
        return None
    head, _, rest = reference.partition(" ")
    if head == "call":
        return "call", rest.removesuffix(" corrected")
    if head == "sms" and kind == TxnKind.USAGE.value:
        return "sms", rest
    return None


def _fold_correction(charge: _Charge, lot_id: str | None, legs: list[tuple[str, str, Decimal]],
                     tenant_id: str) -> None:
    """A correction moved one lot's draw (its ``lot_id``), into the lot or its forfeiture."""
    if lot_id is None:
        return
    usage = ledger_rules.external_account(tenant_id, "usage")
    for debit, credit, amount in legs:
        if credit == usage:  # taken from the lot (or its forfeiture)
            charge.draws[lot_id] = charge.draws.get(lot_id, ZERO) + amount
        elif debit == usage:  # given back
            charge.draws[lot_id] = charge.draws.get(lot_id, ZERO) - amount


def _forfeited_before(others: list[tuple[tuple[datetime, int], rerate.Event,
                                         dict[str, Decimal]]],
                      start: tuple[datetime, int]) -> set[str]:
    return {e.lot_id for k, e, _ in others if isinstance(e, rerate.Expire) and k < start}


def _lot(row: object, remaining: Decimal | None = None) -> Lot:
    r = row
    return Lot(r.id, r.seq, r.amount, r.amount if remaining is None else remaining,  # type: ignore[attr-defined]
               r.purchased_at, r.expires_at, LotSource(r.source))  # type: ignore[attr-defined]
