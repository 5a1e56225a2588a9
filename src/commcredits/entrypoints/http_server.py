"""How ``serve`` runs uvicorn: fast (httptools + uvloop), and so that no client can make it
refuse everyone.

uvicorn closes an idle keep-alive connection after ``keep_alive_s``, but a connection that
never finishes its request (silent after connecting, headers dribbled a byte at a time, a
body sent slowly) is kept forever, and every open connection counts against
``limit_concurrency``: a few thousand slow connections made uvicorn answer 503 to every
switch. :class:`GuardedHttpToolsProtocol` therefore

* gives every request a deadline (``COMMCREDITS_REQUEST_TIMEOUT_S``): from its first byte (or
  the connection) until the whole request, headers and body, has arrived; past it the
  connection is closed;
* refuses a request head larger than :data:`MAX_HEAD_BYTES` (431, then closes);
* counts only requests being answered against ``limit_concurrency`` (503 beyond it), not
  connections still sending theirs;
* caps the connections one client address may hold open at once
  (``COMMCREDITS_MAX_CONNECTIONS_PER_CLIENT``, per process): the next ones are closed at once.

The switch's own requests (authorize, answer, interim, end, SMS: ``entrypoints.api.front``)
are answered by the protocol itself: the body goes to the charging engine as soon as it has
arrived, and the answer leaves in one write when the engine's batch has committed, without
an ASGI cycle, a task or the web framework's layers per request. The connection reads
nothing more meanwhile (a switch sends one request at a time). Anything doubtful (a body that
does not validate, an error that is not the request's own, a query string, percent-encoded
paths, chunked bodies, ``Expect``) goes the ASGI way, to the same application as every other
request, with the same limits.

A production front (docs/production.md) should enforce the same limits earlier.
"""

from __future__ import annotations

import asyncio
import time
from functools import lru_cache
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from commcredits.config import Settings
from commcredits.entrypoints.api.front import (
    Answer,
    Route,
    SwitchFront,
    answer_of,
    engine_request,
    is_json,
    route_of,
)

MAX_HEAD_BYTES = 16 * 1024  # request line and headers


@lru_cache(maxsize=1)
def _configured() -> Settings:
    """The settings as this process sees them (read once)."""
    return Settings()


