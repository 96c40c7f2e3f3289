"""Schema reload: SIGHUP to `swain serve` and ``POST /_swain/reload`` pick up a
table created after startup without dropping requests in flight; the
endpoint is refused to non-admins.  Also checks the development (text) log."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer, selected_dialects, write_config
from swain.contrib.testing.plugins import SLOW_STARTED, import_plugin, slow_route_plugin, write_plugin
from swain.contrib.testing.process import ServeProcess, in_background, wait_for
from swain.core import create_app, load_config

pytest_plugins = ["swain.contrib.testing.fixtures"]

DDL = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);
INSERT INTO items (id, name) VALUES (1, 'a')
"""

# A plugin module as an operator would write one: a slow public route that
# still needs the pool when it finishes.
PLUGIN = slow_route_plugin(logger="reload_probe")


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plugin(tmp_path_factory.mktemp("plugins"), "reload_probe_plugin", PLUGIN)


@pytest.fixture(scope="module")
def plugin(plugin_dir: Path) -> ModuleType:
    return import_plugin(plugin_dir / "reload_probe_plugin.py")


@pytest.fixture(scope="module")
def server(config_path: Path, plugin: ModuleType) -> Iterator[LiveServer]:
    """The kit's live server, plus the slow route."""
    config, pm = load_config(config_path, "development", environ={}, plugins=[plugin])
    with LiveServer(create_app(config, pm)) as live:
        yield live


def create_table(database: FreshDatabase, name: str) -> None:
    database.run_script(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, note VARCHAR(20)); "
                        f"INSERT INTO {name} (id, note) VALUES (1, 'new')")


def test_post_reload_picks_up_a_new_table(client: httpx.Client, database: FreshDatabase,
                                          caplog: pytest.LogCaptureFixture) -> None:
    assert client.get("/late_post").status_code == 404
    create_table(database, "late_post")
    assert client.get("/late_post").status_code == 404  # nothing is reflected per request

    thread, slow = in_background(lambda: client.get("/slow?seconds=1.5"))
    assert wait_for(lambda: SLOW_STARTED in caplog.text, timeout=15)
    r = client.post("/_swain/reload")
    assert r.status_code == 200, r.text
    assert r.json() == {"reloaded": True, "tables": 2}
    thread.join(timeout=30)
    assert slow["response"].status_code == 200 and slow["response"].json() == {"answer": 42}

    r = client.get("/late_post")
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"id": 1, "note": "new"}]
    assert client.get("/items/1").json() == {"id": 1, "name": "a"}


def test_reload_refused_to_non_admin_address(database: FreshDatabase, tmp_path: Path) -> None:
    config_path = write_config(tmp_path, database.swain_url,
                               server={"admin_addresses": ["192.0.2.10"]})
    config, pm = load_config(config_path, "development", environ={})
    with LiveServer(create_app(config, pm)) as live, httpx.Client(base_url=live.url) as http:
        r = http.post("/_swain/reload")
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
        assert r.headers["Content-Type"].startswith("application/json")


@pytest.fixture(params=selected_dialects()[:1])
def single_database(request: pytest.FixtureRequest) -> Iterator[FreshDatabase]:
    with FreshDatabase(request.param) as db:
        db.run_script(DDL)
        yield db


def test_sighup_reloads_a_single_process_server(single_database: FreshDatabase, plugin_dir: Path,
                                                tmp_path: Path) -> None:
    """One worker handles SIGHUP itself (with several, the parent forwards it: test_serve)."""
    database = single_database
    config_path = write_config(tmp_path, database.swain_url, logging={"access_log": True},
                               plugins={"modules": ["reload_probe_plugin"]})
    with ServeProcess(config_path, python_path=[plugin_dir]) as served, \
            httpx.Client(base_url=served.url, timeout=15) as http:
        assert http.get("/late_hup").status_code == 404
        create_table(database, "late_hup")
        thread, slow = in_background(lambda: http.get("/slow?seconds=1.5"))
        assert wait_for(lambda: SLOW_STARTED in served.stderr(), timeout=15)
        served.send(signal.SIGHUP)
        assert wait_for(lambda: http.get("/late_hup").status_code == 200, timeout=10), \
            served.stderr()
        thread.join(timeout=30)
        assert slow["response"].status_code == 200 and slow["response"].json() == {"answer": 42}
        r = http.get("/late_hup", headers={"X-Request-ID": "text-probe"})
        assert r.json()["data"] == [{"id": 1, "note": "new"}]
        assert served.process is not None and served.process.poll() is None  # no restart
        assert served.stop() == 0

    log = served.stderr()
    assert "schema reload: added late_hup" in log
    # Development logs are one readable line per request, saying each thing once.
    line = next(ln for ln in log.splitlines() if "request_id=text-probe" in ln)
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO +GET /late_hup 200 \d+\.\dms "
                        r"request_id=text-probe route=/\{table\} user_id=-", line), line
    assert not any(ln.startswith("{") for ln in log.splitlines())
    assert "database pool closed" in log
