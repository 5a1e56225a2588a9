"""API keys and console admins. Keys are random, shown once, stored as SHA-256 hashes;
passwords are stored as argon2id hashes (argon2-cffi; older scrypt hashes are upgraded at
the next sign-in)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from argon2.exceptions import InvalidHashError, VerificationError

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


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # hashes stored before argon2id: still accepted
# argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane)
_ARGON2 = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1,
                         type=Argon2Type.ID)
# verified when the email is unknown, so an unknown email takes as long as a wrong password
_DUMMY_HASH = _ARGON2.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _ARGON2.hash(password)


def check_password(password: str, stored: str) -> bool:
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def needs_rehash(stored: str) -> bool:
    return not stored.startswith("$argon2") or _ARGON2.check_needs_rehash(stored)


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


def authenticate_admin(uow: UnitOfWork, email: str,
                       password: str) -> tuple[Principal | None, str | None]:
    """The admin (or None) and, when its stored hash is of an older scheme, the argon2id hash
    to store instead (``upgrade_password``). Takes the same time whether or not the email
    exists. Needs no write: the caller may check in a read-only unit of work."""
    row = uow.access.admin_by_email(email)
    if row is None:
        check_password(password, _DUMMY_HASH)
        return None, None
    if not check_password(password, row.password_hash):
        return None, None
    upgraded = hash_password(password) if needs_rehash(row.password_hash) else None
    return Principal(row.id, Role(row.role), row.tenant_id), upgraded


def upgrade_password(uow: UnitOfWork, admin_id: str, password_hash: str) -> None:
    uow.access.set_password_hash(admin_id, password_hash)
