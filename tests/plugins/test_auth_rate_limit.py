"""Rate limits on login, signup and reset: per client and per account, in
memory and in the real Redis at 127.0.0.1:6379 (shared by two instances)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import redis

from swain.contrib.testing import LiveServer, write_config
from swain.core import create_app, load_config

SECRET = "rate limit tests need a secret of at least thirty-two bytes too"
PASSWORD = "limit-password"

DDL = {
    "default": """
CREATE TABLE "People" ("Pid" INTEGER PRIMARY KEY, "Mail" VARCHAR(255) NOT NULL UNIQUE,
  "Secret" VARCHAR(255) NOT NULL, "Nick" VARCHAR(64) UNIQUE)
""",
    "mysql": """
CREATE TABLE `People` (`Pid` INTEGER AUTO_INCREMENT PRIMARY KEY,
  `Mail` VARCHAR(255) NOT NULL UNIQUE, `Secret` VARCHAR(255) NOT NULL,
  `Nick` VARCHAR(64) UNIQUE)
""",
    "postgresql": """
CREATE TABLE "People" ("Pid" SERIAL PRIMARY KEY, "Mail" VARCHAR(255) NOT NULL UNIQUE,
  "Secret" VARCHAR(255) NOT NULL, "Nick" VARCHAR(64) UNIQUE)
""",
}
AUTH = {
    "enabled": True,
    "jwt_secret": SECRET,
    "signup_answer": "tokens",  # 201 and 409: what the limits are counted against here
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
    "argon2_parallelism": 1,
}
MAPPING = {"user": {"table": "People", "id": "Pid", "email": "Mail", "password": "Secret",
                    "username": "Nick"}}
LIMITS = {
    "login_per_client": "6/1m",
    "login_per_account": "3/1m",
    "signup_per_client": "4/1m",
    "signup_per_account": "2/1m",
    "reset_per_client": "3/1m",
    "reset_per_account": "2/1m",
}

SWAIN_CONFIG = {"auth": AUTH, "mapping": MAPPING, "rate_limit": LIMITS}


def _login(
    client: httpx.Client, email: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(
        "/auth/login", json={"email": email, "password": "wrong-password"}, headers=headers or {}
    )


def test_per_account_then_per_client_limits(client):
    statuses = [_login(client, "victim@example.com").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = _login(client, "victim@example.com")
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Spreading attempts over accounts runs into the per-client limit instead
    # (and a forged X-Forwarded-For from an untrusted peer changes nothing).
    spread = [
        _login(client, f"user{i}@example.com", {"X-Forwarded-For": f"10.0.0.{i}"}).status_code
        for i in range(3)
    ]
    assert spread[-1] == 429, spread
    # The token endpoint counts as login too.
    assert (
        client.post("/auth/token", data={"username": "x@example.com", "password": "p"}).status_code
        == 429
    )


def test_signup_is_limited(client):
    statuses = [
        client.post(
            "/auth/signup", json={"email": f"new{i}@example.com", "password": PASSWORD}
        ).status_code
        for i in range(5)
    ]
    assert statuses[:4] == [201] * 4 and statuses[4] == 429, statuses


def _server(tmp_path: Path, url: str, **rate_limit: object) -> LiveServer:
    path = write_config(
        tmp_path, url, auth=AUTH, mapping=MAPPING, rate_limit={**LIMITS, **rate_limit}
    )
    config, pm = load_config(path, "development", environ={})
    return LiveServer(create_app(config, pm))


def test_an_account_named_two_ways_shares_one_counter(database, dialect, tmp_path):
    """Its email and its username reach the same account: attempts by either count
    against one per-account limit, which then refuses even the right password."""
    people, nick, mail = (f"{q}{name}{q}" for name in ("People", "Nick", "Mail")
                          for q in ["`" if dialect == "mysql" else '"'])
    with (
        _server(tmp_path, database.swain_url) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        made = http.post("/auth/signup", json={"email": "twoways@example.com", "password": PASSWORD})
        assert made.status_code == 201, made.text
        database.run_script(
            f"UPDATE {people} SET {nick} = 'twoways' WHERE {mail} = 'twoways@example.com'")
        names = [{"email": "twoways@example.com"}, {"username": "twoways"},
                 {"email": "twoways@example.com"}]
        statuses = [http.post("/auth/login", json={**name, "password": "wrong"}).status_code
                    for name in names]
        assert statuses == [401, 401, 401]
        right = http.post("/auth/login", json={"username": "twoways", "password": PASSWORD})
        assert right.status_code == 429, right.text
        # another account is not affected
        assert _login(http, "someone-else@example.com").status_code == 401


def test_trusted_proxy_forwarded_addresses_get_their_own_buckets(database, tmp_path):
    with (
        _server(tmp_path, database.swain_url, trusted_proxies=["127.0.0.0/8"]) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        for i in range(6):
            r = _login(http, f"p{i}@example.com", {"X-Forwarded-For": "203.0.113.5"})
            assert r.status_code == 401, r.text
        assert _login(http, "p7@example.com", {"X-Forwarded-For": "203.0.113.5"}).status_code == 429
        # Another client behind the same proxy is not affected; a spoofed
        # left-most entry does not help the first one.
        assert (
            _login(http, "p8@example.com", {"X-Forwarded-For": "198.51.100.7"}).status_code == 401
        )
        spoofed = _login(http, "p9@example.com", {"X-Forwarded-For": "1.2.3.4, 203.0.113.5"})
        assert spoofed.status_code == 429


def test_redis_counts_are_shared_between_instances(database, tmp_path):
    prefix = f"swain-test:{uuid.uuid4().hex}:"
    store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        first_dir, second_dir = tmp_path / "a", tmp_path / "b"
        first_dir.mkdir()
        second_dir.mkdir()
        with (
            _server(
                first_dir,
                database.swain_url,
                redis_url="redis://127.0.0.1:6379/0",
                key_prefix=prefix,
            ) as one,
            _server(
                second_dir,
                database.swain_url,
                redis_url="redis://127.0.0.1:6379/0",
                key_prefix=prefix,
            ) as two,
            httpx.Client(base_url=one.url, timeout=30) as a,
            httpx.Client(base_url=two.url, timeout=30) as b,
        ):
            assert _login(a, "shared@example.com").status_code == 401
            assert _login(b, "shared@example.com").status_code == 401
            assert _login(a, "shared@example.com").status_code == 401
            limited = _login(b, "shared@example.com")
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) >= 1
        keys = store.keys(prefix + "*")
        assert any(k.decode().endswith("login:account:shared@example.com") for k in keys)
        assert all(0 < store.ttl(k) <= 60 for k in keys)
    finally:
        for key in store.keys(prefix + "*"):
            store.delete(key)
        store.close()
