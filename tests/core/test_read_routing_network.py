"""A read replica over the network that fails while serving (PostgreSQL, MySQL):
a link cut under a pooled connection, or a replica that stops answering, costs
the read at most ``query_timeout``; the read is answered from the primary, and
the replica rests for ``replica_retry`` before it is tried again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, selected_dialects, serving, write_config
from swain.contrib.testing.proxy import TcpProxy

_TABLE = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50) NOT NULL)"
DDL = f"{_TABLE}; INSERT INTO notes (id, body) VALUES (1, 'primary-1')"
QUERY_TIMEOUT = 2.0


@pytest.fixture(scope="module", params=[d for d in selected_dialects() if d != "sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    """Databases reached over the network only: SQLite has no link to cut."""
    return str(request.param)


@dataclass
class Linked:
    http: httpx.Client
    proxy: TcpProxy

    def where(self) -> tuple[str, float]:
        started = time.monotonic()
        r = self.http.get("/notes/1")
        assert r.status_code == 200, r.text
        return r.headers["X-Read-From"], time.monotonic() - started

    def back_on_the_replica(self) -> None:
        deadline = time.monotonic() + 30
        while self.where()[0] != "replica":
            assert time.monotonic() < deadline, "the replica was never tried again"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def linked(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Linked]:
    with FreshDatabase(database.dialect) as replica, \
            TcpProxy(replica.url.host or "127.0.0.1", int(replica.url.port or 0)) as proxy:
        replica.run_script(f"{_TABLE}; INSERT INTO notes (id, body) VALUES (1, 'replica-1')")
        url = replica.url.set(drivername=database.dialect, host="127.0.0.1",
                              port=proxy.port).render_as_string(hide_password=False)
        path = write_config(tmp_path_factory.mktemp("linked"), database.swain_url,
                            connections={"development": {
                                "url": database.swain_url, "read_url": [url],
                                "replica_retry": "1s", "connect_timeout": "1s",
                                "query_timeout": f"{QUERY_TIMEOUT:g}s"}})
        with serving(path) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            yield Linked(http, proxy)


def test_a_link_cut_under_the_replica_connection_is_answered_by_the_primary(
        linked: Linked) -> None:
    assert linked.where()[0] == "replica"
    linked.proxy.cut()
    try:
        where, seconds = linked.where()
        assert where == "primary" and seconds < QUERY_TIMEOUT + 1
        assert linked.http.get("/ready").json()["resting"] == 1
    finally:
        linked.proxy.restore()
    linked.back_on_the_replica()


def test_a_silent_replica_costs_one_read_at_most_the_query_timeout(linked: Linked) -> None:
    linked.back_on_the_replica()
    linked.proxy.blackhole()
    try:
        where, seconds = linked.where()
        assert where == "primary"
        assert seconds < QUERY_TIMEOUT + 1.5, f"{seconds:.1f}s"
        # resting now: the next reads do not wait for it
        where, seconds = linked.where()
        assert where == "primary" and seconds < 1.0, f"{seconds:.1f}s"
    finally:
        linked.proxy.restore()
    linked.back_on_the_replica()
