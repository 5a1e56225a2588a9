"""The in-process job runner used by ``commcredits serve``: runs every due job each interval.

Jobs are idempotent and lock per tenant, so several service instances may each run one.
"""

from __future__ import annotations

import logging
import threading

from commcredits.entrypoints.runtime import Runtime
from commcredits.services import jobs

log = logging.getLogger(__name__)


class JobThread(threading.Thread):
    def __init__(self, rt: Runtime, interval_s: float) -> None:
        super().__init__(name="commcredits-jobs", daemon=True)
        self.rt = rt
        self.interval_s = interval_s
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                done = jobs.run(self.rt.jobs())
                if any(done.values()):
                    log.info("jobs ran: %s", done)
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("background jobs failed")

    def stop(self) -> None:
        self.stopping.set()
