"""The ledger: postings, signed wallet deltas, and balances re-derived from postings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain import ledger
from commcredits.domain.errors import DomainError
from commcredits.domain.ledger import Posting, Transaction, TxnKind, derive, lot_account
from commcredits.domain.lots import Draw, Lot, allocate, apply, due_for_expiry
from commcredits.domain.wallet import Wallet
from tests.domain.helpers import PURCHASE_TIMES, cents, make_lot, nows

D = Decimal


@pytest.mark.parametrize("amount", ["0", "0.00", "-0.01", "-5"])
def test_posting_refuses_non_positive_amounts(amount: str) -> None:
    with pytest.raises(ValueError):
        Posting("ext:t:funding", "lot:a", D(amount))


def test_posting_refuses_same_account() -> None:
    with pytest.raises(ValueError):
        Posting("lot:a", "lot:a", D("1.00"))
    assert Posting("lot:a", "lot:b", D("0.01")).amount == D("0.01")


def test_account_names() -> None:
    assert lot_account("L1") == "lot:L1"
    assert ledger.external_account("T1", "usage") == "ext:T1:usage"
    assert ledger.lot_of("lot:L1") == "L1"
    assert ledger.lot_of("ext:T1:usage") is None


def test_funding_adds_to_the_wallet() -> None:
    txn = ledger.funding("T1", "L1", D("50.00"), TxnKind.ORDER, reference="ord_1")
    assert txn.wallet_delta == D("50.00")
    assert txn.postings == (Posting("ext:T1:funding", "lot:L1", D("50.00")),)
    assert (txn.kind, txn.lot_id, txn.reference) == (TxnKind.ORDER, "L1", "ord_1")


def test_spend_takes_from_the_wallet_across_lots() -> None:
    draws = [Draw("L1", D("3.00")), Draw("L2", D("1.25"))]
    txn = ledger.spend("T1", draws, TxnKind.USAGE, "usage", reference="call_9")
    assert txn.wallet_delta == D("-4.25")
    assert [(p.debit, p.credit, p.amount) for p in txn.postings] == [
        ("lot:L1", "ext:T1:usage", D("3.00")), ("lot:L2", "ext:T1:usage", D("1.25"))]
    assert txn.lot_id is None  # spans two lots
    assert txn.reference == "call_9"


def test_spend_from_one_lot_names_it_and_skips_zero_draws() -> None:
    txn = ledger.spend("T1", [Draw("L1", D("2")), Draw("L1", D("0"))], TxnKind.EXPIRY,
                       "forfeited")
    assert txn.lot_id == "L1"
    assert len(txn.postings) == 1
    assert txn.postings[0].credit == "ext:T1:forfeited"


def test_spend_accepts_a_generator_of_draws() -> None:
    txn = ledger.spend("T1", (d for d in [Draw("L1", D("2"))]), TxnKind.USAGE, "usage")
    assert txn.lot_id == "L1"
    assert txn.wallet_delta == D("-2")


def test_transfer_between_lots_leaves_the_wallet_unchanged() -> None:
    txn = Transaction(TxnKind.ADJUSTMENT, (Posting("lot:a", "lot:b", D("4")),))
    assert txn.wallet_delta == D(0)


def test_derive_example() -> None:
    rows = [("ext:T:funding", "lot:a", D("50")), ("lot:a", "ext:T:usage", D("12.50")),
            ("ext:T:funding", "lot:b", D("20"))]
    assert derive(rows) == {"ext:T:funding": D("-70"), "lot:a": D("37.50"),
                            "lot:b": D("20"), "ext:T:usage": D("12.50")}
    assert derive([]) == {}


# -- the double-entry property over generated histories --------------------------------------

Step = tuple[str, Decimal, datetime]

steps = st.lists(
    st.tuples(st.sampled_from(["fund", "spend", "expire"]), cents(1, 20_000), nows), max_size=14)


def _run(history: list[Step]) -> tuple[list[Lot], list[Transaction], dict[str, Decimal]]:
    """Play a history through the domain, as the services do; return lots, txns, totals."""
    lots: list[Lot] = []
    txns: list[Transaction] = []
    totals = {"funding": D(0), "usage": D(0), "forfeited": D(0)}
    for i, (op, amount, now) in enumerate(history):
        if op == "fund":
            lot_id = f"L{i}"
            lots.append(make_lot(lot_id, str(amount), seq=i,
                                 purchased_at=PURCHASE_TIMES[i % len(PURCHASE_TIMES)]))
            txns.append(ledger.funding("T", lot_id, amount, TxnKind.ORDER))
            totals["funding"] += amount
            continue
        if op == "spend":
            try:
                draws = allocate(lots, amount, now)
            except DomainError as e:
                assert e.code == "insufficient_credits"
                continue
            txns.append(ledger.spend("T", draws, TxnKind.USAGE, "usage"))
            totals["usage"] += amount
        else:
            draws = due_for_expiry(lots, now)
            txns.append(ledger.spend("T", draws, TxnKind.EXPIRY, "forfeited"))
            totals["forfeited"] += sum((d.amount for d in draws), D(0))
        lots = apply(lots, draws)
    return lots, txns, totals


@given(steps)
def test_derived_balances_match_lots(history: list[Step]) -> None:
    lots, txns, totals = _run(history)
    rows = [(p.debit, p.credit, p.amount) for t in txns for p in t.postings]
    balances = derive(rows)
    assert sum(balances.values(), D(0)) == 0  # double entry: the book always balances
    for lot in lots:
        assert balances.get(lot_account(lot.id), D(0)) == lot.remaining
    assert balances.get("ext:T:funding", D(0)) == -totals["funding"]
    assert balances.get("ext:T:usage", D(0)) == totals["usage"]
    assert balances.get("ext:T:forfeited", D(0)) == totals["forfeited"]
    wallet = Wallet("T", "USD", tuple(lots))
    assert sum((t.wallet_delta for t in txns), D(0)) == wallet.balance
    assert wallet.balance == totals["funding"] - totals["usage"] - totals["forfeited"]
