"""Request plumbing: the runtime, the caller, and running a service call in a transaction
(with ``Idempotency-Key`` handling for writes)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.domain import text
from commcredits.domain.access import Principal
from commcredits.domain.errors import DomainError, conflict
from commcredits.entrypoints.api.schemas import Body
from commcredits.entrypoints.metrics import job_failed
from commcredits.entrypoints.runtime import Runtime
from commcredits.services.access import (
    authenticate,
    bearer_key,
    key_use_due,
    record_key_use,
    unknown_key,
)
from commcredits.services.audit import Actor


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


_USED: dict[str, float] = {}  # key id → when this process last recorded its use (monotonic)


def caller(request: Request) -> Principal:
    """The API key's principal. 401 ``unauthorized`` when missing, unknown or revoked.

    The key is looked up on every request (one indexed read), so a revoked key answers 401
    at once on every process and instance. Its ``last_used_at`` is written at most once a
    minute per key and process (and at most once a minute between processes: the update is
    conditional), so the hot telephony path does not pay a write per request.
    """
    return principal(runtime(request), request.headers.get("authorization", ""))


def principal(rt: Runtime, header: str) -> Principal:
    """The principal of an ``Authorization`` header's API key (see ``caller``)."""
    key = bearer_key(header)
    db = rt.db
    with db.uow(single=True) as uow:  # one round trip
        who = authenticate(uow, key)
    if who is None:
        raise unknown_key()
    if key_use_due(_USED, who.id):
        with db.uow() as uow:
            record_key_use(uow, who.id)
            uow.commit()
    return who


def read(request: Request, work: Callable[[UnitOfWork], Any]) -> Any:
    with runtime(request).db.uow(readonly=True) as uow:
        return jsonable_encoder(work(uow))


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, checked against the identifier policy."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    problem = text.id_problem(key.strip(), 200)
    if problem:
        raise DomainError("validation_error", f"Idempotency-Key {problem}")
    return key.strip()


def request_fingerprint(request: Request, body: Body | None) -> str:
    """What identifies a request for Idempotency-Key matching (stored hashed)."""
    return hashlib.sha256(f"{request.method} {request.url.path} "
                          f"{body.fingerprint() if body is not None else ''}".encode()
                          ).hexdigest()


def write(request: Request, who: Principal, work: Callable[[UnitOfWork, str | None], Any],
          body: Body | None = None, status_code: int = 200,
          secret_fields: tuple[str, ...] = ()) -> JSONResponse:
    """Run ``work`` in one transaction and commit.

    With an ``Idempotency-Key`` header the key is claimed inside the same transaction: a
    repeat returns the stored first answer and changes nothing; a concurrent repeat waits for
    the first to finish; the same key with a different request is refused. An error rolls
    the claim back too, so a failed request can be retried with its key. ``secret_fields``
    (a new API key) are never stored: a replay answers them as null.
    """
    key = idempotency_key(request)
    fingerprint = request_fingerprint(request, body)
    # keys are the tenant's (any of its keys or admins may retry), else the caller's
    scope = (request.path_params.get("tid") or who.tenant_id or who.id)[:60]
    with runtime(request).db.uow() as uow:
        uow.actor = Actor.of(who, "api")
        if key is not None and not uow.access.claim_idempotency_key(scope, key, fingerprint,
                                                                       uow.now):
            record = uow.access.idempotency_record(scope, key)
            assert record is not None
            if record.request_hash != fingerprint:
                raise conflict("idempotency_key_reused",
                               "this Idempotency-Key was used for a different request")
            return JSONResponse(json.loads(record.response_body), record.status_code,
                                headers={"Idempotent-Replayed": "true"})
        payload = jsonable_encoder(work(uow, key))
        started = sorted(uow.recharges_requested)
        cut_ids = sorted(uow.cuts_requested)
        if key is not None:
            stored = {k: (None if k in secret_fields else v) for k, v in payload.items()} \
                if isinstance(payload, dict) else payload
            uow.access.complete_idempotency_key(scope, key, status_code, json.dumps(stored))
        uow.commit()
    rt = runtime(request)
    run_recharges(rt, started)
    push_cuts(rt, cut_ids)
    return JSONResponse(payload, status_code)


def run_recharges(rt: Runtime, tenant_ids: list[str]) -> None:
    """Run the auto-recharges a committed change started, right away; the ``recharge`` job
    retries whatever fails or is interrupted here."""
    from commcredits.services import recharge
    for tenant_id in tenant_ids:
        try:
            recharge.run_due(rt.db, rt.gateway, rt.settings.max_recharges_per_day, tenant_id)
        except DomainError:
            pass
        except Exception as exc:  # the request's own work is committed: answer it anyway
            job_failed("recharge", tenant_id, exc)


def push_cuts(rt: Runtime, cut_ids: list[str]) -> None:
    """Tell the switches about calls a committed change cut, without making the caller wait
    (the ``cuts`` job retries whatever fails here)."""
    if not cut_ids:
        return
    from commcredits.services import cuts
    threading.Thread(target=cuts.deliver, args=(rt.db, rt.switch, cut_ids), daemon=True,
                     name="push-cuts").start()
