"""What a switch needs to find before it can ask for a decision: the tenant a call belongs
to — by an explicit ``tenant_id``, a SIP domain the operator gave the tenant, or one of the
tenant's numbers (the dialled number of an inbound call, the caller's number of an outbound
one)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from commcredits.domain import calls as rules
from commcredits.domain.errors import DomainError, ErrorKind, conflict, invalid
from commcredits.domain.numbers import classify
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork

LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*$")


def resolve_tenant(uow: UnitOfWork, call_type: str, frm: str | None, to: str | None,
                   sip_domain: str | None) -> str:
    """The tenant of a call whose switch did not say; 404 ``tenant_unresolved`` if none."""
    if sip_domain:
        found = uow.switching.tenant_of_domain(sip_domain.strip().lower().rstrip("."))
        if found:
            return found
    numbers = (to, frm) if call_type in rules.INBOUND else (frm,)
    for raw in numbers:
        try:
            e164 = classify(str(raw)).e164 if raw else None
        except DomainError:
            continue
        row = uow.directory.number(e164) if e164 else None
        if row is not None:
            return str(row.tenant_id)
    raise DomainError("tenant_unresolved",
                      "no tenant has this SIP domain or number; send tenant_id",
                      ErrorKind.NOT_FOUND)


def sip_domains(uow: UnitOfWork, tenant_id: str) -> dict[str, Any]:
    get_tenant(uow, tenant_id)
    return {"tenant_id": tenant_id, "domains": uow.switching.domains(tenant_id)}


def set_sip_domains(uow: UnitOfWork, tenant_id: str, domains: list[str]) -> dict[str, Any]:
    """Replace the tenant's SIP domains. A domain names one tenant only."""
    get_tenant(uow, tenant_id)
    cleaned = sorted({d.strip().lower().rstrip(".") for d in domains})
    bad = [d for d in cleaned if not DOMAIN.match(d)]
    if bad:
        raise invalid("validation_error", f"not a domain name: {', '.join(bad[:5])}")
    for domain in cleaned:
        owner = uow.switching.tenant_of_domain(domain)
        if owner is not None and owner != tenant_id:
            raise conflict("already_exists", f"{domain} belongs to another tenant")
    uow.switching.set_domains(tenant_id, cleaned)
    return sip_domains(uow, tenant_id)


def subscriber(uow: UnitOfWork, key: tuple[str, str]) -> tuple[str, str, str | None] | None:
    """``(tenant_id, upn, phone_number)`` of the one user a Diameter Subscription-Id names
    (``("phone", "+E164")`` or ``("upn", …)``); None when no user, or more than one, has it."""
    kind, named = key
    found = uow.directory.users_named(phone=named) if kind == "phone" else \
        uow.directory.users_named(upn=named)
    return found[0] if len(found) == 1 else None


def live_call(uow: UnitOfWork, call_id: str) -> tuple[str, int, bool] | None:
    """``(status, elapsed_s, answered)`` of a call: what a Diameter session that this process
    no longer holds (a restart) goes on from; None when there is no such call."""
    call = uow.charging.call(call_id)
    if call is None:
        return None
    return str(call.status), int(call.elapsed_s or 0), call.answered_at is not None
