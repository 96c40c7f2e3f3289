"""The plugin core: registration order, entry points, disabling, startup errors,
lazy dialects, and the example third-party package end to end over HTTP.

The example package (``tests/example_plugin_pkg``, distribution
``swain-example-plugin``) is installed into the environment; it is found only
through its entry points.  Packages that must *not* be installed for good (a
plugin with a misspelled hook, a dialect whose driver is missing) are made as
a ``*.dist-info`` folder on ``PYTHONPATH`` of a child interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.core import RUNTIME, ConfigError, create_app, hookimpl, load_config
from swain.core.plugins import DEFAULT_PLUGINS, builtin_names, create_plugin_manager, describe

DDL = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50) NOT NULL);
INSERT INTO notes (id, body) VALUES (1, 'first'), (2, 'second')
"""
TOKEN = "example-token-0123456789"
SWAIN_CONFIG = {
    "auth": {"enabled": True},
    "example": {"greeting": "Ahoy", "token": TOKEN, "user_id": "ex-42"},
}


# -- registration ----------------------------------------------------------------------


def test_example_plugin_is_registered_through_its_entry_point() -> None:
    [ep] = [e for e in entry_points(group="swain") if e.name == "example"]
    assert ep.value == "swain_example_plugin"
    assert ep.dist is not None and ep.dist.name == "swain-example-plugin"
    infos = {info.name: info for info in describe(create_plugin_manager())}
    assert infos["example"].origin == "entry point swain_example_plugin"
    assert {"swain_routes", "swain_auth_providers", "swain_cleanup_ctx", "swain_startup",
            "swain_config_sections"} <= set(infos["example"].hooks)


