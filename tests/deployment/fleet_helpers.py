"""Shared pieces of the deployment tests: a project with every auth and RBAC table
(sessions included, so refresh tokens live in the database), and its settings."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from swain.contrib.testing.auth import FAST_ARGON2, bearer
from swain.core.cli import cli

PASSWORD = "fleet-password-1"
REDIS = "redis://127.0.0.1:6379/0"

_DDL = """
CREATE TABLE users (id {serial}, email VARCHAR(255) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL, active {boolean} NOT NULL, org_id INTEGER);
CREATE TABLE sessions (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  token_hash VARCHAR(128) NOT NULL, expires_at {ts} NOT NULL, last_used {ts});
CREATE TABLE roles (id {serial}, name VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE permissions (id {serial}, name VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE role_permissions (id {serial}, role_id INTEGER NOT NULL REFERENCES roles(id),
  permission_id INTEGER NOT NULL REFERENCES permissions(id));
CREATE TABLE user_roles (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  role_id INTEGER NOT NULL REFERENCES roles(id));
CREATE TABLE orders (id {serial}, org_id INTEGER, total INTEGER NOT NULL,
  placed_at {ts});
INSERT INTO orders (total) VALUES (10), (20), (30)
"""

DDL = {
    "sqlite": _DDL.format(serial="INTEGER PRIMARY KEY", boolean="BOOLEAN", ts="TIMESTAMP"),
    "postgresql": _DDL.format(serial="SERIAL PRIMARY KEY", boolean="BOOLEAN", ts="TIMESTAMPTZ"),
    "mysql": _DDL.format(serial="INTEGER AUTO_INCREMENT PRIMARY KEY", boolean="TINYINT(1)",
                         ts="DATETIME"),
}

MAPPING = {
    "user": {"table": "users", "id": "id", "email": "email", "password": "password_hash",
             "isactive": "active"},
    "session": {"table": "sessions", "id": "id", "userid": "user_id",
                "refreshtoken": "token_hash", "expiresat": "expires_at", "lastused": "last_used"},
    "role": {"table": "roles", "id": "id", "name": "name"},
    "permission": {"table": "permissions", "id": "id", "name": "name"},
    "role_permission": {"table": "role_permissions", "id": "id", "roleid": "role_id",
                        "permissionid": "permission_id"},
    "user_role": {"table": "user_roles", "id": "id", "userid": "user_id", "roleid": "role_id"},
}


def fleet_sections(dialect: str, **extra: dict[str, Any]) -> dict[str, Any]:
    """Auth with database sessions, RBAC whose cache lasts an hour (only invalidation
    makes a revocation apply), login limits shared through Redis (under a prefix of
    the run's own), and invalidation by PostgreSQL notifications or Redis."""
    run = uuid.uuid4().hex[:12]
    transport = {} if dialect == "postgresql" else {"redis_url": REDIS}
    sections: dict[str, Any] = {
        "auth": {"enabled": True, "jwt_secret": "a fleet test secret that is long enough!!",
                 "identity_cache": "1h", "signup_answer": "tokens", **FAST_ARGON2},
        "rbac": {"enabled": True, "permission_cache": "1h"},
        "mapping": MAPPING,
        "rate_limit": {"redis_url": REDIS, "key_prefix": f"swain:t:{run}:",
                       "trusted_proxies": ["127.0.0.1"], "login_per_account": "3/1m"},
        "invalidation": {"channel": f"swain_t_{run}", **transport},
        "logging": {"access_log": False, "format": "json"},
    }
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    return sections


def ok(config_path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def seed_roles(config_path: Path) -> None:
    """``admin`` holds everything, ``reader`` reads orders."""
    ok(config_path, "rbac", "role", "create", "admin")
    ok(config_path, "rbac", "grant", "admin", "*")
    ok(config_path, "rbac", "role", "create", "reader")
    ok(config_path, "rbac", "grant", "reader", "orders.read")


def signup(client: httpx.Client, config_path: Path, email: str, *roles: str) -> dict[str, str]:
    """A user holding ``roles``, logged in: the bearer header."""
    r = client.post("/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    for role in roles:
        ok(config_path, "rbac", "assign", email, role)
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


def within(check: Callable[[], bool], seconds: float = 1.0) -> float:
    """Poll ``check`` until it holds; fail unless it does within ``seconds``."""
    started = time.monotonic()
    while not check():
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"still not applied after {elapsed:.2f}s"
        time.sleep(0.02)
    return time.monotonic() - started
