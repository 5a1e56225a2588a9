"""Telling switches to end a call now.

A call holds a reservation for its grant, so another call can never spend it; but the money
behind a reservation can still go (a lot expires under it), the right to spend can be taken
away (the credits licence removed), a destination can be newly blocked, or an operator can
stop a call for fraud. Then the call is marked ``final`` with a ``cut_reason`` (its next
interim answers ``continue: false``) and a cut is queued in an outbox, delivered right after
the commit to the switch's webhook (``COMMCREDITS_SWITCH_CUT_URL``) and retried by the
``cuts`` job. The switch ends the dialog and reports ``end`` with the real talk time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain import licensing
from commcredits.domain.errors import conflict, invalid, not_found
from commcredits.domain.money import ZERO
from commcredits.domain.tenancy import Tenant
from commcredits.domain.wallet import Wallet
from commcredits.services.call_records import grant_of, route_data, route_from
from commcredits.services.ids import new_id

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import Database, UnitOfWork
    from commcredits.services.ports import SwitchNotifier

RETRY_AFTER_S = (5, 15, 60, 300, 900)  # then the cut is given up ("failed")
LEASE_S = 30  # a delivery in progress is not picked up again for this long
REASON = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CLAIMABLE = ("pending", "no_receiver")  # what a process holding the switch may deliver


def request(uow: UnitOfWork, call: sa.Row, reason: str) -> bool:
    """Queue a cut of an active call (once per call). False when there is nothing to cut."""
    if call.status != "active" or call.cut_reason:
        return False
    uow.charging.update_call(call.call_id, final=True, cut_reason=reason)
    cut_id = new_id("cut")
    uow.switching.add_cut(id=cut_id, tenant_id=call.tenant_id, call_id=call.call_id,
                          reason=reason, created_at=uow.now, status="pending", attempts=0,
                          next_attempt_at=uow.now)
    uow.cuts_requested.add(cut_id)
    return True


def cut_call(uow: UnitOfWork, call_id: str, reason: str | None,
             tenant_id: str | None) -> dict[str, Any]:
    """``POST /v1/calls/cut``: an operator (any call) or a tenant's global admin (its own)
    stops a call now."""
    reason = reason or "operator_cut"
    if not REASON.match(reason):
        raise invalid("validation_error", "reason must be snake_case, at most 40 characters")
    call = uow.charging.call(call_id, lock=True)
    if call is None or (tenant_id is not None and call.tenant_id != tenant_id):
        raise not_found("call", call_id)
    if call.status != "active":
        raise conflict("call_not_active", f"call {call_id!r} is {call.status}, not in progress")
    request(uow, call, reason)
    call = uow.charging.call(call_id)
    return {"call_id": call_id, "tenant_id": call.tenant_id, "status": "cut_requested",
            "reason": call.cut_reason}


def for_license_removal(uow: UnitOfWork, tenant_id: str, user_id: str,
                        removed: frozenset[str]) -> int:
    """Cut the user's calls that were paid through a licence just taken away."""
    cut = 0
    for call in uow.charging.active_calls(tenant_id):
        if call.user_id != user_id:
            continue
        route = route_from(_route_data(call))
        grant = grant_of(call)
        on_credits = grant.credit_s > 0 or grant.credit_reserved > ZERO
        on_plan = route.pool is not None and (route.pool.plan in removed or (
            route.pool.kind == "conferencing" and licensing.AUDIO_CONFERENCING in removed))
        if ((licensing.CREDITS in removed and on_credits) or on_plan) and \
                request(uow, call, "license_removed"):
            cut += 1
    return cut


def for_guardrails(uow: UnitOfWork, tenant: Tenant) -> int:
    """Cut calls in progress to destinations the tenant has just blocked."""
    cut = 0
    for call in uow.charging.active_calls(tenant.id):
        digits = call.to_number.lstrip("+")
        number = _route_data(call).get("number") or {}
        premium = number.get("number_type") == "premium" and not tenant.allow_premium
        blocked = any(digits.startswith(p) for p in tenant.blocked_prefixes)
        if call.call_type not in ("user_in", "conf_in", "ucap_in") and (premium or blocked) \
                and request(uow, call, "destination_blocked"):
            cut += 1
    return cut


