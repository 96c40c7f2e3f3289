"""Core's middleware over real HTTP, with no auth plugin, replicas or CORS (core's work
is one middleware then): the request id and the security headers on every answer,
errors included; a handler's own security header kept; plugin middlewares inside,
with the identity set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.contrib.testing.fixtures import only_dialect
from swain.core import IDENTITY, create_app, hookimpl, json_response, load_config

dialect = only_dialect("sqlite")  # the middleware is the same on every database

DDL = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50));" \
      "INSERT INTO notes (id, body) VALUES (1, 'hello')"
SECURITY = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer"}


async def framed(request: web.Request) -> web.Response:
    """A page that may be framed by its own origin and sends its referrer there."""
    return json_response(b"{}", headers={"X-Frame-Options": "SAMEORIGIN",
                                         "Referrer-Policy": "same-origin"})


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug in a plugin's handler")


@web.middleware
async def tells_identity(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers["X-Identity-Set"] = str(IDENTITY in request)
    return response


class Pages:
    @hookimpl
    def swain_routes(self) -> list[Any]:
        return [web.get("/framed", framed), web.get("/broken", broken)]

    @hookimpl
    def swain_middlewares(self) -> list[Any]:
        return [tells_identity]


@pytest.fixture(scope="module")
def client(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[httpx.Client]:
    path = write_config(tmp_path_factory.mktemp("config"), database.swain_url)
    app = create_app(*load_config(path, environ={}, plugins=[Pages()]))
    assert len(app.middlewares) == 2  # core's one, then the plugin's
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def _secured(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert response.headers[name] == value, name
    assert response.headers["X-Request-ID"]


def test_a_row_read_by_key_carries_the_request_id_and_security_headers(
        client: httpx.Client) -> None:
    r = client.get("/notes/1")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": 1, "body": "hello"}
    _secured(r)
    assert r.headers["X-Identity-Set"] == "True"  # None without auth, but set


def test_a_safe_incoming_request_id_is_echoed_and_an_unsafe_one_replaced(
        client: httpx.Client) -> None:
    assert client.get("/notes/1", headers={"X-Request-ID": "abc-123"}
                      ).headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/notes/1", headers={"X-Request-ID": "no spaces <here>"})
    assert replaced.headers["X-Request-ID"] != "no spaces <here>"
    assert len(replaced.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/notes/2", 404, "not_found"),           # no such row
    ("/notes/x", 422, "validation_error"),   # not a key of the table
    ("/no/such/route/here", 404, "not_found"),
    ("/broken", 500, "server_error"),
])
def test_errors_are_the_envelope_with_the_request_id_and_security_headers(
        client: httpx.Client, path: str, status: int, code: str) -> None:
    r = client.get(path, headers={"X-Request-ID": "err-1"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["request_id"] == "err-1"
    _secured(r)
    assert "a bug" not in r.text


def test_a_handler_that_sets_its_own_security_header_keeps_it(client: httpx.Client) -> None:
    r = client.get("/framed")
    assert r.status_code == 200
    assert r.headers.get_list("X-Frame-Options") == ["SAMEORIGIN"]
    assert r.headers.get_list("Referrer-Policy") == ["same-origin"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"  # the one it did not set


def test_a_wrong_method_is_a_405_envelope_naming_the_allowed_ones(client: httpx.Client) -> None:
    r = client.post("/health")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in r.headers["Allow"]
    _secured(r)

