"""Every hook specification is called, and what its implementations return takes
effect: the guard that a hook is honoured.

One plugin (:class:`Spy`) implements every hook core and the built-in plugins
specify, with every argument, and records each call; an app built with it is
driven over real HTTP.  For each hookspec, :data:`CHECKS` holds a check that
the hook was called with the arguments its spec names *and* that its result
changed what the API does.  A hookspec without a check fails
:func:`test_every_hookspec_has_a_behaviour_check`, so a new hook cannot be
specified without being honoured.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from click.testing import CliRunner

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.contrib.testing.auth import FAST_ARGON2
from swain.contrib.testing.plugins import write_plugin
from swain.core import (
    RUNTIME,
    AuditEvent,
    Config,
    EmailMessage,
    Forbidden,
    HashInfo,
    Identity,
    Invalidation,
    Predicate,
    Runtime,
    ServiceKey,
    Setting,
    Watch,
    create_app,
    hookimpl,
    json_response,
    load_config,
    public,
)
from swain.core.codec import dumps
from swain.core.invalidation import EVERYTHING
from swain.core.plugins import create_plugin_manager, dialect_class
from swain.plugins.auth.social import Pending, Profile, SocialFlow

_TABLES = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE,
                    pw VARCHAR(255) NOT NULL);
CREATE TABLE resets (id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, token VARCHAR(255) NOT NULL,
                     expires {ts} NOT NULL, used {ts});
CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, level INTEGER NOT NULL,
                    note VARCHAR(50));
CREATE TABLE hidden_t (id INTEGER PRIMARY KEY);
CREATE TABLE profiles (id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, via VARCHAR(20) NOT NULL,
                       ext VARCHAR(100) NOT NULL, email VARCHAR(255), made VARCHAR(40));
INSERT INTO items (id, name, level) VALUES (1, 'a', 0), (2, 'b', 1), (3, 'c', 2), (4, 'd', 1)
"""
# MySQL gives a NOT NULL TIMESTAMP a default of its own; DATETIME is the plain one there
DDL = {"default": _TABLES.format(ts="TIMESTAMP"), "mysql": _TABLES.format(ts="DATETIME")}
SPY = {"X-Spy": "spy-user"}
SECTIONS: dict[str, Any] = {
    "auth": {"enabled": True, "identity_cache": "0s", **FAST_ARGON2,
             "jwt_secret": "a secret for the hook behaviour tests, longer than 32 bytes",
             # accounts made by signup are used at once, and send no email of their own
             "signup_answer": "tokens"},
    "mapping": {"user": {"table": "users", "id": "id", "email": "email", "password": "pw"},
                "password_reset_token": {"table": "resets", "id": "id", "userid": "uid",
                                         "token": "token", "expiresat": "expires",
                                         "usedat": "used"},
                "social_profile": {"table": "profiles", "id": "id", "userid": "uid",
                                   "provider": "via", "provideruserid": "ext",
                                   "email": "email", "createdat": "made"}},
    "smtp": {"transport": "spy", "base_url": "https://app.example.com"},
    "social": {"spy": {"client_id": "spy-client", "client_secret": "s",
                       "authorize_url": "https://id.example.com/authorize",
                       "token_url": "https://id.example.com/token"}},
    "spy": {"greeting": "psst"},
    "invalidation": {"transport": "none"},  # the spy's transport alone carries messages
}


# -- the objects the spy's hooks return ----------------------------------------------------


class SpyProvider:
    name = "spy"

    async def authenticate(self, request: web.Request) -> Identity | None:
        who = request.headers.get("X-Spy")
        return Identity(user_id=who, provider=self.name) if who else None


class NoDeletes:
    async def authorize(self, identity: Identity | None, table: Any, action: str) -> None:
        if action == "delete" and table.name == "items":
            raise Forbidden("the spy forbids deleting items")


class LowLevels:
    async def predicate(self, identity: Identity | None, table: Any, sa_table: sa.Table,
                        action: str) -> Predicate | None:
        if table.name != "items":
            return None
        return Predicate("spy<=1", sa_table.c.level <= sa.bindparam("spy_max"), {"spy_max": 1})


