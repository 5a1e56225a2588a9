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

A production front (docs/production.md) should enforce the same limits earlier.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from commcredits.config import Settings

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

    request_timeout_s: ClassVar[float | None] = None
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
        self._disarm()
        self._receiving = True
        self._deadline = self.loop.call_later(float(self.request_timeout_s or 30), self._late)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if self._receiving and not self.transport.is_closing():
            self.logger.info("closing a connection that did not send its request within "
                             "%s s", self.request_timeout_s)
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
        limit = type(self).active_limit
        # 503 only when as many requests are being answered as the limit allows
        self.limit_concurrency = 0 if limit is not None and len(self.tasks) >= limit else None
        super().on_headers_complete()
        self.limit_concurrency = None

    def on_message_complete(self) -> None:
        self._receiving = False
        self._disarm()  # the whole request is in
        super().on_message_complete()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``serve`` passes to ``uvicorn.run``."""
    protocol = type("GuardedHttpTools", (GuardedHttpToolsProtocol,), {
        "request_timeout_s": settings.request_timeout_s,
        "max_per_client": settings.max_connections_per_client,
        "active_limit": settings.limit_concurrency, "_per_client": {}})
    return {"http": protocol, "loop": "uvloop", "timeout_keep_alive": settings.keep_alive_s}
