"""Refresh sessions cannot be ended by someone who never held them.

Session ids are often sequential, so a refresh or logout call that named a
session by id alone would let anyone end everyone's session.  Only a token
this API issued (its HMAC verifies) may rotate, revoke or end a session.
"""

from __future__ import annotations

import base64
import os

from swain.contrib.testing.auth import FAST_ARGON2, bearer, login, signup

SECRET = "reliability tests need a secret of at least thirty-two bytes"
PASSWORD = "victim-password"

_SERIAL = {"sqlite": "INTEGER PRIMARY KEY", "postgresql": "SERIAL PRIMARY KEY",
           "mysql": "INTEGER AUTO_INCREMENT PRIMARY KEY"}
_TIMESTAMP = {"sqlite": "TIMESTAMP", "postgresql": "TIMESTAMPTZ", "mysql": "DATETIME"}

DDL = {
    dialect: f"""
CREATE TABLE users (id {serial}, email VARCHAR(255) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL);
CREATE TABLE sessions (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  token_hash VARCHAR(128) NOT NULL, expires_at {_TIMESTAMP[dialect]} NOT NULL)
"""
    for dialect, serial in _SERIAL.items()
}

SWAIN_CONFIG = {
    "auth": {"enabled": True, "jwt_secret": SECRET, "signup_answer": "tokens", **FAST_ARGON2},
    "mapping": {
        "user": {"table": "users", "id": "id", "email": "email", "password": "password_hash"},
        "session": {"table": "sessions", "id": "id", "userid": "user_id",
                    "refreshtoken": "token_hash", "expiresat": "expires_at"},
    },
    # Hour-long windows: a window boundary cannot fall inside the test.
    "rate_limit": {"refresh_per_client": "40/1h", "logout_per_client": "40/1h"},
}


def _sessions(database) -> int:
    return database.query("SELECT COUNT(*) FROM sessions")[0][0]


def _random_secret() -> str:
    return base64.urlsafe_b64encode(os.urandom(48)).rstrip(b"=").decode()


def test_guessed_session_ids_end_no_session(client, database):
    assert signup(client, "victim@example.com", PASSWORD).status_code == 201
    victim = login(client, "victim@example.com", PASSWORD)
    held = _sessions(database)
    assert held >= 2
    top = database.query("SELECT MAX(id) FROM sessions")[0][0]
    forged = [f"{i}.x" for i in range(1, top + 3)] + [f"{i}.{_random_secret()}"
                                                      for i in range(1, top + 3)]
    for token in forged:
        for route in ("/auth/refresh", "/auth/logout"):
            r = client.post(route, json={"refresh_token": token})
            assert r.status_code == 401, (route, token, r.text)
            assert r.json()["error"]["message"] == "invalid refresh token"
    assert _sessions(database) == held
    refreshed = client.post("/auth/refresh", json={"refresh_token": victim["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert client.get("/auth/me", headers=bearer(refreshed.json()["access_token"])).status_code == 200


def test_a_real_token_moved_to_another_session_is_refused(client, database):
    mine = login(client, "victim@example.com", PASSWORD)
    other = login(client, "victim@example.com", PASSWORD)
    other_id = other["refresh_token"].split(".", 1)[0]
    secret = mine["refresh_token"].split(".", 1)[1]
    held = _sessions(database)
    r = client.post("/auth/logout", json={"refresh_token": f"{other_id}.{secret}"})
    assert r.status_code == 401
    assert _sessions(database) == held
    assert client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_a_really_issued_but_rotated_token_still_revokes(client):
    pair = login(client, "victim@example.com", PASSWORD)
    rotated = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    replay = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401 and "revoked" in replay.json()["error"]["message"]
    dead = client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert dead.status_code == 401


def test_refresh_and_logout_are_rate_limited(client):
    for route in ("/auth/logout", "/auth/refresh"):
        statuses = [client.post(route, json={"refresh_token": "1.x"}).status_code
                    for _ in range(41)]
        assert set(statuses) == {401, 429} and statuses[-1] == 429, (route, statuses)
        limited = client.post(route, json={"refresh_token": "1.x"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
