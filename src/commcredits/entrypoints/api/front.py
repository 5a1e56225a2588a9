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
exactly as before: a body that does not validate (its 422 comes from FastAPI, or from
``strict_json`` for a name sent twice, which orjson would silently keep one of), a call
without ``tenant_id`` (the route finds the tenant first), an answer without a body, an
error that is not the request's own. That is safe because a request the engine did not
answer committed nothing, and every one of these requests is idempotent by its id.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from commcredits.charging.requests import Kind, Request
from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.entrypoints.api.errors import STATUS, error_body
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
from commcredits.entrypoints.api.strict_json import has_duplicate_names, once, replayed
from commcredits.entrypoints.runtime import Runtime

Record = Callable[[str, str, int, float], None]  # (method, route, status, seconds)


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # as the metrics name it
    kind: Kind
    model: type[BaseModel]


_EXACT: dict[str, Route] = {
    "/v1/calls": Route("/v1/calls", Kind.AUTHORIZE, CallIn),
    "/v1/calls/end": Route("/v1/calls/end", Kind.END, CallEndByIdIn),
    "/v1/calls/answer": Route("/v1/calls/answer", Kind.ANSWER, AnswerByIdIn),
    "/v1/calls/interim": Route("/v1/calls/interim", Kind.INTERIM, InterimByIdIn),
    "/v1/sms": Route("/v1/sms", Kind.SMS, SmsIn),
}
_BY_PATH = re.compile(r"^/v1/calls/([^/]+)/(end|answer|interim)$")
_PATH_FORMS: dict[str, Route] = {
    "end": Route("/v1/calls/{call_id}/end", Kind.END, CallEndIn),
    "answer": Route("/v1/calls/{call_id}/answer", Kind.ANSWER, AnswerIn),
    "interim": Route("/v1/calls/{call_id}/interim", Kind.INTERIM, InterimIn),
}


def route_of(path: str) -> tuple[Route, str | None] | None:
    """The switch route of a POST to ``path`` (and the call id its path carries)."""
    exact = _EXACT.get(path)
    if exact is not None:
        return exact, None
    by_path = _BY_PATH.match(path)
    if by_path is None:
        return None
    return _PATH_FORMS[by_path.group(2)], by_path.group(1)


def is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


def engine_request(route: Route, call_id: str | None, body: bytes, auth: str) -> Request | None:
    """The engine request of a body that validates (None: leave it to the application).
    Parsed, then validated, as FastAPI does it (so a body is taken here exactly when the
    route would take it)."""
    try:
        raw = orjson.loads(body)
        if has_duplicate_names(body, raw):
            return None  # the application refuses it, naming the field (strict_json)
        parsed: Any = route.model.model_validate(raw)
    except (ValidationError, ValueError):
        return None
    data = parsed.model_dump(by_alias=True)
    if call_id is not None:
        data["call_id"] = call_id
    if route.kind is Kind.AUTHORIZE and not data.get("tenant_id"):
        return None  # the route finds the tenant from its numbers or SIP domain
    return Request(route.kind, data, auth=auth)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


_WWW_AUTHENTICATE = ((b"www-authenticate", b"Bearer"),)


def answer_of(route: Route, request: Request) -> Answer | None:
    """The HTTP answer of a decided request (None: not the request's own error; the
    application answers it)."""
    if request.error is not None:
        e = request.error
        if not isinstance(e, DomainError):
            return None
        extra = {"details": e.details} if e.details else {}
        return Answer(STATUS[e.kind], orjson.dumps(error_body(e.code, e.message, **extra)),
                      _WWW_AUTHENTICATE if e.kind is ErrorKind.UNAUTHORIZED else ())
    try:
        payload = orjson.dumps(request.result)
    except TypeError:
        return None
    if route.kind is Kind.AUTHORIZE:
        telephony.count_decision(request.result)
    elif route.kind is Kind.END:
        telephony.count_settled(request.result)
    elif route.kind is Kind.SMS:
        telephony.count_sms(request.result)
    return Answer(200, payload)


class SwitchFront:
    """What both ways in share: the runtime's engine and the request metrics."""

    def __init__(self, runtime: Runtime, record: Record) -> None:
        self.rt = runtime
        self.record = record
        self.max_body_bytes = runtime.settings.max_body_bytes

    @property
    def engine(self) -> Any:
        return self.rt.engine


class TelephonyFront:
    """The ASGI way in (what the test client and any ASGI server use; ``serve`` answers the
    same requests in its protocol, ``entrypoints.http_server``)."""

    def __init__(self, app: ASGIApp, front: SwitchFront) -> None:
        self.app = app
        self.front = front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, call_id = found
        started = time.perf_counter()
        body, rest = await _read(receive)
        if body is None:  # the client went away mid-request: let the app see that
            await self.app(scope, rest, send)
            return
        request = engine_request(route, call_id, body, _header(scope, b"authorization"))
        if request is None:
            await self.app(scope, replayed(body, receive), send)
            return
        with contextlib.suppress(Exception):  # the outcome is on the request
            await self.front.engine.ask_async(request)
        answer = answer_of(route, request)
        if answer is None:  # not the request's own: the application answers it
            await self.app(scope, replayed(body, receive), send)
            return
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(b"content-length", str(len(answer.body)).encode()),
                                (b"content-type", b"application/json"), *answer.headers]})
        await send({"type": "http.response.body", "body": answer.body})
        self.front.record("POST", route.name, answer.status, time.perf_counter() - started)

    def _route(self, scope: Scope) -> tuple[Route, str | None] | None:
        if scope["type"] != "http" or scope["method"] != "POST" or \
                not is_json(_header(scope, b"content-type")):
            return None
        return route_of(scope["path"])


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


async def _read(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None if the client disconnected first, with a receive that says so)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, once(message)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), receive
