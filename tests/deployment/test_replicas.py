"""A real PostgreSQL streaming replica: a cluster of its own made with ``initdb``,
and a replica of it made with ``pg_basebackup -R`` on another port, both in
temporary folders, removed afterwards.

The replica's replay is paused to make it lag on purpose: a row written on
the primary since is then visible through swain only when the read goes to
the primary.  So the tests show that reads go to the replica (and PostgreSQL's
own statistics agree), that writes and what they read back go to the primary,
that the auth layer reads the primary, what lag means for a client and how
``X-Read-From: primary`` and ``max_replica_lag`` deal with it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import serving, write_config
from swain.contrib.testing.auth import FAST_ARGON2, bearer
from swain.contrib.testing.infra import PostgresCluster, primary_and_replica

DATABASE = "app"
SCHEMA = """
CREATE TABLE notes (id SERIAL PRIMARY KEY, body VARCHAR(50) NOT NULL);
CREATE TABLE users (id SERIAL PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL);
INSERT INTO notes (body) VALUES ('first'), ('second')
"""
PRIMARY = {"X-Read-From": "primary"}
SECTIONS: dict[str, Any] = {
    "auth": {"enabled": True, "jwt_secret": "a replica test secret long enough for HS256",
             "signup_answer": "tokens", **FAST_ARGON2},
    "mapping": {"user": {"table": "users", "id": "id", "email": "email",
                         "password": "password_hash"}},
    "rate_limit": {"enabled": False},
}


@dataclass
class Pair:
    primary: PostgresCluster
    replica: PostgresCluster
    folder: Path

    def config(self, name: str, **connection: Any) -> Path:
        url = self.primary.database_url(DATABASE)
        folder = self.folder / name
        folder.mkdir()
        return write_config(folder, url, **SECTIONS, connections={"development": {
            "url": url, "read_url": [self.replica.database_url(DATABASE)], **connection}})

    def paused(self) -> Any:
        return _Paused(self.replica)

    def caught_up(self) -> None:
        self.primary.wait_replayed(self.replica)

    def table_reads(self, cluster: PostgresCluster) -> int:
        """Scans of ``notes`` on ``cluster`` (PostgreSQL's own counters)."""
        row = cluster.query("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM "
                            "pg_stat_user_tables WHERE relname = 'notes'", DATABASE)
        return int(row[0][0])


class _Paused:
    """Replay paused on the replica for the block: it falls behind on purpose."""

    def __init__(self, replica: PostgresCluster) -> None:
        self.replica = replica

    def __enter__(self) -> None:
        self.replica.query("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while self.replica.query("SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.replica.query("SELECT pg_wal_replay_resume()")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with primary_and_replica() as (primary, replica):
        primary.query(f"CREATE DATABASE {DATABASE}")
        primary.query(SCHEMA, DATABASE)
        both = Pair(primary, replica, tmp_path_factory.mktemp("replicas"))
        both.caught_up()
        yield both


def _signed_in(http: httpx.Client, email: str) -> httpx.Client:
    """``http`` sending a new user's bearer token with every request."""
    r = http.post("/auth/signup", json={"email": email, "password": "pw-123456"})
    assert r.status_code == 201, r.text
    http.headers.update(bearer(r.json()["access_token"]))
    return http


@pytest.fixture(scope="module")
def api(pair: Pair) -> Iterator[httpx.Client]:
    with serving(pair.config("api")) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        yield _signed_in(http, "reader@example.com")


def _notes(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["body"] for row in response.json()["data"]]


def test_the_replica_is_a_real_streaming_replica(pair: Pair) -> None:
    assert pair.replica.query("SELECT pg_is_in_recovery()") == [(True,)]
    assert pair.primary.query("SELECT state FROM pg_stat_replication") == [("streaming",)]


def test_reads_go_to_the_replica_and_postgresql_counts_them_there(
        pair: Pair, api: httpx.Client) -> None:
    on_replica, on_primary = pair.table_reads(pair.replica), pair.table_reads(pair.primary)
    for _ in range(20):
        r = api.get("/notes")
        assert r.headers["X-Read-From"] == "replica"
    assert _notes(r) == ["first", "second"]
    # a server process publishes its counts a second after it is busy, ten after it idles
    deadline = time.monotonic() + 30
    while pair.table_reads(pair.replica) - on_replica < 20:
        assert time.monotonic() < deadline, "the replica never counted the reads"
        time.sleep(0.5)
    time.sleep(1)  # what the primary would count, from the same moments, is published too
    assert pair.table_reads(pair.primary) == on_primary


def test_a_row_the_replica_has_not_replayed_yet(pair: Pair, api: httpx.Client) -> None:
    with pair.paused():
        pair.primary.query("INSERT INTO notes (body) VALUES ('only on the primary')", DATABASE)
        assert "only on the primary" not in _notes(api.get("/notes"))  # the replica lags
        asked = api.get("/notes", headers=PRIMARY)
        assert "only on the primary" in _notes(asked)
        assert asked.headers["X-Read-From"] == "primary"
    pair.caught_up()
    assert "only on the primary" in _notes(api.get("/notes"))


def test_writes_and_their_read_back_use_the_primary(pair: Pair, api: httpx.Client) -> None:
    # (a write sent to the replica would fail: a standby is read-only)
    with pair.paused():
        created = api.post("/notes", json={"body": "fresh"})
        assert created.status_code == 201, created.text
        assert created.json()["body"] == "fresh" and created.headers["X-Read-From"] == "primary"
        note = created.json()["id"]
        # the next request reads the lagging replica: the note is not there yet...
        assert api.get(f"/notes/{note}").status_code == 404
        # ...unless the client asks for the primary, as it should right after a write
        assert api.get(f"/notes/{note}", headers=PRIMARY).json()["body"] == "fresh"
        # a bulk write reads back its own rows within its request
        bulk = api.put("/notes/bulk", json=[{"id": note, "body": "fresher"}])
        assert bulk.status_code == 200, bulk.text
        assert bulk.json()["succeeded"][0]["data"]["body"] == "fresher"
    pair.caught_up()
    assert api.get(f"/notes/{note}").json()["body"] == "fresher"


def test_the_auth_layer_reads_the_primary(pair: Pair, api: httpx.Client) -> None:
    with pair.paused():
        r = api.post("/auth/signup", json={"email": "new@example.com", "password": "pw-123456"})
        assert r.status_code == 201, r.text
        login = httpx.post(f"{api.base_url}/auth/login", timeout=30,
                           json={"email": "new@example.com", "password": "pw-123456"})
        assert login.status_code == 200, login.text  # the replica has no such user yet
        me = httpx.get(f"{api.base_url}/auth/me", timeout=30,
                       headers=bearer(login.json()["access_token"]))
        assert me.status_code == 200 and me.json()["user"]["email"] == "new@example.com"
    pair.caught_up()


def test_a_replica_too_far_behind_is_not_read(pair: Pair) -> None:
    path = pair.config("lagging", max_replica_lag="1s", replica_retry="0.5s")
    with serving(path) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        _signed_in(http, "lagging@example.com")
        pair.caught_up()
        assert http.get("/notes").headers["X-Read-From"] == "replica"
        with pair.paused():
            pair.primary.query("INSERT INTO notes (body) VALUES ('lagged')", DATABASE)
            time.sleep(2)  # the replica is now more than a second behind
            deadline = time.monotonic() + 10
            while (r := http.get("/notes")).headers["X-Read-From"] != "primary":
                assert time.monotonic() < deadline, "the lagging replica kept serving"
                time.sleep(0.1)
            assert "lagged" in _notes(r)
            assert http.get("/ready").json()["resting"] == 1
        pair.caught_up()
        deadline = time.monotonic() + 10
        while http.get("/notes").headers["X-Read-From"] != "replica":
            assert time.monotonic() < deadline, "the replica was never read again"
            time.sleep(0.1)


def test_swain_serve_routes_reads_too(pair: Pair) -> None:
    """The same through ``swain serve`` with two workers: each routes on its own."""
    from swain.contrib.testing.process import ServeProcess

    with ServeProcess(pair.config("served"), workers=2) as served, \
            httpx.Client(base_url=served.url, timeout=30) as http:
        _signed_in(http, "served@example.com")
        pair.caught_up()
        answers = {http.get("/notes").headers["X-Read-From"] for _ in range(10)}
        assert answers == {"replica"}
        assert http.get("/ready").json()["replicas"] == 1

