"""Operator set-up: tenants (and their SIP domains) and API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from commcredits.domain.access import TENANT_ROLES, Action, Principal, Role, authorize, forbidden
from commcredits.entrypoints.api import views
from commcredits.entrypoints.api.deps import caller, read, write
from commcredits.entrypoints.api.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    SipDomainsIn,
    TenantIn,
    TenantPatch,
)
from commcredits.services import access, switching, tenants

router = APIRouter(prefix="/v1", tags=["operator"])


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantIn, request: Request,
                  who: Principal = Depends(caller)) -> JSONResponse:
    """Create a tenant; its currency follows its country (CLDR) unless given."""
    authorize(who, Action.OPERATE)
    return write(request, who, lambda uow, _: views.tenant(tenants.create_tenant(
        uow, body.name, body.country, body.commerce, body.currency)), body, 201)


@router.get("/tenants")
def list_tenants(request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.OPERATE)
    return read(request, lambda uow: [views.tenant(t) for t in uow.tenants.list()])


@router.get("/tenants/{tid}")
def get_tenant(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)
    return read(request, lambda uow: views.tenant(tenants.get_tenant(uow, tid)))


@router.patch("/tenants/{tid}")
def patch_tenant(tid: str, body: TenantPatch, request: Request,
                 who: Principal = Depends(caller)) -> JSONResponse:
    """Change the commerce model (operator; legacy → nce requires auto-recharge off), the
    toll-fraud guardrails ``allow_premium``, ``blocked_prefixes`` and ``user_daily_cap`` and
    pay-as-you-go ``overage_enabled`` (operator or the tenant's global admin), and the
    ``no_rate`` policy for calls no rate prices, ``free`` or ``block`` (operator)."""
    operator_only = body.commerce is not None or body.no_rate is not None
    authorize(who, Action.OPERATE if operator_only else Action.ADMINS, tid)

    def work(uow: Any, _: str | None) -> dict[str, Any]:
        if body.commerce is not None:
            tenants.change_commerce(uow, tid, body.commerce)
        cap = body.user_daily_cap if "user_daily_cap" in body.model_fields_set \
            else tenants.KEEP
        return views.tenant(tenants.set_call_policy(
            uow, tid, body.allow_premium, body.blocked_prefixes, cap,
            overage_enabled=body.overage_enabled, no_rate=body.no_rate))
    return write(request, who, work, body)


@router.get("/tenants/{tid}/sip-domains")
def get_sip_domains(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    """The SIP domains that name this tenant when a switch sends no ``tenant_id``."""
    authorize(who, Action.READ, tid)
    return read(request, lambda uow: switching.sip_domains(uow, tid))


@router.put("/tenants/{tid}/sip-domains")
def put_sip_domains(tid: str, body: SipDomainsIn, request: Request,
                    who: Principal = Depends(caller)) -> JSONResponse:
    """Replace the tenant's SIP domains (operator). A domain names one tenant only (409)."""
    authorize(who, Action.OPERATE)
    return write(request, who, lambda uow, _: switching.set_sip_domains(uow, tid, body.domains),
                 body)


@router.post("/api-keys", status_code=201)
def create_api_key(body: ApiKeyIn, request: Request,
                   who: Principal = Depends(caller)) -> JSONResponse:
    """Create a key; the answer is the only time the key is shown. Operators create any key;
    a tenant's global admin creates tenant-role keys for its own tenant."""
    if who.role is not Role.OPERATOR:
        if Role(body.role) not in TENANT_ROLES:
            raise forbidden(f"the {who.role} role may not create {body.role} keys")
        authorize(who, Action.ADMINS, body.tenant_id or who.tenant_id)
    tenant_id = body.tenant_id if who.role is Role.OPERATOR else (body.tenant_id or who.tenant_id)

    def work(uow: Any, _: str | None) -> dict[str, Any]:
        key_id, key, role = access.create_api_key(uow, body.role, tenant_id)
        return {"id": key_id, "key": key, "role": role.value, "tenant_id": tenant_id}
    return write(request, who, work, body, 201, secret_fields=("key",))


def _keys_tenant(who: Principal, tenant_id: str | None) -> str | None:
    """Whose keys the caller may list or revoke: an operator any (``tenant_id`` narrows the
    list), a tenant's global admin only its own tenant's."""
    if who.role is Role.OPERATOR:
        return tenant_id
    authorize(who, Action.ADMINS, tenant_id or who.tenant_id)
    return who.tenant_id


@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_api_keys(request: Request, tenant_id: str | None = Query(
        None, description="only this tenant's keys (operator)"),
        who: Principal = Depends(caller)) -> Any:
    """API keys, newest first, with when each was last used (exact to the minute) and
    whether it was revoked. Operators see every key; a tenant's global admin its tenant's."""
    scope = _keys_tenant(who, tenant_id)
    return read(request, lambda uow: access.list_api_keys(uow, scope))


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
def revoke_api_key(key_id: str, request: Request,
                   who: Principal = Depends(caller)) -> JSONResponse:
    """Revoke a key: from now on it answers 401 `unauthorized`, on every instance. Operators
    revoke any key; a tenant's global admin its own tenant's (others answer 404). Revoking a
    revoked key changes nothing and answers the key again."""
    scope = _keys_tenant(who, None)
    return write(request, who, lambda uow, _: access.revoke_api_key(uow, key_id, scope))
