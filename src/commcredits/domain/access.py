"""Who may do what (API.md Conventions).

``operator`` does everything for every tenant; ``switch`` only the telephony endpoints; the
tenant roles act inside their own tenant only: ``global_admin`` everything, ``billing_admin``
payments, orders, auto-recharge and billing contacts, ``user_admin`` users, licenses and
numbers, ``reports_reader`` reads. A tenant key never sees another tenant (404, not 403).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from commcredits.domain.errors import DomainError, ErrorKind


class Role(StrEnum):
    OPERATOR = "operator"
    SWITCH = "switch"
    GLOBAL_ADMIN = "global_admin"
    BILLING_ADMIN = "billing_admin"
    USER_ADMIN = "user_admin"
    REPORTS_READER = "reports_reader"


TENANT_ROLES = frozenset({Role.GLOBAL_ADMIN, Role.BILLING_ADMIN, Role.USER_ADMIN,
                          Role.REPORTS_READER})


class Action(StrEnum):
    READ = "read"  # any read inside a tenant
    BILLING = "billing"  # payment methods, orders, auto-recharge, billing contacts, seats
    USERS = "users"  # users, licenses, numbers
    ADMINS = "admins"  # console admins and tenant API keys
    OPERATE = "operate"  # tenants, rate decks, the clock, operator keys
    TELEPHONY = "telephony"  # calls and SMS


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.OPERATOR: frozenset(Action),
    Role.SWITCH: frozenset({Action.TELEPHONY}),
    Role.GLOBAL_ADMIN: frozenset({Action.READ, Action.BILLING, Action.USERS, Action.ADMINS}),
    Role.BILLING_ADMIN: frozenset({Action.READ, Action.BILLING}),
    Role.USER_ADMIN: frozenset({Action.READ, Action.USERS}),
    Role.REPORTS_READER: frozenset({Action.READ}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever is calling: an API key or a console admin."""

    id: str
    role: Role
    tenant_id: str | None = None


def forbidden(message: str) -> DomainError:
    return DomainError("forbidden", message, ErrorKind.FORBIDDEN)


def authorize(who: Principal, action: Action, tenant_id: str | None = None) -> None:
    """Raise unless ``who`` may perform ``action`` (on ``tenant_id`` when given)."""
    if tenant_id is not None and who.tenant_id is not None and who.tenant_id != tenant_id:
        raise DomainError("not_found", f"tenant {tenant_id!r} does not exist",
                          ErrorKind.NOT_FOUND)
    if tenant_id is None and who.role in TENANT_ROLES:
        raise forbidden(f"the {who.role} role acts only inside its tenant")
    if action not in ALLOWED[who.role]:
        raise forbidden(f"the {who.role} role may not do this ({action})")
