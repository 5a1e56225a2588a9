"""Queue notifications in the outbox (same transaction as the event) and deliver them.

Delivery is at-least-once: a message is marked sent only after the SMTP server accepted it;
a failure is retried with growing delays (1, 5, 15, 60 minutes, then hourly), never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from commcredits.domain.access import Role
from commcredits.domain.notifications import Notice, NoticeKind
from commcredits.domain.tenancy import Tenant
from commcredits.services.ids import new_id
from commcredits.services.ports import Mailer
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database, UnitOfWork

log = logging.getLogger(__name__)
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
                timedelta(hours=1))


#: Notices about money that also go to the console admins who can act on them.
TO_ADMINS = frozenset({NoticeKind.RECHARGE_SUCCEEDED, NoticeKind.RECHARGE_FAILED,
                       NoticeKind.RECHARGE_SUSPENDED, NoticeKind.RECHARGE_CAPPED,
                       NoticeKind.BALANCE_ZERO, NoticeKind.POOL_80, NoticeKind.POOL_100})
ADMIN_ROLES = frozenset({Role.GLOBAL_ADMIN.value, Role.BILLING_ADMIN.value})


def recipients(uow: UnitOfWork, tenant: Tenant, notice: Notice) -> list[str]:
    """The billing contacts, plus (for money notices) the console admins with the global or
    billing admin role: one address once, whatever its case."""
    found = list(uow.directory.billing_contacts(tenant.id))
    if notice.kind in TO_ADMINS:
        found += uow.access.admin_emails(tenant.id, ADMIN_ROLES)
    seen: set[str] = set()
    out = []
    for address in found:
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def queue(uow: UnitOfWork, tenant: Tenant, notice: Notice) -> int:
    """One outbox row per recipient (or one ``no_recipient`` row). Returns rows added."""
    contacts = recipients(uow, tenant, notice)
    added = 0
    for to in contacts or [""]:
        added += uow.notifications.add(
            id=new_id("ntf"), tenant_id=tenant.id, kind=notice.kind.value, recipient=to,
            subject=notice.subject, body=notice.body, dedupe=notice.dedupe,
            status="pending" if to else "no_recipient", now=uow.now)
    return added


def queue_many(uow: UnitOfWork, tenant: Tenant, notices: list[Notice]) -> int:
    """:func:`queue` for several notices of one kind (the same recipients), in one
    statement: what a chunk of the expiry job sends."""
    if not notices:
        return 0
    contacts = recipients(uow, tenant, notices[0]) or [""]
    return uow.notifications.add_many(tenant.id, [
        {"id": new_id("ntf"), "kind": n.kind.value, "recipient": to, "subject": n.subject,
         "body": n.body, "dedupe": n.dedupe, "status": "pending" if to else "no_recipient"}
        for n in notices for to in contacts], uow.now)


def deliver_due(db: Database, mailer: Mailer | None, limit: int = 10_000,
                stopping: Callable[[], bool] | None = None) -> int:
    """Send every message that is due (at most ``limit``). Returns how many were sent.

    One message per transaction: it is claimed (SKIP LOCKED on PostgreSQL, so instances
    never send the same one), sent, marked and committed before the next. A process killed
    between sending and committing re-sends only that message (at-least-once, never lost)."""
    if mailer is None:
        return 0
    sent = 0
    for _ in range(limit):
        if stopping is not None and stopping():  # the rest goes at the next run
            return sent
        with db.uow() as uow:
            due = uow.notifications.claim_due(uow.now, 1)
            if not due:
                return sent
            note = due[0]
            try:
                mailer.send(note.recipient, note.subject, note.body)
            except Exception as exc:  # any SMTP/network failure: retry later
                delay = RETRY_DELAYS[min(note.attempts, len(RETRY_DELAYS) - 1)]
                uow.notifications.mark_failed(note.id, f"{type(exc).__name__}: {exc}",
                                              uow.now + delay)
                log.warning("notification %s to %s failed: %s", note.id, note.recipient, exc)
            else:
                uow.notifications.mark_sent(note.id, uow.now)
                sent += 1
            uow.commit()
    return sent


def failure_reason(status: str, error: str | None) -> str | None:
    """Why a notification is not delivered, in words (None when nothing failed)."""
    if status == "no_recipient":
        return "no billing contact or admin to send it to: add a billing contact"
    if status == "retrying":
        return error or "the mail server did not accept it"
    return None


def notifications_view(uow: UnitOfWork, tenant_id: str) -> list[dict[str, Any]]:
    """The outbox, newest first; ``error`` says why one was not delivered (the mail server's
    answer of the last attempt) and ``next_attempt_at`` when it is tried again."""
    get_tenant(uow, tenant_id)
    return [{"id": n.id, "kind": n.kind, "to": n.recipient or None, "subject": n.subject,
             "created_at": n.created_at.isoformat(), "status": n.status,
             "attempts": n.attempts,
             "sent_at": n.sent_at.isoformat() if n.sent_at else None,
             "error": failure_reason(n.status, n.last_error),
             "next_attempt_at": n.next_attempt_at.isoformat()
             if n.status == "retrying" and n.next_attempt_at else None}
            for n in uow.notifications.list(tenant_id)]
