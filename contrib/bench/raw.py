"""The baseline: the least code that serves the benchmark's three requests.

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


def create_app(dsn: str, pool_size: int) -> web.Application:
    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = AsyncConnectionPool(dsn, min_size=pool_size, max_size=pool_size, open=False,
                                        kwargs={"autocommit": True})
        await app[POOL].open(wait=True)
        yield
        await app[POOL].close()

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_get("/orders", list_orders)
    app.router.add_get("/orders/{id}", get_order)
    return app


def serve_one(dsn: str, host: str, port: int, pool_size: int) -> None:
    """One worker process: uvloop, its own pool, the shared port."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(create_app(dsn, pool_size), host=host, port=port, reuse_port=True,
                access_log=None, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m swain.contrib.bench.raw",
                                     description="The benchmark's raw aiohttp + psycopg baseline.")
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=serve_one, args=(args.dsn, args.host, args.port,
                                                         args.pool_size))
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
