"""A database that stops answering is answered 503 within the configured bound.

PostgreSQL and MariaDB sit behind the testing kit's TCP proxy, which can
blackhole the link: every connection stays open and nothing comes back, as in
a network partition or a hung server.  Requests already waiting on the
database and new ones alike get 503 with ``Retry-After`` within
``query_timeout`` (here 2 s), ``/health`` keeps answering, and once the link
returns the pool heals by itself; no acknowledged write is lost.  SQLite has
no link to cut: a writer holding the lock, and a statement that runs past the
bound, stand in for a silent database there.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer, selected_dialects, write_config
from swain.contrib.testing.plugins import import_plugin, slow_route_plugin, write_plugin
from swain.contrib.testing.process import in_background, wait_for
from swain.contrib.testing.proxy import TcpProxy
from swain.core import create_app, load_config

DDL = "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)"
QUERY_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
#: the bound, with room for a loaded machine (the figures come from the faults script)
PROMPT = QUERY_TIMEOUT + 2.0
NETWORK = [d for d in selected_dialects() if d in ("postgresql", "mysql")]
#: what is asked while the database is silent: reads, a write, a count
DURING: list[tuple[str, str, object]] = [
    ("GET", "/items/1", None), ("GET", "/items", None),
    ("POST", "/items", {"id": 99, "name": "during"}), ("GET", "/items/count", None)]

#: a route that runs a statement for as long as it is allowed to (a recursive
#: count that never ends), to reach the client-side bound; it redefines the slow
#: plugin's routes to add itself
_STUCK = '''

@public
async def stuck(request):
    runtime = request.app[RUNTIME]
    async with runtime.dialect.acquire() as conn:
        row = await conn.fetch_one(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "SELECT count(*) FROM c")
    return json_response(dumps({"count": row[0]}))


@hookimpl
def swain_routes(config):
    return [web.get("/slow", slow), web.get("/stuck", stuck)]
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> object:
    source = slow_route_plugin("outage_probe", extra=_STUCK)
    folder = write_plugin(tmp_path_factory.mktemp("plugins"), "outage_probe", source)
    return import_plugin(folder / "outage_probe.py")


def _app(url: str, directory: Path, plugin: object) -> LiveServer:
    settings = {"url": url, "connect_timeout": f"{CONNECT_TIMEOUT}s",
                "query_timeout": f"{QUERY_TIMEOUT}s", "pool_size": 4}
    path = write_config(directory, url, connections={"development": settings})
    config, pm = load_config(path, "development", environ={}, plugins=[plugin])
    return LiveServer(create_app(config, pm))


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _unavailable(response: httpx.Response | BaseException, elapsed: float) -> None:
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert elapsed < PROMPT, f"answered after {elapsed:.2f}s"


@pytest.fixture(scope="module", params=NETWORK)
def network_database(request: pytest.FixtureRequest) -> Iterator[FreshDatabase]:
    with FreshDatabase(request.param) as db:
        db.run_script(DDL)
        yield db


def test_silent_link_answers_503_within_the_bound_and_heals(
        network_database: FreshDatabase, tmp_path: Path, plugin: object) -> None:
    target = network_database.url
    with TcpProxy(target.host or "127.0.0.1", target.port or 0) as proxy:
        url = target.set(port=proxy.port)
        text = url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)
        with _app(text, tmp_path, plugin) as live, \
                httpx.Client(base_url=live.url, timeout=60) as http:
            acknowledged = []
            for i in range(1, 5):
                r = http.post("/items", json={"id": i, "name": f"before-{i}"})
                assert r.status_code == 201, r.text
                acknowledged.append(i)

            # one request is inside its handler (it reaches the database after
            # a short sleep) when the link goes silent
            caller, in_flight = in_background(lambda: _timed(lambda: http.get("/slow?seconds=0.3")))
            proxy.blackhole()
            for method, path, body in DURING:
                _unavailable(*_timed(lambda m=method, p=path, b=body: http.request(m, p, json=b)))
            caller.join(timeout=30)
            response, elapsed = in_flight["response"]
            _unavailable(response, elapsed - 0.3)
            health, elapsed = _timed(lambda: http.get("/health"))
            assert health.status_code == 200 and elapsed < 0.5
            _unavailable(*_timed(lambda: http.get("/ready")))

            proxy.restore()
            assert wait_for(lambda: http.get("/items/1").status_code == 200, 10), \
                "the pool did not heal by itself"
            assert http.get("/ready").status_code == 200
            r = http.post("/items", json={"id": 5, "name": "after"})
            assert r.status_code == 201, r.text
            acknowledged.append(5)
    stored = {row[0] for row in network_database.query("SELECT id FROM items")}
    assert set(acknowledged) <= stored, "an acknowledged write was lost"


@pytest.fixture
def sqlite_database() -> Iterator[FreshDatabase]:
    if "sqlite" not in selected_dialects():
        pytest.skip("SQLite is not among SWAIN_TEST_DIALECTS")
    with FreshDatabase("sqlite") as db:
        db.run_script(DDL)
        yield db


def test_sqlite_locked_by_another_writer_answers_503_then_writes(
        sqlite_database: FreshDatabase, tmp_path: Path, plugin: object) -> None:
    with _app(sqlite_database.swain_url, tmp_path, plugin) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        assert http.post("/items", json={"id": 1, "name": "first"}).status_code == 201
        holder = sqlite3.connect(str(sqlite_database.url.database), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            holder.execute("INSERT INTO items (id, name) VALUES (2, 'held')")
            _unavailable(*_timed(lambda: http.post("/items", json={"id": 3, "name": "x"})))
            assert http.get("/items/1").status_code == 200  # readers are not blocked
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        r = http.post("/items", json={"id": 3, "name": "after"})
        assert r.status_code == 201, r.text
    assert sqlite_database.query("SELECT id FROM items ORDER BY id") == [(1,), (3,)]


def test_sqlite_statement_past_the_bound_is_interrupted(
        sqlite_database: FreshDatabase, tmp_path: Path, plugin: object) -> None:
    with _app(sqlite_database.swain_url, tmp_path, plugin) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        _unavailable(*_timed(lambda: http.get("/stuck")))
        # the pooled connections still work: the statement was interrupted, not
        # left running in the driver's thread
        for i in range(8):
            r = http.post("/items", json={"id": 10 + i, "name": "after"})
            assert r.status_code == 201, r.text
