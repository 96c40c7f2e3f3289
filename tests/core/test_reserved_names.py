"""Table names and the URL space.

A table whose name is one of the API's own paths (``auth``, ``health``,
``swagger``, ``tables``…) is served only under ``/tables/{name}``, and startup
warns about it; every table is reachable under ``/tables/{name}``; names that
are not URL-safe are percent-encoded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer
from swain.core import create_app, load_config
from swain.core.keys import RUNTIME

RESERVED = ["auth", "health", "ready", "swagger", "tables", "_swain", "metrics"]
ODD = ["my table", "café", "Order Items"]
PLAIN = ["things"]
ALL = RESERVED + ODD + PLAIN


def _ddl(quote_char: str) -> str:
    statements = []
    for name in ALL:
        q = f"{quote_char}{name}{quote_char}"
        statements.append(f"CREATE TABLE {q} (id INTEGER PRIMARY KEY, v VARCHAR(20))")
        statements.append(f"INSERT INTO {q} (id, v) VALUES (1, '{name}-1'), (2, '{name}-2')")
    return ";\n".join(statements)


DDL = {"default": _ddl('"'), "mysql": _ddl("`")}


def path(name: str) -> str:
    return "/" + quote(name, safe="")


def assert_error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ALL)
def test_every_table_is_served_under_tables(client: httpx.Client, name: str) -> None:
    base = "/tables" + path(name)
    body = client.get(base).json()
    assert [row["v"] for row in body["data"]] == [f"{name}-1", f"{name}-2"]
    assert body["total"] == 2
    assert client.get(f"{base}/2").json() == {"id": 2, "v": f"{name}-2"}
    assert client.get(f"{base}/count").json() == {"count": 2}


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_names_are_not_served_at_the_top_level(client: httpx.Client, name: str) -> None:
    top = client.get(path(name))
    # Either the API's own endpoint answers, or a 404 that points to /tables/.
    assert f"{name}-1" not in top.text
    if top.status_code == 404:
        assert f"/tables/{name}" in assert_error(top, 404)["message"]
    for response in (client.get(f"{path(name)}/1"), client.post(path(name), json={"id": 3}),
                     client.delete(f"{path(name)}/1"),
                     client.patch(f"{path(name)}/1", json={"v": "x"})):
        assert response.status_code in (404, 405), response.text
        assert f"{name}-1" not in response.text


def test_health_and_ready_keep_their_meaning(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"


def test_writes_under_tables_for_a_reserved_name(client: httpx.Client,
                                                 database: FreshDatabase, dialect: str) -> None:
    q = "`" if dialect == "mysql" else '"'
    r = client.post("/tables/auth", json={"id": 3, "v": "new"})
    assert r.status_code == 201 and r.json() == {"id": 3, "v": "new"}
    r = client.patch("/tables/auth/3", json={"v": "newer"})
    assert r.status_code == 200 and r.json() == {"id": 3, "v": "newer"}
    assert database.query(f"SELECT v FROM {q}auth{q} WHERE id = 3") == [("newer",)]
    r = client.delete("/tables/auth/3")
    assert r.status_code == 200 and r.json() == {"id": 3, "v": "newer"}
    assert database.query(f"SELECT count(*) FROM {q}auth{q}") == [(2,)]
    r = client.post("/tables/tables", json={"id": 9, "v": "tables-9"})
    assert r.status_code == 201
    assert client.get("/tables/tables/9").json() == {"id": 9, "v": "tables-9"}
    assert client.delete("/tables/tables/9").status_code == 200


def test_tables_prefix_is_not_a_row_of_the_tables_table(client: httpx.Client,
                                                        database: FreshDatabase,
                                                        dialect: str) -> None:
    """``DELETE /tables/1`` matches ``/{table}/{id}`` with table "tables": a
    reserved name there must not be served."""
    q = "`" if dialect == "mysql" else '"'
    for response in (client.delete("/tables/1"), client.patch("/tables/1", json={"v": "x"}),
                     client.put("/tables/2", json={"v": "x"})):
        assert response.status_code == 404, response.text
    assert database.query(f"SELECT id, v FROM {q}tables{q} ORDER BY id") == [
        (1, "tables-1"), (2, "tables-2")]


@pytest.mark.parametrize("name", ODD + PLAIN)
def test_percent_encoded_names_at_the_top_level(client: httpx.Client, name: str) -> None:
    body = client.get(path(name)).json()
    assert [row["v"] for row in body["data"]] == [f"{name}-1", f"{name}-2"]
    assert client.get(f"{path(name)}/1").json() == {"id": 1, "v": f"{name}-1"}
    r = client.patch(f"{path(name)}/1", json={"v": "é ☃"})
    assert r.status_code == 200 and r.json()["v"] == "é ☃"
    r = client.put(f"{path(name)}/1", json={"v": f"{name}-1"})
    assert r.status_code == 200


def test_unknown_table_under_tables(client: httpx.Client) -> None:
    assert "nope" in assert_error(client.get("/tables/nope"), 404)["message"]
    assert_error(client.get("/tables/nope/1"), 404)
    assert_error(client.get("/tables/caf%C3%A8"), 404)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def swain_warnings() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("swain")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _collisions(records: _Records) -> list[str]:
    found = [m for m in records.messages if "reserved path" in m]
    for name in RESERVED:
        assert any(f"'{name}'" in m and f"/tables/{name}" in m for m in found), found
    return found


def test_startup_warns_about_each_collision(config_path: Path,
                                            swain_warnings: _Records) -> None:
    config, pm = load_config(config_path, "development", environ={})
    with LiveServer(create_app(config, pm)):
        pass
    assert len(_collisions(swain_warnings)) == len(RESERVED)


def test_a_schema_reload_warns_again(server: LiveServer, swain_warnings: _Records) -> None:
    server.call(server.app[RUNTIME].load_schema())
    assert len(_collisions(swain_warnings)) == len(RESERVED)
