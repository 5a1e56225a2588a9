"""What the engine is asked to do, and how each kind of request is decided on a batch.

A :class:`Request` is one switch request (authorize, answer, interim, end, SMS) or one CDR.
:func:`decide` runs it on a batch's unit of work with the charging rules of
``services.charging``, ``services.settlement`` and ``services.sms``: the same functions, in
the same order, whether the request is alone or one of hundreds. :func:`plan` says what a
request will read, so that the batch reads it for all its requests at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from commcredits.domain.access import Action, Principal, Role, authorize
from commcredits.domain.pools import month_of
from commcredits.services import access, charging, sms, switching

if TYPE_CHECKING:
    from commcredits.adapters.db.batch_store import LoadPlan
    from commcredits.adapters.db.uow import UnitOfWork


class Kind(StrEnum):
    AUTHORIZE = "authorize"
    ANSWER = "answer"
    INTERIM = "interim"
    END = "end"
    SMS = "sms"
    CDR = "cdr"


@dataclass(frozen=True, slots=True)
class Settings:
    """What deciding needs of the service's settings."""
    slice_s: int = 300
    auth_ttl_s: int = 120
    hold_s: float = 0.0  # fault tests only: how long a batch stays open before its commit


@dataclass(eq=False, slots=True)
class Request:
    """One request to the engine. ``auth``: the ``Authorization`` header, checked in the
    batch (the API key is read with the rest); or ``who``, a caller already checked."""
    kind: Kind
    body: dict[str, Any]
    auth: str | None = None
    who: Principal | None = None
    cdr: Cdr | None = None  # the call a CDR reports (``Kind.CDR``)
    deferred: str | None = None  # the tenant whose wallet it was put off for (engine)
    key_hash: str | None = field(default=None, init=False)
    # the outcome, set by the engine before the request is answered
    result: Any = None
    error: BaseException | None = None
    recharges: list[str] = field(default_factory=list)  # auto-recharges it started
    cuts: list[str] = field(default_factory=list)  # switch cuts it requested

    def __post_init__(self) -> None:
        if self.who is None and self.auth is not None:
            self.key_hash = _hash_of(self.auth)


@functools.lru_cache(maxsize=1024)
def _hash_of(header: str) -> str | None:
    """The stored hash of an ``Authorization: Bearer`` key (a switch sends the same header
    on every request; what the key may do is read in the batch every time)."""
    scheme, _, key = header.partition(" ")
    return access.hash_key(key.strip()) if scheme.lower() == "bearer" and key.strip() else None


@dataclass(frozen=True, slots=True)
class Cdr:
    """A call that already happened (a CDR): rated like a live call granted its talk."""
    line: int
    body: dict[str, Any]
    start: datetime
    duration_s: int


@dataclass(frozen=True, slots=True)
class CdrOutcome:
    status: str  # rated | blocked | duplicate | error
    end: dict[str, Any] | None = None  # the end answer, when rated
    detail: str | None = None


_OPEN = ("active", "expired")  # authorized, never ended


def plan(requests: list[Request], plan: LoadPlan, now: datetime) -> None:
    """Add to ``plan`` what ``requests`` will read."""
    hashes, tenants, call_ids, upns, msgs = (set(plan.key_hashes), set(plan.tenant_ids),
                                             set(plan.call_ids), set(plan.upns),
                                             set(plan.message_ids))
    months = set(plan.months) | {month_of(now)}
    for r in requests:
        if r.key_hash:
            hashes.add(r.key_hash)
        body = r.body
        if r.kind in (Kind.AUTHORIZE, Kind.SMS, Kind.CDR):
            tid = body.get("tenant_id")
            if tid:
                tenants.add(tid)
                for name in ("upn", "organizer_upn"):
                    if body.get(name):
                        upns.add((tid, str(body[name]).lower()))
            if r.kind is Kind.SMS:
                msgs.add(str(body["message_id"]))
                continue
            call_ids.add(str(body["call_id"]))
            if r.cdr is not None:
                months.add(month_of(r.cdr.start))
        else:
            call_ids.add(str(body["call_id"]))
    plan.key_hashes, plan.tenant_ids = sorted(hashes), sorted(tenants)
    plan.call_ids, plan.upns, plan.message_ids = sorted(call_ids), sorted(upns), sorted(msgs)
    plan.months = sorted(months)


def tenant_of(request: Request, call_tenants: dict[str, str]) -> str | None:
    """The tenant whose wallet ``request`` needs: named in its body, or the one of its call
    (``call_tenants``: call id → tenant)."""
    if request.kind in (Kind.AUTHORIZE, Kind.SMS, Kind.CDR):
        tid = request.body.get("tenant_id")
        return str(tid) if tid else None
    return call_tenants.get(str(request.body["call_id"]))


