"""Operations: /health and /ready, request ids, and database outages.

Outages are real: a TCP proxy sits between the server and PostgreSQL or
MariaDB, and cutting it drops every connection and refuses new ones.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from swain.contrib.testing import FreshDatabase, LiveServer, selected_dialects, write_config
from swain.contrib.testing.proxy import TcpProxy
from swain.core import Config, Identity, create_app, hookimpl, load_config

pytest_plugins = ["swain.contrib.testing.fixtures"]

DDL = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);
INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')
"""

NETWORK_DIALECTS = [d for d in selected_dialects() if d in ("postgresql", "mysql")]
CONNECT_TIMEOUT = 1.0
#: how long a request may take while the database is away: the connect timeout,
#: with room for a machine busy with other work
PROMPT = CONNECT_TIMEOUT + 3


class DeclineAll:
    """An auth provider that never recognises anyone (so only public routes answer)."""

    name = "decline"

    async def authenticate(self, request: web.Request) -> Identity | None:
        return None


class DeclinePlugin:
    @hookimpl
    def swain_auth_providers(self, config: Config) -> list[DeclineAll]:
        return [DeclineAll()]


def wait_for(predicate: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``predicate`` held, or ``None`` if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


# -- health, readiness, request ids (every dialect) ------------------------------------


def test_health_and_ready(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and body["tables"] == 1 and body["database"]


def test_health_and_ready_are_public(database: FreshDatabase, tmp_path: Path) -> None:
    config_path = write_config(tmp_path, database.swain_url, auth={"enabled": True})
    config, pm = load_config(config_path, "development", environ={}, plugins=[DeclinePlugin()])
    with LiveServer(create_app(config, pm)) as live, httpx.Client(base_url=live.url) as http:
        assert http.get("/items").status_code == 401
        assert http.get("/health").status_code == 200
        assert http.get("/ready").status_code == 200


def test_request_id_echoed_when_safe(client: httpx.Client) -> None:
    r = client.get("/items/1", headers={"X-Request-ID": "trace-42.a:b_c"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "trace-42.a:b_c"
    unsafe_ids = [b"x" * 129, b"a b", b"a\tb", b"<script>", "id\u00e9".encode(), b""]
    for unsafe in unsafe_ids:
        r = client.get("/items/1", headers=[(b"X-Request-ID", unsafe)])
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"]), unsafe
    first = client.get("/items/404").headers["X-Request-ID"]
    second = client.get("/items/404")
    assert second.status_code == 404 and second.headers["X-Request-ID"] != first
    assert second.json()["error"]["request_id"] == second.headers["X-Request-ID"]


# -- database outages (PostgreSQL and MariaDB, through a proxy) --------------------------------


@pytest.fixture(scope="module", params=NETWORK_DIALECTS)
def network_database(request: pytest.FixtureRequest) -> Iterator[FreshDatabase]:
    with FreshDatabase(request.param) as db:
        db.run_script(DDL)
        yield db


def proxied_app(database: FreshDatabase, proxy: TcpProxy, directory: Path) -> web.Application:
    url = database.url.set(port=proxy.port)
    url_text = url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)
    config_path = write_config(directory, url_text, connections={"development": {
        "url": url_text, "connect_timeout": f"{CONNECT_TIMEOUT}s", "pool_size": 4}})
    config, pm = load_config(config_path, "development", environ={})
    return create_app(config, pm)


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert "psycopg" not in error["message"] and "MySQL" not in error["message"]
    assert int(response.headers["Retry-After"]) >= 1
    assert elapsed < PROMPT, f"took {elapsed:.2f}s"


def test_outage_gives_503_then_recovers(network_database: FreshDatabase, tmp_path: Path) -> None:
    target = network_database.url
    with TcpProxy(target.host or "127.0.0.1", target.port or 0) as proxy, \
            LiveServer(proxied_app(network_database, proxy, tmp_path)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.get("/items").json()["total"] == 2
        for _ in range(3):  # several pooled connections are in use, then idle
            assert http.get("/items/1").status_code == 200

        proxy.cut()
        calls: list[Callable[[], httpx.Response]] = [
            lambda: http.get("/items"),
            lambda: http.get("/items/1"),
            lambda: http.post("/items", json={"id": 3, "name": "c"}),
            lambda: http.get("/items/count"),
        ]
        for call in calls:
            assert_unavailable(*timed(call))
        ready, elapsed = timed(lambda: http.get("/ready"))
        assert_unavailable(ready, elapsed)
        health, elapsed = timed(lambda: http.get("/health"))
        assert health.status_code == 200 and elapsed < 0.5

        proxy.restore()
        recovered = wait_for(lambda: http.get("/items").status_code == 200, timeout=5)
        assert recovered is not None, "the server did not recover by itself"
        assert http.get("/ready").status_code == 200
        r = http.post("/items", json={"id": 3, "name": "c"})
        assert r.status_code == 201, r.text
        assert network_database.query("SELECT name FROM items WHERE id = 3") == [("c",)]


def test_starts_while_database_is_down(network_database: FreshDatabase, tmp_path: Path) -> None:
    target = network_database.url
    with TcpProxy(target.host or "127.0.0.1", target.port or 0).start(listening=False) as proxy:
        started = time.monotonic()
        with LiveServer(proxied_app(network_database, proxy, tmp_path)) as live, \
                httpx.Client(base_url=live.url, timeout=30) as http:
            assert time.monotonic() - started < CONNECT_TIMEOUT + 5
            assert http.get("/health").status_code == 200
            assert_unavailable(*timed(lambda: http.get("/ready")))
            assert_unavailable(*timed(lambda: http.get("/items")))

            proxy.restore()
            became_ready = wait_for(lambda: http.get("/ready").status_code == 200, timeout=8)
            assert became_ready is not None, "the server never became ready"
            body: dict[str, Any] = http.get("/items").json()
            expected = network_database.query("SELECT name FROM items ORDER BY id")
            assert [(row["name"],) for row in body["data"]] == expected and expected
