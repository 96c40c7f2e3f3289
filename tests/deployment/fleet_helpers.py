"""Shared pieces of the deployment tests: a project with every auth and RBAC table
(sessions included, so refresh tokens live in the database), and its settings."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from swain.contrib.testing.auth import FAST_ARGON2, auth_mapping, auth_tables, bearer
from swain.core.cli import cli

PASSWORD = "fleet-password-1"
REDIS = "redis://127.0.0.1:6379/0"

_ORDERS = """;
CREATE TABLE orders (id {serial}, org_id INTEGER, total INTEGER NOT NULL, placed_at {ts});
INSERT INTO orders (total) VALUES (10), (20), (30)
"""
_SERIAL = {"sqlite": ("INTEGER PRIMARY KEY", "TIMESTAMP"),
           "postgresql": ("SERIAL PRIMARY KEY", "TIMESTAMPTZ"),
           "mysql": ("INTEGER AUTO_INCREMENT PRIMARY KEY", "DATETIME")}
DDL = {dialect: auth_tables(dialect, "org_id INTEGER")
       + _ORDERS.format(serial=serial, ts=ts) for dialect, (serial, ts) in _SERIAL.items()}
MAPPING = auth_mapping("user", "session", "role", "permission", "role_permission", "user_role")


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


