"""Users, licenses and seats, numbers, billing contacts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from commcredits.adapters.db.repositories.directory import User
from commcredits.domain import licensing, numbers, tenancy
from commcredits.domain.errors import DomainError, conflict, invalid, not_found
from commcredits.domain.text import guid
from commcredits.services import audit
from commcredits.services.ids import new_id
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork

NUMBER_TYPES = ("user", "toll", "toll_free")


def add_seats(uow: UnitOfWork, tenant_id: str, sku: str, quantity: int) -> tuple[str, int, int]:
    get_tenant(uow, tenant_id)
    item = licensing.sku(sku)
    if item.free_unlimited:
        raise invalid("validation_error", f"{sku} is free with unlimited seats; no subscription")
    if quantity < 1:
        raise invalid("validation_error", "quantity must be at least 1")
    before = uow.directory.seats(tenant_id, sku)[0]
    uow.directory.add_seats(tenant_id, sku, quantity, uow.postgres)
    qty, used = uow.directory.seats(tenant_id, sku)
    audit.record(uow, tenant_id, "seats.add", sku, {"quantity": before}, {"quantity": qty})
    return sku, qty, used


def create_user(uow: UnitOfWork, tenant_id: str, upn: str, display_name: str,
                usage_location: str, phone_number: str | None,
                aad_object_id: str | None = None) -> User:
    """A user of the tenant; ``aad_object_id`` is its Entra ID (Azure AD) object id, the
    GUID the usage exports show in their ``AAD ObjectId`` column."""
    get_tenant(uow, tenant_id)
    upn = upn.strip()
    if "@" not in upn or len(upn) < 3 or " " in upn:
        raise invalid("validation_error", f"upn {upn!r} must look like name@domain")
    location = tenancy.check_country(usage_location, field="usage_location")
    number = normalize_number(phone_number, field="phone_number") if phone_number else None
    if uow.directory.upn_taken(tenant_id, upn):
        raise conflict("already_exists", f"user {upn!r} already exists")
    object_id = guid(aad_object_id, "aad_object_id") if aad_object_id else None
    if object_id and uow.directory.aad_object_id_taken(tenant_id, object_id):
        raise conflict("already_exists", f"another user has aad_object_id {object_id}")
    user = User(new_id("usr"), tenant_id, upn, display_name.strip() or upn, location, number,
                frozenset(), object_id)
    uow.directory.add_user(user, uow.now)
    audit.record(uow, tenant_id, "user.create", upn, None,
                 {"display_name": user.display_name, "usage_location": location,
                  **({"aad_object_id": object_id} if object_id else {})})
    return user


def get_user(uow: UnitOfWork, tenant_id: str, upn: str) -> User:
    get_tenant(uow, tenant_id)
    user = uow.directory.user(tenant_id, upn)
    if user is None:
        raise not_found("user", upn)
    return user


def assign_license(uow: UnitOfWork, tenant_id: str, upn: str, sku: str) -> tuple[User, bool]:
    """Give ``sku`` to a user. Returns (user, whether it was newly assigned)."""
    licensing.sku(sku)
    user = get_user(uow, tenant_id, upn)
    uow.directory.lock_seats(tenant_id, sku, uow.postgres)
    qty, used = uow.directory.seats(tenant_id, sku)
    if not licensing.check_assign(user.licenses, sku, qty - used, user.usage_location):
        return user, False
    uow.directory.assign(user, frozenset({sku}), uow.now)
    audit.record(uow, tenant_id, "license.assign", user.upn, sorted(user.licenses),
                 sorted(user.licenses | {sku}))
    return get_user(uow, tenant_id, upn), True


def remove_license(uow: UnitOfWork, tenant_id: str, upn: str, sku: str,
                   cascade: bool = False) -> User:
    user = get_user(uow, tenant_id, upn)
    to_remove = licensing.check_remove(user.licenses, sku, cascade=cascade)
    if to_remove:
        uow.directory.unassign(user, to_remove)
        from commcredits.services import cuts
        cuts.for_license_removal(uow, tenant_id, user.id, frozenset(to_remove))
        audit.record(uow, tenant_id, "license.remove", user.upn, sorted(user.licenses),
                     sorted(user.licenses - to_remove))
    return get_user(uow, tenant_id, upn)


@dataclass(frozen=True, slots=True)
class AssignResult:
    upn: str
    status: str  # assigned | already_assigned | error
    error: str | None = None
    message: str | None = None


def bulk_assign(run_one: Callable[[Callable[[UnitOfWork], AssignResult]], AssignResult],
                tenant_id: str, sku: str, upns: Iterable[str],
                progress: Callable[[AssignResult], None] | None = None) -> list[AssignResult]:
    """Assign ``sku`` to many users, one transaction each, a result per user.

    ``run_one`` runs a step in its own unit of work and commits it (the entry point supplies
    it), so one user's failure never undoes another's assignment.
    """
    licensing.sku(sku)
    results: list[AssignResult] = []
    for upn in upns:
        def step(uow: UnitOfWork, upn: str = upn) -> AssignResult:
            try:
                _, added = assign_license(uow, tenant_id, upn, sku)
            except DomainError as e:
                return AssignResult(upn, "error", e.code, e.message)
            return AssignResult(upn, "assigned" if added else "already_assigned")
        result = run_one(step)
        results.append(result)
        if progress:
            progress(result)
    return results


def eligible_upns(uow: UnitOfWork, tenant_id: str, sku: str) -> list[str]:
    """Users who do not hold ``sku`` yet and meet its prerequisites."""
    get_tenant(uow, tenant_id)
    licensing.sku(sku)
    out = []
    for user in uow.directory.users(tenant_id):
        if sku in user.licenses:
            continue
        if sku == licensing.CREDITS and not licensing.credits_prerequisite_met(user.licenses):
            continue
        out.append(user.upn)
    return out


def normalize_number(value: str, *, field: str = "number") -> str:
    """An E.164 number as given by an admin (``+`` required), normalized."""
    if not value.strip().startswith("+"):
        raise invalid("validation_error", f"{field} {value!r} must be E.164, starting with +")
    try:
        return numbers.classify(value).e164
    except DomainError:
        raise invalid("validation_error",
                      f"{field} {value!r} is not a possible phone number") from None


def add_number(uow: UnitOfWork, tenant_id: str, number: str, kind: str) -> dict[str, str]:
    get_tenant(uow, tenant_id)
    if kind not in NUMBER_TYPES:
        raise invalid("validation_error", f"type must be one of {', '.join(NUMBER_TYPES)}")
    e164 = normalize_number(number)
    if uow.directory.number(e164) is not None:
        raise conflict("already_exists", f"number {e164} is already assigned")
    uow.directory.add_number(tenant_id, e164, kind, uow.now)
    return {"number": e164, "type": kind, "tenant_id": tenant_id}


def set_billing_contacts(uow: UnitOfWork, tenant_id: str, emails: list[str]) -> list[str]:
    get_tenant(uow, tenant_id)
    unique = sorted({e.strip().lower() for e in emails})
    audit.record(uow, tenant_id, "billing_contacts.set", "billing contacts",
                 uow.directory.billing_contacts(tenant_id), unique)
    uow.directory.set_billing_contacts(tenant_id, unique)
    return unique
