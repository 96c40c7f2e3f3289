"""PostgreSQL: changes made directly in the database reach every instance through the
triggers ``swain invalidation apply`` installs (plan first, with its hash), which
send only what an instance caches, and nothing for other changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import argon2
import httpx
import psycopg
import pytest
import sqlalchemy as sa
from invalidation_helpers import (
    DDL,
    PASSWORD,
    WITHIN,
    Pair,
    admin,
    channel,
    ok,
    pair,
    run_cli,
)

from swain.contrib.testing import FreshDatabase
from swain.contrib.testing.fixtures import only_dialect
from swain.contrib.testing.process import within

__all__ = ["DDL", "admin", "channel", "pair"]
dialect = only_dialect("postgresql")


@pytest.fixture(scope="module")
def triggers(pair: Pair) -> Iterator[str]:
    plan = ok(pair.config_path, "invalidation", "plan")
    digest = plan.split("plan hash ", 1)[1].split()[0]
    code, output = run_cli(pair.config_path, "invalidation", "apply", "--plan-hash", "0" * 16)
    assert code != 0 and "the plan changed since it was shown" in output
    assert "installed the invalidation triggers" in ok(pair.config_path, "invalidation",
                                                        "apply", "--plan-hash", digest)
    yield plan
    ok(pair.config_path, "invalidation", "remove", "--apply")


def _triggers_on(database: FreshDatabase) -> list[tuple[str, str]]:
    return sorted(database.query(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname LIKE 'swain_invalidate%'"))


def test_the_plan_names_every_watched_table(pair: Pair, triggers: str) -> None:
    for table in ("users", "api_keys", "roles", "permissions", "role_permissions", "user_roles"):
        assert f'ON {table} FOR EACH' in triggers or f'ON {table} ' in triggers, table
    assert '"orders"' not in triggers and " orders " not in triggers
    # only the columns an identity depends on: a nickname change notifies nobody
    assert "UPDATE OF id, email, password_hash, active ON users" in triggers
    assert {table for table, _ in _triggers_on(pair.database)} == {
        "users", "api_keys", "roles", "permissions", "role_permissions", "user_roles"}


def _listen(database: FreshDatabase, channel: str) -> psycopg.Connection[Any]:
    url = database.url
    conn = psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database,
                           autocommit=True)
    conn.execute(f"LISTEN {channel}")
    return conn


def _heard(conn: psycopg.Connection[Any], seconds: float = 0.5) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=seconds)]


def test_triggers_send_what_changed_and_only_that(pair: Pair, triggers: str, channel: str,
                                                  admin: dict[str, str]) -> None:
    user_id = pair.user_id("admin@example.com")
    with _listen(pair.database, channel) as conn, pair.database.engine.begin() as db:
        db.execute(sa.text("UPDATE users SET nickname = 'n' WHERE id = :u"), {"u": user_id})
        assert _heard(conn) == []
        db.execute(sa.text("UPDATE users SET nickname = 'm', active = active WHERE id = :u"),
                   {"u": user_id})
    with _listen(pair.database, channel) as conn:
        assert _heard(conn) == []  # the active flag was written but did not change
        with pair.database.engine.begin() as db:
            db.execute(sa.text("UPDATE roles SET name = name"))
            db.execute(sa.text("UPDATE api_keys SET revoked_at = revoked_at WHERE id < 0"))
        assert _heard(conn) == ["rbac"]  # a statement trigger: once, whatever it touched
        with pair.database.engine.begin() as db:
            db.execute(sa.text("UPDATE users SET email = lower(email) || '' WHERE id = :u"),
                       {"u": user_id})
            db.execute(sa.text("UPDATE users SET password_hash = password_hash || '' "
                               "WHERE id = :u"), {"u": user_id})
        assert _heard(conn) == []
        with pair.database.engine.begin() as db:
            db.execute(sa.text("UPDATE users SET active = NOT active WHERE id = :u"),
                       {"u": user_id})
            db.execute(sa.text("UPDATE users SET active = NOT active WHERE id = :u"),
                       {"u": user_id})
        assert _heard(conn) == [f"user:{user_id}"]  # one transaction: one message


def test_changes_made_directly_in_postgresql_reach_every_instance(
        pair: Pair, triggers: str) -> None:
    reader = pair.user("direct@example.com", "reader")
    basic = httpx.BasicAuth("direct@example.com", PASSWORD)
    for client in (pair.a, pair.b):
        assert client.get("/orders", headers=reader).status_code == 200
        assert client.get("/orders", auth=basic).status_code == 200
    user_id = pair.user_id("direct@example.com")
    with pair.database.engine.begin() as db:
        db.execute(sa.text("DELETE FROM user_roles WHERE user_id = :u"), {"u": user_id})
    within(lambda: pair.b.get("/orders", headers=reader).status_code == 403)
    assert pair.a.get("/orders", auth=basic).status_code == 403
    # a new password: the Basic pair verified an hour ago stops working everywhere
    with pair.database.engine.begin() as db:
        db.execute(sa.text("UPDATE users SET password_hash = :h WHERE id = :u"),
                   {"h": argon2.PasswordHasher().hash("another password"), "u": user_id})
    within(lambda: pair.b.get("/orders", auth=basic).status_code == 401)
    assert pair.a.get("/orders", auth=basic).status_code == 401
    with pair.database.engine.begin() as db:
        db.execute(sa.text("UPDATE users SET active = false WHERE id = :u"), {"u": user_id})
    within(lambda: pair.b.get("/auth/me", headers=reader).status_code == 401)


def test_a_key_revoked_directly_in_postgresql_stops_at_once(pair: Pair, triggers: str) -> None:
    owner = pair.user("direct-key@example.com", "reader")
    made = pair.a.post("/auth/api_keys", headers=owner, json={}).json()
    key = {"X-API-Key": made["key"]}
    assert pair.b.get("/orders", headers=key).status_code == 200
    with pair.database.engine.begin() as db:
        db.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE id = :k"),
                   {"k": made["id"]})
    within(lambda: pair.b.get("/orders", headers=key).status_code == 401)


def test_a_lost_listener_reconnects_and_forgets_what_it_missed(
        pair: Pair, triggers: str, channel: str) -> None:
    reader = pair.user("reconnect@example.com", "reader")
    assert pair.b.get("/orders", headers=reader).status_code == 200

    def listeners() -> list[int]:
        return [int(r[0]) for r in pair.database.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = :q", {"q": f'LISTEN "{channel}"'})]

    before = listeners()
    assert len(before) == 2  # one per instance
    for pid in before:
        pair.database.query("SELECT pg_terminate_backend(:p)", {"p": pid})
    # missed while cut off: nobody hears this one...
    user_id = pair.user_id("reconnect@example.com")
    with pair.database.engine.begin() as db:
        db.execute(sa.text("DELETE FROM user_roles WHERE user_id = :u"), {"u": user_id})
    # ...but both reconnect, and forget everything they cached when they do
    within(lambda: len(set(listeners()) - set(before)) == 2, 10)
    within(lambda: pair.b.get("/orders", headers=reader).status_code == 403)
    # and hear what follows
    ok(pair.config_path, "rbac", "assign", "reconnect@example.com", "reader")
    within(lambda: pair.b.get("/orders", headers=reader).status_code == 200)


def test_a_malformed_message_is_ignored(pair: Pair, triggers: str, channel: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    reader = pair.user("malformed@example.com", "reader")
    assert pair.b.get("/orders", headers=reader).status_code == 200
    with pair.database.engine.begin() as db:  # notifications go out on commit
        db.execute(sa.text("SELECT pg_notify(:c, 'no such topic!')"), {"c": channel})
        db.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": "x" * 7000})
    time.sleep(0.3)
    assert pair.b.get("/orders", headers=reader).status_code == 200
    ok(pair.config_path, "rbac", "unassign", "malformed@example.com", "reader")
    within(lambda: pair.b.get("/orders", headers=reader).status_code == 403)
    assert "ignored a malformed message" in caplog.text


def test_removing_the_triggers_leaves_direct_changes_to_the_caches(
        pair: Pair, triggers: str, database: FreshDatabase) -> None:
    reader = pair.user("removed@example.com", "reader")
    assert pair.b.get("/orders", headers=reader).status_code == 200
    shown = ok(pair.config_path, "invalidation", "remove")
    assert shown == "DROP FUNCTION IF EXISTS swain_invalidate() CASCADE;\n"
    ok(pair.config_path, "invalidation", "remove", "--apply")
    assert _triggers_on(database) == []
    with database.engine.begin() as db:
        db.execute(sa.text("DELETE FROM user_roles WHERE user_id = :u"),
                   {"u": pair.user_id("removed@example.com")})
    time.sleep(2 * WITHIN)
    assert pair.b.get("/orders", headers=reader).status_code == 200  # until the cache expires
    # put them back for the rest of the module
    plan = ok(pair.config_path, "invalidation", "plan")
    ok(pair.config_path, "invalidation", "apply", "--plan-hash",
        plan.split("plan hash ", 1)[1].split()[0])


