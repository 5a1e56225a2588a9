"""Charge explanations (API.md §Explanations): why a call or an SMS cost what it did, from
what was stored when it settled (``usage_records.detail``, written by the charging engine in
the same bulk insert as the record), never recomputed with today's deck.

A record settled before ``detail`` existed (migration 0019) is explained from what the row
and its call still tell: the rate line stored with the call's route, each lot's expiry (which
never changes) and the ledger transactions whose reference names it; its pool counter before
and after is then unknown (``null``).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import ledger_transactions, lots, usage_records
from commcredits.adapters.db.schema_rerate import usage_corrections
from commcredits.domain import explanation as ex
from commcredits.domain.errors import not_found
from commcredits.services.call_records import route_data
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def explain_call(uow: UnitOfWork, tenant_id: str, call_id: str) -> dict[str, Any]:
    return ex.view(_explain(uow, tenant_id, "call", call_id))


def explain_sms(uow: UnitOfWork, tenant_id: str, message_id: str) -> dict[str, Any]:
    return ex.view(_explain(uow, tenant_id, "sms", message_id))


def corrections_for(uow_or_conn: Any, tenant_id: str, usage_id: str) -> list[dict[str, Any]]:
    """The re-rating corrections of one usage record, oldest first, as
    ``{rerate_id, old_charge, new_charge, delta, at}`` (Decimals, aware times)."""
    conn: sa.Connection = getattr(uow_or_conn, "conn", uow_or_conn)
    t = usage_corrections
    q = (sa.select(t.c.rerate_id, t.c.old_charge, t.c.new_charge, t.c.delta, t.c.at)
         .where(t.c.tenant_id == tenant_id, t.c.usage_id == usage_id)
         .order_by(t.c.at, t.c.id))
    return [{"rerate_id": r.rerate_id, "old_charge": r.old_charge, "new_charge": r.new_charge,
             "delta": r.delta, "at": r.at} for r in conn.execute(q)]


def _explain(uow: UnitOfWork, tenant_id: str, kind: str, ref: str) -> ex.Explanation:
    get_tenant(uow, tenant_id)  # 404 for an unknown tenant
    row = uow.conn.execute(sa.select(usage_records).where(
        usage_records.c.tenant_id == tenant_id, usage_records.c.kind == kind,
        usage_records.c.ref == ref)).first()
    if row is None:
        what = "call" if kind == "call" else "message"
        raise not_found(f"settled {what}", ref)
    detail: dict[str, Any] = json.loads(row.detail) if row.detail else {}
    drawn = [(lot_id, Decimal(amount)) for lot_id, amount in json.loads(row.lots)]
    expires = {k: datetime.fromisoformat(v) for k, v in (detail.get("expires") or {}).items()}
    missing = [lot_id for lot_id, _ in drawn if lot_id not in expires]
    if missing:
        expires.update(_lot_expiry(uow, tenant_id, missing))
    rate, version = detail.get("rate"), detail.get("deck_version")
    if kind == "call" and not detail:
        call = uow.charging.call(ref)
        data = route_data(call) if call is not None else {}
        rate, version = data.get("rate"), data.get("deck_version")
    txn_ids = detail.get("txn")
    if txn_ids is None:
        txn_ids = _txn_ids(uow, tenant_id, f"{kind} {ref}")
    return ex.assemble(
        usage_id=row.id, kind=kind, ref=ref, call_type=row.call_type, funding=row.funding,
        currency=row.currency, collected=row.charge, connection_fee=row.connection_fee,
        seconds=_seconds(row, detail, rate) if kind == "call" else None,
        segments=row.segments if kind == "sms" else None,
        rate=None if rate is None else ex.RateLine(
            version, rate["prefix"], rate["destination"], rate["number_type"],
            Decimal(rate["per_minute"]), Decimal(rate["connection_fee"]),
            int(rate["increment_s"])),
        pool=_pool(row, detail),
        lots=[ex.LotTake(lot_id, amount, expires.get(lot_id)) for lot_id, amount in drawn],
        overage=row.overage_charge, uncollected=row.uncollected,
        ledger_transaction_ids=list(txn_ids),
        corrections=[ex.Correction(**c) for c in corrections_for(uow, tenant_id, row.id)],
        route={"paid_by": ex.paid_by(kind, row.call_type), "upn": row.upn,
               "caller_id": row.caller_id, "destination_number": row.destination_number,
               "destination": row.destination, "number_type": row.number_type,
               "scope": row.scope, "capability": row.capability})


def _seconds(row: Any, detail: dict[str, Any], rate: dict[str, Any] | None) -> ex.Seconds:
    increment = int(rate["increment_s"]) if rate else None
    split = detail.get("seconds")
    if split is None:  # before 0019: the split is not stored; all of it on one side
        pool_s = min(row.duration_s, row.included_minutes * 60)
        rest = row.duration_s - pool_s
        split = (pool_s, rest if row.credits_charge + row.uncollected else 0,
                 rest if row.overage_charge else 0)
    return ex.Seconds(row.duration_s, split[0], split[1], split[2], increment)


def _pool(row: Any, detail: dict[str, Any]) -> ex.PoolTake | None:
    stored = detail.get("pool")
    if stored:
        code, before, after = stored
        return ex.PoolTake(code, row.included_minutes, before, after)
    return None


def _lot_expiry(uow: UnitOfWork, tenant_id: str, ids: list[str]) -> dict[str, datetime]:
    q = sa.select(lots.c.id, lots.c.expires_at).where(lots.c.tenant_id == tenant_id,
                                                     lots.c.id.in_(ids))
    return {r.id: r.expires_at for r in uow.conn.execute(q)}


def _txn_ids(uow: UnitOfWork, tenant_id: str, reference: str) -> list[str]:
    t = ledger_transactions
    q = (sa.select(t.c.id).where(t.c.tenant_id == tenant_id,
                                 t.c.reference.in_([reference, f"{reference} corrected"]))
         .order_by(t.c.seq))
    return list(uow.conn.scalars(q))
