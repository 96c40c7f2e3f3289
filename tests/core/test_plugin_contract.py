"""The plugin contract: the per-app runtime hooks receive, ``swain_startup`` and typed
services, declared requirements, the order pluggy documents (``tryfirst`` /
``trylast``), and hook specifications added by feature packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pluggy
import pytest
from aiohttp import web

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.core import (
    RUNTIME,
    ConfigError,
    Runtime,
    ServiceKey,
    Services,
    create_app,
    hookimpl,
    json_response,
    load_config,
    public,
)
from swain.core.codec import dumps
from swain.core.plugins import collect, collect_mappings, create_plugin_manager

DDL = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50))"
AUTH = {"enabled": True, "jwt_secret": "a secret for the contract tests, well over 32 bytes"}
MAPPING = {"user": {"table": "notes", "id": "id", "email": "body", "password": "body"}}


def _config(tmp_path: Path, database: FreshDatabase, **sections: Any) -> Path:
    return write_config(tmp_path, database.swain_url, **sections)


# -- requirements ------------------------------------------------------------------------


def test_disabling_a_required_plugin_stops_startup_naming_both(tmp_path: Path,
                                                               database: FreshDatabase) -> None:
    """Basic, API keys, reset, rate limits and social login stand on the jwt plugin's
    account service: disabling it alone is refused before anything is served."""
    path = _config(tmp_path, database, auth=AUTH, mapping=MAPPING,
                   plugins={"disable": ["jwt"]})
    with pytest.raises(ConfigError, match=r"^plugin '(api_keys|basic_auth|password_reset|"
                                          r"rate_limit|social)' requires plugin 'jwt', which is "
                                          r"disabled in plugins\.disable; enable 'jwt', or add "):
        load_config(path, environ={})


def test_disabling_a_plugin_with_its_dependents_starts(tmp_path: Path,
                                                       database: FreshDatabase) -> None:
    dependents = ["jwt", "api_keys", "basic_auth", "password_reset", "rate_limit", "social",
                  "google", "github"]
    path = _config(tmp_path, database, plugins={"disable": dependents})
    config, pm = load_config(path, environ={})
    assert not pm.has_plugin("jwt") and not pm.has_plugin("google")
    with LiveServer(create_app(config, pm)) as live:
        assert httpx.get(f"{live.url}/notes", timeout=30).status_code == 200


def test_a_requirement_that_is_not_installed_is_named() -> None:
    class Needy:
        __name__ = "needy"
        requires = ("no_such_plugin",)

        @hookimpl
        def swain_routes(self) -> list[Any]:
            return []

    with pytest.raises(ConfigError, match=r"^plugin 'needy' requires plugin 'no_such_plugin', "
                                          r"which is not installed"):
        create_plugin_manager(plugins=[Needy()])


# -- order -----------------------------------------------------------------------------


class Sink:
    def __init__(self, name: str) -> None:
        self.name = name

    async def record(self, event: Any) -> None:
        return None


def _ordered(name: str, **options: bool) -> object:
    sink = Sink(name)

    class Ordered:
        __name__ = name

        @hookimpl(**options)
        def swain_audit_sinks(self) -> list[Sink]:
            return [sink]

        @hookimpl(**options)
        def swain_filter_operators(self) -> dict[str, str]:
            return {"shared": name}

    return Ordered()


def test_collect_follows_tryfirst_trylast_then_latest_registered() -> None:
    plugins = [_ordered("a"), _ordered("b", tryfirst=True), _ordered("c", trylast=True),
               _ordered("d")]
    pm = create_plugin_manager(plugins=plugins, disable=["audit"])
    kwargs = {"config": None, "runtime": None}
    names = [sink.name for sink in collect(pm, "swain_audit_sinks", **kwargs)]
    assert names == ["b", "d", "a", "c"]
    # of two operators with one name, the one called first (tryfirst) wins
    assert collect_mappings(pm, "swain_filter_operators", **kwargs)["shared"] == "b"


def test_the_runtime_keeps_that_order(tmp_path: Path, database: FreshDatabase) -> None:
    config, pm = load_config(_config(tmp_path, database), environ={},
                             plugins=[_ordered("x", trylast=True), _ordered("y")])
    runtime = create_app(config, pm)[RUNTIME]
    assert [getattr(s, "name", "?") for s in runtime.audit_sinks] == ["y", "x"]


# -- feature hookspecs -------------------------------------------------------------------


class FeatureSpecs:
    @pluggy.HookspecMarker("swain")
    def swain_feature_badges(self, config: Any) -> list[str]:  # type: ignore[empty-body]
        """Return badges for the feature."""


class Feature:
    __name__ = "feature"

    @hookimpl
    def swain_addhooks(self, pm: pluggy.PluginManager) -> None:
        pm.add_hookspecs(FeatureSpecs)


class BadgeMaker:
    __name__ = "badge_maker"

    @hookimpl
    def swain_feature_badges(self, config: Any) -> list[str]:
        return ["gold"]


def test_a_feature_package_adds_its_own_hooks() -> None:
    # the implementation is registered before the plugin that adds the spec
    pm = create_plugin_manager(plugins=[BadgeMaker(), Feature()])
    assert collect(pm, "swain_feature_badges", config=None) == ["gold"]


def test_its_hooks_are_checked_like_core_ones() -> None:
    class Typo:
        __name__ = "typo"

        @hookimpl
        def swain_feature_badgse(self, config: Any) -> list[str]:
            return []

    with pytest.raises(ConfigError, match=r"unknown hook swain_feature_badgse; did you mean "
                                          r"swain_feature_badges\?"):
        create_plugin_manager(plugins=[Feature(), Typo()])
    with pytest.raises(ConfigError, match="unknown hook swain_feature_badges"):
        create_plugin_manager(plugins=[BadgeMaker()])  # nobody adds the spec


# -- runtime, startup and services -----------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.hits = 0


COUNTER: ServiceKey[Counter] = ServiceKey("tests.counter", provider="counting")


@public
async def count(request: web.Request) -> web.Response:
    counter = request.app[RUNTIME].services.get(COUNTER)
    counter.hits += 1
    return json_response(dumps({"hits": counter.hits}))


class Counting:
    """Provides a service at startup and serves it; records what its hooks received."""

    __name__ = "counting"

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    @hookimpl
    def swain_routes(self, runtime: Runtime) -> list[web.RouteDef]:
        self.seen["routes"] = runtime
        return [web.get("/count", count)]

    @hookimpl
    def swain_startup(self, runtime: Runtime) -> None:
        assert "routes" in self.seen, "startup runs once every other hook is collected"
        self.seen["startup"] = self.seen.get("startup", 0) + 1
        runtime.services.provide(COUNTER, Counter())


def test_startup_provides_a_service_per_app(tmp_path: Path, database: FreshDatabase) -> None:
    plugin = Counting()
    path = _config(tmp_path, database)
    apps = [create_app(*load_config(path, environ={}, plugins=[plugin])) for _ in range(2)]
    runtimes = [app[RUNTIME] for app in apps]
    assert plugin.seen["startup"] == 2 and plugin.seen["routes"] is runtimes[1]
    assert runtimes[0].services.get(COUNTER) is not runtimes[1].services.get(COUNTER)
    with LiveServer(apps[0]) as first, LiveServer(apps[1]) as second:
        for _ in range(3):
            httpx.get(f"{first.url}/count", timeout=30)
        assert httpx.get(f"{first.url}/count", timeout=30).json() == {"hits": 4}
        assert httpx.get(f"{second.url}/count", timeout=30).json() == {"hits": 1}


def test_services_are_provided_once_and_missing_ones_are_named() -> None:
    services = Services()
    services.provide(COUNTER, Counter())
    with pytest.raises(ConfigError, match="provided twice"):
        services.provide(COUNTER, Counter())
    assert COUNTER in services and services.find(ServiceKey[int]("tests.absent")) is None
    with pytest.raises(ConfigError, match=r"service 'tests.other' is not available \(provided "
                                          r"by the 'other' plugin; is it disabled\?\)"):
        services.get(ServiceKey[int]("tests.other", provider="other"))
    made: list[int] = []
    key: ServiceKey[list[int]] = ServiceKey("tests.made")
    assert services.ensure(key, lambda: made) is services.ensure(key, list)


def test_a_startup_error_refuses_the_app(tmp_path: Path, database: FreshDatabase) -> None:
    class Refusing:
        __name__ = "refusing"

        @hookimpl
        def swain_startup(self, runtime: Runtime) -> None:
            raise ConfigError(f"refusing: {runtime.dialect.name} is not for me")

    config, pm = load_config(_config(tmp_path, database), environ={}, plugins=[Refusing()])
    with pytest.raises(ConfigError, match=f"refusing: {database.dialect} is not for me"):
        create_app(config, pm)


def test_transaction_settings_need_a_dialect_that_applies_them(
        tmp_path: Path, database: FreshDatabase) -> None:
    class Settings:
        __name__ = "settings"

        @hookimpl
        def swain_transaction_settings(self) -> Any:
            return lambda: {"swain.test": "1"}

    config, pm = load_config(_config(tmp_path, database), environ={}, plugins=[Settings()])
    if database.dialect == "postgresql":
        runtime = create_app(config, pm)[RUNTIME]
        assert runtime.dialect.transaction_settings is not None
        assert runtime.dialect.transaction_settings() == {"swain.test": "1"}
    else:
        with pytest.raises(ConfigError, match="per-transaction settings"):
            create_app(config, pm)
