"""Read routing with ``read_url``, on every database.

The "replica" here is a second database holding other rows than the primary,
so every answer shows where it was read: reads of a request that wrote
nothing come from the replica, writes and what a write reads back from the
primary, and ``X-Read-From: primary`` asks for the primary.  A replica that
is down is skipped (its reads go to the primary) and tried again after
``replica_retry``.  A real streaming replica (PostgreSQL): tests/deployment.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, serving, write_config
from swain.contrib.testing.proxy import TcpProxy
from swain.core import ConfigError, load_config

_TABLE = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50) NOT NULL)"
DDL = f"{_TABLE}; INSERT INTO notes (id, body) VALUES (1, 'primary-1'), (2, 'primary-2')"
REPLICA_ROWS = f"{_TABLE}; INSERT INTO notes (id, body) VALUES (1, 'replica-1'), (3, 'replica-3')"
PRIMARY = {"X-Read-From": "primary"}


@dataclass
class Routed:
    http: httpx.Client
    replica: FreshDatabase


def _bodies(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["body"] for row in response.json()["data"]]


def _routed_config(folder: Path, primary: str, replica: str) -> Path:
    return write_config(folder, primary, connections={"development": {
        "url": primary, "read_url": [replica], "replica_retry": "1s", "query_timeout": "3s",
        "connect_timeout": "1s"}})


@pytest.fixture(scope="module")
def replica(database: FreshDatabase) -> Iterator[FreshDatabase]:
    with FreshDatabase(database.dialect) as copy:
        copy.run_script(REPLICA_ROWS)
        yield copy


@pytest.fixture(scope="module")
def routed(database: FreshDatabase, replica: FreshDatabase,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routed]:
    path = _routed_config(tmp_path_factory.mktemp("routed"), database.swain_url,
                          replica.swain_url)
    with serving(path) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        yield Routed(http, replica)


def test_reads_come_from_the_replica(routed: Routed) -> None:
    r = routed.http.get("/notes")
    assert _bodies(r) == ["replica-1", "replica-3"]
    assert r.headers["X-Read-From"] == "replica"
    assert routed.http.get("/notes/3").json()["body"] == "replica-3"
    assert routed.http.get("/notes/count").json() == {"count": 2}
    found = routed.http.post("/notes/filter", json={"expressions": [
        {"field": "body", "operator": "startswith", "value": "replica"}]})
    assert _bodies(found) == ["replica-1", "replica-3"]
    grouped = routed.http.post("/notes/filter", json={"aggregations": {
        "functions": [{"type": "COUNT", "alias": "n"}]}})
    assert grouped.json()["data"] == [{"n": 2}]


def test_a_client_can_ask_for_the_primary(routed: Routed) -> None:
    r = routed.http.get("/notes", headers=PRIMARY)
    assert _bodies(r) == ["primary-1", "primary-2"]
    assert r.headers["X-Read-From"] == "primary"
    assert routed.http.get("/notes/3", headers=PRIMARY).status_code == 404
    assert routed.http.get("/notes", headers={"X-Read-From": "PRIMARY"}).headers[
        "X-Read-From"] == "primary"
    # anything else is no request for the primary
    assert routed.http.get("/notes", headers={"X-Read-From": "nonsense"}).headers[
        "X-Read-From"] == "replica"


def test_writes_and_what_they_read_back_use_the_primary(routed: Routed,
                                                        database: FreshDatabase) -> None:
    created = routed.http.post("/notes", json={"id": 10, "body": "written"})
    assert created.status_code == 201, created.text
    assert created.json() == {"id": 10, "body": "written"}
    assert created.headers["X-Read-From"] == "primary"
    assert database.query("SELECT body FROM notes WHERE id = 10") == [("written",)]
    assert routed.replica.query("SELECT body FROM notes WHERE id = 10") == []
    # the row read back after an update is the primary's, not the replica's 'replica-1'
    changed = routed.http.patch("/notes/1", json={"body": "primary-1-changed"})
    assert changed.json() == {"id": 1, "body": "primary-1-changed"}
    removed = routed.http.delete("/notes/10")
    assert removed.json() == {"id": 10, "body": "written"}
    # the next request reads the replica again: a replica shows a write once it has it
    assert routed.http.get("/notes/1").json()["body"] == "replica-1"
    bulk = routed.http.post("/notes/bulk", json=[{"id": 11, "body": "bulk"}])
    assert bulk.status_code == 200 and bulk.headers["X-Read-From"] == "primary"
    assert routed.http.get("/notes/11", headers=PRIMARY).json()["body"] == "bulk"
    assert routed.http.get("/notes/11").status_code == 404  # not on the "replica"


def test_a_replica_down_sends_its_reads_to_the_primary_until_it_is_back(
        database: FreshDatabase, replica: FreshDatabase, tmp_path: Path) -> None:
    """The replica is unreachable when the instance starts (a proxy that refuses
    connections; for SQLite, a folder that is not there yet), then comes up."""
    proxy: TcpProxy | None = None
    if database.dialect == "sqlite":
        source = Path(replica.url.database or "")
        target = tmp_path / "later" / "replica.db"
        url = f"sqlite:///{target}"

        def up() -> None:
            target.parent.mkdir()
            shutil.copy(source, target)
    else:
        proxy = TcpProxy(replica.url.host or "127.0.0.1", int(replica.url.port or 0))
        proxy.start(listening=False)
        url = replica.url.set(drivername=database.dialect, host="127.0.0.1",
                              port=proxy.port).render_as_string(hide_password=False)
        up = proxy.restore
    try:
        path = _routed_config(tmp_path, database.swain_url, url)
        with serving(path) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            for _ in range(3):  # no failure reaches the client
                answer = http.get("/notes")
                assert answer.headers["X-Read-From"] == "primary"
                assert "replica-3" not in _bodies(answer)
            ready = http.get("/ready").json()
            assert ready["replicas"] == 1 and ready["resting"] == 1
            up()
            deadline = time.monotonic() + 30
            while http.get("/notes").headers["X-Read-From"] != "replica":
                assert time.monotonic() < deadline, "the replica was never tried again"
                time.sleep(0.2)
            assert "replica-3" in _bodies(http.get("/notes"))
            assert http.get("/ready").json()["resting"] == 0
    finally:
        if proxy is not None:
            proxy.stop()


def test_replica_urls_are_checked(database: FreshDatabase, tmp_path: Path) -> None:
    other = "mysql://root@127.0.0.1/x" if database.dialect != "mysql" else "sqlite:///x.db"
    for read_url, message in ((["not a url"], r"read_url\[0\]: not a database URL"),
                              ([other], r"read_url\[0\]: a replica of a")):
        path = write_config(tmp_path, database.swain_url, connections={"development": {
            "url": database.swain_url, "read_url": read_url}})
        with pytest.raises(ConfigError, match=message):
            load_config(path, environ={})
    # one URL is a list of one, and the primary's credentials fill what it leaves out
    path = write_config(tmp_path, database.swain_url, connections={"development": {
        "url": database.swain_url, "read_url": database.swain_url}})
    connection = load_config(path, environ={})[0].connection()
    assert [u.database for u in connection.read_urls] == [database.url.database]
    if database.dialect == "postgresql":
        bare = database.url.set(drivername="postgresql", username=None, database=None)
        path = write_config(tmp_path, database.swain_url, connections={"development": {
            "url": database.swain_url,
            "read_url": [bare.render_as_string(hide_password=False)]}})
        [url] = load_config(path, environ={})[0].connection().read_urls
        assert (url.username, url.database) == (database.url.username, database.url.database)


def test_without_replicas_nothing_is_routed(database: FreshDatabase, tmp_path: Path) -> None:
    path = write_config(tmp_path, database.swain_url)
    with serving(path) as live:
        r = httpx.get(f"{live.url}/notes", timeout=30)
        assert r.status_code == 200 and "X-Read-From" not in r.headers
        assert "replicas" not in httpx.get(f"{live.url}/ready", timeout=30).json()