class Stamp:
    async def prepare(self, identity: Identity | None, table: Any, values: dict[str, Any],
                      action: str) -> dict[str, Any]:
        return {**values, "note": f"spied {action}"} if table.name == "items" else values


class Even:
    def build(self, column: Any, value: Any) -> Any:
        return (column % sa.literal_column("2") == sa.literal_column("0")) == value


class Doubled:
    kinds = ("integer",)

    def build(self, column: Any) -> Any:
        return sa.func.sum(column) * sa.literal_column("2")

    def result_kind(self, column: Any) -> str:
        return "integer"


class SpyHasher:
    name = "spy"

    def inspect(self, encoded: str) -> HashInfo | None:
        return HashInfo("spy") if encoded.startswith("spy$") else None

    def hash(self, password: str) -> str:
        return "spy$" + password[::-1]

    def verify(self, encoded: str, password: str) -> bool:
        return encoded == self.hash(password)

    def needs_rehash(self, encoded: str) -> bool:
        return False


class Outbox:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


class Sink:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


class Observer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def observe(self, request: web.Request, route: str, status: int, seconds: float) -> None:
        self.seen.append((request.path, route, status))


class SpyTransport:
    """Sends into a list; listens to a queue the test fills."""

    name = "spy"

    def __init__(self) -> None:
        self.sent: list[Invalidation] = []
        self.inbox: asyncio.Queue[Invalidation] | None = None

    async def send(self, message: Invalidation) -> None:
        self.sent.append(message)

    async def listen(self, deliver: Callable[[Invalidation], None]) -> None:
        self.inbox = asyncio.Queue()
        deliver(Invalidation(EVERYTHING))
        while True:
            deliver(await self.inbox.get())

    async def close(self) -> None:
        self.inbox = None


