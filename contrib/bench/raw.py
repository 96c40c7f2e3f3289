"""The baseline: the least code that serves the benchmark's requests.

aiohttp on uvloop, a small psycopg 3 pool per process, the JSON built by
PostgreSQL (``row_to_json``/``json_agg``) exactly as swain builds it, no
logging, no middlewares, no validation beyond what keeps it from crashing.
``--workers`` processes share the port with ``SO_REUSEPORT``, as
``swain serve --workers`` does.  Run it alone with::

    python -m swain.contrib.bench.raw --dsn "dbname=... user=postgres" --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

_COLUMNS = "id, customer_id, status, total::text AS total, items, created_at, note"
GET_SQL = f"SELECT row_to_json(q)::text FROM (SELECT {_COLUMNS} FROM orders WHERE id = %s) AS q"
LIST_SQL = (
    "SELECT (SELECT count(*) FROM orders), "
    "(SELECT coalesce(json_agg(q), '[]'::json)::text FROM "
    f"(SELECT {_COLUMNS} FROM orders ORDER BY id LIMIT %s OFFSET %s) AS q)"
)
FILTER_SQL = (
    "SELECT (SELECT count(*) FROM orders WHERE status = %s), "
    "(SELECT coalesce(json_agg(q), '[]'::json)::text FROM "
    f"(SELECT {_COLUMNS} FROM orders WHERE status = %s ORDER BY id LIMIT %s OFFSET %s) AS q)"
)

#: customers of one country, each with its orders of some size and their count and sum
CUSTOMERS_SQL = (
    "SELECT (SELECT count(*) FROM customers WHERE country = %(country)s), "
    "(SELECT coalesce(json_agg(q), '[]'::json)::text FROM ("
    "SELECT c.id, c.name, c.email, c.country, c.created_at, "
    "coalesce((SELECT json_agg(o) FROM (SELECT id, status, total::text AS total FROM orders "
    "WHERE customer_id = c.id AND items >= %(items)s ORDER BY id) AS o), '[]'::json) AS orders, "
    "(SELECT json_build_object('n', count(*), 'revenue', sum(total)::text) FROM orders "
    "WHERE customer_id = c.id AND items >= %(items)s) AS aggregations "
    "FROM customers AS c WHERE c.country = %(country)s ORDER BY c.id "
    "LIMIT %(limit)s OFFSET %(offset)s) AS q)"
)
#: orders with some item count, grouped by status
GROUPED_SQL = (
    "SELECT (SELECT count(DISTINCT status) FROM orders WHERE items = %(items)s), "
    "(SELECT coalesce(json_agg(q), '[]'::json)::text FROM ("
    "SELECT status, count(*) AS n, sum(total)::text AS revenue, min(total)::text AS smallest, "
    "max(total)::text AS largest FROM orders WHERE items = %(items)s GROUP BY status "
    "ORDER BY status LIMIT %(limit)s OFFSET %(offset)s) AS q)"
)
BULK_SQL = (
    "INSERT INTO orders (customer_id, status, total, items, created_at, note) "
    "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::numeric[], %s::integer[], "
    "%s::timestamptz[], %s::text[]) "
    "RETURNING id, json_build_object('id', id, 'customer_id', customer_id, 'status', status, "
    "'total', total::text, 'items', items, 'created_at', created_at, 'note', note)::text"
)
_BULK_COLUMNS = ("customer_id", "status", "total", "items", "created_at", "note")

POOL: web.AppKey[AsyncConnectionPool] = web.AppKey("pool", AsyncConnectionPool)
_JSON = "application/json"


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return max(1, int(request.query.get(name, default)))
    except ValueError:
        raise web.HTTPBadRequest() from None


def _page(body: str, total: int, page: int, size: int) -> web.Response:
    pages = math.ceil(total / size) if total else 0
    return web.Response(
        body=b'{"data":' + body.encode()
        + f',"total":{total},"page":{page},"page_size":{size},"total_pages":{pages}}}'.encode(),
        content_type=_JSON)


async def get_order(request: web.Request) -> web.Response:
    try:
        key = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    async with request.app[POOL].connection() as conn:
        cursor = await conn.execute(GET_SQL, (key,))
        row = await cursor.fetchone()
    if row is None:
        raise web.HTTPNotFound()
    return web.Response(body=row[0].encode(), content_type=_JSON)


async def list_orders(request: web.Request) -> web.Response:
    size, page = _int(request, "page_size", 25), _int(request, "page", 1)
    status = request.query.get("status")
    async with request.app[POOL].connection() as conn:
        if status is None:
            cursor = await conn.execute(LIST_SQL, (size, (page - 1) * size))
        else:
            cursor = await conn.execute(FILTER_SQL, (status, status, size, (page - 1) * size))
        row = await cursor.fetchone()
    assert row is not None
    return _page(row[1], int(row[0]), page, size)


def _value(expression: Any) -> Any:
    if not isinstance(expression, dict) or "value" not in expression:
        raise web.HTTPBadRequest()
    return expression["value"]


async def filter_customers(request: web.Request) -> web.Response:
    """The bench's one payload shape: a country condition, then the orders relationship
    with one ``items >=`` condition."""
    size, page = _int(request, "page_size", 25), _int(request, "page", 1)
    try:
        country, orders = (await request.json())["expressions"]
        params = {"country": _value(country), "items": int(_value(orders["expressions"][0])),
                  "limit": size, "offset": (page - 1) * size}
    except (ValueError, KeyError, TypeError, IndexError):
        raise web.HTTPBadRequest() from None
    async with request.app[POOL].connection() as conn:
        row = await (await conn.execute(CUSTOMERS_SQL, params)).fetchone()
    assert row is not None
    return _page(row[1], int(row[0]), page, size)


async def filter_orders(request: web.Request) -> web.Response:
    """An ``items`` condition with the status grouping."""
    size, page = _int(request, "page_size", 25), _int(request, "page", 1)
    try:
        params = {"items": int(_value((await request.json())["expressions"][0])),
                  "limit": size, "offset": (page - 1) * size}
    except (ValueError, KeyError, TypeError, IndexError):
        raise web.HTTPBadRequest() from None
    async with request.app[POOL].connection() as conn:
        row = await (await conn.execute(GROUPED_SQL, params)).fetchone()
    assert row is not None
    return _page(row[1], int(row[0]), page, size)


async def bulk_orders(request: web.Request) -> web.Response:
    """Every row of the array in one multi-row INSERT, answered in swain's bulk shape."""
    try:
        rows = await request.json()
        columns = [[row.get(name) for row in rows] for name in _BULK_COLUMNS]
    except (ValueError, AttributeError, TypeError):
        raise web.HTTPBadRequest() from None
    async with request.app[POOL].connection() as conn:
        inserted = await (await conn.execute(BULK_SQL, columns)).fetchall()
    parts = b",".join(b'{"index":%d,"id":%d,"data":%s}' % (i, key, data.encode())
                      for i, (key, data) in enumerate(inserted))
    return web.Response(body=b'{"succeeded":[' + parts + b'],"failed":[]}', content_type=_JSON)


