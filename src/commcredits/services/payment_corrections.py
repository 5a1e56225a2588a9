"""What the gateway tells us afterwards, and giving money back.

* :func:`settle_reported`: the gateway reports (a webhook) how a payment attempt ended.
  An attempt still ``pending`` (the charge request timed out, the service crashed before it
  heard back) is settled with that outcome, under the same lock ``payment:<id>`` as
  ``payments.charge_and_settle``, so a webhook, a retry and the ``payments`` job never both
  settle it. One already settled is left as it is: a repeated webhook changes nothing. Money
  reported taken for an attempt we recorded as refused becomes ``charged`` (money taken that
  no lot holds), for a person to refund.
* :func:`refund_attempt`: give back a ``charged`` attempt's money through the gateway (keyed
  by the attempt, so a repeat refunds once); it becomes ``refunded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commcredits.domain.errors import DomainError, conflict, not_found
from commcredits.services import audit, payments
from commcredits.services.ports import PaymentGateway

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.uow import Database


def settle_reported(db: Database, attempt_id: str, outcome: payments.Outcome) -> str:
    """Apply a reported outcome. Returns what it did: ``settled``, ``already_settled``,
    ``needs_review`` (money taken, no lot) or ``unknown`` (no such attempt)."""
    with db.exclusive(f"payment:{attempt_id}"):
        with db.uow(readonly=True) as uow:
            current = uow.payments.get(attempt_id)
        if current is None:
            return "unknown"
        if current.status == "failed" and isinstance(outcome, payments.Paid):
            with db.uow() as uow:
                uow.payments.update(attempt_id, status="charged", error_code="paid_after_refusal",
                                    gateway_reference=outcome.reference, updated_at=uow.now)
                uow.commit()
            return "needs_review"
        if current.status != "pending":
            return "already_settled"
        try:
            payments.settle(db, attempt_id, outcome)
        except DomainError:
            return "needs_review"  # recorded as charged by settle
        return "settled"


def refund_attempt(db: Database, gateway: PaymentGateway, attempt_id: str,
                   actor: audit.Actor | None = None) -> sa.Row:
    """Refund the money of a ``charged`` attempt (taken, but no lot holds it)."""
    with db.exclusive(f"payment:{attempt_id}"):
        with db.uow(readonly=True) as uow:
            attempt = uow.payments.get(attempt_id)
        if attempt is None:
            raise not_found("payment attempt", attempt_id)
        if attempt.status == "refunded":
            return attempt
        if attempt.status != "charged" or not attempt.gateway_reference:
            raise conflict("not_refundable", f"payment attempt {attempt_id} is "
                           f"{attempt.status}: only money taken that no lot holds (charged) "
                           "is refunded here")
        reference = gateway.refund(attempt.gateway_reference, attempt.amount, attempt.currency,
                                   idempotency_key=attempt_id)
        with db.uow() as uow:
            uow.actor = actor
            uow.payments.update(attempt_id, status="refunded", refund_reference=reference,
                                updated_at=uow.now)
            audit.record(uow, attempt.tenant_id, "payment.refund", attempt_id,
                         {"status": "charged"}, {"status": "refunded", "refund": reference})
            uow.commit()
        with db.uow(readonly=True) as uow:
            done = uow.payments.get(attempt_id)
        assert done is not None
        return done