def cover_reservations(uow: UnitOfWork, wallet: WalletRow,
                       spendable: Decimal | None = None) -> int:
    """When money behind reservations is gone (lots expired under them), cut the newest
    credit-funded calls until what the rest hold is covered. ``wallet`` is locked;
    ``spendable``: what its live lots hold, when the caller knows (else the lots are read)."""
    if spendable is None:
        lots = tuple(uow.credits.lots(wallet.tenant_id))
        spendable = Wallet(wallet.tenant_id, wallet.currency, lots).spendable(uow.now)
    short = wallet.reserved - spendable
    cut = 0
    calls = sorted(uow.charging.active_calls(wallet.tenant_id),
                   key=lambda c: c.started_at, reverse=True)
    for call in calls:
        if short <= ZERO:
            break
        held = grant_of(call).credit_reserved
        if held > ZERO and not call.cut_reason and request(uow, call, "insufficient_credits"):
            short -= held
            cut += 1
    return cut


def _route_data(call: sa.Row) -> dict[str, Any]:
    return route_data(call)


# -- delivery ------------------------------------------------------------------------------
def deliver(db: Database, notifier: SwitchNotifier | None,
            cut_ids: list[str] | None = None,
            stopping: Callable[[], bool] | None = None) -> int:
    """Push due cuts (or just ``cut_ids``) to the switch. Returns how many were delivered.

    Each cut is leased in its own short transaction, delivered outside any transaction, then
    marked; a failure is retried after 5 s, 15 s, 1 min, 5 min, 15 min, then given up. With
    no receiver configured the cut stays on the call (its next interim stops it) and the
    outbox row says ``no_receiver``."""
    if cut_ids is None:
        with db.uow(readonly=True) as uow:
            cut_ids = [c.id for c in uow.switching.due_cuts(uow.now)]
    sent = 0
    for cut_id in cut_ids:
        if stopping is not None and stopping():  # the rest goes at the next run
            break
        with db.uow() as uow:
            row = uow.switching.cut(cut_id, lock=True)
            if row is None or row.status != "pending" or row.next_attempt_at > uow.now:
                continue
            if notifier is None:
                uow.switching.update_cut(cut_id, status="no_receiver")
                uow.commit()
                continue
            uow.switching.update_cut(cut_id, next_attempt_at=uow.now + timedelta(
                seconds=LEASE_S))
            uow.commit()
        error = None
        try:
            notifier.cut(row.call_id, row.tenant_id, row.reason)
        except Exception as e:  # any failure of the receiver is retried
            error = f"{type(e).__name__}: {e}"[:200]
        with db.uow() as uow:
            attempts = row.attempts + 1
            if error is None:
                uow.switching.update_cut(cut_id, status="sent", sent_at=uow.now,
                                         attempts=attempts, last_error=None)
                sent += 1
            elif attempts > len(RETRY_AFTER_S):
                uow.switching.update_cut(cut_id, status="failed", attempts=attempts,
                                         last_error=error)
            else:
                uow.switching.update_cut(
                    cut_id, attempts=attempts, last_error=error,
                    next_attempt_at=uow.now + timedelta(seconds=RETRY_AFTER_S[attempts - 1]))
            uow.commit()
    return sent


def claim(uow: UnitOfWork, call_ids: list[str]) -> list[str]:
    """The cuts of ``call_ids`` that a process holding their switch's connection (a
    Diameter server) delivers: those due, and those another process without a receiver
    left ``no_receiver`` (pending again, due now)."""
    due = []
    for row in uow.switching.cuts_of_calls(call_ids, CLAIMABLE):
        if row.status == "no_receiver":
            uow.switching.update_cut(row.id, status="pending", next_attempt_at=uow.now)
        elif row.next_attempt_at > uow.now:
            continue
        due.append(row.id)
    return due


def cut_view(row: sa.Row) -> dict[str, Any]:
    return {"id": row.id, "call_id": row.call_id, "tenant_id": row.tenant_id,
            "reason": row.reason, "created_at": row.created_at, "status": row.status,
            "attempts": row.attempts, "sent_at": row.sent_at, "last_error": row.last_error}
