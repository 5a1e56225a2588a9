"""Cuts of Diameter calls: an Abort-Session-Request to the peer of the call's session.

:class:`DiameterCuts` is the process's ``SwitchNotifier`` (``Runtime.switch``) when it
serves Diameter: a call of a Credit-Control session (``ro:`` call ids) is cut by ASR, any
other call by the webhook it had before. It is called from any thread (the cuts outbox
delivers outside the event loop) and waits for the ASA; what fails is retried by the outbox.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from commcredits.charging import ro

if TYPE_CHECKING:
    from commcredits.entrypoints.diameter.server import DiameterServer
    from commcredits.services.ports import SwitchNotifier

GONE = {ro.Code.SUCCESS, ro.Code.UNKNOWN_SESSION_ID}  # delivered, or the session is over


class DiameterCuts:
    def __init__(self, server: DiameterServer, fallback: SwitchNotifier | None) -> None:
        self.server = server
        self.fallback = fallback

    def cut(self, call_id: str, tenant_id: str, reason: str) -> None:
        if not call_id.startswith(ro.CALL_PREFIX):
            if self.fallback is None:
                raise OSError("no cut webhook is configured for calls outside Diameter")
            self.fallback.cut(call_id, tenant_id, reason)
            return
        loop = self.server.loop
        if loop is None:
            raise OSError("the Diameter server is not running")
        future = asyncio.run_coroutine_threadsafe(self.server.abort(call_id), loop)
        try:
            code = future.result(timeout=self.server.config.answer_timeout_s + 1)
        except LookupError as e:
            raise OSError(str(e)) from None
        except TimeoutError:
            raise OSError("no Abort-Session-Answer in time") from None
        if code not in GONE:
            raise OSError(f"the peer answered the ASR with {code}")
