"""Guard tests for the hook specifications (prefixed, documented, typed), and
behaviour tests of the hooks core consumes through one explicit plugin.

That every hook is honoured is guarded by ``test_hook_behaviour.py``; that
every hook is documented with its signature, by ``tests/test_docs.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.core import (
    RUNTIME,
    AuditEvent,
    Forbidden,
    Identity,
    Predicate,
    create_app,
    hookimpl,
    hookspecs,
    load_config,
)
from swain.core.plugins import create_plugin_manager, load_dialect

TESTS = Path(__file__).resolve().parent.parent
SPECS = sorted(name for name, value in vars(hookspecs).items()
               if inspect.isfunction(value) and hasattr(value, "swain_spec"))


def test_there_are_hookspecs() -> None:
    assert len(SPECS) >= 15
    assert {"swain_get_dialect", "swain_auth_providers", "swain_authorizers",
            "swain_row_policies", "swain_write_preparers", "swain_routes",
            "swain_filter_operators", "swain_aggregate_functions", "swain_password_hashers",
            "swain_email_transports", "swain_spec_contributions", "swain_cleanup_ctx",
            "swain_audit_sinks"} <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_hookspec_is_prefixed_documented_and_typed(name: str) -> None:
    spec = getattr(hookspecs, name)
    assert name.startswith("swain_")
    assert spec.__doc__ and len(spec.__doc__.strip()) > 30, f"{name} needs a docstring"
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: return type"
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name})"


def test_firstresult_hooks_are_documented_as_such() -> None:
    for name in SPECS:
        options = getattr(hookspecs, name).swain_spec
        if options.get("firstresult"):
            assert "first non-" in getattr(hookspecs, name).__doc__, name


def test_no_hookspec_is_async() -> None:
    for name in SPECS:
        assert not inspect.iscoroutinefunction(getattr(hookspecs, name)), name


# -- behaviour of hooks core consumes, through one explicit plugin ---------------------


DDL = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, level INTEGER NOT NULL,
                    note VARCHAR(50));
INSERT INTO items (id, name, level) VALUES (1, 'a', 0), (2, 'b', 1), (3, 'c', 2), (4, 'd', 1)
"""


class Teapot(Exception):
    """An exception core does not know: a plugin turns it into a response."""


class LevelPolicy:
    """Confines every statement on ``items`` to rows with ``level <= 1``."""

    async def predicate(self, identity: Identity | None, table: Any, sa_table: sa.Table,
                        action: str) -> Predicate | None:
        if table.name != "items":
            return None
        return Predicate(key="level<=max", clause=sa_table.c.level <= sa.bindparam("hook_max"),
                         params={"hook_max": 1})


class NoDeletes:
    async def authorize(self, identity: Identity | None, table: Any, action: str) -> None:
        if action == "delete":
            raise Forbidden(f"{table.name}.delete is not allowed here")


class StampNote:
    async def prepare(self, identity: Identity | None, table: Any, values: dict[str, Any],
                      action: str) -> dict[str, Any]:
        return {**values, "note": f"prepared for {action}"}


class DivisibleBy:
    def build(self, column: Any, value: Any) -> Any:
        # ``value`` arrives bound; a constant must be inlined, not bound anew.
        return column % value == sa.literal_column("0")


class ListSink:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


@web.middleware
async def tag(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    response.headers["X-Hook-Middleware"] = "seen"
    return response


async def teapot(request: web.Request) -> web.Response:
    raise Teapot("short and stout")


class HookPlugin:
    """Implements the hooks that no plugin in the tree implements yet."""

    __name__ = "hook_plugin"

    def __init__(self, dialect_class: type) -> None:
        self.dialect_class = dialect_class
        self.sink = ListSink()

    @hookimpl
    def swain_get_dialect(self, name: str) -> type | None:
        return self.dialect_class if name == self.dialect_class.__bases__[0].name else None

    @hookimpl
    def swain_row_policies(self, config: Any) -> list[Any]:
        return [LevelPolicy()]

    @hookimpl
    def swain_authorizers(self, config: Any) -> list[Any]:
        return [NoDeletes()]

    @hookimpl
    def swain_write_preparers(self, config: Any) -> list[Any]:
        return [StampNote()]

    @hookimpl
    def swain_middlewares(self, config: Any) -> list[Any]:
        return [tag]

    @hookimpl
    def swain_routes(self, config: Any) -> list[web.RouteDef]:
        return [web.get("/hooks/teapot", teapot)]

    @hookimpl
    def swain_handle_exception(self, request: web.Request,
                               exception: BaseException) -> web.Response | None:
        if isinstance(exception, Teapot):
            return web.json_response({"teapot": str(exception)}, status=418)
        return None

    @hookimpl
    def swain_filter_operators(self, config: Any) -> Mapping[str, Any]:
        return {"divisible_by": DivisibleBy()}

    @hookimpl
    def swain_audit_sinks(self, config: Any) -> list[Any]:
        return [self.sink]

    @hookimpl
    def swain_spec_contributions(self, spec: Any, schema: Any, config: Any) -> None:
        spec.path(path="/hooks/teapot", operations={"get": {
            "operationId": "brewTea", "responses": {"418": {"description": "a teapot"}}}})


@pytest.fixture(scope="module")
def hooked(database: FreshDatabase,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, HookPlugin]]:
    path = write_config(tmp_path_factory.mktemp("hooks"), database.swain_url)
    config, _ = load_config(path, environ={})
    base = load_dialect(create_plugin_manager(), config.connection().dialect)
    marked = type(f"Hooked{base.__name__}", (base,), {})
    plugin = HookPlugin(marked)
    config, pm = load_config(path, environ={}, plugins=[plugin])
    with LiveServer(create_app(config, pm)) as live:
        yield live, plugin