class SpyLogin:
    name = "spy"
    title = "Spy ID"
    oidc = False

    def required_settings(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        return ("client_secret", "authorize_url", "token_url")

    async def fetch_profile(self, flow: SocialFlow, client: Any, token: Mapping[str, Any],
                            pending: Pending) -> Profile:
        return Profile("nobody", None, False)


class Teapot(Exception):
    pass


GREETING: ServiceKey[str] = ServiceKey("tests.spy.greeting", provider="spy")


@public
async def spy_route(request: web.Request) -> web.Response:
    if request.query.get("teapot"):
        raise Teapot("short and stout")
    return json_response(dumps({"greeting": request.app[RUNTIME].services.get(GREETING)}))


@web.middleware
async def spy_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    response.headers["X-Spy-Middleware"] = "seen"
    return response


def _returns(hook: str, result: Callable[[Spy], Any], **options: bool) -> Any:
    """A ``(config, runtime)`` hook of the spy that records its call and returns
    ``result(spy)``."""

    def implementation(self: Spy, config: Config, runtime: Runtime) -> Any:
        self._saw(hook, config=config, runtime=runtime)
        return result(self)

    implementation.__name__ = hook
    return hookimpl(**options)(implementation)


class Spy:
    """Implements every hook, with every argument of its spec."""

    __name__ = "spy"

    def __init__(self, dialect: type) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.dialect = type(f"Spy{dialect.__name__}", (dialect,), {})
        self.base_name = dialect.name
        self.outbox, self.sink, self.observer = Outbox(), Sink(), Observer()
        self.hasher = SpyHasher()
        self.lifecycle: list[str] = []
        self.transport = SpyTransport()
        #: what the spy's subscriber heard on its topic
        self.heard: list[str | None] = []

    def _saw(self, hook: str, **kwargs: Any) -> None:
        self.calls[hook].append(kwargs)

    @hookimpl
    def swain_addhooks(self, pm: Any) -> None:
        self._saw("swain_addhooks", pm=pm)

    @hookimpl
    def swain_config_sections(self) -> Mapping[str, Mapping[str, Setting]]:
        self._saw("swain_config_sections")
        return {"spy": {"greeting": Setting("str", "hi")},
                "social.spy": {k: Setting("str", None) for k in
                               ("client_id", "client_secret", "scope", "authorize_url",
                                "token_url")}}

    @hookimpl
    def swain_get_dialect(self, name: str) -> type | None:
        self._saw("swain_get_dialect", name=name)
        return self.dialect if name == self.base_name else None

    @hookimpl
    def swain_transaction_settings(self, config: Config, runtime: Runtime) -> Any:
        self._saw("swain_transaction_settings", config=config, runtime=runtime)
        if runtime.dialect.supports_transaction_settings:
            return lambda: {"swain.spy": "on"}
        return None

    @hookimpl
    def swain_prepare_schema(self, schema: Any, config: Config, runtime: Runtime) -> None:
        self._saw("swain_prepare_schema", schema=schema, config=config, runtime=runtime)
        schema.tables["hidden_t"].hidden = True

    swain_auth_providers = _returns("swain_auth_providers", lambda spy: [SpyProvider()])
    swain_authorizers = _returns("swain_authorizers", lambda spy: [NoDeletes()])
    swain_row_policies = _returns("swain_row_policies", lambda spy: [LowLevels()])
    swain_write_preparers = _returns("swain_write_preparers", lambda spy: [Stamp()])
    swain_routes = _returns("swain_routes", lambda spy: [web.get("/spy", spy_route)])
    swain_middlewares = _returns("swain_middlewares", lambda spy: [spy_middleware])
    swain_request_observers = _returns("swain_request_observers", lambda spy: [spy.observer])

    @hookimpl
    def swain_cleanup_ctx(self, config: Config, runtime: Runtime) -> list[Any]:
        self._saw("swain_cleanup_ctx", config=config, runtime=runtime)

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            self.lifecycle.append("start")
            yield
            self.lifecycle.append("stop")

        return [lifecycle]

    @hookimpl
    def swain_startup(self, runtime: Runtime) -> None:
        self._saw("swain_startup", runtime=runtime)
        runtime.services.provide(GREETING, runtime.config.spy.greeting)
        runtime.invalidations.subscribe("spy-items", self.heard.append)

    @hookimpl
    def swain_handle_exception(self, request: web.Request,
                               exception: BaseException) -> web.Response | None:
        self._saw("swain_handle_exception", request=request, exception=exception)
        if isinstance(exception, Teapot):
            return web.json_response({"teapot": str(exception)}, status=418)
        return None

    swain_filter_operators = _returns("swain_filter_operators",
                                      lambda spy: {"spy_even": Even()})
    swain_aggregate_functions = _returns("swain_aggregate_functions",
                                         lambda spy: {"SPY_DOUBLE": Doubled()})
    # tryfirst: the spy's hasher must hash new passwords, ahead of argon2
    swain_password_hashers = _returns("swain_password_hashers", lambda spy: [spy.hasher],
                                      tryfirst=True)
    swain_email_transports = _returns("swain_email_transports",
                                      lambda spy: {"spy": spy.outbox})
    swain_audit_sinks = _returns("swain_audit_sinks", lambda spy: [spy.sink])
    swain_invalidation_watches = _returns("swain_invalidation_watches",
                                          lambda spy: [Watch("items", "spy-items", "id")])
    swain_invalidation_transports = _returns("swain_invalidation_transports",
                                             lambda spy: [spy.transport])

    @hookimpl
    def swain_spec_contributions(self, spec: Any, schema: Any, config: Config,
                                 runtime: Runtime) -> None:
        self._saw("swain_spec_contributions", spec=spec, schema=schema, config=config,
                  runtime=runtime)
        spec.path(path="/spy", operations={"get": {
            "operationId": "spySays", "responses": {"200": {"description": "a greeting"}}}})

    swain_social_providers = _returns("swain_social_providers", lambda spy: [SpyLogin()])


# -- the app it runs in ------------------------------------------------------------------------


@dataclass
class World:
    spy: Spy
    live: LiveServer
    http: httpx.Client
    config: Config
    path: Path
    database: FreshDatabase

    @property
    def runtime(self) -> Runtime:
        return self.live.app[RUNTIME]


@pytest.fixture(scope="module")
def world(database: FreshDatabase,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = write_config(tmp_path_factory.mktemp("spy"), database.swain_url, **SECTIONS)
    spy = Spy(dialect_class(database.dialect))
    config, pm = load_config(path, environ={}, plugins=[spy])
    live = LiveServer(create_app(config, pm)).start()
    try:
        with httpx.Client(base_url=live.url, timeout=30, headers=SPY) as http:
            yield World(spy, live, http, config, path, database)
    finally:
        live.stop()


def _called(world: World, hook: str) -> dict[str, Any]:
    """The hook's last call, checked to carry every argument its spec names."""
    calls = world.spy.calls[hook]
    assert calls, f"{hook} was never called"
    spec = getattr(world.runtime.pm.hook, hook).spec
    assert set(calls[-1]) == set(spec.argnames), (hook, calls[-1].keys(), spec.argnames)
    for name in ("config", "runtime"):
        if name in calls[-1]:
            expected = world.config if name == "config" else world.runtime
            assert calls[-1][name] is expected or (name == "config" and calls[-1][name] ==
                                                   expected), f"{hook}: {name}"
    return calls[-1]


# -- one check per hook ------------------------------------------------------------------------


def check_addhooks(world: World) -> None:
    call = _called(world, "swain_addhooks")
    assert call["pm"] is world.runtime.pm
    # the social plugin added its hook the same way, and the spy's implementation is in
    assert world.runtime.pm.hook.swain_social_providers.spec is not None


def check_config_sections(world: World) -> None:
    _called(world, "swain_config_sections")
    assert world.config.spy.greeting == "psst"


def check_get_dialect(world: World) -> None:
    assert _called(world, "swain_get_dialect")["name"] == world.database.dialect
    assert type(world.runtime.dialect) is world.spy.dialect


def check_transaction_settings(world: World) -> None:
    _called(world, "swain_transaction_settings")
    dialect = world.runtime.dialect
    if not dialect.supports_transaction_settings:
        assert dialect.transaction_settings is None
        return

    async def read() -> Any:
        async with dialect.acquire() as conn:
            row = await conn.fetch_one("SELECT current_setting('swain.spy', true)")
        return row[0] if row else None

    assert world.live.call(read()) == "on"


def check_prepare_schema(world: World) -> None:
    _called(world, "swain_prepare_schema")
    assert world.http.get("/hidden_t").status_code == 404
    assert world.http.get("/items").status_code == 200


def check_auth_providers(world: World) -> None:
    _called(world, "swain_auth_providers")
    assert world.http.get("/items", headers={"X-Spy": ""}).status_code == 401
    assert world.http.get("/items").status_code == 200


def check_authorizers(world: World) -> None:
    _called(world, "swain_authorizers")
    r = world.http.delete("/items/1")
    assert r.status_code == 403 and "spy forbids" in r.json()["error"]["message"]


def check_row_policies(world: World) -> None:
    _called(world, "swain_row_policies")
    assert [row["id"] for row in world.http.get("/items").json()["data"]][:3] == [1, 2, 4]
    assert world.http.get("/items/3").status_code == 404


def check_write_preparers(world: World) -> None:
    _called(world, "swain_write_preparers")
    r = world.http.post("/items", json={"id": 10, "name": "new", "level": 0})
    assert r.status_code == 201, r.text
    assert r.json()["note"] == "spied create"


def check_routes(world: World) -> None:
    _called(world, "swain_routes")
    assert world.http.get("/spy").status_code == 200


def check_startup(world: World) -> None:
    call = _called(world, "swain_startup")
    assert len(world.spy.calls["swain_startup"]) == 1 and call["runtime"] is world.runtime
    assert world.http.get("/spy").json() == {"greeting": "psst"}


def check_middlewares(world: World) -> None:
    _called(world, "swain_middlewares")
    assert world.http.get("/items").headers["X-Spy-Middleware"] == "seen"


def check_request_observers(world: World) -> None:
    _called(world, "swain_request_observers")
    world.http.get("/items/2")
    world.http.get("/nowhere/at/all/x")
    seen = world.spy.observer.seen
    assert ("/items/2", "/{table}/{id}", 200) in seen
    assert ("/nowhere/at/all/x", "", 404) in seen


def check_cleanup_ctx(world: World) -> None:
    _called(world, "swain_cleanup_ctx")
    assert world.spy.lifecycle == ["start"]  # "stop" comes when the server stops


def check_handle_exception(world: World) -> None:
    world.http.get("/spy", params={"teapot": "1"})
    call = _called(world, "swain_handle_exception")
    assert isinstance(call["exception"], Teapot)
    r = world.http.get("/spy", params={"teapot": "1"})
    assert r.status_code == 418 and r.json() == {"teapot": "short and stout"}


def check_filter_operators(world: World) -> None:
    _called(world, "swain_filter_operators")
    r = world.http.post("/items/filter", json={"expressions": [
        {"field": "id", "operator": "spy_even", "value": True},
        {"field": "id", "operator": "in", "value": [1, 2, 3, 4]}]})
    assert r.status_code == 200, r.text
    assert [row["id"] for row in r.json()["data"]] == [2, 4]  # 3 is outside the row policy


def check_aggregate_functions(world: World) -> None:
    _called(world, "swain_aggregate_functions")
    r = world.http.post("/items/filter", json={"aggregations": {"functions": [
        {"type": "spy_double", "field": "level", "alias": "twice"}],
        "group_by": ["level"]}, "expressions": [
        {"field": "id", "operator": "in", "value": [1, 2, 3, 4]}]})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"level": 0, "twice": 0}, {"level": 1, "twice": 4}]


