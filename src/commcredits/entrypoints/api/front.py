"""The switch's requests, straight to the charging engine: authorize (``POST /v1/calls``),
answer, interim and end (each in its body and path forms) and ``POST /v1/sms``.

A switch sends these at line rate, one at a time per keep-alive connection. This ASGI layer
(inside ``RequestGuard``, so the body limits hold) answers them on the event loop: the body
is validated by the very request models the FastAPI routes use (pydantic, from the JSON
bytes), the request goes to the engine with its ``Authorization`` header (the API key is
read in the batch, with everything else), the loop waits for the batch to commit without
holding a thread, and the answer is encoded once (orjson). Refusals answer exactly as the
routes do (``errors.error_response``).

Anything else is handed to the full application with the body replayed, which answers it
exactly as before: a body that does not validate (its 422 comes from FastAPI), a call
without ``tenant_id`` (the route finds the tenant first), an answer without a body, an
error that is not the request's own. That is safe because a request the engine did not
answer committed nothing, and every one of these requests is idempotent by its id.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commcredits.charging.requests import Kind, Request
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.api.errors import error_response
from commcredits.entrypoints.api.routes import telephony
from commcredits.entrypoints.api.schemas import (
    AnswerByIdIn,
    AnswerIn,
    CallEndByIdIn,
    CallEndIn,
    CallIn,
    InterimByIdIn,
    InterimIn,
    SmsIn,
)
from commcredits.entrypoints.runtime import Runtime

Record = Callable[[str, str, int, float], None]  # (method, route, status, seconds)

#: path → (route as the metrics name it, what the engine does, the body's model)
_EXACT: dict[str, tuple[str, Kind, type[BaseModel]]] = {
    "/v1/calls": ("/v1/calls", Kind.AUTHORIZE, CallIn),
    "/v1/calls/end": ("/v1/calls/end", Kind.END, CallEndByIdIn),
    "/v1/calls/answer": ("/v1/calls/answer", Kind.ANSWER, AnswerByIdIn),
    "/v1/calls/interim": ("/v1/calls/interim", Kind.INTERIM, InterimByIdIn),
    "/v1/sms": ("/v1/sms", Kind.SMS, SmsIn),
}
_BY_PATH = re.compile(r"^/v1/calls/([^/]+)/(end|answer|interim)$")
_PATH_FORMS: dict[str, tuple[str, Kind, type[BaseModel]]] = {
    "end": ("/v1/calls/{call_id}/end", Kind.END, CallEndIn),
    "answer": ("/v1/calls/{call_id}/answer", Kind.ANSWER, AnswerIn),
    "interim": ("/v1/calls/{call_id}/interim", Kind.INTERIM, InterimIn),
}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _json(scope: Scope) -> bool:
    kind = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


class TelephonyFront:
    def __init__(self, app: ASGIApp, runtime: Runtime, record: Record) -> None:
        self.app = app
        self.rt = runtime
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, kind, model, call_id = found
        started = time.perf_counter()
        body, rest = await _read(receive)
        if body is None:  # the client went away mid-request: let the app see that
            await self.app(scope, rest, send)
            return
        request = _request(scope, kind, model, call_id, body)
        if request is None:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            answer = await self.rt.engine.ask_async(request)
            payload = orjson.dumps(answer)
        except DomainError as e:  # the request's own refusal: as the route answers it
            response = error_response(e)
            await response(scope, rest, send)
            self.record("POST", route, response.status_code, time.perf_counter() - started)
            return
        except Exception:  # not the request's own: the application answers it
            await self.app(scope, _replay(body, receive), send)
            return
        if kind is Kind.AUTHORIZE:
            telephony.count_decision(answer)
        elif kind is Kind.END:
            telephony.count_settled(answer)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(payload)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
        self.record("POST", route, 200, time.perf_counter() - started)

    def _route(self, scope: Scope) -> tuple[str, Kind, type[BaseModel], str | None] | None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _json(scope):
            return None
        path = scope["path"]
        exact = _EXACT.get(path)
        if exact is not None:
            return (*exact, None)
        by_path = _BY_PATH.match(path)
        if by_path is None:
            return None
        return (*_PATH_FORMS[by_path.group(2)], by_path.group(1))


def _request(scope: Scope, kind: Kind, model: type[BaseModel], call_id: str | None,
             body: bytes) -> Request | None:
    """The engine request of a body that validates (None: leave it to the application).
    Parsed, then validated, as FastAPI does it (so a body is taken here exactly when the
    route would take it)."""
    try:
        parsed: Any = model.model_validate(orjson.loads(body))
    except (ValidationError, ValueError):
        return None
    data = parsed.model_dump(by_alias=True)
    if call_id is not None:
        data["call_id"] = call_id
    if kind is Kind.AUTHORIZE and not data.get("tenant_id"):
        return None  # the route finds the tenant from its numbers or SIP domain
    return Request(kind, data, auth=_header(scope, b"authorization"))


async def _read(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None if the client disconnected first, with a receive that says so)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, _once(message)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), receive


def _once(message: Message) -> Receive:
    async def receive() -> Message:
        return message
    return receive


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the client's own events."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replay
