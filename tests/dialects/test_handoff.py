"""The hand-off in front of psycopg_pool: connections pass between requests in
arrival order, a wait past its bound is a 503 that leaks nothing, a client that
goes away takes no connection with it, a connection the server ended is never
handed on, nothing set for one checkout reaches the next, the pool's figures
count what the hand-off holds, and closing gives every connection back."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from swain.contrib.testing import FreshDatabase, LiveServer, serving, write_config
from swain.contrib.testing.fixtures import only_dialect
from swain.core.handoff import HandOff
from swain.core.keys import RUNTIME
from swain.dialects.postgresql import PostgresDialect

dialect = only_dialect("postgresql")

DDL = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 40) g;
CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL)
"""

POOL_SIZE = 2
#: how long a checkout waits for a connection (the smaller of the two timeouts)
WAIT = 1.0


def _serving(database: FreshDatabase, directory: Path, name: str = "swain") -> LiveServer:
    url = f"{database.swain_url}?application_name={name}"
    settings = {"url": url, "pool_size": POOL_SIZE,
                "connect_timeout": f"{WAIT}s", "query_timeout": "10s"}
    return serving(write_config(directory, url, connections={"development": settings}))


@pytest.fixture(scope="module")
def server(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[LiveServer]:
    with _serving(database, tmp_path_factory.mktemp("config")) as live:
        yield live


def _dialect(server: LiveServer) -> PostgresDialect:
    found = server.app[RUNTIME].dialect
    assert isinstance(found, PostgresDialect)
    return found


def _handoff(server: LiveServer) -> HandOff[Any]:
    handoff = _dialect(server).handoff
    assert handoff is not None
    return handoff


async def _pid(conn: Any) -> int:
    row = await conn.fetch_one("SELECT pg_backend_pid()")
    return int(row[0])


async def _until(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.001)


class Held:
    """``count`` connections checked out on the server's loop until the block ends."""

    def __init__(self, server: LiveServer, count: int) -> None:
        self.server = server
        self.count = count
        self.pids: list[int] = []
        self.taken = threading.Event()
        self.release = threading.Event()

    async def _hold(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(self.count):
                conn = await stack.enter_async_context(_dialect(self.server).acquire())
                self.pids.append(await _pid(conn))
            self.taken.set()
            await asyncio.to_thread(self.release.wait, 30)

    def __enter__(self) -> Held:
        self.done = asyncio.run_coroutine_threadsafe(self._hold(), self.server.loop)
        assert self.taken.wait(10), "the connections were never checked out"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.done.result(timeout=10)


def _all_free(server: LiveServer) -> None:
    """Every connection is idle (in the hand-off or the pool) and nobody waits;
    both can be checked out at once."""
    stats = _dialect(server).pool_stats()
    assert stats is not None
    assert (stats.idle, stats.waiting) == (stats.open, 0), stats

    async def both() -> set[int]:
        dialect = _dialect(server)
        async with dialect.acquire() as first, dialect.acquire() as second:
            return {await _pid(first), await _pid(second)}

    assert len(server.call(both(), timeout=WAIT + 5)) == POOL_SIZE


def test_forty_concurrent_requests_share_two_connections(
        server: LiveServer, database: FreshDatabase) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http, \
            ThreadPoolExecutor(max_workers=40) as threads:
        responses = list(threads.map(lambda i: http.get(f"/items/{i}"), range(1, 41)))
    assert [r.status_code for r in responses] == [200] * 40
    assert [r.json()["name"] for r in responses] == [f"item {i}" for i in range(1, 41)]
    stats = _dialect(server).pool_stats()
    assert stats is not None and stats.max == POOL_SIZE and stats.open <= POOL_SIZE
    _all_free(server)


def test_waiters_are_served_in_arrival_order(server: LiveServer) -> None:
    async def arrivals() -> list[int]:
        dialect, handoff = _dialect(server), _handoff(server)
        served: list[int] = []

        async def request(number: int) -> None:
            async with dialect.acquire() as conn:
                served.append(number)
                await conn.fetch_one("SELECT 1")

        async with contextlib.AsyncExitStack() as held:
            for _ in range(POOL_SIZE):
                await held.enter_async_context(dialect.acquire())
            requests = []
            for number in range(6):
                requests.append(asyncio.create_task(request(number)))
                await _until(lambda n=number: handoff.waiting == n + 1)
        await asyncio.gather(*requests)
        return served

    # a LIFO queue would serve the newest first and leave the oldest to time out
    assert server.call(arrivals()) == [0, 1, 2, 3, 4, 5]
    _all_free(server)


def test_a_wait_past_its_bound_answers_503_and_leaks_nothing(server: LiveServer) -> None:
    with Held(server, POOL_SIZE), httpx.Client(base_url=server.url, timeout=30) as http:
        started = time.monotonic()
        response = http.get("/items/1")
        waited = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        assert waited >= WAIT * 0.9  # it waited for its bound, not less
        stats = _dialect(server).pool_stats()
        assert stats is not None and stats.waiting == 0, stats
    _all_free(server)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/items/1").status_code == 200


def test_a_timed_out_checkout_is_the_pools_own_timeout(server: LiveServer) -> None:
    async def late() -> BaseException | None:
        dialect = _dialect(server)
        async with dialect.acquire(), dialect.acquire():
            try:
                async with dialect.acquire():
                    return None
            except PoolTimeout as exc:
                return exc

    error = server.call(late())
    assert isinstance(error, PoolTimeout), error
    assert _dialect(server).classify_error(error).status == 503  # type: ignore[union-attr]
    _all_free(server)


def test_a_waiter_that_goes_away_takes_no_connection(server: LiveServer) -> None:
    async def cancelled_while_waiting() -> None:
        dialect, handoff = _dialect(server), _handoff(server)
        async with dialect.acquire(), dialect.acquire():
            waiter = asyncio.create_task(_checkout_and_query(dialect))
            await _until(lambda: handoff.waiting == 1)
            waiter.cancel()  # the client disconnected
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert handoff.waiting == 0

    async def cancelled_once_handed_a_connection() -> int:
        """The connection is handed over, and the waiter cancelled before it
        runs again: the connection goes on to the next waiter."""
        dialect, handoff = _dialect(server), _handoff(server)
        first, second = dialect.acquire(), dialect.acquire()
        await first.__aenter__()
        await second.__aenter__()
        gone = asyncio.create_task(_checkout_and_query(dialect))
        await _until(lambda: handoff.waiting == 1)
        next_one = asyncio.create_task(_checkout_and_query(dialect))
        await _until(lambda: handoff.waiting == 2)
        await first.__aexit__(None, None, None)  # handed to ``gone`` at once
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        pid = await asyncio.wait_for(next_one, WAIT + 5)
        await second.__aexit__(None, None, None)
        return pid

    server.call(cancelled_while_waiting())
    _all_free(server)
    assert server.call(cancelled_once_handed_a_connection()) > 0
    _all_free(server)


async def _checkout_and_query(dialect: PostgresDialect) -> int:
    async with dialect.acquire() as conn:
        return await _pid(conn)


def test_a_connection_the_server_ended_is_not_handed_on(
        server: LiveServer, database: FreshDatabase) -> None:
    async def ended_while_held(noticed: bool) -> tuple[int, set[int]]:
        dialect = _dialect(server)
        async with contextlib.AsyncExitStack() as stack:
            conn = await stack.enter_async_context(dialect.acquire())
            pid = await _pid(conn)
            await asyncio.to_thread(_terminate, database, pid)
            if noticed:
                with pytest.raises(psycopg.Error, match="terminating connection"):
                    await conn.fetch_one("SELECT 1")
        # every later checkout, however many come at once, gets a live one
        later = await asyncio.gather(*(_checkout_and_query(dialect) for _ in range(6)))
        return pid, set(later)

    for noticed in (True, False):
        ended, later = server.call(ended_while_held(noticed))
        assert ended not in later and later
        _all_free(server)


def _terminate(database: FreshDatabase, pid: int) -> None:
    assert database.query("SELECT pg_terminate_backend(:pid)", {"pid": pid}) == [(True,)]
    deadline = time.monotonic() + 10
    while database.query("SELECT 1 FROM pg_stat_activity WHERE pid = :pid", {"pid": pid}):
        assert time.monotonic() < deadline, "the backend did not end"
        time.sleep(0.01)


def test_nothing_set_for_one_checkout_reaches_the_next(server: LiveServer) -> None:
    setting = "swain.handoff_test"

    async def setting_seen(value: str | None, fail: bool = False) -> tuple[int, str | None]:
        dialect = _dialect(server)
        dialect.transaction_settings = None if value is None else (lambda: {setting: value})
        try:
            async with dialect.acquire() as conn:
                row = await conn.fetch_one(f"SELECT pg_backend_pid(), "
                                           f"current_setting('{setting}', true)")
                if fail:
                    raise RuntimeError("the request failed")
                return int(row[0]), row[1]
        finally:
            dialect.transaction_settings = None

    async def sequence() -> list[tuple[int, str | None]]:
        seen = [await setting_seen("tenant-a"), await setting_seen(None)]
        with contextlib.suppress(RuntimeError):
            await setting_seen("tenant-b", fail=True)
        seen += [await setting_seen(None), await setting_seen("tenant-c"), await setting_seen(None)]
        return seen

    seen = server.call(sequence())
    # one connection served them all (the most recently released is reused)
    assert len({pid for pid, _ in seen}) == 1
    assert [value or None for _, value in seen] == ["tenant-a", None, None, "tenant-c", None]
    _all_free(server)


def test_a_transaction_left_open_ends_with_its_checkout(
        server: LiveServer, database: FreshDatabase) -> None:
    async def left_open(body: str, fail: bool) -> str:
        dialect = _dialect(server)
        with contextlib.suppress(RuntimeError):
            async with dialect.acquire() as conn:
                await conn.run_once(b"BEGIN")
                await conn.execute("INSERT INTO notes (body) VALUES (%(body)s)", {"body": body})
                if fail:
                    raise RuntimeError("the request failed")
        async with dialect.acquire() as conn:
            # the next checkout starts outside any transaction
            status = conn.conn.pgconn.transaction_status  # type: ignore[attr-defined]
            return "idle" if status == TransactionStatus.IDLE else "in a transaction"

    assert server.call(left_open("kept", fail=False)) == "idle"
    assert server.call(left_open("dropped", fail=True)) == "idle"
    assert [r[0] for r in database.query("SELECT body FROM notes")] == ["kept"]
    _all_free(server)


def test_pool_figures_count_what_the_handoff_holds(server: LiveServer) -> None:
    async def figures() -> list[tuple[int, int, int]]:
        dialect, handoff = _dialect(server), _handoff(server)
        seen = []

        def look() -> None:
            stats = dialect.pool_stats()
            assert stats is not None
            seen.append((stats.open, stats.idle, stats.waiting))

        async with dialect.acquire() as a, dialect.acquire() as b:
            await _pid(a)
            await _pid(b)
            look()
            waiters = [asyncio.create_task(_checkout_and_query(dialect)) for _ in range(3)]
            await _until(lambda: handoff.waiting == 3)
            look()
        await asyncio.gather(*waiters)
        look()
        return seen

    assert server.call(figures()) == [(2, 0, 0), (2, 0, 3), (2, 2, 0)]


def test_closing_gives_every_connection_back(database: FreshDatabase, tmp_path: Path) -> None:
    def connected() -> int:
        return int(database.query("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE application_name = 'swain_closing'")[0][0])

    raw: list[Any] = []
    with _serving(database, tmp_path, "swain_closing") as live, \
            httpx.Client(base_url=live.url, timeout=30) as http, \
            ThreadPoolExecutor(max_workers=8) as threads:
        assert {r.status_code for r in threads.map(lambda i: http.get(f"/items/{i}"),
                                                   range(1, 17))} == {200}

        async def idle_ones() -> None:
            dialect = _dialect(live)
            async with dialect.acquire() as a, dialect.acquire() as b:
                raw.extend([a.conn, b.conn])  # type: ignore[attr-defined]

        live.call(idle_ones())
        handoff = _handoff(live)
        assert handoff.idle == POOL_SIZE and connected() >= POOL_SIZE
    assert handoff.idle == 0
    assert all(conn.closed for conn in raw)
    deadline = time.monotonic() + 10
    while connected() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connected() == 0


def test_idle_connections_go_back_to_the_pool(database: FreshDatabase) -> None:
    """After ``linger`` seconds unused, so the pool's checks and shrinking see them."""
    conninfo = database.swain_url.replace("postgresql+psycopg://", "postgresql://")

    async def lingering() -> list[tuple[int, int, int]]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
        await pool.open(wait=True)
        handoff: HandOff[Any] = HandOff(
            2, lambda seconds: pool.getconn(timeout=seconds), pool.putconn,
            timed_out=lambda: PoolTimeout("timed out"), closed=lambda: PoolTimeout("closed"),
            linger=0.2)
        seen = []

        def look() -> None:
            stats = pool.get_stats()
            seen.append((handoff.idle, stats["pool_available"], stats["pool_size"]))

        loop = asyncio.get_running_loop()
        first = await handoff.wait(loop.time() + 5)
        second = await handoff.wait(loop.time() + 5)
        handoff.put(first)
        handoff.put(second)
        look()
        await _until(lambda: handoff.idle == 0)
        await _until(lambda: pool.get_stats()["pool_available"] == 2)
        look()
        await handoff.close()
        await pool.close()
        return seen

    assert asyncio.run(lingering()) == [(2, 0, 2), (0, 2, 2)]


def test_closing_fails_the_waiters_and_passes_late_releases_to_the_pool(
        database: FreshDatabase) -> None:
    conninfo = database.swain_url.replace("postgresql+psycopg://", "postgresql://")

    async def closing() -> tuple[bool, bool]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo, min_size=1, max_size=1, open=False, kwargs={"autocommit": True})
        await pool.open(wait=True)
        handoff: HandOff[Any] = HandOff(
            1, lambda seconds: pool.getconn(timeout=seconds), pool.putconn,
            timed_out=lambda: PoolTimeout("timed out"), closed=lambda: PoolClosed("closed"))
        loop = asyncio.get_running_loop()
        held = await handoff.wait(loop.time() + 5)
        waiter = asyncio.create_task(handoff.wait(loop.time() + 5))
        await _until(lambda: handoff.waiting == 1)
        await handoff.close()
        with pytest.raises(PoolClosed):
            await waiter
        with pytest.raises(PoolClosed):
            await handoff.wait(loop.time() + 5)
        handoff.put(held)  # released after closing: straight back to the pool
        await _until(lambda: pool.get_stats()["pool_available"] == 1)
        still_open = not held.closed
        await pool.close()
        return still_open, held.closed

    assert asyncio.run(closing()) == (True, True)
