"""The raw handler: the least Python that answers the benchmark's requests.

As minimal as the peers' measuring handler: aiohttp on uvloop, a few psycopg 3
connections per process in a LIFO queue (no pool library), every statement
prepared server-side from its first use, JSON built by PostgreSQL and its bytes
passed through, no middleware, no logging, no validation beyond what keeps it
from crashing.  It answers as swain does (the same envelope, the same rows),
and counts only where swain is asked to.  ``--workers`` processes share the
port (``SO_REUSEPORT``), forked as the peers' handler forks them::

    python -m swain.contrib.bench.raw --dsn "dbname=... user=postgres" --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import psycopg
from aiohttp import web

_USER = "SELECT id, name, email, country, created_at FROM users"
_ORDER = "SELECT id, user_id, status, amount::text AS amount, created_at FROM orders"
GET_SQL = f"SELECT row_to_json(q)::text FROM ({_USER} WHERE id = %s) AS q"
PAGE_SQL = ("SELECT coalesce(json_agg(q), '[]'::json)::text FROM "
            f"({_ORDER} WHERE status = %(status)s ORDER BY id LIMIT %(limit)s "
            "OFFSET %(offset)s) AS q")
EXACT_SQL = f"SELECT (SELECT count(*) FROM orders WHERE status = %(status)s), ({PAGE_SQL})"
#: counted up to ``bound`` rows (the query asks for one more, to know it is over)
BOUNDED_SQL = ("SELECT (SELECT count(*) FROM (SELECT 1 FROM orders WHERE status = %(status)s "
               f"LIMIT %(bound)s) AS c), ({PAGE_SQL})")
ESTIMATE_SQL = "EXPLAIN (FORMAT JSON) SELECT 1 FROM orders WHERE status = %(status)s"
#: as swain's ``api.exact_count_limit`` default
EXACT_COUNT_LIMIT = 10_000

#: users of one country, each with its orders that are not cancelled, and their
#: count and sum: one statement
INCLUDE_SQL = (
    "SELECT coalesce(json_agg(q), '[]'::json)::text FROM ("
    "SELECT u.id, u.name, u.email, u.country, u.created_at, "
    "coalesce((SELECT json_agg(o) FROM (SELECT id, status, amount::text AS amount FROM orders "
    "WHERE user_id = u.id AND status <> %(status)s ORDER BY id) AS o), '[]'::json) AS orders, "
    "(SELECT json_build_object('n', count(*), 'revenue', sum(amount)::text) FROM orders "
    "WHERE user_id = u.id AND status <> %(status)s) AS aggregations "
    "FROM users AS u WHERE u.country = %(country)s ORDER BY u.id "
    "LIMIT %(limit)s OFFSET %(offset)s) AS q")
#: the orders of the first users, grouped by status
GROUPED_SQL = (
    "SELECT coalesce(json_agg(q), '[]'::json)::text FROM ("
    "SELECT status, count(*) AS n, sum(amount)::text AS revenue, min(amount)::text AS smallest, "
    "max(amount)::text AS largest FROM orders WHERE user_id <= %(user)s GROUP BY status "
    "ORDER BY status LIMIT %(limit)s OFFSET %(offset)s) AS q")

BULK_COLUMNS = ("user_id", "status", "amount", "created_at")
_STAGE = ("CREATE TEMP TABLE bulk_in ON COMMIT DROP AS SELECT user_id, status, amount, "
          "created_at FROM orders WITH NO DATA")
_COPY = "COPY bulk_in FROM STDIN"
_MOVE = ("INSERT INTO orders (user_id, status, amount, created_at) SELECT * FROM bulk_in "
         "RETURNING id, json_build_object('id', id, 'user_id', user_id, 'status', status, "
         "'amount', amount::text, 'created_at', created_at)::text")

_JSON = "application/json"


class Connections:
    """A LIFO queue of open connections: the whole pool."""

    def __init__(self, connections: list[psycopg.AsyncConnection[Any]]) -> None:
        self.all = connections
        self._idle: asyncio.LifoQueue[psycopg.AsyncConnection[Any]] = asyncio.LifoQueue()
        for conn in connections:
            self._idle.put_nowait(conn)

    async def run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[Any]]) -> Any:
        conn = await self._idle.get()
        try:
            return await work(conn)
        finally:
            self._idle.put_nowait(conn)

    async def one(self, sql: str, params: Any) -> Any:
        async def fetch(conn: psycopg.AsyncConnection[Any]) -> Any:
            return await (await conn.execute(sql, params)).fetchone()
        return await self.run(fetch)


POOL: web.AppKey[Connections] = web.AppKey("pool", Connections)


def _respond(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=_JSON)


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return max(1, int(request.query.get(name, default)))
    except ValueError:
        raise web.HTTPBadRequest() from None


def _envelope(data: str, total: int | None, page: int, size: int,
              estimate: bool = False) -> web.Response:
    pages = "null" if total is None else str(math.ceil(total / size) if total else 0)
    flag = "null" if total is None else "true" if estimate else "false"
    tail = f',"total_is_estimate":{flag}'
    return _respond(f'{{"data":{data},"total":{"null" if total is None else total},'
                    f'"page":{page},"page_size":{size},"total_pages":{pages}{tail}}}'.encode())


async def get_user(request: web.Request) -> web.Response:
    try:
        key = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    row = await request.app[POOL].one(GET_SQL, (key,))
    if row is None:
        raise web.HTTPNotFound()
    return _respond(row[0].encode())


async def list_orders(request: web.Request) -> web.Response:
    size, page = _int(request, "page_size", 25), _int(request, "page", 1)
    params = {"status": request.query.get("status", "paid"), "limit": size,
              "offset": (page - 1) * size}
    count = request.query.get("count", "none")
    if count == "none":
        row = await request.app[POOL].one(PAGE_SQL, params)
        return _envelope(row[0], None, page, size)
    if count == "exact":
        row = await request.app[POOL].one(EXACT_SQL, params)
        return _envelope(row[1], int(row[0]), page, size)
    if count != "bounded":
        raise web.HTTPBadRequest()

    async def bounded(conn: psycopg.AsyncConnection[Any]) -> web.Response:
        row = await (await conn.execute(BOUNDED_SQL, {**params,
                                                      "bound": EXACT_COUNT_LIMIT + 1})).fetchone()
        assert row is not None
        total, over = int(row[0]), int(row[0]) > EXACT_COUNT_LIMIT
        if over:
            plan = await (await conn.execute(ESTIMATE_SQL, params)).fetchone()
            assert plan is not None
            total = max(int(plan[0][0]["Plan"]["Plan Rows"]), EXACT_COUNT_LIMIT + 1)
        return _envelope(row[1], total, page, size, over)

    result: web.Response = await request.app[POOL].run(bounded)
    return result


def _value(expression: Any) -> Any:
    if not isinstance(expression, dict) or "value" not in expression:
        raise web.HTTPBadRequest()
    return expression["value"]


async def filter_users(request: web.Request) -> web.Response:
    """The benchmark's one payload shape: a country, then the orders relationship with
    one ``status ne`` condition."""
    size, page = _int(request, "page_size", 25), _int(request, "page", 1)
    try:
        country, orders = orjson.loads(await request.read())["expressions"]
        params = {"country": _value(country), "status": _value(orders["expressions"][0]),
                  "limit": size, "offset": (page - 1) * size}
    except (ValueError, KeyError, TypeError, IndexError):
        raise web.HTTPBadRequest() from None
    row = await request.app[POOL].one(INCLUDE_SQL, params)
    return _envelope(row[0], None, page, size)


async def filter_orders(request: web.Request) -> web.Response:
    """A ``user_id lte`` condition with the status grouping."""
    size, page = _int(request, "page_size", 25), _int(request, "page", 1)
    try:
        params = {"user": int(_value(orjson.loads(await request.read())["expressions"][0])),
                  "limit": size, "offset": (page - 1) * size}
    except (ValueError, KeyError, TypeError, IndexError):
        raise web.HTTPBadRequest() from None
    row = await request.app[POOL].one(GROUPED_SQL, params)
    return _envelope(row[0], None, page, size)


async def bulk_orders(request: web.Request) -> web.Response:
    """The rows through ``COPY`` into a staging table and on into ``orders`` with one
    ``INSERT … SELECT … RETURNING``: the stored rows come back, as swain answers."""
    try:
        rows = orjson.loads(await request.read())
        values = [tuple(row[name] for name in BULK_COLUMNS) for row in rows]
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest() from None

    async def insert(conn: psycopg.AsyncConnection[Any]) -> list[tuple[int, str]]:
        async with conn.transaction():
            await conn.execute(_STAGE, prepare=False)
            async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                for row in values:
                    await copy.write_row(row)
            cursor = await conn.execute(_MOVE, prepare=False)
            return await cursor.fetchall()

    inserted = await request.app[POOL].run(insert)
    parts = b",".join(b'{"index":%d,"id":%d,"data":%s}' % (i, key, data.encode())
                      for i, (key, data) in enumerate(inserted))
    return _respond(b'{"succeeded":[' + parts + b'],"failed":[]}')


async def ping(request: web.Request) -> web.Response:
    return _respond(b'{"ok":true}')


def create_app(dsn: str, pool_size: int, max_body: int = 64 * 1024 * 1024) -> web.Application:
    async def connections(app: web.Application) -> AsyncIterator[None]:
        opened = [await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=0)
                  for _ in range(pool_size)]
        app[POOL] = Connections(opened)
        yield
        for conn in opened:
            await conn.close()

    app = web.Application(client_max_size=max_body)
    app.cleanup_ctx.append(connections)
    app.router.add_get("/ping", ping)
    app.router.add_get("/users/{id}", get_user)
    app.router.add_get("/orders", list_orders)
    app.router.add_post("/users/filter", filter_users)
    app.router.add_post("/orders/filter", filter_orders)
    app.router.add_post("/orders/bulk", bulk_orders)
    return app


def serve(dsn: str, host: str, port: int, pool_size: int) -> None:
    import uvloop

    uvloop.install()
    web.run_app(create_app(dsn, pool_size), host=host, port=port, reuse_port=True,
                access_log=None, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m swain.contrib.bench.raw",
                                     description="The benchmark's raw aiohttp + psycopg handler.")
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=8, help="connections per process")
    args = parser.parse_args(argv)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            serve(args.dsn, args.host, args.port, args.pool_size)
            sys.exit(0)
    serve(args.dsn, args.host, args.port, args.pool_size)


if __name__ == "__main__":
    main()
