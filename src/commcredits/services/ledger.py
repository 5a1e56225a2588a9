"""The only way a balance changes: post a ledger transaction.

``post`` takes the wallet row already locked by the caller, applies the transaction's lot legs
to the lots, writes the transaction and its postings, and updates the cached balance, all in
the caller's unit of work. Lots and the wallet row are caches of the ledger; ``verify``
re-derives them and reports every mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from commcredits.domain import ledger
from commcredits.domain import notifications as notes
from commcredits.domain.ledger import Transaction
from commcredits.domain.lots import Lot
from commcredits.domain.money import ZERO
from commcredits.domain.wallet_events import after_change
from commcredits.services import events as domain_events
from commcredits.services import notify
from commcredits.services.ids import new_id

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import UnitOfWork


def post(uow: UnitOfWork, wallet: WalletRow, txn: Transaction,
         lots_now: Iterable[Lot] | None = None) -> str:
    """Write ``txn`` and apply it to lots and the wallet (saving the wallet row with any other
    change the caller made to it). ``wallet`` must be locked; ``lots_now`` saves a re-read
    when the caller has just loaded the tenant's lots in this transaction."""
    if not txn.postings:
        raise ValueError("a ledger transaction needs at least one posting")
    loaded = uow.credits.lots(wallet.tenant_id) if lots_now is None else lots_now
    lots = {lot.id: lot for lot in loaded}
    changes: dict[str, Decimal] = {}
    for p in txn.postings:
        for account, sign in ((p.credit, 1), (p.debit, -1)):
            lot_id = ledger.lot_of(account)
            if lot_id is not None:
                changes[lot_id] = changes.get(lot_id, ZERO) + sign * p.amount
    for lot_id, delta in changes.items():
        lot = lots[lot_id]
        remaining = lot.remaining + delta
        if remaining < ZERO or remaining > lot.amount:
            raise ValueError(f"posting would take lot {lot_id} out of range ({remaining})")
        uow.credits.set_remaining(lot_id, remaining)
    wallet.balance += txn.wallet_delta
    wallet.txn_seq += 1
    txn_id = new_id("txn")
    uow.credits.record(txn_id, wallet.tenant_id, wallet.txn_seq, txn, uow.now, wallet.balance)
    _balance_events(uow, wallet)
    uow.tenants.save_wallet(wallet)
    return txn_id


def post_many(uow: UnitOfWork, wallet: WalletRow, txns: Sequence[Transaction],
              lots_now: Iterable[Lot]) -> list[str]:
    """:func:`post` for several transactions in a row, written in a few statements: the same
    rows, sequence numbers, running balances and balance events as posting them one after
    another. ``lots_now``: the tenant's lots they touch, as loaded in this transaction."""
    lots = {lot.id: lot for lot in lots_now}
    remaining: dict[str, Decimal] = {}
    heads: list[dict[str, object]] = []
    legs: list[dict[str, object]] = []
    ids = []
    for txn in txns:
        if not txn.postings:
            raise ValueError("a ledger transaction needs at least one posting")
        for p in txn.postings:
            for account, sign in ((p.credit, 1), (p.debit, -1)):
                lot_id = ledger.lot_of(account)
                if lot_id is None:
                    continue
                lot = lots[lot_id]
                left = remaining.get(lot_id, lot.remaining) + sign * p.amount
                if left < ZERO or left > lot.amount:
                    raise ValueError(f"posting would take lot {lot_id} out of range ({left})")
                remaining[lot_id] = left
        wallet.balance += txn.wallet_delta
        wallet.txn_seq += 1
        txn_id = new_id("txn")
        ids.append(txn_id)
        heads.append({"id": txn_id, "tenant_id": wallet.tenant_id, "seq": wallet.txn_seq,
                      "kind": txn.kind.value, "at": uow.now, "amount": txn.wallet_delta,
                      "balance_after": wallet.balance, "lot_id": txn.lot_id,
                      "reference": txn.reference})
        legs += [{"transaction_id": txn_id, "tenant_id": wallet.tenant_id,
                  "debit_account": p.debit, "credit_account": p.credit, "amount": p.amount}
                 for p in txn.postings]
        _balance_events(uow, wallet)
    uow.credits.set_remaining_many(remaining)
    uow.credits.record_many(heads, legs)
    uow.tenants.save_wallet(wallet)
    return ids