def check_password_hashers(world: World) -> None:
    _called(world, "swain_password_hashers")
    r = world.http.post("/auth/signup", json={"email": "hash@example.com",
                                              "password": "a long password"})
    assert r.status_code == 201, r.text
    stored = world.database.query("SELECT pw FROM users WHERE email = 'hash@example.com'")
    assert stored == [("spy$drowssap gnol a",)]
    r = world.http.post("/auth/login", json={"email": "hash@example.com",
                                             "password": "a long password"})
    assert r.status_code == 200, r.text


def check_email_transports(world: World) -> None:
    _called(world, "swain_email_transports")
    world.http.post("/auth/signup", json={"email": "mail@example.com",
                                          "password": "another password"})
    r = world.http.post("/auth/password_reset", json={"email": "mail@example.com"})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 10
    while not world.spy.outbox.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    [message] = world.spy.outbox.sent
    assert message.to == "mail@example.com"
    assert "https://app.example.com/reset-password?token=" in message.text


def check_audit_sinks(world: World) -> None:
    _called(world, "swain_audit_sinks")
    world.spy.sink.events.clear()
    r = world.http.patch("/items/2", json={"name": "audited"})
    assert r.status_code == 200, r.text
    [event] = world.spy.sink.events
    assert (event.action, event.table, event.target, event.actor, event.provider) == \
        ("update", "items", {"id": 2}, "spy-user", "spy")


