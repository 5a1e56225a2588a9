"""Monthly statements (API.md §Explanations, corrections and statements): a tenant's credits
over a calendar month, read from the ledger and reconciling to it to the cent
(``domain.statements``), as JSON, CSV or PDF.

The month's transactions are those after the last one before the month began, up to the
last one before it ended (by sequence number, the ledger's own order), so opening and
closing are two ``balance_after`` values of the ledger and the lines between them are every
transaction between them: nothing can fall between two months or on both.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import (
    ledger_transactions,
    orders,
    payment_methods,
    usage_records,
)
from commcredits.domain import statements as rules
from commcredits.domain.csv_cells import neutral_row
from commcredits.domain.money import ZERO, fmt
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork

FORMATS = ("json", "csv", "pdf")
_CHUNK = 500


def statement(uow: UnitOfWork, tenant_id: str, month: str) -> dict[str, Any]:
    """The statement of ``month`` (``YYYY-MM``) as JSON; ``final`` once the month is over."""
    tenant = get_tenant(uow, tenant_id)
    start, end = rules.parse_month(month)
    t = ledger_transactions
    open_seq, opening = _last_before(uow, tenant_id, start)
    close_seq, closing = _last_before(uow, tenant_id, end)
    rows = list(uow.conn.execute(
        sa.select(t.c.kind, t.c.amount, t.c.reference)
        .where(t.c.tenant_id == tenant_id, t.c.seq > open_seq, t.c.seq <= close_seq)
        .order_by(t.c.seq)))
    kinds = _usage_kinds(uow, tenant_id, [_ref(r.reference) for r in rows
                                          if r.kind in ("usage", "adjustment")])
    movements = [rules.Movement(r.kind, r.amount, kinds.get(_ref(r.reference) or ("", "")))
                 for r in rows]
    fundings = _fundings(uow, tenant_id, open_seq, close_seq, tenant.currency)
    built = rules.build(tenant_id=tenant.id, tenant_name=tenant.name, month=month,
                        currency=tenant.currency, final=end <= uow.now, opening=opening,
                        closing=closing if close_seq else opening, movements=movements,
                        overage=_overage(uow, tenant_id, start, end))
    out = rules.view(built)
    out["fundings"] = fundings
    return out


def _fundings(uow: UnitOfWork, tenant_id: str, after_seq: int, upto_seq: int,
              cur: str) -> list[dict[str, Any]]:
    """The month's orders and auto-recharges: when, how much, paid how (card last4 or
    Enterprise Agreement number, with its PO number)."""
    t, o, pm = ledger_transactions, orders, payment_methods
    q = (sa.select(t.c.kind, t.c.at, t.c.amount, o.c.id, o.c.po_number, pm.c.type, pm.c.last4,
                   pm.c.agreement_number)
         .select_from(t.join(o, sa.and_(o.c.id == t.c.reference, o.c.tenant_id == t.c.tenant_id))
                      .outerjoin(pm, sa.and_(pm.c.id == o.c.payment_method_id,
                                             pm.c.tenant_id == o.c.tenant_id)))
         .where(t.c.tenant_id == tenant_id, t.c.seq > after_seq, t.c.seq <= upto_seq,
                t.c.kind.in_(("order", "auto_recharge")))
         .order_by(t.c.seq))
    return [{"order_id": r.id, "kind": r.kind, "at": r.at.isoformat(),
             "amount": fmt(r.amount, cur), "payment": r.type,
             "card_last4": r.last4, "agreement_number": r.agreement_number,
             "po_number": r.po_number} for r in uow.conn.execute(q)]


def _last_before(uow: UnitOfWork, tenant_id: str, at: datetime) -> tuple[int, Decimal]:
    """(seq, balance after) of the tenant's last transaction before ``at``; (0, 0) if none."""
    t = ledger_transactions
    found = uow.conn.execute(sa.select(t.c.seq, t.c.balance_after)
                             .where(t.c.tenant_id == tenant_id, t.c.at < at)
                             .order_by(t.c.seq.desc()).limit(1)).first()
    return (found.seq, found.balance_after) if found else (0, ZERO)


def _ref(reference: str | None) -> tuple[str, str] | None:
    """``call X`` / ``sms X`` / ``call X corrected`` → (kind, id)."""
    if not reference:
        return None
    kind, _, rest = reference.partition(" ")
    if kind not in ("call", "sms") or not rest:
        return None
    return kind, rest.removesuffix(" corrected")


def _usage_kinds(uow: UnitOfWork, tenant_id: str,
                 refs: list[tuple[str, str] | None]) -> dict[tuple[str, str], str]:
    """The usage category of each (kind, id) named by a charge."""
    u = usage_records
    out: dict[tuple[str, str], str] = {}
    for kind in ("call", "sms"):  # (tenant, kind, ref) is the records' unique index
        wanted = sorted({ref for k, ref in (r for r in refs if r) if k == kind})
        for i in range(0, len(wanted), _CHUNK):
            q = sa.select(u.c.ref, u.c.call_type, u.c.scope).where(
                u.c.tenant_id == tenant_id, u.c.kind == kind,
                u.c.ref.in_(wanted[i:i + _CHUNK]))
            for r in uow.conn.execute(q):
                out[(kind, r.ref)] = rules.category(kind, r.call_type, r.scope)
    return out


def _overage(uow: UnitOfWork, tenant_id: str, start: datetime, end: datetime) -> Decimal:
    """Post-usage overage of calls and SMS that started in the month (not from credits)."""
    u = usage_records
    total = uow.conn.scalar(sa.select(sa.func.sum(u.c.overage_charge)).where(
        u.c.tenant_id == tenant_id, u.c.start_time >= start, u.c.start_time < end))
    return Decimal(total or 0)


# -- files ------------------------------------------------------------------------------------
def to_csv(view: dict[str, Any]) -> str:
    """RFC 4180: a header row, the tenant and month, then one row per line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    rows: list[list[object]] = [
        ["line", "label", "amount", "currency"],
        ["tenant", view["tenant_name"], view["tenant_id"], ""],
        ["month", view["month"], "final" if view["final"] else "not final", ""]]
    rows += [[key, label, amount, view["currency"]] for key, label, amount in rules.lines(view)]
    rows += [[f"funding.{f['kind']}", rules.paid_how(f), f["amount"], view["currency"]]
             for f in view.get("fundings", [])]
    w.writerows(neutral_row(r) for r in rows)  # a tenant's name is never a formula
    return buf.getvalue()



def to_pdf(view: dict[str, Any]) -> bytes:
    from commcredits.adapters.statement_pdf import render
    return render(view)


def file_name(view: dict[str, Any], fmt_: str) -> str:
    return f"statement-{view['tenant_id']}-{view['month']}.{fmt_}"


def months_between(first: datetime, last: datetime) -> Iterator[str]:
    """``YYYY-MM`` of every month from ``first``'s to ``last``'s, inclusive."""
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        yield f"{y:04d}-{m:02d}"
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
