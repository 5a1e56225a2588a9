"""The in-process job runner used by ``commcredits serve``: runs every due job each interval,
in two loops that take turns on nothing.

* **urgent** (``jobs.URGENT``: lapsed authorizations and silent calls, then cuts): what
  releases money and ends calls whose money is gone. Its own thread, so a lapse is released
  within its TTL plus one interval however much bulk work there is.
* **bulk** (``jobs.BULK``: expiry, recharges, payments, pools, notifications, events): work
  in bounded chunks (``services.expiry``), committed as it goes.

Both look at the stop flag between rows and chunks: ``stop`` (SIGTERM: uvicorn's shutdown)
returns within about one chunk's time, and whatever was left is done by the next run. Jobs
are idempotent and lock what they change; on top of that only the process holding the jobs
lease (:mod:`commcredits.entrypoints.lease`) runs them, so ``serve --workers N`` runs them
once, not N times.
"""

from __future__ import annotations

import logging
import threading
import time

from commcredits.entrypoints.lease import JobsLease
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import jobs

log = logging.getLogger(__name__)


class JobThread:
    """The two job loops of one process and the lease they share."""

    def __init__(self, rt: Runtime, interval_s: float) -> None:
        self.rt = rt
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.lease = JobsLease(rt.db.engine)
        self._lease_lock = threading.Lock()  # the lease's connection is used by both loops
        self.threads = [threading.Thread(target=self._loop, args=(names,), daemon=True,
                                         name=f"commcredits-jobs-{kind}")
                        for kind, names in (("urgent", jobs.URGENT), ("bulk", jobs.BULK))]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _holds_lease(self) -> bool:
        with self._lease_lock:
            return self.lease.hold()

    def _loop(self, names: tuple[str, ...]) -> None:
        ctx = self.rt.jobs(stopping=self.stopping.is_set)
        while not self.stopping.wait(self.interval_s):
            try:
                if not self._holds_lease():
                    continue  # another worker of this database runs them
                done = jobs.run(ctx, names)
                if any(done.values()):
                    log.info("jobs ran: %s", done)
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("background jobs failed")

    def stop(self, timeout_s: float = 8) -> None:
        """Stop both loops: each finishes the chunk (or row) it is in, commits it, and
        returns; the lease goes when both have."""
        self.stopping.set()
        deadline = time.monotonic() + timeout_s  # for both loops together
        for thread in self.threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._lease_lock:
            self.lease.release()