def check_invalidation_watches(world: World) -> None:
    _called(world, "swain_invalidation_watches")
    world.spy.heard.clear()
    assert world.http.patch("/items/4", json={"name": "watched"}).status_code == 200
    assert world.spy.heard == ["4"]
    assert world.http.get("/items/1").status_code == 200  # reads tell nobody
    assert world.spy.heard == ["4"]


def check_invalidation_transports(world: World) -> None:
    _called(world, "swain_invalidation_transports")
    transport = world.spy.transport
    assert world.http.patch("/items/1", json={"name": "sent"}).status_code == 200
    assert transport.sent[-1] == Invalidation("spy-items", "1")
    world.spy.heard.clear()
    assert transport.inbox is not None, "the transport's listener was not started"
    world.live.call(transport.inbox.put(Invalidation("spy-items", "99")))
    deadline = time.monotonic() + 10
    while world.spy.heard != ["99"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert world.spy.heard == ["99"]


def check_spec_contributions(world: World) -> None:
    document = world.http.get("/openapi.json").json()
    _called(world, "swain_spec_contributions")
    assert document["paths"]["/spy"]["get"]["operationId"] == "spySays"


def check_social_providers(world: World) -> None:
    _called(world, "swain_social_providers")
    r = world.http.get("/auth/spy/login", follow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(
        "https://id.example.com/authorize?")


def check_cli_commands(world: World) -> None:
    # The command line loads plugin modules from the project file, so this hook's
    # implementation is a module there.
    folder = world.path.parent / "cli_plugin"
    folder.mkdir(exist_ok=True)
    write_plugin(folder, "spy_cli_plugin", (
        "import click\nfrom swain.core import hookimpl\n\n"
        "@hookimpl\ndef swain_cli_commands(cli):\n"
        "    @cli.command('spy-hello')\n    def hello():\n        click.echo('hello from the spy')\n"))
    path = write_config(folder, world.database.swain_url,
                        plugins={"modules": ["spy_cli_plugin"]})
    sys.path.insert(0, str(folder))
    try:
        from swain.core.cli import cli

        result = CliRunner().invoke(cli, ["--config", str(path), "spy-hello"])
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("spy_cli_plugin", None)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hello from the spy"


CHECKS: dict[str, Callable[[World], None]] = {
    "swain_addhooks": check_addhooks,
    "swain_config_sections": check_config_sections,
    "swain_get_dialect": check_get_dialect,
    "swain_transaction_settings": check_transaction_settings,
    "swain_prepare_schema": check_prepare_schema,
    "swain_auth_providers": check_auth_providers,
    "swain_authorizers": check_authorizers,
    "swain_row_policies": check_row_policies,
    "swain_write_preparers": check_write_preparers,
    "swain_routes": check_routes,
    "swain_middlewares": check_middlewares,
    "swain_request_observers": check_request_observers,
    "swain_cleanup_ctx": check_cleanup_ctx,
    "swain_startup": check_startup,
    "swain_handle_exception": check_handle_exception,
    "swain_filter_operators": check_filter_operators,
    "swain_aggregate_functions": check_aggregate_functions,
    "swain_password_hashers": check_password_hashers,
    "swain_email_transports": check_email_transports,
    "swain_audit_sinks": check_audit_sinks,
    "swain_invalidation_watches": check_invalidation_watches,
    "swain_invalidation_transports": check_invalidation_transports,
    "swain_spec_contributions": check_spec_contributions,
    "swain_cli_commands": check_cli_commands,
    "swain_social_providers": check_social_providers,
}


def specified_hooks() -> list[str]:
    """Every hookspec of core and of the built-in plugins (``swain_addhooks`` ones too)."""
    pm = create_plugin_manager()
    return sorted(name for name, caller in vars(pm.hook).items()
                  if getattr(caller, "spec", None) is not None)


def test_every_hookspec_has_a_behaviour_check() -> None:
    assert set(CHECKS) == set(specified_hooks())
    # and the spy implements each one with its spec's full signature
    pm = create_plugin_manager()
    for name in CHECKS:
        if name == "swain_cli_commands":
            continue  # the command line loads modules; see check_cli_commands
        spec = getattr(pm.hook, name).spec
        implemented = list(inspect.signature(getattr(Spy, name)).parameters)[1:]
        assert implemented == list(spec.argnames), name


@pytest.mark.parametrize("hook", sorted(CHECKS))
def test_hook_is_honoured(world: World, hook: str) -> None:
    CHECKS[hook](world)


def test_cleanup_contexts_finish_when_the_server_stops(database: FreshDatabase,
                                                       tmp_path: Path) -> None:
    spy = Spy(dialect_class(database.dialect))
    path = write_config(tmp_path, database.swain_url, **SECTIONS)
    with LiveServer(create_app(*load_config(path, environ={}, plugins=[spy]))):
        assert spy.lifecycle == ["start"]
    assert spy.lifecycle == ["start", "stop"]

