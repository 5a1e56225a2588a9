"""Who may do what (API.md Conventions), including 404 for another tenant's data."""

from __future__ import annotations

import pytest

from commcredits.domain.access import Action, Principal, Role, authorize
from commcredits.domain.errors import DomainError, ErrorKind

A = Action
# Written from API.md, not copied from the code: what each role may do inside its tenant.
IN_TENANT: dict[Role, set[Action]] = {
    Role.OPERATOR: set(Action),
    Role.SWITCH: {A.TELEPHONY},
    Role.GLOBAL_ADMIN: {A.READ, A.BILLING, A.USERS, A.ADMINS},
    Role.BILLING_ADMIN: {A.READ, A.BILLING},
    Role.USER_ADMIN: {A.READ, A.USERS},
    Role.REPORTS_READER: {A.READ},
}
TENANT_ROLES = [Role.GLOBAL_ADMIN, Role.BILLING_ADMIN, Role.USER_ADMIN, Role.REPORTS_READER]
TABLE = [(role, action) for role in Role for action in Action]


def _who(role: Role) -> Principal:
    return Principal("key_1", role, "T1" if role in TENANT_ROLES else None)


def _forbidden(who: Principal, action: Action, tenant_id: str | None) -> None:
    with pytest.raises(DomainError) as e:
        authorize(who, action, tenant_id)
    assert (e.value.code, e.value.kind) == ("forbidden", ErrorKind.FORBIDDEN)


@pytest.mark.parametrize(("role", "action"), TABLE)
def test_inside_own_tenant(role: Role, action: Action) -> None:
    if action in IN_TENANT[role]:
        authorize(_who(role), action, "T1")
    else:
        _forbidden(_who(role), action, "T1")


@pytest.mark.parametrize(("role", "action"), TABLE)
def test_without_a_tenant(role: Role, action: Action) -> None:
    # Tenant roles act only inside their tenant; the platform roles keep their rights.
    if role not in TENANT_ROLES and action in IN_TENANT[role]:
        authorize(_who(role), action)
    else:
        _forbidden(_who(role), action, None)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", TENANT_ROLES)
def test_another_tenant_is_not_found(role: Role, action: Action) -> None:
    # 404 before any role check: even a reports reader asking to OPERATE sees not_found.
    with pytest.raises(DomainError) as e:
        authorize(_who(role), action, "T2")
    assert (e.value.code, e.value.kind) == ("not_found", ErrorKind.NOT_FOUND)
    assert "T2" in e.value.message


@pytest.mark.parametrize("tenant", ["T1", "T2", "T999"])
def test_operator_and_switch_span_tenants(tenant: str) -> None:
    for action in Action:
        authorize(_who(Role.OPERATOR), action, tenant)
    authorize(_who(Role.SWITCH), A.TELEPHONY, tenant)
    _forbidden(_who(Role.SWITCH), A.READ, tenant)
