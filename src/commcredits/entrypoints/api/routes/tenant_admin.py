"""Tenant administration: seats, users, licenses, numbers, billing contacts, console admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.domain.access import Action, Principal, authorize
from commcredits.entrypoints.api import views
from commcredits.entrypoints.api.deps import caller, read, runtime, write
from commcredits.entrypoints.api.schemas import (
    AdminIn,
    BulkAssignIn,
    ContactsIn,
    NumberIn,
    SubscriptionIn,
    UserIn,
)
from commcredits.services import access, directory
from commcredits.services.directory import AssignResult
from commcredits.services.tenants import get_tenant

router = APIRouter(prefix="/v1/tenants/{tid}", tags=["tenant administration"])


@router.post("/subscriptions", status_code=201)
def add_subscription(tid: str, body: SubscriptionIn, request: Request,
                     who: Principal = Depends(caller)) -> JSONResponse:
    """Add seats of a paid SKU (repeat to add more). Operator only: seats are bought from the
    operator (or its billing system), never granted by the tenant to itself."""
    authorize(who, Action.OPERATE, tid)
    return write(request, who, lambda uow, _: views.subscription(
        *directory.add_seats(uow, tid, body.sku, body.quantity)), body, 201)


@router.get("/subscriptions")
def list_subscriptions(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        get_tenant(uow, tid)
        return [views.subscription(*s) for s in uow.directory.subscriptions(tid)]
    return read(request, work)


@router.post("/users", status_code=201)
def create_user(tid: str, body: UserIn, request: Request,
                who: Principal = Depends(caller)) -> JSONResponse:
    authorize(who, Action.USERS, tid)
    return write(request, who, lambda uow, _: views.user(directory.create_user(
        uow, tid, body.upn, body.display_name, body.usage_location, body.phone_number,
        str(body.aad_object_id) if body.aad_object_id else None)),
        body, 201)


@router.get("/users")
def list_users(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        get_tenant(uow, tid)
        return [views.user(u) for u in uow.directory.users(tid)]
    return read(request, work)


@router.get("/users/{upn}")
def get_user(tid: str, upn: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)
    return read(request, lambda uow: views.user(directory.get_user(uow, tid, upn)))


@router.put("/users/{upn}/licenses/{sku}")
def assign_license(tid: str, upn: str, sku: str, request: Request,
                   who: Principal = Depends(caller)) -> JSONResponse:
    """Assign a license (a no-op if held). Errors: prerequisite_missing, no_seats_available,
    unknown_sku."""
    authorize(who, Action.USERS, tid)
    return write(request, who, lambda uow, _: views.user(
        directory.assign_license(uow, tid, upn, sku)[0]))


@router.delete("/users/{upn}/licenses/{sku}")
def remove_license(tid: str, upn: str, sku: str, request: Request, cascade: bool = False,
                   who: Principal = Depends(caller)) -> JSONResponse:
    """Remove a license. ``license_required_by`` when the credits license depends on it;
    ``cascade=true`` removes the credits license as well."""
    authorize(who, Action.USERS, tid)
    return write(request, who, lambda uow, _: views.user(
        directory.remove_license(uow, tid, upn, sku, cascade=cascade)))


@router.post("/licenses/assign")
def bulk_assign(tid: str, body: BulkAssignIn, request: Request,
                who: Principal = Depends(caller)) -> Any:
    """Assign one SKU to many users; one result per user (each committed on its own)."""
    authorize(who, Action.USERS, tid)
    db = runtime(request).db
    with db.uow() as uow:
        get_tenant(uow, tid)

    def run_one(step: Any) -> AssignResult:
        with db.uow() as uow:
            result: AssignResult = step(uow)
            uow.commit()
            return result
    results = directory.bulk_assign(run_one, tid, body.sku, body.upns)
    return {"results": [{"upn": r.upn, "status": r.status,
                         **({"error": r.error, "message": r.message} if r.error else {})}
                        for r in results]}


@router.post("/numbers", status_code=201)
def add_number(tid: str, body: NumberIn, request: Request,
               who: Principal = Depends(caller)) -> JSONResponse:
    authorize(who, Action.USERS, tid)
    return write(request, who, lambda uow, _: directory.add_number(uow, tid, body.number,
                                                                   body.type), body, 201)


@router.get("/numbers")
def list_numbers(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        get_tenant(uow, tid)
        return [{"number": n.number, "type": n.type} for n in uow.directory.numbers(tid)]
    return read(request, work)


@router.put("/billing-contacts")
def set_billing_contacts(tid: str, body: ContactsIn, request: Request,
                         who: Principal = Depends(caller)) -> JSONResponse:
    authorize(who, Action.BILLING, tid)
    return write(request, who, lambda uow, _: {"emails": directory.set_billing_contacts(
        uow, tid, [str(e) for e in body.emails])}, body)


@router.get("/billing-contacts")
def get_billing_contacts(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        get_tenant(uow, tid)
        return {"emails": uow.directory.billing_contacts(tid)}
    return read(request, work)


@router.post("/admins", status_code=201)
def add_admin(tid: str, body: AdminIn, request: Request,
              who: Principal = Depends(caller)) -> JSONResponse:
    """A person who signs in to the web console (``/login``) with a tenant role."""
    authorize(who, Action.ADMINS, tid)
    return write(request, who, lambda uow, _: access.add_admin(
        uow, tid, str(body.email), body.password, body.role), body, 201)
