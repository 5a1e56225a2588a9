"""The charging engine: every request that waits is decided in one batch, committed once.

Life cycle of a batch (one engine per process, one thread):

1. **Gather.** Requests queue up while the previous batch runs. When it has committed, the
   engine takes every request waiting (at most :data:`CAP`). An idle engine starts a batch
   the moment a request arrives: no timer, no added wait.
2. **Read.** One :class:`~commcredits.charging.work.Batch` (one transaction) reads what the
   requests name in one round trip: the wallets locked in tenant order, then the calls,
   lots, tenants, users, messages and pool counters (``adapters.db.batch_store``).
3. **Decide.** Each request, in arrival order, through the charging rules in memory.
   A request refused for its own reasons (unknown user, no credit, a duplicate) gets its own
   answer; the others go on.
4. **Commit.** Every row the batch changed is written in bulk with the COMMIT, together.
5. **Answer.** Only now is any request answered: no switch ever acts on a decision that
   could still roll back.

If anything goes wrong for the batch as a whole (a database error, a request that failed
after changing something), the transaction rolls back and the engine decides its requests
again one at a time, each in a transaction of its own, so none is lost and none is answered
twice. A request that loses a race on its id to a twin in another process (the same call
id retransmitted to another worker) answers what the twin committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import closing
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from commcredits.adapters.db.batch_store import LoadPlan
from commcredits.charging.requests import Request, Settings, decide, plan, stored, tenant_of
from commcredits.charging.work import Batch
from commcredits.domain.errors import DomainError

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database

log = logging.getLogger(__name__)

CAP = 512  # requests per batch at most (the wallets stay locked for one batch)
STREAM_EVERY = 250  # in a bigger batch, rows are written every this many requests
IDLE_S = 2.0  # the engine's thread ends after this long without a request
AfterCommit = Callable[[list[str], list[str]], None]  # (tenants to recharge, cut ids)


class _Spoiled(Exception):
    """A request failed after changing something: the batch cannot commit as it is."""


class ChargingEngine:
    def __init__(self, db: Database, settings: Settings,
                 after_commit: AfterCommit | None = None,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.db = db
        self.settings = settings
        self.after_commit = after_commit
        self.on_batch = on_batch  # (requests, seconds) of each committed batch
        self._queue: deque[tuple[Request, _Done]] = deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self.batches = 0  # committed batches
        self.decided = 0  # requests decided

    # -- asking -------------------------------------------------------------------------------
    def run(self, requests: list[Request], cap: int = CAP) -> None:
        """Decide ``requests`` in this thread, in batches of ``cap``, one transaction
        each; every request gets its outcome (``result`` or ``error``). No after-commit
        work (recharges, cuts): the jobs pick those up."""
        for i in range(0, len(requests), cap):
            self._decide(requests[i:i + cap], defer=False)

    def ask(self, request: Request) -> Any:
        """Queue ``request`` for the next batch and wait for its answer (any thread)."""
        done = threading.Event()
        self.submit(request, done.set)
        done.wait()
        return _outcome(request)

    async def ask_async(self, request: Request) -> Any:
        """Queue ``request`` for the next batch; its answer, without blocking the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not future.done():
                future.set_result(None)
        self.submit(request, resolve, loop)
        await future
        return _outcome(request)

    def submit(self, request: Request, done: Callable[[], None],
               loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Queue ``request``; ``done()`` is called once it has its outcome: on ``loop`` when
        given (one wake-up of the loop per batch, whatever the number of its requests
        there), else in the engine's thread."""
        with self._cv:
            self._queue.append((request, _Done(done, loop)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                name="charging-engine")
                self._thread.start()
            else:
                self._cv.notify()

    # -- the engine's thread --------------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    if not self._cv.wait(IDLE_S) and not self._queue:
                        self._thread = None
                        return
                waiting = [self._queue.popleft() for _ in range(min(CAP, len(self._queue)))]
            requests = [r for r, _ in waiting]
            later: list[Request] = []
            try:
                later = self._decide(requests, defer=True)
            except BaseException as e:  # never leave a caller waiting
                log.exception("charging batch failed")
                for r in requests:
                    if r.result is None and r.error is None:
                        r.error = e
            if later:  # their wallets were another batch's: first in the next one
                put_off = {id(r) for r in later}
                with self._cv:
                    self._queue.extendleft(reversed([w for w in waiting if id(w[0]) in put_off]))
                waiting = [w for w in waiting if id(w[0]) not in put_off]
            self._answer(waiting)

    def _answer(self, waiting: list[tuple[Request, _Done]]) -> None:
        later = [(r, done) for r, done in waiting if r.recharges]
        _call([done for r, done in waiting if not r.recharges])
        recharges = sorted({t for r, _ in waiting for t in r.recharges})
        cuts = sorted({c for r, _ in waiting for c in r.cuts})
        if self.after_commit is None or not (recharges or cuts):
            _call([done for _, done in later])
            return
        hook = self.after_commit

        def after() -> None:  # the card is charged before the request that started it answers
            try:
                hook(recharges, cuts)
            finally:
                _call([done for _, done in later])
        threading.Thread(target=after, daemon=True, name="after-commit").start()

    # -- deciding -------------------------------------------------------------------------------
    def _decide(self, requests: list[Request], *, defer: bool) -> list[Request]:
        """Decide ``requests``; returns those put off to the next batch (``defer``: a
        request whose wallet another batch holds waits for the next one, which waits for
        that wallet, instead of making this batch wait)."""
        began = time.perf_counter()
        later = self._decide_all(requests, defer)
        self.decided += len(requests) - len(later)
        if self.on_batch is not None:
            self.on_batch(len(requests) - len(later), time.perf_counter() - began)
        return later

    def _decide_all(self, requests: list[Request], defer: bool) -> list[Request]:
        if len(requests) > 1:
            try:
                later = self._batch(requests, alone=False, defer=defer)
                self.batches += 1
                return later
            except Exception as e:  # a database error, a spoiled batch, a bug
                log.info("batch of %d rolled back (%s): one at a time", len(requests),
                         type(e).__name__)
                for r in requests:
                    r.result, r.error, r.recharges, r.cuts = None, None, [], []
        for r in requests:
            self._alone(r)
        return []

    def _alone(self, request: Request) -> None:
        for attempt in range(2):
            try:
                self._batch([request], alone=True, defer=False)
                self.batches += 1
                return
            except sa.exc.IntegrityError as e:  # a twin (same id) committed first
                request.result, request.error = None, None
                request.recharges, request.cuts = [], []
                try:
                    with self.db.uow(readonly=True) as uow:
                        first = stored(uow, request, self.settings)
                except sa.exc.SQLAlchemyError as again:
                    request.error = again
                    return
                if first is not None:
                    request.result = first
                    return
                if attempt:
                    request.error = e
            except Exception as e:  # the database is away: the request's own answer
                request.result, request.error = None, e
                return

    def _batch(self, requests: list[Request], *, alone: bool, defer: bool) -> list[Request]:
        """Decide ``requests`` in one transaction and commit (raising whatever makes the
        batch as a whole fail; ``alone``: one request, whose own failure is its answer).
        Returns the requests put off (``defer``), undecided."""
        later: list[Request] = []
        with self.db.batch() as (uow, store), closing(Batch(uow, store)) as work:
            wanted = LoadPlan()
            plan(requests, wanted, work.now)
            if defer:  # wait only for the wallets a request was put off for already
                wanted.wait = sorted({r.deferred for r in requests if r.deferred})
            work.load(wanted)
            decided = 0
            for r in requests:
                if work.deferred:
                    held = tenant_of(r, work.deferred_calls)
                    if held in work.deferred:
                        r.deferred = held
                        later.append(r)
                        continue
                before = work.writes
                recharges, cuts = set(work.recharges_requested), set(work.cuts_requested)
                try:
                    r.result = decide(work, r, self.settings)
                except DomainError as e:
                    if work.writes != before and not alone:
                        raise _Spoiled from e
                    r.error = e
                    if alone:
                        return later  # nothing of it may commit
                    continue
                except Exception as e:
                    if alone and not isinstance(e, sa.exc.SQLAlchemyError):
                        r.error = e
                        return later
                    raise
                r.recharges = sorted(work.recharges_requested - recharges)
                r.cuts = sorted(work.cuts_requested - cuts)
                decided += 1
                if decided % STREAM_EVERY == 0 and len(requests) > STREAM_EVERY:
                    work.stream()  # a big batch (CDRs): write while deciding on
            if self.settings.hold_s:
                time.sleep(self.settings.hold_s)
            work.commit()
        return later


class _Done(NamedTuple):
    call: Callable[[], None]
    loop: asyncio.AbstractEventLoop | None


def _call(done: list[_Done]) -> None:
    """Tell every waiter; those of an event loop in one wake-up of that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Callable[[], None]]] = {}
    for d in done:
        if d.loop is None:
            d.call()
        else:
            by_loop.setdefault(d.loop, []).append(d.call)
    for loop, calls in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_all, calls)


def _all(calls: list[Callable[[], None]]) -> None:
    for call in calls:
        call()


def _outcome(request: Request) -> Any:
    if request.error is not None:
        raise request.error
    return request.result


def outcomes(requests: Iterable[Request]) -> list[Any]:
    """Each request's result, or its error (as a value)."""
    return [r.error if r.error is not None else r.result for r in requests]
