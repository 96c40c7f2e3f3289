"""Database errors reach the log without the values they quote.

PostgreSQL's messages carry the failing row ("Failing row contains (1,
alice@example.com, $argon2id$…)") and the duplicate key; MySQL quotes the
duplicate entry; any driver error may quote the statement.  The log gets the
dialect's description instead: the kind, the code and the names (constraint,
table, column), never a value, while the client still gets its 409/422.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.contrib.testing.plugins import import_plugin, write_plugin
from swain.core import create_app, load_config

EMAIL = "alice@example.com"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$ZGlnZXN0ZGlnZXN0ZGlnZXN0"
DDL = """
CREATE TABLE members (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL,
  password_hash VARCHAR(200), age INTEGER, CONSTRAINT age_not_negative CHECK (age >= 0),
  CONSTRAINT members_email_unique UNIQUE (email))
"""
SECRETS = (EMAIL, "alice@", "argon2id", "c2FsdHNhbHRz", "secret@example.com")

_BOOM = '''
from aiohttp import web
from swain.core import RUNTIME, hookimpl, json_response, public


@public
async def boom(request):
    async with request.app[RUNTIME].dialect.acquire() as conn:
        # built here, so the statement's value is in no source line of the stack
        value = "secret" + "@" + "example.com"
        await conn.fetch_all(f"SELECT * FROM no_such_table WHERE email = '{value}'")
    return json_response(b"{}")


@hookimpl
def swain_routes(config):
    return [web.get("/boom", boom)]
'''


@pytest.fixture(scope="module")
def live(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("plugins")
    plugin = import_plugin(write_plugin(folder, "log_probe", _BOOM) / "log_probe.py")
    path = write_config(Path(tmp_path_factory.mktemp("config")), database.swain_url)
    config, pm = load_config(path, "development", environ={}, plugins=[plugin])
    with LiveServer(create_app(config, pm)) as server:
        yield server


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """What swain itself logged (drivers' own debug output is theirs: swain's logging
    set-up keeps it quiet)."""
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                     if r.name.startswith("swain"))


def test_constraint_violations_are_logged_without_row_values(
        live: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        row = {"id": 1, "email": EMAIL, "password_hash": HASH, "age": 30}
        assert http.post("/members", json=row).status_code == 201
        checked = http.post("/members", json={**row, "id": 2, "email": "b@x.io", "age": -1})
        assert checked.status_code == 422, checked.text
        duplicate = http.post("/members", json={**row, "id": 3})
        assert duplicate.status_code == 409, duplicate.text
        bulk = http.post("/members/bulk", json=[{**row, "id": 4}])
        assert bulk.status_code == 207
    logged = _logged(caplog)
    assert "constraint or data error" in logged
    for secret in SECRETS:
        assert secret not in logged, (secret, logged)
    for answer in (checked, duplicate):
        assert all(secret not in answer.text for secret in SECRETS)


def test_unhandled_driver_errors_are_logged_without_the_statement(
        live: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.get("/boom")
    assert r.status_code == 500 and r.json()["error"]["code"] == "server_error"
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors and "unhandled error" in errors[0].getMessage()
    assert "boom" in errors[0].getMessage()  # the stack is kept: where it happened
    logged = _logged(caplog)
    assert "secret@example.com" not in logged, logged