def create_app(dsn: str, pool_size: int, max_body: int = 1024 * 1024) -> web.Application:
    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = AsyncConnectionPool(dsn, min_size=pool_size, max_size=pool_size, open=False,
                                        kwargs={"autocommit": True})
        await app[POOL].open(wait=True)
        yield
        await app[POOL].close()

    app = web.Application(client_max_size=max_body)
    app.cleanup_ctx.append(pool)
    app.router.add_get("/orders", list_orders)
    app.router.add_get("/orders/{id}", get_order)
    app.router.add_post("/customers/filter", filter_customers)
    app.router.add_post("/orders/filter", filter_orders)
    app.router.add_post("/orders/bulk", bulk_orders)
    return app


def serve_one(dsn: str, host: str, port: int, pool_size: int, max_body: int) -> None:
    """One worker process: uvloop, its own pool, the shared port."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(create_app(dsn, pool_size, max_body), host=host, port=port, reuse_port=True,
                access_log=None, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m swain.contrib.bench.raw",
                                     description="The benchmark's raw aiohttp + psycopg baseline.")
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--max-body", type=int, default=64 * 1024 * 1024,
                        help="largest request body in bytes")
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=serve_one, args=(args.dsn, args.host, args.port,
                                                         args.pool_size, args.max_body))
                 for _ in range(args.workers)]
    for process in processes:
        process.start()

    def forward(signum: int, frame: Any) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    for process in processes:
        process.join()


if __name__ == "__main__":
    main()
