"""How ``serve`` runs uvicorn so that no single client can make it refuse everyone.

uvicorn closes an idle keep-alive connection after ``keep_alive_s``, but a connection that
never finishes its request (silent after connecting, headers dribbled a byte at a time, or a
body sent slowly) is kept forever. ``GuardedH11Protocol`` gives every request a deadline:
from its first byte (or the connection) until the whole request has arrived. Past it, the
connection is closed. Beyond ``limit_concurrency`` connections uvicorn answers 503 at once.
A production front (docs/production.md) should enforce the same limits earlier.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from commcredits.config import Settings


@lru_cache(maxsize=1)
def configured_timeout_s() -> int:
    """``COMMCREDITS_REQUEST_TIMEOUT_S`` as this process sees it (read once)."""
    return Settings().request_timeout_s


class GuardedH11Protocol(H11Protocol):
    """Used as is by ``serve --workers N`` (worker processes import it by name), so it
    reads the timeout from the environment; ``uvicorn_options`` pins it in a subclass."""

    request_timeout_s: int | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.request_timeout_s is None:
            self.request_timeout_s = configured_timeout_s()
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            assert self._deadline is not None
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and \
                not self.transport.is_closing():
            self.logger.info("closing a connection that did not send its request within "
                             "%s s", self.request_timeout_s)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on a kept-alive connection begins
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the whole request is in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``serve`` passes to ``uvicorn.run``."""
    protocol = type("GuardedH11", (GuardedH11Protocol,),
                    {"request_timeout_s": settings.request_timeout_s})
    return {"http": protocol, "timeout_keep_alive": settings.keep_alive_s,
            "limit_concurrency": settings.limit_concurrency,
            "h11_max_incomplete_event_size": 16 * 1024}
