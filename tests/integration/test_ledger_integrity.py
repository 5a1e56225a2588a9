"""The database itself keeps the ledger honest, and ``ledger verify`` catches any drift."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from commcredits.adapters.db.schema import ledger_postings, ledger_transactions, lots
from commcredits.entrypoints.cli import app as cli
from commcredits.services.ledger import verify


@pytest.fixture
def funded(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    api.order(tid, "100.00", pm)
    api.order(tid, "60.00", pm)
    return tid


def test_ledger_rows_cannot_be_changed_or_deleted(api, funded):
    for statement in (sa.update(ledger_postings).values(amount=Decimal("1")),
                      sa.delete(ledger_postings),
                      sa.update(ledger_transactions).values(kind="adjustment"),
                      sa.delete(ledger_transactions)):
        with api.rt.db.uow() as uow, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            uow.conn.execute(statement)
    with api.rt.db.uow() as uow:
        assert uow.conn.execute(sa.select(sa.func.count()).select_from(ledger_postings)
                                ).scalar_one() == 2


@pytest.mark.parametrize("values", [
    {"amount": Decimal("-5"), "debit_account": "a", "credit_account": "b"},
    {"amount": Decimal("0"), "debit_account": "a", "credit_account": "b"},
    {"amount": Decimal("5"), "debit_account": "a", "credit_account": "a"},
])
def test_unbalanced_or_degenerate_postings_are_refused(api, funded, values):
    with api.rt.db.uow() as uow:
        txn = uow.conn.execute(sa.select(ledger_transactions.c.id)).scalars().first()
        with pytest.raises(sa.exc.IntegrityError):
            uow.conn.execute(sa.insert(ledger_postings).values(
                transaction_id=txn, tenant_id=funded, **values))


def test_verify_passes_then_catches_tampering(api, funded, db_url):
    runner = CliRunner()
    ok = runner.invoke(cli, ["ledger", "verify", "--db", db_url])
    assert ok.exit_code == 0, ok.output
    assert "ledger OK: 1 tenants" in ok.output
    # someone edits a cached remainder behind the ledger's back
    with api.rt.db.uow() as uow:
        lot_id = uow.conn.execute(sa.select(lots.c.id).order_by(lots.c.seq)).scalars().first()
        uow.conn.execute(sa.update(lots).where(lots.c.id == lot_id)
                         .values(remaining=Decimal("99.00")))
        uow.commit()
    with api.rt.db.uow() as uow:
        _, problems = verify(uow)
    whats = {p.what for p in problems}
    assert f"lot {lot_id} remaining" in whats
    bad = runner.invoke(cli, ["ledger", "verify", "--db", db_url])
    assert bad.exit_code == 1
    assert "mismatches" in bad.output


def test_verify_catches_a_wrong_cached_balance(api, funded):
    with api.rt.db.uow() as uow:
        uow.conn.exec_driver_sql("UPDATE wallets SET balance = balance + 1000000")  # +1.00
        uow.commit()
    with api.rt.db.uow() as uow:
        _, problems = verify(uow)
    assert [(p.what, p.stored, p.derived) for p in problems] == [
        ("balance", Decimal("161.00"), Decimal("160.00"))]