@pytest.fixture(scope="module")
def http(hooked: tuple[LiveServer, HookPlugin]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hooked[0].url, timeout=30) as client:
        yield client


def test_hook_swain_get_dialect(hooked: tuple[LiveServer, HookPlugin]) -> None:
    live, plugin = hooked
    assert type(live.app[RUNTIME].dialect) is plugin.dialect_class


def test_hook_swain_row_policies(http: httpx.Client, database: FreshDatabase) -> None:
    body = http.get("/items").json()
    assert [row["id"] for row in body["data"]] == [1, 2, 4]
    assert body["total"] == 3
    assert http.get("/items/count").json() == {"count": 3}
    assert http.get("/items/3").status_code == 404
    assert http.put("/items/3", json={"name": "z"}).status_code == 404
    assert database.query("SELECT name FROM items WHERE id = 3") == [("c",)]


def test_hook_swain_authorizers(http: httpx.Client, database: FreshDatabase) -> None:
    response = http.delete("/items/1")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "items.delete is not allowed here"
    assert database.query("SELECT count(*) FROM items WHERE id = 1") == [(1,)]


def test_hook_swain_write_preparers(http: httpx.Client, database: FreshDatabase) -> None:
    response = http.post("/items", json={"id": 10, "name": "new", "level": 0, "note": "mine"})
    assert response.status_code == 201, response.text
    assert response.json()["note"] == "prepared for create"
    http.patch("/items/10", json={"name": "newer"})
    assert database.query("SELECT name, note FROM items WHERE id = 10") == \
        [("newer", "prepared for update")]


def test_hook_swain_middlewares(http: httpx.Client) -> None:
    assert http.get("/items").headers["X-Hook-Middleware"] == "seen"
    # inside core's error envelope: a handler's error passes through the plugin's
    # middleware as an exception and becomes the envelope outside it
    response = http.get("/items/999")
    assert response.status_code == 404 and "X-Hook-Middleware" not in response.headers
    assert response.json()["error"]["code"] == "not_found"


def test_hook_swain_handle_exception(http: httpx.Client) -> None:
    response = http.get("/hooks/teapot")
    assert response.status_code == 418
    assert response.json() == {"teapot": "short and stout"}


def test_unknown_exception_without_a_handler_is_a_bare_500(database: FreshDatabase,
                                                           tmp_path: Path) -> None:
    class RouteOnly:
        __name__ = "route_only"

        @hookimpl
        def swain_routes(self, config: Any) -> list[web.RouteDef]:
            return [web.get("/hooks/teapot", teapot)]

    path = write_config(tmp_path, database.swain_url)
    config, pm = load_config(path, environ={}, plugins=[RouteOnly()])
    with LiveServer(create_app(config, pm)) as live:
        response = httpx.get(f"{live.url}/hooks/teapot", timeout=30)
    assert response.status_code == 500
    assert "short and stout" not in response.text
    assert response.json()["error"]["code"] == "server_error"


def test_hook_swain_filter_operators(http: httpx.Client) -> None:
    payload = {"expressions": [{"field": "id", "operator": "divisible_by", "value": 2}]}
    response = http.post("/items/filter", json=payload)
    assert response.status_code == 200, response.text
    assert [row["id"] for row in response.json()["data"]] == [2, 4, 10]  # row policy still on


def test_hook_swain_audit_sinks(hooked: tuple[LiveServer, HookPlugin],
                                http: httpx.Client) -> None:
    live, plugin = hooked
    assert live.app[RUNTIME].audit_sinks[0] is plugin.sink
    plugin.sink.events.clear()
    response = http.post("/items", json={"id": 20, "name": "logged", "level": 0})
    assert response.status_code == 201, response.text
    http.delete("/items/20")  # refused by the authorizer: no event
    [event] = plugin.sink.events
    assert (event.action, event.table, event.target, event.actor) == \
        ("create", "items", {"id": 20}, None)


def test_hook_swain_spec_contributions(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["paths"]["/hooks/teapot"]["get"]["operationId"] == "brewTea"


def test_dialect_entry_points_are_registered() -> None:
    names = {ep.name for ep in entry_points(group="swain.dialects")}
    assert {"postgresql", "mysql", "mariadb", "sqlite", "examplesqlite"} <= names