def test_entry_point_is_what_imports_the_example_package() -> None:
    """Nothing imports ``swain_example_plugin`` directly: building the manager does."""
    script = textwrap.dedent("""
        import sys
        import swain.core
        from swain.core.plugins import create_plugin_manager
        before = "swain_example_plugin" in sys.modules
        pm = create_plugin_manager()
        print(before, "swain_example_plugin" in sys.modules,
              pm.get_plugin("example").__name__)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.split() == ["False", "True", "swain_example_plugin"]


def test_builtins_first_then_entry_points_then_explicit() -> None:
    class Explicit:
        __name__ = "explicit_one"

        @hookimpl
        def swain_routes(self, config: Any) -> list[Any]:
            return []

    pm = create_plugin_manager(plugins=[Explicit()], modules=["swain_example_plugin.dialect"])
    names = [info.name for info in describe(pm)]
    builtins = builtin_names()
    assert names[:len(builtins)] == builtins
    assert names.index("example") > names.index(builtins[-1])
    assert names[-2:] == ["swain_example_plugin.dialect", "explicit_one"]
    assert [info.origin for info in describe(pm)][-2:] == ["plugins.modules", "explicit"]


def test_a_fresh_manager_per_app(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    config_a, pm_a = load_config(path, environ={})
    config_b, pm_b = load_config(path, environ={})
    app_a, app_b = create_app(config_a, pm_a), create_app(config_b, pm_b)
    assert app_a[RUNTIME].pm is not app_b[RUNTIME].pm
    pm_a.register(Marker(), name="only_in_a")
    assert pm_b.get_plugin("only_in_a") is None


class Marker:
    @hookimpl
    def swain_routes(self, config: Any) -> list[Any]:
        return []


def test_disabling_the_example_plugin_by_name(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}",
                        plugins={"disable": ["example", "swagger_ui"]})
    config, pm = load_config(path, environ={})
    names = {info.name for info in describe(pm)}
    assert "example" not in names and "swagger_ui" not in names
    assert "openapi" in names
    assert not config.has_section("example")


def test_disabling_an_unknown_plugin_lists_the_available_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}",
                        plugins={"disable": ["exampel"]})
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert message.startswith("plugins.disable: no plugin named exampel (available: ")
    for name in [*builtin_names(), "example"]:
        assert name in message


def test_misspelled_hook_fails_naming_plugin_and_suggesting() -> None:
    class Typo:
        __name__ = "typo_plugin"

        @hookimpl
        def swain_rotues(self, config: Any) -> list[Any]:
            return []

    with pytest.raises(ConfigError, match=r"^plugin 'typo_plugin' \(explicit\): unknown hook "
                                          r"swain_rotues; did you mean swain_routes\?"):
        create_plugin_manager(plugins=[Typo()])


def test_undecorated_misspelled_hook_fails_too() -> None:
    class Undecorated:
        __name__ = "undecorated"

        def swain_middleware(self, config: Any) -> list[Any]:
            return []

    with pytest.raises(ConfigError, match="did you mean swain_middlewares"):
        create_plugin_manager(plugins=[Undecorated()])


def test_hook_with_an_argument_the_spec_lacks_fails() -> None:
    class WrongArgs:
        __name__ = "wrong_args"

        @hookimpl
        def swain_routes(self, config: Any, request: Any) -> list[Any]:
            return []

    with pytest.raises(ConfigError, match=r"^plugin 'wrong_args' \(explicit\): .*request"):
        create_plugin_manager(plugins=[WrongArgs()])


def test_async_hook_fails() -> None:
    class Async:
        __name__ = "async_plugin"

        @hookimpl
        async def swain_routes(self, config: Any) -> list[Any]:
            return []

    with pytest.raises(ConfigError, match=r"^plugin 'async_plugin' \(explicit\): hook "
                                          r"swain_routes is async"):
        create_plugin_manager(plugins=[Async()])


def test_unimportable_plugin_module_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}",
                        plugins={"modules": ["no_such_plugin_module"]})
    with pytest.raises(ConfigError, match=r"^plugins\.modules: cannot import "
                                          r"'no_such_plugin_module'"):
        load_config(path, environ={})


def test_default_plugins_are_module_paths() -> None:
    assert all(p.startswith("swain.plugins.") for p in DEFAULT_PLUGINS)
    assert len(set(builtin_names())) == len(DEFAULT_PLUGINS)


# -- packages installed only for a child interpreter -----------------------------------


def fake_distribution(root: Path, name: str, entry_points_txt: str,
                      modules: dict[str, str]) -> dict[str, str]:
    """A minimal installed distribution on a private path; returns the child's environment."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points_txt))
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWAIN_")}
    env["PYTHONPATH"] = str(root)
    return env


def test_misspelled_hook_in_an_installed_plugin_stops_the_cli(tmp_path: Path) -> None:
    env = fake_distribution(tmp_path / "site", "typo-plugin", """
        [swain]
        typo = typo_plugin
    """, {"typo_plugin": """
        from swain.core import hookimpl

        @hookimpl
        def swain_rotues(config):
            return []
    """})
    write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    swain = Path(sys.executable).parent / "swain"
    result = subprocess.run([str(swain), "config", "show"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "plugin 'typo' (entry point typo_plugin): unknown hook swain_rotues; did you mean " \
           "swain_routes?" in result.stderr
    assert "Traceback" not in result.stderr


def test_dialects_load_lazily_and_a_missing_driver_matters_only_when_used(
        tmp_path: Path) -> None:
    env = fake_distribution(tmp_path / "site", "ghost-dialect", """
        [swain.dialects]
        ghostdb = ghost_dialect:GhostDialect
    """, {"ghost_dialect": """
        import ghostdb_driver_that_is_not_installed
    """})
    script = textwrap.dedent(f"""
        import sys
        from swain.core import ConfigError, create_app, load_config
        from swain.core.plugins import load_dialect
        from swain.contrib.testing import write_config
        from pathlib import Path
        path = write_config(Path({str(tmp_path)!r}), "sqlite:///{tmp_path / 'x.db'}")
        config, pm = load_config(path, environ={{}})
        create_app(config, pm)
        print("sqlite app built")
        print("ghost imported:", "ghost_dialect" in sys.modules)
        print("postgresql imported:", "swain.dialects.postgresql" in sys.modules)
        try:
            load_dialect(pm, "ghostdb")
        except ConfigError as exc:
            print("error:", exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["sqlite app built", "ghost imported: False",
                         "postgresql imported: False"]
    assert lines[3].startswith("error: dialect 'ghostdb' (entry point ghost_dialect:GhostDialect) "
                               "needs a driver that is not installed: No module named "
                               "'ghostdb_driver_that_is_not_installed'")


def test_unknown_dialect_lists_the_installed_ones() -> None:
    from swain.core.plugins import load_dialect

    with pytest.raises(ConfigError, match=r"^no dialect for 'oracle' \(installed: .*examplesqlite"
                                          r".*postgresql.*sqlite"):
        load_dialect(create_plugin_manager(), "oracle")


def test_third_party_dialect_serves_through_its_url_scheme(tmp_path: Path) -> None:
    """The example package's ``examplesqlite`` dialect, found by URL scheme."""
    with FreshDatabase("sqlite") as db:
        db.run_script(DDL)
        path = write_config(tmp_path, f"examplesqlite:///{db.url.database}")
        config, pm = load_config(path, environ={})
        assert config.connection().dialect == "examplesqlite"
        app = create_app(config, pm)
        dialect = app[RUNTIME].dialect
        assert type(dialect).__module__ == "swain_example_plugin.dialect"
        with LiveServer(app) as live:
            response = httpx.get(f"{live.url}/notes", timeout=30)
        assert response.status_code == 200, response.text
        assert [row["body"] for row in response.json()["data"]] == ["first", "second"]


# -- the example plugin end to end over HTTP, on every database ------------------------


@pytest.fixture(scope="module")
def example_server(database: FreshDatabase,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = write_config(tmp_path_factory.mktemp("example"), database.swain_url, **SWAIN_CONFIG)
    config, pm = load_config(path, environ={})
    live = LiveServer(create_app(config, pm)).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def http(example_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=example_server.url, timeout=30) as client:
        yield client


def test_example_route_is_public_and_reads_its_section(http: httpx.Client) -> None:
    response = http.get("/example/hello")
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Ahoy, stranger", "started": ["startup"]}


def test_example_auth_provider_turns_its_header_into_an_identity(http: httpx.Client) -> None:
    response = http.get("/example/hello", headers={"X-Example-Token": TOKEN})
    assert response.json()["message"] == "Ahoy, ex-42"
    # the identity opens the tables, which need authentication
    assert http.get("/notes").status_code == 401
    response = http.get("/notes", headers={"X-Example-Token": TOKEN})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 2


def test_example_auth_provider_refuses_a_wrong_token(http: httpx.Client) -> None:
    response = http.get("/notes", headers={"X-Example-Token": "wrong"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["message"] == "invalid example token"


def test_example_cleanup_ctx_runs_at_shutdown(database: FreshDatabase, tmp_path: Path) -> None:
    from swain_example_plugin import STARTED

    path = write_config(tmp_path, database.swain_url, **SWAIN_CONFIG)
    app = create_app(*load_config(path, environ={}))
    with LiveServer(app) as live:
        assert httpx.get(f"{live.url}/example/hello", timeout=30).json()["started"] == ["startup"]
    assert app[STARTED] == ["startup", "shutdown"]


def test_disabled_example_plugin_serves_nothing(database: FreshDatabase, tmp_path: Path) -> None:
    path = write_config(tmp_path, database.swain_url, plugins={"disable": ["example"]})
    app = create_app(*load_config(path, environ={}))
    with LiveServer(app) as live:
        response = httpx.get(f"{live.url}/example/hello", timeout=30)
        assert response.status_code == 404
        response = httpx.get(f"{live.url}/notes", headers={"X-Example-Token": TOKEN}, timeout=30)
        assert response.status_code == 200  # auth is off here: the header means nothing


def test_example_config_is_validated_with_its_key_path(database: FreshDatabase,
                                                        tmp_path: Path) -> None:
    path = write_config(tmp_path, database.swain_url, example={"greting": "x"})
    with pytest.raises(ConfigError, match=r'^example\.greting: unknown key; did you mean '
                                          r'"greeting"\?'):
        load_config(path, environ={})


def test_config_show_masks_the_example_token(database: FreshDatabase, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from swain.core.cli import cli

    path = write_config(tmp_path, database.swain_url, **SWAIN_CONFIG)
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["example"] == {"greeting": "Ahoy", "token": "********", "user_id": "ex-42"}
    assert TOKEN not in result.output


def test_plugin_routes_win_over_table_routes(database: FreshDatabase, tmp_path: Path) -> None:
    """A table called ``example`` with a row ``hello`` does not shadow the plugin's route."""
    database.run_script("CREATE TABLE example (id VARCHAR(20) PRIMARY KEY, v INTEGER);"
                        "INSERT INTO example (id, v) VALUES ('hello', 1), ('other', 2)")
    path = write_config(tmp_path, database.swain_url, auth={"enabled": False})
    app = create_app(*load_config(path, environ={}))
    with LiveServer(app) as live:
        assert httpx.get(f"{live.url}/example/hello", timeout=30).json()["message"] == \
            "Hello, stranger"
        assert httpx.get(f"{live.url}/example/other", timeout=30).json() == {"id": "other", "v": 2}
        assert httpx.get(f"{live.url}/tables/example/hello", timeout=30).json()["v"] == 1


def test_plugin_routes_are_aiohttp_route_definitions() -> None:
    import swain_example_plugin

    [route] = swain_example_plugin.swain_routes(config=None)  # type: ignore[arg-type]
    assert isinstance(route, web.RouteDef) and route.path == "/example/hello"