def _balance_events(uow: UnitOfWork, wallet: WalletRow) -> None:
    """Start an auto-recharge when the balance falls below the trigger (once per crossing);
    tell the billing contacts when it reaches zero (once per time)."""
    events = after_change(wallet.balance, wallet.auto_recharge, wallet.ar_armed,
                          wallet.zero_notified)
    wallet.ar_armed, wallet.zero_notified = events.armed, events.zero_notified
    if events.start_recharge:
        from commcredits.services import recharge
        recharge.request(uow, wallet)
        ar = wallet.auto_recharge
        assert ar.trigger_amount is not None and ar.recharge_amount is not None
        domain_events.balance_below_trigger(uow, wallet.tenant_id, wallet.currency,
                                            wallet.balance, ar.trigger_amount,
                                            ar.recharge_amount, wallet.txn_seq)
    if events.notify_zero:
        tenant = uow.tenants.get(wallet.tenant_id)
        assert tenant is not None
        notify.queue(uow, tenant, notes.balance_zero(tenant.name, tenant.currency,
                                                     f"zero:{wallet.txn_seq}"))
        domain_events.balance_zero(uow, wallet.tenant_id, tenant.currency, wallet.txn_seq)


@dataclass(frozen=True, slots=True)
class Mismatch:
    tenant_id: str
    what: str
    stored: Decimal
    derived: Decimal


def verify(uow: UnitOfWork) -> tuple[int, list[Mismatch]]:
    """Re-derive every tenant's balance and lot remainders from postings.

    Returns (tenants checked, mismatches). Also checks that each transaction's recorded
    ``amount`` equals its lot legs and that ``balance_after`` is the running sum.

    Streamed: the database sums the postings per account and per transaction (exact integer
    sums), and the transactions are read in ``seq`` order through a cursor, so memory stays
    flat however long the ledger is.
    """
    problems: list[Mismatch] = []
    tenant_ids = uow.tenants.ids()
    for tid in tenant_ids:
        balances = uow.credits.account_balances(tid)
        lots = uow.credits.lots(tid)
        derived_total = ZERO
        for lot in lots:
            derived = balances.get(ledger.lot_account(lot.id), ZERO)
            derived_total += derived
            if derived != lot.remaining:
                problems.append(Mismatch(tid, f"lot {lot.id} remaining", lot.remaining, derived))
            if derived < ZERO:
                problems.append(Mismatch(tid, f"lot {lot.id} is negative", ZERO, derived))
        known = {ledger.lot_account(lot.id) for lot in lots}
        for account, amount in balances.items():
            if account.startswith(ledger.LOT_PREFIX) and account not in known and amount:
                problems.append(Mismatch(tid, f"{account} has no lot", ZERO, amount))
        wallet = uow.tenants.wallet(tid)
        if wallet.balance != derived_total:
            problems.append(Mismatch(tid, "balance", wallet.balance, derived_total))
        problems += _usage_agrees(uow, tid, balances)
        running = ZERO
        for txn_id, amount, balance_after, delta, postings in uow.credits.ledger_deltas(tid):
            moved = ZERO if delta is None else delta
            running += moved
            if not postings:
                problems.append(Mismatch(tid, f"transaction {txn_id} has no postings",
                                         ZERO, ZERO))
            if moved != amount:
                problems.append(Mismatch(tid, f"transaction {txn_id} amount", amount, moved))
            if running != balance_after:
                problems.append(Mismatch(tid, f"transaction {txn_id} balance_after",
                                         balance_after, running))
    return len(tenant_ids), problems


def _usage_agrees(uow: UnitOfWork, tid: str, balances: dict[str, Decimal]) -> list[Mismatch]:
    """The usage records say what the ledger says usage took (charges, silent-call
    adjustments and re-rating corrections alike), and every correction entry names a usage
    record of its tenant."""
    out: list[Mismatch] = []
    spent = balances.get(ledger.external_account(tid, "usage"), ZERO)
    taken = uow.credits.usage_taken(tid)
    if taken != spent:
        out.append(Mismatch(tid, "usage records' credits charges", taken, spent))
    for txn_id in uow.credits.stray_corrections(tid):
        out.append(Mismatch(tid, f"correction {txn_id} names no usage record", ZERO, ZERO))
    return out
