"""Malformed, slow and abandoned requests get clear 4xx answers, never a 500.

* Credentials that are not printable ASCII (invalid UTF-8 arrives as such)
  are a 401 on every route, public ones included.
* JSON bodies need a JSON media type (415 otherwise: other types are what a
  browser sends cross-origin without asking first).
* A connection that does not finish its headers within ``server.header_timeout``
  is closed; a body that does not arrive within ``server.body_timeout`` is a 408.
* A client that leaves in the middle of its upload is logged at debug with
  status 499, not as a server error.
* Several workers with in-memory rate limits warn at start.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from swain.contrib.testing import FreshDatabase, write_config
from swain.contrib.testing.process import ServeProcess, wait_for

PASSWORD = "request-tests-password"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
DDL = f"""
CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL, password VARCHAR(100));
CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(200));
CREATE TABLE api_keys (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, key_hash VARCHAR(64),
  created_at TIMESTAMP, revoked_at TIMESTAMP);
INSERT INTO users (id, email, password) VALUES (1, 'ada@example.com', '{HASH}');
INSERT INTO notes (id, body) VALUES (1, 'first')
"""
SECRET = "request tests need a secret of thirty-two bytes or more"
AUTH = {"enabled": True, "jwt_secret": SECRET, "public_routes": ["GET /notes"],
        "argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
MAPPING = {"user": {"table": "users", "id": "id", "email": "email", "password": "password"},
           "api_key": {"table": "api_keys", "id": "id", "userid": "user_id", "key": "key_hash",
                       "createdat": "created_at", "revokedat": "revoked_at"}}
SWAIN_CONFIG = {"auth": AUTH, "mapping": MAPPING, "logging": {"access_log": True},
                "server": {"header_timeout": "1s", "body_timeout": "1s"}}

BAD_CREDENTIALS: list[tuple[bytes, bytes]] = [
    (b"Authorization", b"Bearer \xff\xfe"),
    (b"Authorization", b"Basic \xff"),
    (b"X-API-Key", b"swk_\xff\xfe"),
    (b"Authorization", "Bearer é".encode()),
]


@pytest.fixture(scope="module")
def token(client: httpx.Client) -> str:
    r = client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _host_port(server: Any) -> tuple[str, int]:
    return "127.0.0.1", int(server.port)


@pytest.mark.parametrize("header", BAD_CREDENTIALS, ids=lambda h: repr(h[1]))
@pytest.mark.parametrize("method,path", [("GET", "/health"), ("GET", "/notes"),
                                         ("GET", "/notes/1"), ("POST", "/auth/login"),
                                         ("GET", "/openapi.json")])
def test_credentials_that_are_not_ascii_are_401_everywhere(
        client: httpx.Client, header: tuple[bytes, bytes], method: str, path: str) -> None:
    r = client.request(method, path, headers=[header],
                       json={"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert "WWW-Authenticate" in r.headers


def test_other_headers_in_bad_encodings_change_nothing(client: httpx.Client) -> None:
    r = client.get("/notes", headers=[(b"X-Request-ID", b"\xff\xfe"),
                                      (b"X-Forwarded-For", b"\xff, 10.0.0.1"),
                                      (b"Accept-Language", b"\xff")])
    assert r.status_code == 200 and r.json()["total"] == 1


@pytest.mark.parametrize("query", ["body=%00", "body=%FF%FE", "body=a%00b", "page=%FF",
                                   "filter=%FF", "sort=%00"])
def test_nul_and_invalid_utf8_in_the_query_are_4xx(client: httpx.Client, query: str) -> None:
    r = client.get(f"/notes?{query}")
    assert r.status_code < 500, r.text
    assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
@pytest.mark.parametrize("method,path", [("POST", "/notes"), ("POST", "/notes/filter"),
                                         ("PUT", "/notes/1"), ("POST", "/auth/login"),
                                         ("POST", "/notes/count")])
def test_json_bodies_need_a_json_media_type(client: httpx.Client, database: FreshDatabase,
                                            token: str, content_type: str | None, method: str,
                                            path: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = database.query("SELECT id, body FROM notes ORDER BY id")
    r = client.request(method, path, headers=headers, content=b'{"body": "cross-origin"}')
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert database.query("SELECT id, body FROM notes ORDER BY id") == before


def test_json_media_types_with_parameters_and_suffixes_are_json(
        client: httpx.Client, token: str) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json",
                         "Application/JSON"):
        r = client.patch("/notes/1", content=b'{"body": "patched"}',
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": content_type})
        assert r.status_code == 200, (content_type, r.text)


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection (reading EOF), or ``None``."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - started
    return None


def test_slow_headers_and_silent_connections_are_closed(server: Any) -> None:
    silent = socket.create_connection(_host_port(server))
    trickling = socket.create_connection(_host_port(server))
    try:
        trickling.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 5:
            try:
                trickling.sendall(b"X")  # one byte of a header line at a time
            except OSError:
                closed = True
                break
            if _closed_within(trickling, 0.3) is not None:
                closed = True
                break
        assert closed, "a connection trickling its headers stayed open"
        assert time.monotonic() - started < 4
        assert _closed_within(silent, 4) is not None, "a silent connection stayed open"
    finally:
        silent.close()
        trickling.close()


def test_a_body_that_does_not_arrive_is_a_408(server: Any) -> None:
    with socket.create_connection(_host_port(server)) as sock:
        sock.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"email\"")
        sock.settimeout(5)
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"code":"request_timeout"' in answer
        assert time.monotonic() - started < 4


def test_an_abandoned_upload_is_a_499_at_debug_not_an_error(
        server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.create_connection(_host_port(server)) as sock:
        sock.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b"{" + b" " * 5000)
        time.sleep(0.2)
    assert wait_for(lambda: any(getattr(r, "fields", {}).get("status") == 499
                                for r in caplog.records), 5), caplog.text
    access = [r for r in caplog.records if getattr(r, "fields", {}).get("status") == 499]
    assert all(r.levelno == logging.DEBUG for r in access)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("workers", [1, 2])
def test_in_memory_rate_limits_warn_when_several_workers_share_them(
        tmp_path: Path, workers: int) -> None:
    # start-up behaviour, the same on every database: SQLite needs no server
    with FreshDatabase("sqlite") as database:
        database.run_script(DDL)
        path = write_config(tmp_path, database.swain_url, auth=AUTH, mapping=MAPPING)
        with ServeProcess(path, workers=workers) as served:
            warned = "counters are kept in memory by each of the 2 workers" in served.stderr()
    assert warned == (workers == 2), served.stderr()
