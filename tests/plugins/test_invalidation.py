"""Invalidation across instances: two instances over one database, every cache
set to an hour, so only the invalidation bus can make a change apply.

A role revoked, a user deactivated or a key revoked on instance A (through the
table API, the auth endpoints or ``swain rbac``) is refused by instance B
within a second: PostgreSQL carries the messages with ``LISTEN/NOTIFY``, MySQL
and SQLite with Redis pub/sub (each module run on its own channel).  With no
transport, B keeps serving what it cached: the bus, not luck, makes the
changes apply.  Changes made directly in PostgreSQL: test_invalidation_triggers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
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
    sections,
)

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.contrib.testing.process import within
from swain.core import ConfigError, create_app, load_config
from swain.core.invalidation import (
    EVERYTHING,
    MISSING,
    Invalidation,
    InvalidationBus,
    TimedCache,
)

__all__ = ["DDL", "admin", "channel", "pair"]


def test_a_role_revoked_through_the_table_api_on_one_instance_denies_on_the_other(
        pair: Pair, admin: dict[str, str]) -> None:
    reader = pair.user("api-revoked@example.com", "reader")
    assert pair.b.get("/orders", headers=reader).status_code == 200  # cached on B for an hour
    assert pair.a.get("/orders", headers=reader).status_code == 200
    user_id = pair.user_id("api-revoked@example.com")
    rows = pair.a.get(f"/user_roles?user_id={user_id}", headers=admin).json()["data"]
    assert pair.a.delete(f"/user_roles/{rows[0]['id']}", headers=admin).status_code == 200
    within(lambda: pair.b.get("/orders", headers=reader).status_code == 403)
    assert pair.a.get("/orders", headers=reader).status_code == 403


def test_swain_rbac_reaches_every_instance(pair: Pair, admin: dict[str, str]) -> None:
    reader = pair.user("cli-revoked@example.com", "reader")
    assert pair.a.get("/orders/count", headers=reader).status_code == 200
    assert pair.b.get("/orders/count", headers=reader).status_code == 200
    ok(pair.config_path, "rbac", "unassign", "cli-revoked@example.com", "reader")
    within(lambda: pair.a.get("/orders/count", headers=reader).status_code == 403)
    within(lambda: pair.b.get("/orders/count", headers=reader).status_code == 403)
    # a grant applies the same way
    ok(pair.config_path, "rbac", "assign", "cli-revoked@example.com", "reader")
    within(lambda: pair.b.get("/orders/count", headers=reader).status_code == 200)


def test_a_user_deactivated_on_one_instance_is_refused_by_the_other(
        pair: Pair, admin: dict[str, str]) -> None:
    reader = pair.user("deactivated@example.com", "reader")
    basic = httpx.BasicAuth("deactivated@example.com", PASSWORD)
    assert pair.b.get("/orders", headers=reader).status_code == 200
    assert pair.b.get("/orders", auth=basic).status_code == 200
    user_id = pair.user_id("deactivated@example.com")
    changed = pair.a.patch(f"/users/{user_id}", headers=admin, json={"active": False})
    assert changed.status_code == 200, changed.text
    within(lambda: pair.b.get("/orders", headers=reader).status_code == 401)
    assert pair.b.get("/orders", auth=basic).status_code == 401
    # a change of a column nobody caches tells nobody: harmless, and still applied
    assert pair.a.patch(f"/users/{user_id}", headers=admin,
                        json={"nickname": "x"}).status_code == 200


def test_an_api_key_revoked_on_one_instance_is_refused_by_the_other(pair: Pair) -> None:
    owner = pair.user("keyed@example.com", "reader")
    made = pair.a.post("/auth/api_keys", headers=owner, json={"name": "ci"})
    assert made.status_code == 201, made.text
    key = {"X-API-Key": made.json()["key"]}
    assert pair.b.get("/orders", headers=key).status_code == 200  # the key cached on B
    revoked = pair.a.delete(f"/auth/api_keys/{made.json()['id']}", headers=owner)
    assert revoked.status_code == 200
    within(lambda: pair.b.get("/orders", headers=key).status_code == 401)


def test_without_a_transport_the_other_instance_keeps_its_cache(
        pair: Pair, admin: dict[str, str], database: FreshDatabase,
        tmp_path: Path) -> None:
    """The control: the same revocation, each instance on its own."""
    path = write_config(tmp_path, database.swain_url,
                        **sections(database.dialect, "unused", transport="none"))
    alone = Pair(path, database)
    try:
        reader = pair.user("alone@example.com", "reader")
        assert alone.b.get("/orders", headers=reader).status_code == 200
        user_id = pair.user_id("alone@example.com")
        rows = alone.a.get(f"/user_roles?user_id={user_id}", headers=admin).json()["data"]
        assert alone.a.delete(f"/user_roles/{rows[0]['id']}", headers=admin).status_code == 200
        assert alone.a.get("/orders", headers=reader).status_code == 403  # its own change
        started = time.monotonic()
        while time.monotonic() - started < 2 * WITHIN:
            assert alone.b.get("/orders", headers=reader).status_code == 200
            time.sleep(0.1)
        # the instances that listen were told, of course
        within(lambda: pair.b.get("/orders", headers=reader).status_code == 403)
    finally:
        alone.close()


def test_bad_settings_stop_the_start(database: FreshDatabase, tmp_path: Path) -> None:
    cases = [({"transport": "redis", "redis_url": None}, "invalidation.redis_url: required"),
             ({"channel": "Not-An-Identifier"}, "invalidation.channel"),
             ({"transport": "carrier-pigeon"}, "invalidation.transport: expected one of")]
    if database.dialect != "postgresql":
        cases.append(({"transport": "database", "redis_url": None}, "has no notifications"))
    for settings, message in cases:
        base = sections(database.dialect, "bad_settings")
        base["invalidation"] = {k: v for k, v in {**base["invalidation"], **settings}.items()
                                if v is not None}
        path = write_config(tmp_path, database.swain_url, **base)
        with pytest.raises(ConfigError, match=message):
            config, pm = load_config(path, environ={})
            create_app(config, pm)


def test_triggers_need_a_database_with_notifications(pair: Pair) -> None:
    if pair.database.dialect == "postgresql":
        plan = ok(pair.config_path, "invalidation", "plan")
        assert "CREATE TRIGGER" in plan
        return
    code, output = run_cli(pair.config_path, "invalidation", "plan")
    assert code != 0 and "has no notifications" in output and "redis_url" in output
    code, output = run_cli(pair.config_path, "invalidation", "remove")
    assert code != 0 and "has no notifications" in output




# -- the bus itself -----------------------------------------------------------------------------


def test_messages_cross_the_wire_as_topic_and_key() -> None:
    assert Invalidation("user", "42").encode() == "user:42"
    assert Invalidation.decode("user:42") == Invalidation("user", "42")
    assert Invalidation.decode("rbac") == Invalidation("rbac")
    assert Invalidation.decode("user:a:b") == Invalidation("user", "a:b")
    assert Invalidation.decode("bad topic") is None
    assert Invalidation.decode("") is None
    assert Invalidation("user", "k" * 300).key is None  # too long: the whole topic
    with pytest.raises(ValueError, match="invalidation topic"):
        Invalidation("no spaces")


def test_subscribers_hear_their_topic_and_everything() -> None:
    bus = InvalidationBus()
    heard: list[tuple[str, str | None]] = []
    bus.subscribe("user", lambda key: heard.append(("user", key)))
    bus.subscribe("rbac", lambda key: heard.append(("rbac", key)))

    def broken(key: str | None) -> None:
        raise RuntimeError("a subscriber that fails does not stop the others")

    bus.subscribe("user", broken)
    bus.deliver(Invalidation("user", "7"))
    bus.deliver(Invalidation("other"))
    bus.deliver(Invalidation(EVERYTHING))
    assert heard == [("user", "7"), ("user", None), ("rbac", None)]


def test_a_cache_forgets_by_key_text_and_keeps_no_load_an_invalidation_overtook() -> None:
    cache: TimedCache[Any, str] = TimedCache(3600, limit=3)
    for key, value in ((7, "a"), (8, "b"), ("7", "c")):
        cache.put(key, value, cache.epoch)
    cache.forget("7", lambda key, _value: key)  # messages carry keys as text
    assert [cache.fresh(k) for k in (7, 8, "7")] == [MISSING, "b", MISSING]
    # a load that began before an invalidation may have read the old row: not kept
    since = cache.epoch
    cache.forget("9", lambda key, _value: key)
    cache.put(9, "read before the change", since)
    assert cache.fresh(9) is MISSING
    cache.put(9, "read after it", cache.epoch)
    assert cache.fresh(9) == "read after it"
    for key in range(10, 14):  # over the limit: bounded
        cache.put(key, "x", cache.epoch)
    assert len(cache) <= 3
    cache.forget(None, lambda key, _value: key)
    assert len(cache) == 0
    unkept: TimedCache[str, str] = TimedCache(0)
    unkept.put("k", "v", unkept.epoch)
    assert unkept.fresh("k") is MISSING


def test_a_second_server_needs_no_listener_to_serve(database: FreshDatabase,
                                                    tmp_path: Path) -> None:
    """A transport that cannot connect delays the start by at most the connect timeout,
    then the instance serves (its caches' time limits apply) and keeps retrying."""
    base = sections(database.dialect, "unreachable")
    if database.dialect == "postgresql":
        base["invalidation"]["listen_url"] = "postgresql://nobody@127.0.0.1:1/none"
    else:
        base["invalidation"]["redis_url"] = "redis://127.0.0.1:1/0"
    base["connections"] = {"development": {"url": database.swain_url, "connect_timeout": "1s"}}
    path = write_config(tmp_path, database.swain_url, **base)
    config, pm = load_config(path, environ={})
    started = time.monotonic()
    with LiveServer(create_app(config, pm)) as live:
        assert time.monotonic() - started < 10
        assert httpx.get(f"{live.url}/orders", timeout=30).status_code == 401
