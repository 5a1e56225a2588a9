"""The lean route for the two requests of every call: ``POST /v1/calls`` and its end
(``POST /v1/calls/end``, ``POST /v1/calls/{call_id}/end``).

A switch sends these at line rate; going through FastAPI's router, dependency injection,
``BaseHTTPMiddleware`` and response machinery cost more CPU than the database work. This
ASGI layer (inside ``RequestGuard``, so the body limits still apply) answers them directly
with the very same functions the FastAPI routes call (``telephony.decide`` and
``telephony.settle_end``), the same request models (pydantic, from the JSON bytes) and the
same JSON encoding.

Only the happy path is served here. Anything else (not JSON, a validation error, a bad
key, a refusal raised as an error, any exception) is handed to the full application with
the body replayed, which answers it exactly as before. That is safe because the work is
one transaction that rolls back on error, and both requests are idempotent by call id: a
replay after a commit answers the stored decision or settlement.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commcredits.entrypoints.api.deps import principal
from commcredits.entrypoints.api.routes import telephony
from commcredits.entrypoints.api.schemas import CallEndByIdIn, CallEndIn, CallIn
from commcredits.entrypoints.runtime import Runtime

_END_PATH = re.compile(r"^/v1/calls/([^/]+)/end$")
Record = Callable[[str, str, int, float], None]  # (method, route, status, seconds)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _json(scope: Scope) -> bool:
    kind = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


class TelephonyFastPath:
    def __init__(self, app: ASGIApp, runtime: Runtime, record: Record) -> None:
        self.app = app
        self.rt = runtime
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body, rest = await _read(receive)
        if body is None:  # the client went away mid-request: let the app see that
            await self.app(scope, rest, send)
            return
        try:
            answer = await anyio.to_thread.run_sync(self._serve, scope, route, body)
        except Exception:
            answer = None
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        payload = json.dumps(answer, ensure_ascii=False, allow_nan=False,
                             separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(payload)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
        self.record("POST", route, 200, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _json(scope):
            return None
        path = scope["path"]
        if path in ("/v1/calls", "/v1/calls/end"):
            return str(path)
        return "/v1/calls/{call_id}/end" if _END_PATH.match(path) else None

    def _serve(self, scope: Scope, route: str, body: bytes) -> dict[str, Any] | None:
        """The answer, or None to leave the request to the full application."""
        who = principal(self.rt, _header(scope, b"authorization"))
        data = json.loads(body)  # then validated like FastAPI does: the parsed JSON
        if route == "/v1/calls":
            return telephony.decide(self.rt, who, CallIn.model_validate(data))
        if route == "/v1/calls/end":
            by_id = CallEndByIdIn.model_validate(data)
            return telephony.settle_end(self.rt, who, by_id.call_id, by_id)
        found = _END_PATH.match(scope["path"])
        assert found is not None
        return telephony.settle_end(self.rt, who, found.group(1), CallEndIn.model_validate(data))


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
