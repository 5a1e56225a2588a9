"""API keys and console admins. Keys are random, shown once, stored as SHA-256 hashes;
passwords are stored as scrypt hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from commcredits.domain.access import TENANT_ROLES, Principal, Role
from commcredits.domain.errors import conflict, invalid
from commcredits.services import audit
from commcredits.services.ids import new_id
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise invalid("validation_error",
                      f"role must be one of {', '.join(r.value for r in Role)}") from None


def create_api_key(uow: UnitOfWork, role: str, tenant_id: str | None) -> tuple[str, str, Role]:
    """Returns (key id, the key itself, role). The key is not stored and cannot be shown again."""
    parsed = parse_role(role)
    if parsed in TENANT_ROLES:
        if tenant_id is None:
            raise invalid("validation_error", f"a {parsed} key needs a tenant_id")
        get_tenant(uow, tenant_id)
    elif tenant_id is not None:
        raise invalid("validation_error", f"a {parsed} key acts for all tenants; omit tenant_id")
    key_id = new_id("key")
    key = f"cc_{secrets.token_urlsafe(32)}"
    uow.access.add_api_key(key_id, hash_key(key), parsed.value, tenant_id, uow.now)
    audit.record(uow, tenant_id, "api_key.create", key_id, None, {"role": parsed.value})
    return key_id, key, parsed


def authenticate(uow: UnitOfWork, key: str) -> Principal | None:
    row = uow.access.api_key_by_hash(hash_key(key))
    if row is None:
        return None
    return Principal(row.id, Role(row.role), row.tenant_id)


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def add_admin(uow: UnitOfWork, tenant_id: str, email: str, password: str,
              role: str) -> dict[str, str]:
    get_tenant(uow, tenant_id)
    parsed = parse_role(role)
    if parsed not in TENANT_ROLES:
        raise invalid("validation_error", "a console admin has a tenant role")
    if len(password) < 8:
        raise invalid("validation_error", "password must be at least 8 characters")
    if uow.access.admin_by_email(email) is not None:
        raise conflict("already_exists", f"an admin {email!r} already exists")
    admin_id = new_id("adm")
    uow.access.add_admin(admin_id, tenant_id, email, hash_password(password), parsed.value,
                         uow.now)
    audit.record(uow, tenant_id, "admin.add", email, None, {"role": parsed.value})
    return {"id": admin_id, "tenant_id": tenant_id, "email": email, "role": parsed.value}


def authenticate_admin(uow: UnitOfWork, email: str, password: str) -> Principal | None:
    row = uow.access.admin_by_email(email)
    if row is None or not check_password(password, row.password_hash):
        return None
    return Principal(row.id, Role(row.role), row.tenant_id)
