"""The front door, before any route runs: what no request may carry.

* A body larger than ``max_body_bytes`` is refused with 413 ``payload_too_large``: at once
  from ``Content-Length``, or as soon as a chunked body passes the limit (never read whole).
* A path or query string with control characters (NUL and friends, after %-decoding) or
  invalid UTF-8 is refused with 422 ``validation_error``: such a value can be neither stored
  nor looked up, and PostgreSQL refuses NUL outright.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _bad_target(scope)
        if problem:
            await _answer(send, 422, _error("validation_error", problem))
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await _answer(send, 413, _too_large(self.max_body_bytes))
            return
        seen = 0
        started = answered = False

        async def limited_receive() -> Message:
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    # answer now and tell the app the client is gone: it stops reading
                    if not started:
                        await _answer(send, 413, _too_large(self.max_body_bytes))
                    answered = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 is already sent; whatever the app says now is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


def _too_large(limit: int) -> bytes:
    return _error("payload_too_large", f"the request body is larger than {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _bad_target(scope: Scope) -> str | None:
    raw_path: Any = scope.get("raw_path") or scope.get("path", "").encode()
    for part, what in ((raw_path, "path"), (scope.get("query_string", b""), "query")):
        try:
            decoded = unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError:
            return f"the {what} is not valid UTF-8"
        if _CONTROL.search(decoded):
            return f"the {what} contains control characters"
    return None


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
