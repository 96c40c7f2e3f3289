"""Signup's ``is_active`` and ``additional_data``, under several operator policies, on
every database: the product document's signup payload runs as written under the
defaults, ``is_active`` is refused only where it would grant more than the policy
(naming the setting), and ``additional_data`` reaches the user's own columns, the
card's ``firstname`` also by that name."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from swain.contrib.testing import LiveServer, write_config
from swain.contrib.testing.auth import FAST_ARGON2, SQL_TYPES
from swain.core import create_app, load_config

SECRET = "a jwt secret long enough for HS256 and then some, for signups"

_DDL = """
CREATE TABLE users (id {serial}, email VARCHAR(255) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL, active {boolean} NOT NULL DEFAULT {true},
  first_name VARCHAR(50), last_name VARCHAR(50), given_name VARCHAR(50))
"""
DDL = {name: _DDL.format(**types) for name, types in SQL_TYPES.items()}

USER = {"table": "users", "id": "id", "email": "email", "password": "password_hash",
        "isactive": "active", "firstname": "first_name"}
PASSWORD = "securePassword123"

Start = Callable[..., httpx.Client]


@pytest.fixture(scope="module")
def start(database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Start]:
    """Serves the module's database under ``[auth]`` settings and a user card."""
    stack = ExitStack()

    def serve(user: dict[str, str] = USER, **auth: Any) -> httpx.Client:
        path = write_config(tmp_path_factory.mktemp("signup"), database.swain_url,
                            auth={"enabled": True, "jwt_secret": SECRET, **FAST_ARGON2, **auth},
                            mapping={"user": user})
        config, pm = load_config(path, "development", environ={})
        live = stack.enter_context(LiveServer(create_app(config, pm)))
        return stack.enter_context(httpx.Client(base_url=live.url, timeout=30))

    with stack:
        yield serve


def _row(database: Any, email: str, wait: float = 0) -> tuple[Any, ...] | None:
    """The user row (active, first_name, last_name, given_name), waiting up to ``wait``
    seconds for a signup finished after its answer."""
    deadline = time.monotonic() + wait
    while True:
        rows = database.query("SELECT active, first_name, last_name, given_name FROM users "
                              "WHERE email = :e", {"e": email})
        if rows or time.monotonic() >= deadline:
            return tuple(rows[0]) if rows else None
        time.sleep(0.05)


def _logs_in(client: httpx.Client, email: str) -> bool:
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def test_the_documented_payload_under_the_defaults(start: Start, database: Any) -> None:
    client = start()  # signup_answer = "accepted", signup_active = true
    r = client.post("/auth/signup", json={
        "email": "user@example.com",
        "password": "securePassword123",
        "is_active": True,
        "additional_data": {
            "first_name": "John",
            "last_name": "Doe"
        }
    })
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    assert _row(database, "user@example.com", wait=10) == (True, "John", "Doe", None)
    assert _logs_in(client, "user@example.com")
    # asking for less than the policy: an inactive account
    r = client.post("/auth/signup", json={"email": "later@example.com", "password": PASSWORD,
                                          "is_active": False})
    assert r.status_code == 202, r.text
    row = _row(database, "later@example.com", wait=10)
    assert row is not None and not row[0]
    assert not _logs_in(client, "later@example.com")
    for value in ("yes", 1, None):
        r = client.post("/auth/signup", json={"email": "odd@example.com", "password": PASSWORD,
                                              "is_active": value})
        if value is None:  # the same as leaving it out
            assert r.status_code == 202, r.text
            continue
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"] == [{"path": "is_active",
                                                 "message": "expected true or false"}]


def test_activating_against_the_policy_is_refused_naming_the_setting(start: Start,
                                                                    database: Any) -> None:
    client = start(signup_answer="tokens", signup_active=False)
    r = client.post("/auth/signup", json={"email": "eager@example.com", "password": PASSWORD,
                                          "is_active": True})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"][0]["path"] == "is_active"
    assert "auth.signup_active" in error["message"]
    assert "auth.signup_allow_is_active" in error["message"]
    assert _row(database, "eager@example.com") is None
    r = client.post("/auth/signup", json={"email": "patient@example.com", "password": PASSWORD,
                                          "is_active": False})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["active"] is False and "access_token" not in r.json()
    r = client.post("/auth/signup", json={"email": "quiet@example.com", "password": PASSWORD})
    assert r.status_code == 201 and r.json()["user"]["active"] is False
    allowed = start(signup_answer="tokens", signup_active=False, signup_allow_is_active=True)
    r = allowed.post("/auth/signup", json={"email": "eager@example.com", "password": PASSWORD,
                                           "is_active": True})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["active"] is True
    assert _logs_in(allowed, "eager@example.com")


def test_additional_data_reaches_the_mapped_firstname_by_its_name(start: Start,
                                                                 database: Any) -> None:
    client = start({**USER, "firstname": "given_name"}, signup_answer="tokens")
    r = client.post("/auth/signup", json={
        "email": "john@example.com", "password": PASSWORD, "is_active": True,
        "additional_data": {"first_name": "John", "last_name": "Doe"}})
    assert r.status_code == 201, r.text
    # first_name is a column of its own here: it is filled, not the card's column
    assert _row(database, "john@example.com") == (True, "John", "Doe", None)
    r = client.post("/auth/signup", json={
        "email": "jane@example.com", "password": PASSWORD,
        "additional_data": {"firstName": "Jane", "last_name": "Roe"}})
    assert r.status_code == 201, r.text
    assert _row(database, "jane@example.com") == (True, None, "Roe", "Jane")
    r = client.post("/auth/signup", json={
        "email": "twice@example.com", "password": PASSWORD,
        "additional_data": {"firstname": "A", "given_name": "B"}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == "additional_data.given_name"
    for key in ("active", "password_hash", "id", "email", "nickname"):
        r = client.post("/auth/signup", json={"email": "bad@example.com", "password": PASSWORD,
                                              "additional_data": {key: "x"}})
        assert r.status_code == 422, (key, r.text)
        assert r.json()["error"]["details"][0]["path"] == f"additional_data.{key}"
    assert _row(database, "bad@example.com") is None


def test_without_an_active_flag_every_account_is_active(start: Start, database: Any) -> None:
    user = {k: v for k, v in USER.items() if k != "isactive"}
    client = start(user, signup_answer="tokens", signup_active=False)
    r = client.post("/auth/signup", json={"email": "flagless@example.com", "password": PASSWORD,
                                          "is_active": True})
    assert r.status_code == 201, r.text
    assert _logs_in(client, "flagless@example.com")
    r = client.post("/auth/signup", json={"email": "nope@example.com", "password": PASSWORD,
                                          "is_active": False})
    assert r.status_code == 422, r.text
    assert "[mapping.user] isactive" in r.json()["error"]["message"]
