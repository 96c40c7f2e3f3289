"""Helpers for tests of the auth plugins: fast password hashing and the
sign-up / login round trips most such tests start with."""

from __future__ import annotations

from typing import Any

import httpx

#: ``[auth]`` settings that make Argon2 hashing cheap enough for a test suite
FAST_ARGON2: dict[str, int] = {"argon2_time_cost": 1, "argon2_memory_kib": 1024,
                               "argon2_parallelism": 1}


def signup(client: httpx.Client, email: str, password: str, **extra: object) -> httpx.Response:
    """``POST /auth/signup`` with ``email``, ``password`` and any ``extra`` body fields;
    the response is returned unchecked, so tests can assert refusals too."""
    return client.post("/auth/signup", json={"email": email, "password": password, **extra})


def login(client: httpx.Client, email: str, password: str) -> dict[str, Any]:
    """``POST /auth/login``, asserting it succeeds; returns the token pair."""
    r = client.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for a bearer ``token``."""
    return {"Authorization": f"Bearer {token}"}


_AUTH_TABLES = """
CREATE TABLE users (id {serial}, email VARCHAR(255) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL, active {boolean} NOT NULL DEFAULT {true}{user_columns});
CREATE TABLE sessions (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  token_hash VARCHAR(128) NOT NULL, expires_at {ts} NOT NULL, last_used {ts});
CREATE TABLE api_keys (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  key_hash VARCHAR(64) NOT NULL UNIQUE, created_at {ts} NOT NULL, revoked_at {ts});
CREATE TABLE roles (id {serial}, name VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE permissions (id {serial}, name VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE role_permissions (id {serial}, role_id INTEGER NOT NULL REFERENCES roles(id),
  permission_id INTEGER NOT NULL REFERENCES permissions(id));
CREATE TABLE user_roles (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  role_id INTEGER NOT NULL REFERENCES roles(id))
"""
#: per dialect, the column types the auth tables use (``serial`` key, ``boolean`` and
#: its ``true``, timestamp ``ts``), for tests writing tables of their own
SQL_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY", "boolean": "BOOLEAN", "true": "1",
               "ts": "TIMESTAMP"},
    "postgresql": {"serial": "SERIAL PRIMARY KEY", "boolean": "BOOLEAN", "true": "TRUE",
                   "ts": "TIMESTAMPTZ"},
    "mysql": {"serial": "INTEGER AUTO_INCREMENT PRIMARY KEY", "boolean": "TINYINT(1)",
              "true": "1", "ts": "DATETIME"},
}

#: ``[mapping.*]`` for the tables :func:`auth_tables` creates
AUTH_MAPPING: dict[str, dict[str, str]] = {
    "user": {"table": "users", "id": "id", "email": "email", "password": "password_hash",
             "isactive": "active"},
    "session": {"table": "sessions", "id": "id", "userid": "user_id",
                "refreshtoken": "token_hash", "expiresat": "expires_at", "lastused": "last_used"},
    "api_key": {"table": "api_keys", "id": "id", "userid": "user_id", "key": "key_hash",
                "createdat": "created_at", "revokedat": "revoked_at"},
    "role": {"table": "roles", "id": "id", "name": "name"},
    "permission": {"table": "permissions", "id": "id", "name": "name"},
    "role_permission": {"table": "role_permissions", "id": "id", "roleid": "role_id",
                        "permissionid": "permission_id"},
    "user_role": {"table": "user_roles", "id": "id", "userid": "user_id", "roleid": "role_id"},
}


def auth_tables(dialect: str, user_columns: str = "") -> str:
    """DDL for the tables of the auth and RBAC cards under plain names (``users``,
    ``sessions``, ``api_keys``, ``roles``, ``permissions``, ``role_permissions``,
    ``user_roles``), mapped by :data:`AUTH_MAPPING`; ``user_columns`` adds columns
    to ``users`` (``"org_id INTEGER"``)."""
    extra = f", {user_columns}" if user_columns else ""
    return _AUTH_TABLES.format(user_columns=extra, **SQL_TYPES[dialect])


def auth_mapping(*cards: str) -> dict[str, dict[str, str]]:
    """:data:`AUTH_MAPPING`, only the ``cards`` named (all when none is)."""
    return {card: dict(AUTH_MAPPING[card]) for card in (cards or tuple(AUTH_MAPPING))}