_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
              b"content-length: 32\r\nconnection: close\r\n\r\nrequest header fields too large\n")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Used as is by ``serve --workers N`` (worker processes import it by name), so it reads
    its limits from the environment; :func:`uvicorn_options` pins them in a subclass."""

    request_timeout_s: ClassVar[int | None] = None
    max_per_client: ClassVar[int | None] = None
    active_limit: ClassVar[int | None] = None
    _per_client: ClassVar[dict[str, int]] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        cls = type(self)
        if cls.request_timeout_s is None:
            s = _configured()
            cls.request_timeout_s, cls.max_per_client = s.request_timeout_s, \
                s.max_connections_per_client
            cls.active_limit = s.limit_concurrency
        super().connection_made(transport)
        self.limit_concurrency = None  # uvicorn's own check counts idle connections too
        self._front = _front_of(self.app)
        self._fast: tuple[Route, str | None, str, bool] | None = None
        self._fast_body: list[bytes] = []
        self._pending = False  # a request of this connection is with the engine
        self._close_after = False
        self._deadline: asyncio.TimerHandle | None = None
        self._receiving = False  # a request has begun and has not fully arrived
        self._head = 0  # bytes of the request head so far (None once complete)
        host = self.client[0] if self.client else ""
        self._host = host
        held = cls._per_client.get(host, 0)
        if cls.max_per_client is not None and held >= cls.max_per_client:
            self._host = None
            transport.close()
            return
        cls._per_client[host] = held + 1
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if getattr(self, "_host", None) is not None:
            held = type(self)._per_client
            left = held.get(self._host, 1) - 1
            if left > 0:
                held[self._host] = left
            else:
                held.pop(self._host, None)
            self._host = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        """A request begins: it must have arrived whole within the timeout. One timer per
        connection, looked at when it fires (not a timer per request)."""
        self._receiving = True
        self._since = self.loop.time()
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout_s or 30,
                                                  self._late)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if not self._receiving or self.transport.is_closing():
            return  # between requests: the keep-alive timeout is uvicorn's
        timeout = self.request_timeout_s or 30
        waited = self.loop.time() - self._since
        if waited < timeout:  # a later request, begun since: its own time is not up yet
            self._deadline = self.loop.call_later(timeout - waited, self._late)
            return
        self.logger.info("closing a connection that did not send its request within %s s",
                         self.request_timeout_s)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._receiving:  # the next request on a kept-alive connection begins
            self._arm()
            self._head = 0
        if self._head is not None:
            self._head += len(data)
            if self._head > MAX_HEAD_BYTES:
                self.transport.write(_TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        if not self._receiving:  # a request pipelined behind the last one
            self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._head = None  # type: ignore[assignment]
        self._fast = self._switch_request()
        if self._fast is not None:  # answered here (see the module's docstring)
            self._fast_body = []
            return
        limit = type(self).active_limit
        # 503 only when as many requests are being answered as the limit allows
        self.limit_concurrency = 0 if limit is not None and len(self.tasks) >= limit else None
        super().on_headers_complete()
        self.limit_concurrency = None

    def on_body(self, body: bytes) -> None:
        if self._fast is not None:
            self._fast_body.append(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._receiving = False  # the whole request is in
        if self._fast is not None:
            self._decide()
            return
        super().on_message_complete()

    # -- the switch's requests --------------------------------------------------------------
    def _switch_request(self) -> tuple[Route, str | None, str, bool] | None:
        """(route, call id of the path, Authorization, keep alive) of a request this
        protocol answers itself, or None."""
        front = self._front
        if front is None or self.parser.get_method() != b"POST" or b"?" in self.url \
                or b"%" in self.url or not self.url.isascii():
            return None
        found = route_of(self.url.decode("ascii"))
        if found is None:
            return None
        auth, json, length = "", False, -1
        for name, value in self.headers:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"content-type":
                json = is_json(value.decode("latin-1"))
            elif name == b"authorization":
                auth = value.decode("latin-1")
            elif name in (b"transfer-encoding", b"expect"):
                return None
        if not json or length < 0 or length > front.max_body_bytes:
            return None
        keep_alive = self.parser.get_http_version() == "1.1" and self.parser.should_keep_alive()
        return found[0], found[1], auth, keep_alive

    def _decide(self) -> None:
        assert self._fast is not None and self._front is not None
        route, call_id, auth, keep_alive = self._fast
        body = b"".join(self._fast_body)
        self._fast, self._fast_body = None, []
        request = engine_request(route, call_id, body, auth)
        if request is None:
            self._to_application(body)
            return
        started = time.perf_counter()
        self.flow.pause_reading()  # one request at a time on this connection
        self._pending = True
        self._front.engine.submit(request, lambda: self._answer(
            route, request, body, keep_alive, started), self.loop)

    def _answer(self, route: Route, request: Any, body: bytes, keep_alive: bool,
                started: float) -> None:
        self._pending = False
        if self.transport.is_closing():
            return
        answer = answer_of(route, request)
        if answer is None:  # not the request's own error: the application answers it
            self._to_application(body)
            return
        keep_alive = keep_alive and not self._close_after
        self.transport.write(_response(answer, self.server_state.default_headers, keep_alive))
        assert self._front is not None
        self._front.record("POST", route.name, answer.status, time.perf_counter() - started)
        if not keep_alive:
            self.transport.close()
            return
        self.on_response_complete()  # keep-alive timer, reading resumed

    def _to_application(self, body: bytes) -> None:
        """Hand the request (headers parsed, ``body`` read) to the ASGI application, as
        uvicorn would have."""
        self.flow.resume_reading()
        super().on_headers_complete()
        cycle = self.cycle
        cycle.body = body
        cycle.more_body = False
        cycle.message_event.set()

    def shutdown(self) -> None:
        if self._pending:  # answered first, then closed
            self._close_after = True
            return
        super().shutdown()


def _front_of(app: Any) -> SwitchFront | None:
    """The switch front of the application uvicorn serves (under its own wrappers)."""
    for _ in range(8):
        state = getattr(app, "state", None)
        front = getattr(state, "switch_front", None) if state is not None else None
        if isinstance(front, SwitchFront):
            return front
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _response(answer: Answer, defaults: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    """The whole response in one buffer (one write, one TCP segment)."""
    parts = [STATUS_LINE[answer.status]]
    for name, value in defaults:
        parts += [name, b": ", value, b"\r\n"]
    for name, value in answer.headers:
        parts += [name, b": ", value, b"\r\n"]
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts += [b"content-type: application/json\r\ncontent-length: ",
              str(len(answer.body)).encode(), b"\r\n\r\n", answer.body]
    return b"".join(parts)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``serve`` passes to ``uvicorn.run``."""
    protocol = type("GuardedHttpTools", (GuardedHttpToolsProtocol,), {
        "request_timeout_s": settings.request_timeout_s,
        "max_per_client": settings.max_connections_per_client,
        "active_limit": settings.limit_concurrency, "_per_client": {}})
    # X-Forwarded-For is believed only from COMMCREDITS_TRUSTED_PROXIES, by the application
    # (api.app): uvicorn's own default would trust it from 127.0.0.1
    return {"http": protocol, "loop": "uvloop", "timeout_keep_alive": settings.keep_alive_s,
            "access_log": settings.access_log, "proxy_headers": False}
