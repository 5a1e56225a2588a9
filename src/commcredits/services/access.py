"""API keys and console admins. Keys are random, shown once, stored as SHA-256 hashes;
passwords are stored as argon2id hashes (argon2-cffi; older scrypt hashes are upgraded at
the next sign-in)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from argon2.exceptions import InvalidHashError, VerificationError

from commcredits.domain.access import TENANT_ROLES, Principal, Role
from commcredits.domain.errors import DomainError, ErrorKind, conflict, invalid, not_found
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
    """The key's principal; None for an unknown or revoked key."""
    row = uow.access.api_key_by_hash(hash_key(key))
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.id, Role(row.role), row.tenant_id)


KEY_USE_EVERY = timedelta(minutes=1)  # "last used" is exact to this


def bearer_key(header: str) -> str:
    """The API key of an ``Authorization: Bearer`` header; 401 ``unauthorized`` without."""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise DomainError("unauthorized", "send Authorization: Bearer <api key>",
                          ErrorKind.UNAUTHORIZED)
    return key.strip()


def unknown_key() -> DomainError:
    return DomainError("unauthorized", "unknown or revoked API key", ErrorKind.UNAUTHORIZED)


def key_use_due(used: dict[str, float], key_id: str) -> bool:
    """Whether this process should record a use of ``key_id`` now (at most once a minute per
    key and process; ``used`` is the process's memory of when it last did)."""
    now = time.monotonic()
    last = used.get(key_id)
    if last is not None and now - last < KEY_USE_EVERY.total_seconds():
        return False
    if len(used) > 10_000:
        used.clear()
    used[key_id] = now
    return True


def record_key_use(uow: UnitOfWork, key_id: str) -> None:
    """Set the key's ``last_used_at`` to now unless it was set less than a minute ago."""
    uow.access.touch_api_key(key_id, uow.now, uow.now - KEY_USE_EVERY)


def key_view(row: Any) -> dict[str, Any]:
    """An API key as the API and the operator console show it (never the key itself)."""
    return {"id": row.id, "role": row.role, "tenant_id": row.tenant_id,
            "created_at": row.created_at, "last_used_at": row.last_used_at,
            "revoked_at": row.revoked_at}


def list_api_keys(uow: UnitOfWork, tenant_id: str | None = None) -> list[dict[str, Any]]:
    if tenant_id is not None:
        get_tenant(uow, tenant_id)
    return [key_view(r) for r in uow.access.api_keys(tenant_id)]


def revoke_api_key(uow: UnitOfWork, key_id: str,
                   tenant_id: str | None = None) -> dict[str, Any]:
    """Revoke a key at once (its next request answers 401). ``tenant_id``: only a key of that
    tenant may be revoked (others are not found). Revoking a revoked key changes nothing."""
    row = uow.access.api_key(key_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise not_found("api key", key_id)
    if row.revoked_at is None:
        uow.access.revoke_api_key(key_id, uow.now)
        audit.record(uow, row.tenant_id, "api_key.revoke", key_id, {"role": row.role},
                     {"revoked": True})
        row = uow.access.api_key(key_id)
    return key_view(row)


# -- console sign-in throttle -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Failed sign-ins within ``window``, counted so that an attacker can neither guess freely
    nor lock the real admin out:

    * per client and account (``pair``, 5): one client guessing one password;
    * per client (``client``, 20): one client spraying many emails;
    * per account from every client (``account``, 100): a distributed guess, slowed only
      far above what locks one client out; it does not hold a browser that signed in to the
      account before (its device cookie, OWASP), so a distributed guess cannot lock the owner
      out;
    * per device cookie (``device``, 10): such a browser instead, wherever it connects from.

    The client is the connection's address (``X-Forwarded-For`` only from the configured
    trusted proxies). Counted in the database (``login_failures``), so every process and
    instance sees them."""

    pair: int = 5
    client: int = 20
    account: int = 100
    device: int = 10
    window: timedelta = timedelta(minutes=15)

    def keys(self, client: str, account: str, device: str | None = None) -> dict[str, str]:
        """The counters a sign-in of ``account`` from ``client`` is held by (``device``: the
        nonce of a valid device cookie for that account)."""
        keys = {"pair": f"pair:{client}|{account}"[:500], "client": f"client:{client}"[:500]}
        if device is None:
            keys["account"] = f"account:{account}"[:500]
        else:
            keys["device"] = f"device:{device}"[:500]
        return keys


SIGN_IN = SignInLimits()


def sign_in_wait_s(uow: UnitOfWork, client: str, account: str, now: datetime,
                   limits: SignInLimits = SIGN_IN, *, device: str | None = None) -> int:
    """Seconds before ``client`` may try ``account`` again (0: now)."""
    keys = limits.keys(client, account, device)
    seen = uow.access.recent_failures(list(keys.values()), now - limits.window)
    waits = [0]
    for kind, key in keys.items():
        n, oldest = seen.get(key, (0, now))
        if n >= getattr(limits, kind):
            waits.append(int((oldest + limits.window - now).total_seconds()) + 1)
    return max(waits)


def sign_in_failed(uow: UnitOfWork, client: str, account: str, now: datetime,
                   limits: SignInLimits = SIGN_IN, *, device: str | None = None) -> None:
    uow.access.forget_failures(before=now - limits.window)  # what no longer counts
    uow.access.add_failures(list(limits.keys(client, account, device).values()), now)


def sign_in_succeeded(uow: UnitOfWork, client: str, account: str,
                      limits: SignInLimits = SIGN_IN, *, device: str | None = None) -> None:
    keys = limits.keys(client, account, device)
    uow.access.forget_failures(keys["pair"])
    if "device" in keys:
        uow.access.forget_failures(keys["device"])


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