# -- deciding ---------------------------------------------------------------------------------
_USED: dict[str, float] = {}  # key id → when this process last recorded its use (monotonic)


def caller(uow: UnitOfWork, request: Request) -> Principal:
    """The request's principal: given, or its API key read in the batch (the same rule as
    ``entrypoints.api.deps.principal`` for every other route: looked up every time, so a
    revoked key is refused at once)."""
    if request.who is not None:
        return request.who
    access.bearer_key(request.auth or "")  # 401 without a Bearer key
    row = uow.access.api_key_by_hash(request.key_hash) if request.key_hash else None
    if row is None or row.revoked_at is not None:
        raise access.unknown_key()
    who = Principal(row.id, Role(row.role), row.tenant_id)
    if access.key_use_due(_USED, who.id):
        access.record_key_use(uow, who.id)
    return who


def decide(uow: UnitOfWork, request: Request, settings: Settings) -> Any:
    """Decide ``request`` on ``uow`` (a batch, or a unit of work of its own)."""
    who = caller(uow, request)
    body = request.body
    kind = request.kind
    if kind is Kind.AUTHORIZE:
        return _authorize(uow, who, body, settings)
    if kind is Kind.SMS:
        scope(who, body["tenant_id"])
        return sms.handle(uow, body)
    authorize(who, Action.TELEPHONY)
    if kind is Kind.CDR:
        assert request.cdr is not None
        return rate_cdr(uow, request.cdr)
    call_id = str(body["call_id"])
    if kind is Kind.END:
        return charging.end_call(uow, call_id, body["duration_s"], body.get("answered_at"))
    if kind is Kind.ANSWER:
        return charging.answer(uow, settings.slice_s, call_id, body.get("answered_at"))
    return charging.interim(uow, settings.slice_s, call_id, body["elapsed_s"],
                            body.get("answered_at"))


def scope(who: Principal, tenant_id: str) -> None:
    """A tenant's switch key acts for its own tenant only."""
    authorize(who, Action.TELEPHONY)
    if who.tenant_id is not None and who.tenant_id != tenant_id:
        authorize(who, Action.TELEPHONY, tenant_id)


def _authorize(uow: UnitOfWork, who: Principal, body: dict[str, Any],
               settings: Settings) -> dict[str, Any]:
    authorize(who, Action.TELEPHONY)
    tenant_id = body.get("tenant_id") or switching.resolve_tenant(
        uow, body["call_type"], body.get("from"), body.get("to"), body.get("sip_domain"))
    scope(who, tenant_id)
    decision = charging.authorize_call(uow, settings.slice_s, {**body, "tenant_id": tenant_id})
    if decision["decision"] == "allowed":
        decision = {**decision, "tenant_id": tenant_id, "auth_ttl_s": settings.auth_ttl_s}
    return decision


def stored(uow: UnitOfWork, request: Request, settings: Settings) -> Any:
    """The answer a concurrent twin of ``request`` committed first (same call or message
    id), or None: what a request that lost the id race answers."""
    body = request.body
    if request.kind is Kind.AUTHORIZE and body.get("tenant_id"):
        found = charging.stored_decision(uow, str(body["call_id"]), body["tenant_id"],
                                         settings.slice_s)
        if found is not None and found["decision"] == "allowed":
            found = {**found, "tenant_id": body["tenant_id"], "auth_ttl_s": settings.auth_ttl_s}
        return found
    if request.kind is Kind.SMS:
        return sms.stored_result(uow, body["message_id"], body["tenant_id"])
    if request.kind is Kind.CDR:
        return CdrOutcome("duplicate", detail="rated elsewhere")
    return None


def rate_cdr(uow: UnitOfWork, cdr: Cdr) -> CdrOutcome:
    """A CDR: a call the service never saw is authorized (granted its whole talk, since it
    happened) and ended at once; a call authorized live and never ended (the switch let it
    through when it could not reach us) is ended with the CDR's talk; any other call id is
    a duplicate. A refusal of the CDR's own (unknown tenant, say) is raised, as for a live
    call."""
    call_id = str(cdr.body["call_id"])
    known = uow.charging.call(call_id, lock=True)
    if known is not None and (known.status not in _OPEN
                              or known.tenant_id != cdr.body["tenant_id"]):
        return CdrOutcome("duplicate", detail="already rated")
    if known is not None:
        return CdrOutcome("rated", charging.end_call(uow, call_id, cdr.duration_s,
                                                     answered_at=cdr.start))
    decision = charging.authorize_call(uow, max(cdr.duration_s, 1), cdr.body, at=cdr.start,
                                       happened=True)
    if decision["decision"] == "blocked":
        outcome = CdrOutcome("blocked", detail=decision["reason"])
    else:
        outcome = CdrOutcome("rated", charging.end_call(uow, call_id, cdr.duration_s))
    return outcome
