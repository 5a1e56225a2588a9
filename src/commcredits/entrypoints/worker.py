"""The in-process job runner used by ``commcredits serve``: runs every due job each interval.

Jobs are idempotent and lock per tenant; on top of that only the process holding the jobs
lease (:mod:`commcredits.entrypoints.lease`) runs them, so ``serve --workers N`` runs them
once, not N times.
"""

from __future__ import annotations

import logging
import threading

from commcredits.entrypoints.lease import JobsLease
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import jobs

log = logging.getLogger(__name__)


class JobThread(threading.Thread):
    def __init__(self, rt: Runtime, interval_s: float) -> None:
        super().__init__(name="commcredits-jobs", daemon=True)
        self.rt = rt
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.lease = JobsLease(rt.db.engine)

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                if not self.lease.hold():
                    continue  # another worker of this database runs them
                done = jobs.run(self.rt.jobs())
                if any(done.values()):
                    log.info("jobs ran: %s", done)
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("background jobs failed")

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.lease.release()
