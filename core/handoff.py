"""A fair hand-off of pooled connections between requests, in front of a pool.

A driver's pool (psycopg_pool) takes a lock on every checkout and return, and
starts a task and a timer for every checkout that waits; per request that costs
more than the query round trip's own Python work.  The hand-off keeps the
connections it took out of the pool and passes them from one request to the
next with plain synchronous code on the event loop:

* a checkout takes the most recently released idle connection at once; else,
  while fewer than ``size`` connections are claimed, one from the pool; else it
  waits on a future, in arrival order (first come, first served: a LIFO queue
  would starve the oldest waiters), with one timer handle for its deadline;
* a release hands a healthy connection straight to the oldest waiter, else
  keeps it idle; a connection that broke, or in doubt, goes back to the pool,
  which discards and replaces it;
* connections idle longer than ``linger`` go back to the pool, so its health
  checks, reconnection and resizing keep working, and ``close`` returns all.

The pool stays in charge of connecting, and of everything a connection goes
through when it is given back.  Dialect-independent: the dialect passes how to
take from and give back to its pool, and what a timeout and a closed pool
raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("swain")

C = TypeVar("C")

#: seconds an idle connection stays with the hand-off before it goes back to the pool
LINGER = 5.0


class HandOff(Generic[C]):
    """Up to ``size`` connections claimed from a pool, handed between requests.

    ``take(seconds)`` checks a connection out of the pool (waiting at most
    ``seconds``), ``give_back(conn)`` returns one to it.  Every connection that
    ``ready`` or ``wait`` returns must come back through ``put`` (healthy and
    idle) or ``give_back`` (anything else)."""

    __slots__ = ("_alive", "_claimed", "_closed", "_closed_error", "_give_back", "_idle",
                 "_linger", "_loop", "_returning", "_size", "_sweep", "_take", "_timed_out",
                 "_waiters")

    def __init__(self, size: int, take: Callable[[float], Awaitable[C]],
                 give_back: Callable[[C], Awaitable[None]], *,
                 timed_out: Callable[[], BaseException], closed: Callable[[], BaseException],
                 linger: float = LINGER, alive: Callable[[C], bool] | None = None) -> None:
        self._size = size
        self._take = take
        self._give_back = give_back
        self._timed_out = timed_out
        self._closed_error = closed
        self._linger = linger
        #: a cheap look at an idle connection before it is handed out (the server
        #: may have ended it meanwhile); one that fails goes back to the pool
        self._alive = alive
        self._loop = asyncio.get_running_loop()
        #: idle connections with the loop time each was released at, oldest first
        self._idle: deque[tuple[C, float]] = deque()
        #: waiting checkouts, oldest first; a result of None hands over a claim
        #: on the pool rather than a connection
        self._waiters: deque[asyncio.Future[C | None]] = deque()
        #: connections out of the pool (in use or idle here) and checkouts from it under way
        self._claimed = 0
        self._sweep: asyncio.TimerHandle | None = None
        self._returning: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def idle(self) -> int:
        """Connections held idle here (not counted as idle by the pool)."""
        return len(self._idle)

    @property
    def waiting(self) -> int:
        """Checkouts waiting for a connection to be released."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def ready(self) -> C | None:
        """An idle connection, at once, or None: then ``await wait(deadline)``."""
        while self._idle:
            conn = self._idle.pop()[0]
            if self._alive is None or self._alive(conn):
                return conn
            self._return_later(conn)
        return None

    async def wait(self, deadline: float) -> C:
        """A connection by loop time ``deadline``: from the pool while fewer than
        ``size`` are claimed, else the next one released, in arrival order."""
        if self._closed:
            raise self._closed_error()
        if (conn := self.ready()) is not None:
            return conn
        if self._claimed < self._size:
            self._claimed += 1
            return await self._from_pool(deadline)
        waiter: asyncio.Future[C | None] = self._loop.create_future()
        self._waiters.append(waiter)
        timer = self._loop.call_at(deadline, self._expire, waiter)
        try:
            handed = await waiter
        except BaseException:
            self._forgo(waiter)
            raise
        finally:
            timer.cancel()
        if handed is None:
            return await self._from_pool(deadline)
        return handed

    def put(self, conn: C) -> None:
        """A healthy connection, idle (no transaction), back for the next checkout."""
        if self._closed:
            self._return_later(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append((conn, self._loop.time()))
        if self._sweep is None:
            self._sweep = self._loop.call_at(self._loop.time() + self._linger, self._sweep_idle)

    async def give_back(self, conn: C) -> None:
        """A connection that broke, or is in doubt, or expired: to the pool, which
        checks, discards or replaces it."""
        try:
            await self._give_back(conn)
        finally:
            self._release_claim()

    async def close(self) -> None:
        """Fail the waiting checkouts and give every idle connection back (before
        the pool itself closes); later releases go straight to the pool."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self._closed_error())
        while self._idle:
            await self.give_back(self._idle.popleft()[0])
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)

    # -- internals ----------------------------------------------------------------

    async def _from_pool(self, deadline: float) -> C:
        """Check a connection out of the pool on a claim already counted."""
        try:
            return await self._take(deadline - self._loop.time())
        except BaseException:
            self._release_claim()
            raise

    def _release_claim(self) -> None:
        """A claimed connection went back to the pool, or a checkout from it failed:
        the claim passes to the oldest waiter, which then checks one out itself."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._claimed -= 1

    def _forgo(self, waiter: asyncio.Future[C | None]) -> None:
        """A waiting checkout gave up (its deadline, the client went away, closing):
        whatever was handed to it in the meantime goes on to the next waiter."""
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            conn = waiter.result()
            if conn is None:
                self._release_claim()
            else:
                self.put(conn)
            return
        with contextlib.suppress(ValueError):  # handed over meanwhile (closing)
            self._waiters.remove(waiter)

    def _expire(self, waiter: asyncio.Future[C | None]) -> None:
        if not waiter.done():
            waiter.set_exception(self._timed_out())

    def _sweep_idle(self) -> None:
        self._sweep = None
        cutoff = self._loop.time() - self._linger
        while self._idle and self._idle[0][1] <= cutoff:
            self._return_later(self._idle.popleft()[0])
        if self._idle:
            self._sweep = self._loop.call_at(self._idle[0][1] + self._linger, self._sweep_idle)

    def _return_later(self, conn: C) -> None:
        task = self._loop.create_task(self._return_quietly(conn))
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def _return_quietly(self, conn: C) -> None:
        try:
            await self.give_back(conn)
        except Exception:  # the pool logs what went wrong with a connection
            log.debug("returning an idle connection to the pool failed", exc_info=True)
