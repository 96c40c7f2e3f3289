"""Read replicas: where each read of a request runs.

With ``[connections.<stage>] read_url``, a read goes to a replica (round robin
over those that answer) unless the request has written already (so it sees
its own write) or asked for the primary (``X-Read-From: primary``).  Writes,
and the reads inside a write's transaction (the row read back after an
insert), always run on the primary, as does the auth layer's own
bookkeeping.  A replica that fails, or falls further behind than
``max_replica_lag``, is left alone for ``replica_retry`` seconds: its reads
go to the other replicas, then to the primary.  Replicas are opened and
bounded exactly as the primary is (pool size, timeouts), being dialects of
the same kind.

The routing state of a request lives in a context variable set by
:func:`routing_middleware`, which also tells the client where the reads
went (``X-Read-From: replica`` or ``primary``).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from .dialect import DBConnection, Dialect
from .errors import ApiError, ServiceUnavailable

log = logging.getLogger("swain")
T = TypeVar("T")
#: the request header (and its value) that sends a request's reads to the primary
HEADER = "X-Read-From"
PRIMARY = "primary"


@dataclass
class Route:
    """One request's reads: whether they must see the primary, and where they went."""

    #: the client asked for the primary
    primary: bool = False
    #: the request wrote: its later reads must see the write
    wrote: bool = False
    #: a read of this request was served by a replica
    replica: bool = False


ROUTE: contextvars.ContextVar[Route | None] = contextvars.ContextVar("swain.route", default=None)


def wrote() -> None:
    """The current request writes: its later reads go to the primary."""
    route = ROUTE.get()
    if route is not None:
        route.wrote = True


@dataclass
class Replica:
    dialect: Dialect
    #: monotonic time before which it is not read from
    resting_until: float = 0.0
    #: monotonic time of the last look at its lag
    lag_checked: float = 0.0

    @property
    def name(self) -> str:
        return self.dialect.connection.safe_url


class Reads:
    """The primary and its replicas, and the choice between them."""

    def __init__(self, primary: Dialect, replicas: Sequence[Dialect]) -> None:
        self.primary = primary
        self.replicas = [Replica(d) for d in replicas]
        connection = primary.connection
        self.retry = connection.replica_retry
        self.max_lag = connection.max_replica_lag
        self._next = 0

    async def open(self) -> None:
        for replica in self.replicas:
            await replica.dialect.open()

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.dialect.close()

    def status(self) -> dict[str, int]:
        now = time.monotonic()
        resting = sum(1 for r in self.replicas if r.resting_until > now)
        return {"replicas": len(self.replicas), "resting": resting}

    def _candidates(self) -> list[Replica]:
        """The replicas to try, in turn, starting with the next one (round robin)."""
        now = time.monotonic()
        count = len(self.replicas)
        start = self._next
        self._next = (start + 1) % count
        return [r for r in (self.replicas[(start + i) % count] for i in range(count))
                if r.resting_until <= now]

    async def run(self, work: Callable[[DBConnection], Awaitable[T]]) -> T:
        """``work`` on a connection of a replica when this read may use one, else (or
        when none answers) of the primary."""
        route = ROUTE.get()
        if route is not None and not route.primary and not route.wrote:
            for replica in self._candidates():
                try:
                    async with replica.dialect.acquire() as conn:
                        if not await self._fresh_enough(replica, conn):
                            continue
                        result = await work(conn)
                except Exception as exc:
                    if not self._unavailable(replica, exc):
                        raise
                    self._rest(replica, exc)
                    continue
                route.replica = True
                return result
        async with self.primary.acquire() as conn:
            return await work(conn)

    def _unavailable(self, replica: Replica, exc: BaseException) -> bool:
        """Whether ``exc`` says the replica cannot serve (unreachable, silent, too slow,
        or cancelling queries that conflict with what it replays), rather than the
        request being wrong (a 4xx, which the primary would answer alike)."""
        found = exc if isinstance(exc, ApiError) else replica.dialect.classify_error(exc)
        return isinstance(found, ServiceUnavailable) or \
            (found is None and isinstance(exc, OSError | TimeoutError))

    def _rest(self, replica: Replica, reason: BaseException | str) -> None:
        if replica.resting_until <= time.monotonic():
            why = reason if isinstance(reason, str) else type(reason).__name__
            log.warning("read replica %s left alone for %gs (%s); its reads go elsewhere",
                        replica.name, self.retry, why)
        replica.resting_until = time.monotonic() + self.retry

    async def _fresh_enough(self, replica: Replica, conn: DBConnection) -> bool:
        """With ``max_replica_lag``, look at the replica's lag now and then (on the
        connection at hand); one too far behind rests."""
        if self.max_lag is None:
            return True
        now = time.monotonic()
        if now - replica.lag_checked < self.retry:
            return True
        replica.lag_checked = now
        lag = await replica.dialect.replica_lag(conn)
        if lag is not None and lag > self.max_lag:
            self._rest(replica, f"{lag:.1f}s behind the primary")
            return False
        return True


def routing_middleware(reads: Reads) -> Any:
    """Each request's routing state, from its ``X-Read-From`` header; the answer
    says where its reads went."""

    @web.middleware
    async def read_routing(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = Route(primary=request.headers.get(HEADER, "").strip().lower() == PRIMARY)
        token = ROUTE.set(route)
        try:
            response = await handler(request)
        finally:
            ROUTE.reset(token)
        response.headers[HEADER] = "replica" if route.replica else PRIMARY
        return response

    return read_routing


__all__ = ["HEADER", "ROUTE", "Reads", "Route", "routing_middleware", "wrote"]
