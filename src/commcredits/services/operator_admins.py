"""Operator admins: people with the operator role in the operator console. Created by an
operator API key (``POST /v1/operator-admins``) or the CLI (``admins create --operator``);
passwords are hashed as for tenant admins (``services.access``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commcredits.domain.access import Principal, Role
from commcredits.domain.errors import conflict, invalid
from commcredits.services import access, audit
from commcredits.services.ids import new_id

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def add(uow: UnitOfWork, email: str, password: str) -> dict[str, str]:
    email = email.strip()
    if "@" not in email or len(email) > 320 or " " in email:
        raise invalid("validation_error", f"email {email[:80]!r} is not an email address")
    if len(password) < 8:
        raise invalid("validation_error", "password must be at least 8 characters")
    if uow.operator_admins.by_email(email) is not None \
            or uow.access.admin_by_email(email) is not None:
        raise conflict("already_exists", f"an admin {email!r} already exists")
    admin_id = new_id("opa")
    uow.operator_admins.add(admin_id, email, access.hash_password(password), uow.now)
    audit.record(uow, None, "operator_admin.add", email, None, {"role": "operator"})
    return {"id": admin_id, "email": email, "role": Role.OPERATOR.value}


def authenticate(uow: UnitOfWork, email: str, password: str) -> Principal | None:
    row = uow.operator_admins.by_email(email.strip())
    if row is None or not access.check_password(password, row.password_hash):
        return None
    return Principal(row.id, Role.OPERATOR)
