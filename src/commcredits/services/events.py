"""Domain events: recorded in the outbox (``domain_events``) in the transaction that caused
them, published to NATS JetStream by the ``events`` job.

* ``record`` is called next to the change (ledger, recharge, expiry), under the same wallet
  lock, through the unit of work's ``bus`` repository (on a batch of CDRs, ``BatchWork``'s,
  after the batch's collected writes).
* ``call_settled`` is not recorded by code: a trigger on ``usage_records`` (migration 0010)
  adds one row per settled call once the capture is on, which the first publishing run does,
  so a deployment without NATS pays nothing per call.
* ``publish_due`` claims unpublished rows (SKIP LOCKED on PostgreSQL), publishes them with
  their dedupe id as ``Nats-Msg-Id`` and marks them published in the same transaction. A crash
  or failure after publishing only means publishing again: JetStream drops the repeat within
  its duplicate window, so consumers see each event once (at-least-once + dedupe).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain import events as rules
from commcredits.domain.events import EventKind
from commcredits.domain.money import ZERO, fmt
from commcredits.services.ports import BusMessage, EventBus

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.uow import Database, UnitOfWork


def record(uow: UnitOfWork, tenant_id: str, kind: EventKind, dedupe: str,
           data: dict[str, Any]) -> bool:
    """Queue an event (once per ``dedupe`` and tenant); False if it was already queued."""
    return uow.bus.add_event(tenant_id=tenant_id, dedupe=dedupe, kind=kind.value,
                                data=json.dumps(data, sort_keys=True), occurred_at=uow.now)


def record_many(uow: UnitOfWork, tenant_id: str, kind: EventKind,
                items: list[tuple[str, dict[str, Any]]]) -> int:
    """:func:`record` for several events of one tenant and kind, ``(dedupe, data)`` each."""
    if not items:
        return 0
    return uow.bus.add_events(tenant_id, kind.value,
                              [(d, json.dumps(data, sort_keys=True)) for d, data in items],
                              uow.now)


def _settled(row: sa.Row[Any]) -> dict[str, Any]:
    cur = row.u_currency

    def money(name: str) -> str:
        return fmt(getattr(row, f"u_{name}"), cur)
    return {"call_id": row.u_ref, "usage_id": row.u_id, "call_type": row.u_call_type,
            "upn": row.u_upn, "destination": row.u_destination,
            "destination_number": row.u_destination_number, "number_type": row.u_number_type,
            "start_time": row.u_start_time.isoformat(), "end_time": row.u_end_time.isoformat(),
            "duration_s": row.u_duration_s, "funding": row.u_funding,
            "included_minutes": row.u_included_minutes, "currency": cur,
            "charge": money("charge"), "credits_charge": money("credits_charge"),
            "overage_charge": money("overage_charge"), "uncollected": money("uncollected")}


def message(row: sa.Row[Any], prefix: str) -> BusMessage:
    data = _settled(row) if row.kind == EventKind.CALL_SETTLED else json.loads(row.data or "{}")
    return BusMessage(rules.subject(prefix, row.tenant_id, row.kind),
                      rules.envelope(row.tenant_id, row.dedupe, row.kind, row.occurred_at,
                                     data),
                      rules.msg_id(row.tenant_id, row.dedupe))


def publish_due(db: Database, bus: EventBus, prefix: str = rules.DEFAULT_PREFIX,
                batch: int = 1000, stopping: Callable[[], bool] | None = None) -> int:
    """Publish every unpublished event, ``batch`` per transaction; returns how many were
    published (counting those JetStream already had)."""
    with db.uow() as uow:
        if uow.bus.capture_calls(uow.now):
            uow.commit()
    published = 0
    while stopping is None or not stopping():
        with db.uow() as uow:
            repo = uow.bus
            rows = repo.claim_unpublished(batch)
            if rows:
                bus.publish([message(r, prefix) for r in rows])
                repo.mark_published([(r.tenant_id, r.dedupe) for r in rows], uow.now)
                uow.commit()
        published += len(rows)
        if len(rows) < batch:
            return published
    return published


def unpublished(uow: UnitOfWork) -> int:
    return uow.bus.unpublished()


# -- what each event says (called next to the change, in its transaction) ------------------
def balance_zero(uow: UnitOfWork, tenant_id: str, currency: str, seq: int) -> None:
    record(uow, tenant_id, EventKind.BALANCE_ZERO, f"balance_zero:{seq}",
           {"balance": fmt(ZERO, currency), "currency": currency, "ledger_seq": seq})


def balance_below_trigger(uow: UnitOfWork, tenant_id: str, currency: str, balance: Decimal,
                          trigger: Decimal, recharge_amount: Decimal, seq: int) -> None:
    record(uow, tenant_id, EventKind.BALANCE_BELOW_TRIGGER, f"balance_below_trigger:{seq}",
           {"balance": fmt(balance, currency), "trigger": fmt(trigger, currency),
            "recharge_amount": fmt(recharge_amount, currency), "currency": currency,
            "ledger_seq": seq})
