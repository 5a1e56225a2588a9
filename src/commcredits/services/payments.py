"""Payments as a state machine, so that no card charge is ever lost or doubled.

1. ``begin``: everything is checked and a ``payment_attempts`` row is committed as
   ``pending`` *before* the gateway is called. Its id is the gateway's idempotency key.
2. ``charge``: the gateway is called **outside** any transaction or row lock (a real gateway
   takes 0.3 to 1 s; call authorizations of the tenant must not wait behind it).
3. ``settle``: under the wallet lock, a paid attempt becomes a lot, an ``order`` ledger entry
   and an order (``succeeded``); a refused one becomes ``failed``. Money taken for which no
   lot can be created (a rule that changed in between) is ``charged``: reported, never lost.

A crash between 1 and 3 leaves a ``pending`` attempt. ``reconcile`` (the ``payments`` job
and ``commcredits payments reconcile``) charges it again with the same idempotency key — the
gateway answers with the charge it already made, or makes it now — and settles it. A client
that retries with its ``Idempotency-Key`` resumes the same attempt the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.domain import tenancy
from commcredits.domain.errors import DomainError, ErrorKind, conflict, invalid, not_found
from commcredits.domain.lots import LotSource
from commcredits.domain.money import parse_amount
from commcredits.domain.wallet import (
    DEFAULT_MAX_ORDER,
    check_balance_room,
    check_order_amount,
)
from commcredits.services import audit, credits
from commcredits.services.ids import new_id
from commcredits.services.ports import CardToken, PaymentGateway
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database, UnitOfWork

RECONCILE_AFTER = timedelta(minutes=5)  # a pending attempt older than this was interrupted


@dataclass(frozen=True, slots=True)
class Paid:
    reference: str


@dataclass(frozen=True, slots=True)
class Refused:
    error: DomainError


Outcome = Paid | Refused


@dataclass(frozen=True, slots=True)
class Limits:
    minimum: Decimal
    maximum: Decimal = DEFAULT_MAX_ORDER


# -- 1. begin ------------------------------------------------------------------------------------
def begin(uow: UnitOfWork, tenant_id: str, source: LotSource, amount: Decimal,
          pm_id: str, *, po_number: str | None = None, client_key: str | None = None,
          request_hash: str | None = None, recharge_id: str | None = None,
          auto_recharge: dict[str, Any] | None = None) -> str:
    """Record a pending attempt (the caller commits it before charging)."""
    tenant = get_tenant(uow, tenant_id)
    check_balance_room(uow.tenants.wallet(tenant_id).balance, amount)
    attempt_id = new_id("pay")
    values = dict(id=attempt_id, tenant_id=tenant_id, source=source.value, amount=amount,
                  currency=tenant.currency, payment_method_id=pm_id, po_number=po_number,
                  client_key=client_key, request_hash=request_hash, recharge_id=recharge_id,
                  auto_recharge=json.dumps(auto_recharge) if auto_recharge else None,
                  status="pending", created_at=uow.now, updated_at=uow.now)
    if client_key is None:
        uow.payments.add(**values)
    elif not uow.payments.add_keyed(**values):
        raise _KeyTaken
    return attempt_id


class _KeyTaken(Exception):
    """A concurrent request with the same Idempotency-Key opened its attempt first."""


# -- 2. charge (no transaction held) -------------------------------------------------------------
def charge(db: Database, gateway: PaymentGateway, attempt_id: str) -> Outcome:
    with db.uow(readonly=True) as uow:
        attempt = uow.payments.get(attempt_id)
        assert attempt is not None
        pm = uow.credits.payment_method(attempt.tenant_id, attempt.payment_method_id)
        now = uow.now
    if pm is None:
        return Refused(DomainError("payment_method_missing",
                                   "the payment method no longer exists", ErrorKind.PAYMENT))
    if pm.type != "card":
        po = f" PO {attempt.po_number}" if attempt.po_number else ""
        return Paid(f"EA {pm.agreement_number}{po}")
    card = CardToken(pm.token, pm.brand, pm.last4, pm.exp_month, pm.exp_year)
    try:
        reference = gateway.charge(card, attempt.amount, attempt.currency,
                                   idempotency_key=attempt.id,
                                   description=f"communications credits {attempt.tenant_id}",
                                   now=now)
    except DomainError as e:
        if e.kind is ErrorKind.UNAVAILABLE:
            raise  # not a refusal: the money may have been taken; the attempt stays pending
        return Refused(e)
    return Paid(reference)


# -- 3. settle -----------------------------------------------------------------------------------
def settle(db: Database, attempt_id: str, outcome: Outcome,
           actor: audit.Actor | None = None) -> tuple[sa.Row, Any]:
    """Apply the gateway's answer once (a second settle of the same attempt changes nothing).
    Returns the attempt as stored and what its source made of it (order view or recharge
    outcome). A funded order is written to the audit log as ``actor``'s (else the system's:
    a reconciliation)."""
    from commcredits.services import recharge

    with db.uow() as uow:
        uow.actor = actor
        peek = uow.payments.get(attempt_id)
        assert peek is not None
        wallet = uow.tenants.wallet(peek.tenant_id, lock=True)  # serializes settlements
        attempt = uow.payments.get(attempt_id)
        assert attempt is not None
        if attempt.status != "pending":
            return attempt, None
        tenant = get_tenant(uow, attempt.tenant_id)
        result: Any = None
        if isinstance(outcome, Refused):
            # a refused attempt frees the client's key: the request may be tried again
            uow.payments.update(attempt_id, status="failed", error_code=outcome.error.code,
                                client_key=None, updated_at=uow.now)
            if attempt.recharge_id:
                result = recharge.refused(uow, wallet, tenant, attempt.recharge_id,
                                          attempt.amount, outcome.error)
        else:
            try:
                check_balance_room(wallet.balance, attempt.amount)
            except DomainError as e:  # the money is taken: keep it on record for an operator
                uow.payments.update(attempt_id, status="charged", error_code=e.code,
                                    gateway_reference=outcome.reference, updated_at=uow.now)
                uow.commit()
                raise
            funded = credits.fund(uow, wallet, tenant, attempt.payment_method_id,
                                  attempt.amount, LotSource(attempt.source),
                                  outcome.reference, po_number=attempt.po_number)
            uow.payments.update(attempt_id, status="succeeded", order_id=funded.order_id,
                                gateway_reference=outcome.reference, updated_at=uow.now)
            if attempt.auto_recharge:
                credits.apply_auto_recharge(uow, wallet, json.loads(attempt.auto_recharge))
            if attempt.recharge_id:
                result = recharge.funded(uow, wallet, tenant, attempt.recharge_id,
                                         attempt.amount, funded.order_id)
            else:
                result = credits.order_view(uow.credits.order(tenant.id, funded.order_id))
                audit.record(uow, tenant.id, "order.place", result["id"], None, result)
        uow.commit()
    with db.uow(readonly=True) as uow:
        stored = uow.payments.get(attempt_id)
    assert stored is not None
    return stored, result


def charge_and_settle(db: Database, gateway: PaymentGateway, attempt_id: str,
                      actor: audit.Actor | None = None) -> tuple[sa.Row, Any, Outcome | None]:
    """Charge the attempt and settle the answer as the only one doing it, cluster-wide.

    A request and the ``recharge`` job (or two instances' jobs, or a repeated request) that
    reach the same pending attempt take turns on the lock ``payment:<id>``; the second finds
    it settled and leaves it (outcome None). One that died between charging and settling
    left it pending and freed the lock: the next one charges again with the same idempotency
    key, so the gateway answers with the charge it made."""
    with db.exclusive(f"payment:{attempt_id}"):
        with db.uow(readonly=True) as uow:
            current = uow.payments.get(attempt_id)
        if current is not None and current.status != "pending":
            return current, None, None
        outcome = charge(db, gateway, attempt_id)
        stored, view = settle(db, attempt_id, outcome, actor)
        return stored, view, outcome


# -- orders --------------------------------------------------------------------------------------
def place_order(db: Database, gateway: PaymentGateway, limits: Limits, tenant_id: str,
                amount: object, payment_method_id: str, po_number: str | None = None,
                auto_recharge: dict[str, Any] | None = None, *, client_key: str | None = None,
                request_hash: str | None = None,
                actor: audit.Actor | None = None) -> tuple[dict[str, Any], bool]:
    """Buy credits. Returns the order and whether it is a replay of an earlier request with
    the same ``client_key`` (the tenant's ``Idempotency-Key``). ``actor`` is who the audit
    log says placed it."""
    attempt_id, done = _open(db, limits, tenant_id, amount, payment_method_id, po_number,
                             auto_recharge, client_key, request_hash, gateway)
    if done is not None:
        return done, True
    stored, view, outcome = charge_and_settle(db, gateway, attempt_id, actor)
    if stored.status == "failed":
        raise outcome.error if isinstance(outcome, Refused) else \
            DomainError(stored.error_code or "payment_failed", "the payment failed",
                        ErrorKind.PAYMENT)
    if view is None:  # settled by a concurrent repeat: answer what it did
        with db.uow(readonly=True) as uow:
            view = credits.order_view(uow.credits.order(tenant_id, stored.order_id))
    return view, False


def _open(db: Database, limits: Limits, tenant_id: str, amount: object, pm_id: str,
          po_number: str | None, auto_recharge: dict[str, Any] | None, client_key: str | None,
          request_hash: str | None, gateway: PaymentGateway | None = None
          ) -> tuple[str, dict[str, Any] | None]:
    """The attempt to pay (a new one, or the one this key already started) and, when that
    one has already succeeded, its order to replay.

    Requests with the same key race between "no attempt with this key yet" and the insert:
    the insert does nothing when another request's attempt got there first (waiting for it
    to commit), and this request then resumes that attempt, so none of them fails. (A plain
    insert made the loser answer 409 ``conflict``.) Only if that attempt was refused in
    between, which frees the key, is there nothing to resume: then this request opens its
    own, as it would have a moment later."""
    with db.uow() as uow:
        attempt_id = None
        while attempt_id is None:
            attempt_id = _resume(uow, tenant_id, client_key, request_hash) \
                if client_key else None
            if attempt_id is not None:
                break
            try:
                attempt_id = _begin_order(uow, limits, tenant_id, amount, pm_id, po_number,
                                          auto_recharge, client_key, request_hash, gateway)
            except _KeyTaken:
                continue  # resume the attempt the other request opened
            uow.commit()
            return attempt_id, None
        stored = uow.payments.get(attempt_id)
        assert stored is not None
        if stored.status == "succeeded":
            return attempt_id, credits.order_view(uow.credits.order(tenant_id,
                                                                     stored.order_id))
        return attempt_id, None


def _resume(uow: UnitOfWork, tenant_id: str, client_key: str,
            request_hash: str | None) -> str | None:
    seen = uow.payments.by_client_key(tenant_id, client_key)
    if seen is None:
        return None
    if seen.request_hash != request_hash:
        raise conflict("idempotency_key_reused",
                       "this Idempotency-Key was used for a different request")
    if seen.status == "charged":
        raise conflict("payment_needs_review", "the card was charged but the credits could "
                       "not be added; an operator has been told (payments reconcile)")
    return str(seen.id)


def _begin_order(uow: UnitOfWork, limits: Limits, tenant_id: str, amount: object,
                 pm_id: str, po_number: str | None, auto_recharge: dict[str, Any] | None,
                 client_key: str | None, request_hash: str | None,
                 gateway: PaymentGateway | None = None) -> str:
    tenant = get_tenant(uow, tenant_id)
    tenancy.check_can_buy_credits(tenant)
    value = parse_amount(amount, tenant.currency, maximum=limits.maximum)
    check_order_amount(value, limits.minimum, maximum=limits.maximum)
    pm = uow.credits.payment_method(tenant_id, pm_id)
    if pm is None:
        raise not_found("payment method", pm_id)
    if po_number is not None and pm.type != "enterprise_agreement":
        raise invalid("validation_error", "po_number applies to Enterprise Agreement orders")
    settings = None
    if auto_recharge is not None:
        given = {k: v for k, v in auto_recharge.items() if v is not None}
        settings = credits.auto_recharge_body(uow, tenant, limits.minimum, {
            "payment_method_id": pm_id, **given}, limits.maximum, gateway)  # no lock held
    return begin(uow, tenant_id, LotSource.ORDER, value, pm_id, po_number=po_number,
                 client_key=client_key, request_hash=request_hash, auto_recharge=settings)


# -- reconciliation ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reconciled:
    attempt_id: str
    tenant_id: str
    amount: Decimal
    currency: str
    outcome: str  # funded | failed | needs_review


def reconcile(db: Database, gateway: PaymentGateway,
              older_than: timedelta = RECONCILE_AFTER,
              failed: Callable[[str, BaseException], None] | None = None) -> list[Reconciled]:
    """Settle every attempt a crash interrupted; list the ones only a person can resolve
    (``charged``: money taken, no lot). An attempt that cannot be settled now (the gateway
    unreachable, a bug) is told to ``failed``, stays pending for the next run, and the others
    go on."""
    with db.uow(readonly=True) as uow:
        stale = [a.id for a in uow.payments.with_status("pending", uow.now - older_than)]
    for attempt_id in stale:
        try:
            charge_and_settle(db, gateway, attempt_id)
        except DomainError:
            pass  # recorded on the attempt (charged) and listed below
        except Exception as exc:
            if failed is None:
                raise
            failed(attempt_id, exc)
    with db.uow(readonly=True) as uow:
        done = [uow.payments.get(a) for a in stale]
        review = uow.payments.with_status("charged")
    names = {"succeeded": "funded", "failed": "failed", "charged": "needs_review",
             "pending": "pending"}
    out = [Reconciled(a.id, a.tenant_id, a.amount, a.currency, names[a.status])
           for a in done if a is not None]
    out += [Reconciled(a.id, a.tenant_id, a.amount, a.currency, "needs_review")
            for a in review if a.id not in stale]
    return out
