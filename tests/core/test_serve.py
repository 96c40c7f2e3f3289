"""`swain serve` as operators run it: a real subprocess with two workers sharing
one port, JSON access logs, SIGHUP reaching every worker, and a graceful
SIGTERM that lets a slow request finish before the pools close."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, selected_dialects, write_config
from swain.contrib.testing.plugins import SLOW_STARTED, slow_route_plugin, write_plugin
from swain.contrib.testing.process import ServeProcess, in_background, wait_for

DIALECTS = [d for d in selected_dialects() if d in ("sqlite", "postgresql")]

DDL = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);
INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')
"""

# An operator's own plugin module, loaded through [plugins] modules from a
# folder on PYTHONPATH: a slow route that uses the pool after sleeping, and a
# header-based auth provider so the access log has a user id.
PLUGIN = slow_route_plugin(logger="ops_probe", extra='''
from swain.core import Identity, hookimpl


class HeaderAuth:
    name = "test-header"

    async def authenticate(self, request):
        user = request.headers.get("X-Test-User")
        return Identity(user_id=int(user), provider=self.name) if user else None


@hookimpl
def swain_auth_providers(config):
    return [HeaderAuth()]
''')


@pytest.fixture(scope="module", params=DIALECTS)
def database(request: pytest.FixtureRequest) -> Iterator[FreshDatabase]:
    with FreshDatabase(request.param) as db:
        db.run_script(DDL)
        yield db


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plugin(tmp_path_factory.mktemp("plugins"), "ops_probe_plugin", PLUGIN)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # "Connection: close" puts every request on its own TCP connection, so the
    # kernel picks a worker anew each time.
    with httpx.Client(timeout=15, headers={"Connection": "close"}) as client:
        yield client


def refused(http: httpx.Client, url: str) -> bool:
    try:
        http.get(url)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:  # reset while a listener was closing: not settled yet
        return False
    return False


def slow_started(served: ServeProcess) -> int:
    return served.stderr().count(SLOW_STARTED)


def test_two_workers_json_logs_reload_and_graceful_sigterm(
        database: FreshDatabase, plugin_dir: Path, tmp_path: Path, http: httpx.Client) -> None:
    url = database.swain_url
    config = write_config(
        tmp_path, url,
        connections={"development": {"url": url}, "production": {"url": url}},
        auth={"enabled": True},
        plugins={"modules": ["ops_probe_plugin"]},
        logging={"access_log": True},
        server={"shutdown_timeout": "20s"},
    )
    with ServeProcess(config, stage="production", workers=2, python_path=[plugin_dir]) as served:
        workers = served.worker_pids()
        assert len(workers) == 2, served.stderr()

        # Public operational endpoints, while the table API needs an identity.
        assert http.get(served.url + "/health").status_code == 200
        assert http.get(served.url + "/ready").json()["status"] == "ready"
        denied = http.get(served.url + "/items")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"

        probes = [f"probe-{i}" for i in range(24)]
        for probe in probes:
            r = http.get(served.url + "/items",
                          headers={"X-Request-ID": probe, "X-Test-User": "7"})
            assert r.status_code == 200, r.text
            assert r.headers["X-Request-ID"] == probe
            assert [row["id"] for row in r.json()["data"]] == [1, 2]
        unsafe = http.get(served.url + "/items/1",
                           headers={"X-Request-ID": "a b<script>", "X-Test-User": "7"})
        generated = unsafe.headers["X-Request-ID"]
        assert unsafe.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", generated)

        # SIGHUP reaches every worker: a table created now is served by both,
        # and a request in flight during the reload completes.
        database.run_script("CREATE TABLE late (id INTEGER PRIMARY KEY, note VARCHAR(20)); "
                            "INSERT INTO late (id, note) VALUES (1, 'new')")
        assert http.get(served.url + "/late", headers={"X-Test-User": "7"}).status_code == 404
        during, in_flight = in_background(lambda: http.get(served.url + "/slow?seconds=1.5"))
        assert wait_for(lambda: slow_started(served) == 1, 15)
        served.send(signal.SIGHUP)
        assert wait_for(lambda: {e["pid"] for e in served.json_lines()
                                 if e["msg"].startswith("schema reloaded")} == workers, 15), \
            served.stderr()
        for i in range(16):
            r = http.get(served.url + "/late", headers={"X-Request-ID": f"late-{i}",
                                                         "X-Test-User": "7"})
            assert r.status_code == 200 and r.json()["data"] == [{"id": 1, "note": "new"}]
        during.join(timeout=30)
        assert isinstance(in_flight["response"], httpx.Response), in_flight["response"]
        assert in_flight["response"].status_code == 200, in_flight["response"].text
        assert served.process is not None and served.process.poll() is None
        assert served.worker_pids() == workers  # reloaded in place, no worker restarted

        # A slow request is in flight when SIGTERM arrives.
        started = time.monotonic()
        caller, slow = in_background(lambda: http.get(served.url + "/slow?seconds=4",
                                                      headers={"X-Request-ID": "slow-one"}))
        assert wait_for(lambda: slow_started(served) == 2, 15)
        served.send(signal.SIGTERM)
        assert wait_for(lambda: refused(http, served.url + "/health"), 10)  # no longer accepting
        assert caller.is_alive()  # …while the slow request is still being served
        caller.join(timeout=30)
        assert served.wait(timeout=30) == 0, served.stderr()

        response = slow["response"]
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 200, response.text
        assert response.json() == {"answer": 42}
        assert time.monotonic() - started >= 4

        lines = served.json_lines()
        assert lines, served.stderr()
        access = {e["request_id"]: e for e in lines if e["logger"] == "swain.access"}
        for probe in probes:
            entry = access[probe]
            assert entry["route"] == "/{table}" and entry["path"] == "/items"
            assert entry["status"] == 200 and entry["user_id"] == 7 and entry["method"] == "GET"
            assert isinstance(entry["duration_ms"], float | int) and entry["duration_ms"] >= 0
        assert access[generated]["route"] == "/{table}/{id}"
        assert {access[p]["pid"] for p in probes} == workers  # both workers answered
        assert {access[f"late-{i}"]["pid"] for i in range(16)} == workers

        slow_entry = access["slow-one"]
        assert slow_entry["status"] == 200 and slow_entry["user_id"] is None
        assert slow_entry["duration_ms"] >= 4000
        closed = [i for i, e in enumerate(lines) if e["msg"] == "database pool closed"]
        assert sorted(lines[i]["pid"] for i in closed) == sorted(workers)
        slow_worker_closed = next(i for i in closed if lines[i]["pid"] == slow_entry["pid"])
        assert lines.index(slow_entry) < slow_worker_closed  # drained, then closed

    if database.dialect == "postgresql":  # every server connection is gone (backends end async)
        assert wait_for(lambda: database.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()") == [(0,)], 5)
