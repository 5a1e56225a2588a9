"""The ledger: append-only, double-entry, the single source of truth for every balance.

A ledger *transaction* (an order, an auto-recharge, a usage charge, an expiry, an adjustment,
a re-rate's correction) is made of *postings*. Each posting moves a positive amount from a
debit account to a credit account, i.e. it is a pair of legs (-amount, +amount), so every
transaction's legs sum to zero by construction; the database enforces ``amount > 0`` and
``debit <> credit`` with CHECKs and forbids UPDATE/DELETE with triggers.

Accounts are named strings:
``lot:<lot id>`` (the tenant's money, one account per lot; the balance is their sum),
``ext:<tenant id>:funding`` (money paid in), ``ext:<tenant id>:usage`` (money spent on calls),
``ext:<tenant id>:forfeited`` (money lost at expiry), ``ext:<tenant id>:adjustment``.
A lot's remainder is the balance of its account; :func:`derive` recomputes all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from commcredits.domain.lots import Draw
from commcredits.domain.money import ZERO


class TxnKind(StrEnum):
    ORDER = "order"
    AUTO_RECHARGE = "auto_recharge"
    USAGE = "usage"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"
    CORRECTION = "correction"  # a re-rate run's correcting entry (reference: the usage id)


LOT_PREFIX = "lot:"


def lot_account(lot_id: str) -> str:
    return f"{LOT_PREFIX}{lot_id}"


def external_account(tenant_id: str, name: str) -> str:
    return f"ext:{tenant_id}:{name}"


def lot_of(account: str) -> str | None:
    return account[len(LOT_PREFIX):] if account.startswith(LOT_PREFIX) else None


@dataclass(frozen=True, slots=True)
class Posting:
    debit: str
    credit: str
    amount: Decimal

    def __post_init__(self) -> None:
        if self.amount <= ZERO:
            raise ValueError("a posting moves a positive amount")
        if self.debit == self.credit:
            raise ValueError("a posting moves money between two different accounts")


@dataclass(frozen=True, slots=True)
class Transaction:
    kind: TxnKind
    postings: tuple[Posting, ...]
    lot_id: str | None = None
    reference: str | None = None

    @property
    def wallet_delta(self) -> Decimal:
        """The signed change this transaction makes to the tenant's balance (sum of lot legs)."""
        delta = ZERO
        for p in self.postings:
            if p.credit.startswith(LOT_PREFIX):
                delta += p.amount
            if p.debit.startswith(LOT_PREFIX):
                delta -= p.amount
        return delta


def funding(tenant_id: str, lot_id: str, amount: Decimal, kind: TxnKind,
            reference: str | None = None) -> Transaction:
    posting = Posting(external_account(tenant_id, "funding"), lot_account(lot_id), amount)
    return Transaction(kind, (posting,), lot_id=lot_id, reference=reference)


def spend(tenant_id: str, draws: Iterable[Draw], kind: TxnKind, sink: str,
          reference: str | None = None) -> Transaction:
    """Money leaving lots (usage, expiry) towards an external account named ``sink``."""
    draws = list(draws)  # iterated twice below; a generator would be exhausted by the first
    postings = tuple(Posting(lot_account(d.lot_id), external_account(tenant_id, sink), d.amount)
                     for d in draws if d.amount > ZERO)
    lot_ids = {d.lot_id for d in draws}
    return Transaction(kind, postings, lot_id=lot_ids.pop() if len(lot_ids) == 1 else None,
                       reference=reference)


def derive(postings: Iterable[tuple[str, str, Decimal]]) -> dict[str, Decimal]:
    """Account balances (credit-normal: credits add, debits subtract) from raw postings."""
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for debit, credit, amount in postings:
        out[debit] -= amount
        out[credit] += amount
    return dict(out)
