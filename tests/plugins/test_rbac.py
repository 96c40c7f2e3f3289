"""RBAC through real logins: every endpoint type needs its permission.

The RBAC cards are mapped onto oddly named tables and columns ("Hats",
"Rights", "HatRights", "FolkHats") to prove that only the mapping is read.
Roles are managed with the `swain rbac` commands on the same database the
live server uses.  API keys ("Passes") act as the user who owns them.  A
second set of RBAC tables without description columns ("Caps", "Perms")
serves a second configuration over the same database.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from swain.contrib.testing import LiveServer, write_config
from swain.core import RUNTIME, ConfigError, Forbidden, Identity, Table, create_app, load_config
from swain.core.cli import cli
from swain.plugins.rbac import Rbac

PASSWORD = "rbac-password-1"
CACHE = 2.0

_TABLES = """
CREATE TABLE {q}Hats{q} ({q}HatNo{q} {serial}, {q}HatName{q} VARCHAR(100) NOT NULL UNIQUE,
  {q}HatNote{q} VARCHAR(255));
CREATE TABLE {q}Rights{q} ({q}RightNo{q} {serial}, {q}RightName{q} VARCHAR(100) NOT NULL UNIQUE,
  {q}RightNote{q} VARCHAR(255));
CREATE TABLE {q}HatRights{q} ({q}LinkNo{q} {serial}, {q}Hat{q} INTEGER NOT NULL,
  {q}TheRight{q} INTEGER NOT NULL,
  FOREIGN KEY ({q}Hat{q}) REFERENCES {q}Hats{q}({q}HatNo{q}),
  FOREIGN KEY ({q}TheRight{q}) REFERENCES {q}Rights{q}({q}RightNo{q}));
CREATE TABLE {q}FolkHats{q} ({q}LinkNo{q} {serial}, {q}Who{q} INTEGER NOT NULL,
  {q}Hat{q} INTEGER NOT NULL,
  FOREIGN KEY ({q}Who{q}) REFERENCES {q}Folk{q}({q}FolkId{q}),
  FOREIGN KEY ({q}Hat{q}) REFERENCES {q}Hats{q}({q}HatNo{q}));
CREATE TABLE {q}Passes{q} ({q}PassNo{q} {serial}, {q}Owner{q} INTEGER NOT NULL,
  {q}PassHash{q} VARCHAR(64) NOT NULL UNIQUE, {q}Made{q} {ts} NOT NULL, {q}Gone{q} {ts},
  FOREIGN KEY ({q}Owner{q}) REFERENCES {q}Folk{q}({q}FolkId{q}));
CREATE TABLE {q}Caps{q} ({q}CapNo{q} {serial}, {q}CapName{q} VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE {q}Perms{q} ({q}PermNo{q} {serial}, {q}PermName{q} VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE {q}CapPerms{q} ({q}LinkNo{q} {serial}, {q}Cap{q} INTEGER NOT NULL,
  {q}Perm{q} INTEGER NOT NULL,
  FOREIGN KEY ({q}Cap{q}) REFERENCES {q}Caps{q}({q}CapNo{q}),
  FOREIGN KEY ({q}Perm{q}) REFERENCES {q}Perms{q}({q}PermNo{q}));
CREATE TABLE {q}FolkCaps{q} ({q}LinkNo{q} {serial}, {q}Who{q} INTEGER NOT NULL,
  {q}Cap{q} INTEGER NOT NULL,
  FOREIGN KEY ({q}Who{q}) REFERENCES {q}Folk{q}({q}FolkId{q}),
  FOREIGN KEY ({q}Cap{q}) REFERENCES {q}Caps{q}({q}CapNo{q}));
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total INTEGER NOT NULL,
  note VARCHAR(50), FOREIGN KEY (customer_id) REFERENCES customers(id));
INSERT INTO customers (id, name) VALUES (1, 'acme'), (2, 'globex');
INSERT INTO orders (id, customer_id, total, note) VALUES (1, 1, 10, 'a'), (2, 1, 20, 'b'),
  (3, 2, 30, 'c')
"""

DDL = {
    "sqlite": 'CREATE TABLE "Folk" ("FolkId" INTEGER PRIMARY KEY, "Mail" VARCHAR(255) NOT NULL '
              'UNIQUE, "Secret" VARCHAR(255) NOT NULL, "Active" BOOLEAN NOT NULL DEFAULT 1);'
              + _TABLES.format(q='"', serial="INTEGER PRIMARY KEY", ts="TIMESTAMP"),
    "postgresql": 'CREATE TABLE "Folk" ("FolkId" SERIAL PRIMARY KEY, "Mail" VARCHAR(255) NOT '
                  'NULL UNIQUE, "Secret" VARCHAR(255) NOT NULL, "Active" BOOLEAN NOT NULL '
                  "DEFAULT TRUE);" + _TABLES.format(q='"', serial="SERIAL PRIMARY KEY", ts="TIMESTAMPTZ"),
    "mysql": "CREATE TABLE `Folk` (`FolkId` INTEGER AUTO_INCREMENT PRIMARY KEY, `Mail` "
             "VARCHAR(255) NOT NULL UNIQUE, `Secret` VARCHAR(255) NOT NULL, `Active` TINYINT(1) "
             "NOT NULL DEFAULT 1);"
             + _TABLES.format(q="`", serial="INTEGER AUTO_INCREMENT PRIMARY KEY",
                              ts="DATETIME"),
}

SWAIN_CONFIG = {
    "auth": {
        "enabled": True,
        "jwt_secret": "a secret for the rbac tests that is long enough for HS256 signing",
        "signup_answer": "tokens",  # accounts made by signup, used at once
        "identity_cache": "0s",
        "basic_cache": "0s",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "public_routes": ["GET /customers", "GET /orders", "POST /customers"],
    },
    "rbac": {"enabled": True, "permission_cache": f"{CACHE}s", "manager_tables": ["orders"],
             "anonymous_role": "guest"},
    "audit": {"enabled": True},
    "mapping": {
        "user": {"table": "Folk", "id": "FolkId", "email": "Mail", "password": "Secret",
                 "isactive": "Active"},
        "role": {"table": "Hats", "id": "HatNo", "name": "HatName", "description": "HatNote"},
        "permission": {"table": "Rights", "id": "RightNo", "name": "RightName",
                       "description": "RightNote"},
        "role_permission": {"table": "HatRights", "id": "LinkNo", "roleid": "Hat",
                            "permissionid": "TheRight"},
        "user_role": {"table": "FolkHats", "id": "LinkNo", "userid": "Who", "roleid": "Hat"},
        "api_key": {"table": "Passes", "id": "PassNo", "userid": "Owner", "key": "PassHash",
                    "createdat": "Made", "revokedat": "Gone"},
    },
}

#: The same users with RBAC tables that have no description columns.
PLAIN_MAPPING = {
    "user": SWAIN_CONFIG["mapping"]["user"],
    "role": {"table": "Caps", "id": "CapNo", "name": "CapName"},
    "permission": {"table": "Perms", "id": "PermNo", "name": "PermName"},
    "role_permission": {"table": "CapPerms", "id": "LinkNo", "roleid": "Cap", "permissionid": "Perm"},
    "user_role": {"table": "FolkCaps", "id": "LinkNo", "userid": "Who", "roleid": "Cap"},
}


def _cli(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config_path), "rbac", *args])
    return result.exit_code, result.output


def _ok(config_path: Path, *args: str) -> str:
    code, output = _cli(config_path, *args)
    assert code == 0, output
    return output


def _q(database: Any, name: str) -> str:
    return f"`{name}`" if database.dialect == "mysql" else f'"{name}"'


def _user(client: httpx.Client, email: str) -> dict[str, str]:
    r = client.post("/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _orders(database: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in database.query(
        "SELECT id, customer_id, total, note FROM orders"))


def _flt(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": op, "value": value}


#: (method, path, body, the permission it needs) for every endpoint type of §5-§7
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("GET", "/orders", None, "orders.read"),
    ("GET", "/orders/1", None, "orders.read"),
    ("GET", "/tables/orders", None, "orders.read"),
    ("GET", "/orders/count", None, "orders.read"),
    ("POST", "/orders/count", {"expressions": [_flt("total", "gt", 5)]}, "orders.read"),
    ("POST", "/orders/filter", {"expressions": [_flt("total", "gt", 5)]}, "orders.read"),
    ("POST", "/orders/filter", {"aggregations": {"functions": [
        {"type": "SUM", "field": "total", "alias": "s"}], "group_by": ["customer_id"]}},
     "orders.read"),
    ("POST", "/orders/filter/query", {"expressions": [_flt("total", "gt", 5)]}, "orders.read"),
    ("POST", "/orders", {"id": 50, "customer_id": 1, "total": 5, "note": "new"}, "orders.create"),
    ("POST", "/orders/bulk", [{"id": 51, "customer_id": 1, "total": 5}], "orders.create"),
    ("POST", "/orders/bulk?atomic=true", [{"id": 52, "customer_id": 1, "total": 5}],
     "orders.create"),
    ("POST", "/orders/bulk?on_conflict=update&conflict_columns=id",
     [{"id": 1, "customer_id": 1, "total": 999}], "orders.create"),
    ("PUT", "/orders/1", {"customer_id": 1, "total": 11, "note": "put"}, "orders.update"),
    ("PATCH", "/orders/1", {"note": "patched"}, "orders.update"),
    ("PUT", "/orders/bulk", [{"id": 1, "note": "bulk"}], "orders.update"),
    ("PUT", "/orders/filter", {"expressions": [_flt("id", "eq", 2)],
                               "updateData": {"note": "mass"}}, "orders.update"),
    ("DELETE", "/orders/1", None, "orders.delete"),
    ("DELETE", "/orders/filter", {"expressions": [_flt("id", "eq", 2)]}, "orders.delete"),
]


def _call(client: httpx.Client, headers: dict[str, str], method: str, path: str,
          body: Any) -> httpx.Response:
    return client.request(method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
def seeded(config_path: Path) -> str:
    return _ok(config_path, "seed")


def test_seed_creates_the_three_roles_in_the_mapped_tables(seeded: str, config_path: Path,
                                                            database: Any) -> None:
    assert "admin: *" in seeded and "member: *.read" in seeded
    assert "manager: orders.read, orders.create, orders.update" in seeded
    hats, rights = _q(database, "Hats"), _q(database, "Rights")
    link, hat, right = _q(database, "HatRights"), _q(database, "Hat"), _q(database, "TheRight")
    rows = database.query(
        f"SELECT h.{_q(database, 'HatName')}, r.{_q(database, 'RightName')} FROM {link} l "
        f"JOIN {hats} h ON h.{_q(database, 'HatNo')} = l.{hat} "
        f"JOIN {rights} r ON r.{_q(database, 'RightNo')} = l.{right}")
    assert sorted(rows) == sorted([("admin", "*"), ("member", "*.read"),
                                   ("manager", "orders.read"), ("manager", "orders.create"),
                                   ("manager", "orders.update")])
    # Seeding again changes nothing; --tables overrides the configured tables.
    _ok(config_path, "seed", "--tables", "orders,customers")
    assert len(database.query(f"SELECT * FROM {link}")) == 8
    code, output = _cli(config_path, "seed", "--tables", "nope")
    assert code != 0 and "nope" in output
    listed = _ok(config_path, "role", "list")
    assert "admin\t*" in listed and "member\t*.read" in listed


def test_cli_manages_roles_permissions_and_assignments(seeded: str, client: httpx.Client,
                                                       config_path: Path) -> None:
    _user(client, "cli@example.com")
    assert "created role clerk" in _ok(config_path, "role", "create", "clerk",
                                       "--description", "desk work")
    assert "exists" in _ok(config_path, "role", "create", "clerk")
    assert "created permission customers.delete" in _ok(config_path, "permission", "create",
                                                        "customers.delete")
    code, output = _cli(config_path, "permission", "create", "orders.smash")
    assert code != 0 and "action must be one of" in output
    assert "customers.delete" in _ok(config_path, "permission", "list")
    assert "granted orders.*" in _ok(config_path, "grant", "clerk", "orders.*",
                                     "customers.delete")
    assert "assigned clerk" in _ok(config_path, "assign", "CLI@example.com", "clerk")
    effective = _ok(config_path, "permissions", "cli@example.com")
    assert "roles: clerk" in effective
    assert effective.splitlines()[1:] == ["customers.delete", "orders.*"]
    assert "revoked customers.delete" in _ok(config_path, "revoke", "clerk", "customers.delete")
    assert _ok(config_path, "permissions", "cli@example.com").splitlines()[1:] == ["orders.*"]
    code, output = _cli(config_path, "assign", "ghost@example.com", "clerk")
    assert code != 0 and "ghost@example.com" in output
    code, output = _cli(config_path, "grant", "no-such-role", "orders.read")
    assert code != 0 and "no-such-role" in output


def test_without_permission_every_endpoint_is_403_and_nothing_changes(
        seeded: str, client: httpx.Client, database: Any) -> None:
    headers = _user(client, "nobody@example.com")
    before = _orders(database)
    for method, path, body, needed in ENDPOINTS:
        r = _call(client, headers, method, path, body)
        assert r.status_code == 403, (method, path, r.text)
        error = r.json()["error"]
        assert error["message"] == f'missing permission "{needed}"', (method, path, error)
        assert error["details"] == [{"path": "permission", "message": needed}]
        assert _orders(database) == before, (method, path)
    me = client.get("/auth/me", headers=headers).json()
    assert me["roles"] == [] and me["permissions"] == []


def test_read_only_role_reads_but_cannot_write(seeded: str, client: httpx.Client,
                                               database: Any, config_path: Path) -> None:
    headers = _user(client, "member@example.com")
    _ok(config_path, "assign", "member@example.com", "member")
    before = _orders(database)
    for method, path, body, needed in ENDPOINTS:
        r = _call(client, headers, method, path, body)
        if needed.endswith(".read"):
            assert r.status_code == 200, (method, path, r.text)
        else:
            # Upsert needs create first: the missing one is named.
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error"]["message"] == f'missing permission "{needed}"'
    assert _orders(database) == before
    me = client.get("/auth/me", headers=headers).json()
    assert me["roles"] == ["member"] and me["permissions"] == ["*.read"]
    # Basic credentials carry the same user's permissions.
    basic = base64.b64encode(f"member@example.com:{PASSWORD}".encode()).decode()
    assert client.get("/orders", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    r = client.delete("/orders/3", headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 403 and "orders.delete" in r.text


def test_relationship_filters_and_includes_need_read_on_the_related_table(
        seeded: str, client: httpx.Client, config_path: Path) -> None:
    headers = _user(client, "clerk@example.com")
    _ok(config_path, "assign", "clerk@example.com", "clerk")  # orders.* only
    assert client.post("/orders/filter", json={}, headers=headers).status_code == 200
    include = {"expressions": [{"relationship": "customers", "include": True}]}
    through = {"expressions": [{"relationship": "customers",
                                "expressions": [_flt("name", "eq", "acme")]}]}
    # also where no order matches: the payload is refused before any row is read
    nothing = {"expressions": [_flt("id", "eq", -1), {
        "relationship": "customers", "scope": "filterRelated", "include": True}]}
    per_parent = {"expressions": [{"relationship": "customers", "scope": "filterRelated",
                                   "aggregations": {"functions": [{"type": "COUNT"}]}}]}
    for path, payload in (("/orders/filter", include), ("/orders/filter", through),
                          ("/orders/count", through), ("/orders/filter/query", include),
                          ("/orders/filter", nothing), ("/orders/filter", per_parent)):
        r = client.post(path, json=payload, headers=headers)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["message"] == 'missing permission "customers.read"'
    r = client.post("/orders/filter", json={"aggregations": {"functions": [
        {"type": "COUNT", "alias": "n"}]}, **through}, headers=headers)
    assert r.status_code == 403 and "customers.read" in r.text
    assert client.get("/customers", headers=headers).status_code == 403
    # A mass update filtered through customers needs customers.read too.
    r = client.put("/orders/filter", json={**through, "updateData": {"note": "x"}},
                   headers=headers)
    assert r.status_code == 403 and "customers.read" in r.text
    # The manager role (orders only) plus member (*.read) opens the related table.
    _ok(config_path, "assign", "clerk@example.com", "member")
    time.sleep(CACHE + 0.3)
    r = client.post("/orders/filter", json=include, headers=headers)
    assert r.status_code == 200, r.text
    assert {row["customers"]["name"] for row in r.json()["data"]} == {"acme", "globex"}
    r = client.post("/orders/count", json=through, headers=headers)
    assert r.status_code == 200 and r.json()["count"] == 2


def test_wildcards_grant_every_endpoint(seeded: str, client: httpx.Client, database: Any,
                                        config_path: Path) -> None:
    admin = _user(client, "admin@example.com")
    _ok(config_path, "assign", "admin@example.com", "admin")
    for method, path, body, _ in ENDPOINTS:
        r = _call(client, admin, method, path, body)
        assert r.status_code in (200, 201), (method, path, r.text)
    ids = {row[0] for row in _orders(database)}
    assert {50, 51, 52} <= ids and 1 not in ids and 2 not in ids
    # table.* on another role: everything on orders, nothing on customers.
    _ok(config_path, "role", "create", "orders-all")
    _ok(config_path, "grant", "orders-all", "orders.*")
    headers = _user(client, "ordersall@example.com")
    _ok(config_path, "assign", "ordersall@example.com", "orders-all")
    r = client.post("/orders", json={"id": 60, "customer_id": 2, "total": 1}, headers=headers)
    assert r.status_code == 201, r.text
    assert client.delete("/orders/60", headers=headers).status_code == 200
    r = client.post("/customers", json={"id": 9, "name": "x"}, headers=headers)
    assert r.status_code == 403 and "customers.create" in r.text
    assert database.query("SELECT id FROM customers WHERE id = 9") == []


def test_role_changes_apply_within_the_cache_time(seeded: str, client: httpx.Client,
                                                  database: Any, config_path: Path) -> None:
    headers = _user(client, "late@example.com")
    assert client.get("/orders", headers=headers).status_code == 403  # now cached: nothing
    user_id = database.query(f"SELECT {_q(database, 'FolkId')} FROM {_q(database, 'Folk')} "
                             f"WHERE {_q(database, 'Mail')} = 'late@example.com'")[0][0]
    member = database.query(f"SELECT {_q(database, 'HatNo')} FROM {_q(database, 'Hats')} "
                            f"WHERE {_q(database, 'HatName')} = 'member'")[0][0]
    with database.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO {_q(database, 'FolkHats')} ({_q(database, 'Who')}, "
                             f"{_q(database, 'Hat')}) VALUES ({user_id}, {member})")
    started = time.monotonic()
    while client.get("/orders", headers=headers).status_code == 403:
        assert time.monotonic() - started < CACHE + 2, "the new role never took effect"
        time.sleep(0.2)
    assert time.monotonic() - started >= 0.5, "the permission cache was not used"
    _ok(config_path, "unassign", "late@example.com", "member")
    time.sleep(CACHE + 0.3)
    r = client.get("/orders", headers=headers)
    assert r.status_code == 403 and "orders.read" in r.text


def test_anonymous_callers_hold_only_the_anonymous_role(seeded: str, client: httpx.Client,
                                                        database: Any,
                                                        config_path: Path) -> None:
    # A public route still needs a permission; without the guest role there is none.
    r = client.get("/customers")
    assert r.status_code == 403 and "customers.read" in r.text
    _ok(config_path, "role", "create", "guest")
    _ok(config_path, "grant", "guest", "customers.read")
    time.sleep(CACHE + 0.3)
    r = client.get("/customers")
    assert r.status_code == 200 and {c["name"] for c in r.json()["data"]} == {"acme", "globex"}
    for method, path, needed in (("GET", "/orders", "orders.read"),
                                 ("POST", "/customers", "customers.create")):
        r = client.request(method, path, json={"id": 7, "name": "anon"} if method == "POST"
                           else None)
        assert r.status_code == 403 and needed in r.text, (path, r.text)
    assert database.query("SELECT id FROM customers WHERE id = 7") == []
    # Routes that are not public still need a login.
    assert client.get("/orders/count").status_code == 401


def test_manager_writes_its_tables_but_cannot_delete(seeded: str, client: httpx.Client,
                                                     database: Any,
                                                     config_path: Path) -> None:
    headers = _user(client, "manager@example.com")
    _ok(config_path, "assign", "manager@example.com", "manager")
    r = client.post("/orders/bulk?on_conflict=update&conflict_columns=id",
                    json=[{"id": 3, "customer_id": 2, "total": 333}], headers=headers)
    assert r.status_code in (200, 201), r.text
    assert database.query("SELECT total FROM orders WHERE id = 3") == [(333,)]
    for method, path, body in (("DELETE", "/orders/3", None),
                               ("DELETE", "/orders/filter", {"all": True})):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 403 and "orders.delete" in r.text, r.text
    assert database.query("SELECT count(*) FROM orders WHERE id = 3") == [(1,)]
    # The RBAC tables are tables like any other: only "*" (or Hats.*) reaches them.
    r = client.get("/Hats", headers=headers)
    assert r.status_code == 403 and "Hats.read" in r.text
    # Create without update: an upsert that may overwrite is refused as a whole.
    _ok(config_path, "role", "create", "creator")
    _ok(config_path, "grant", "creator", "orders.create", "orders.read")
    creator = _user(client, "creator@example.com")
    _ok(config_path, "assign", "creator@example.com", "creator")
    r = client.post("/orders/bulk?on_conflict=update&conflict_columns=id",
                    json=[{"id": 3, "customer_id": 2, "total": 1}], headers=creator)
    assert r.status_code == 403 and "orders.update" in r.text
    assert database.query("SELECT total FROM orders WHERE id = 3") == [(333,)]
    r = client.post("/orders", json={"id": 70, "customer_id": 2, "total": 7}, headers=creator)
    assert r.status_code == 201, r.text


def test_inert_unless_enabled_and_refuses_to_start_without_its_cards(database: Any,
                                                                      tmp_path: Path) -> None:
    mapping = {k: v for k, v in SWAIN_CONFIG["mapping"].items() if k != "user_role"}
    path = write_config(tmp_path, database.swain_url, auth=SWAIN_CONFIG["auth"],
                        mapping=mapping, rbac={"enabled": False})
    config, pm = load_config(path)
    app = create_app(config, pm)
    assert app[RUNTIME].authorizers == []
    path = write_config(tmp_path, database.swain_url, auth=SWAIN_CONFIG["auth"],
                        mapping=mapping, rbac={"enabled": True})
    config, pm = load_config(path)
    with pytest.raises(ConfigError, match=r"mapping\.user_role: required by \[rbac\]"):
        create_app(config, pm)


# -- API keys act as their user ------------------------------------------------------------


def _key(client: httpx.Client, bearer: dict[str, str]) -> dict[str, str]:
    r = client.post("/auth/api_keys", json={}, headers=bearer)
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def _refused(r: httpx.Response, needed: str) -> None:
    assert r.status_code == 403, (needed, r.text)
    error = r.json()["error"]
    assert error["message"] == f'missing permission "{needed}"', error
    assert error["details"] == [{"path": "permission", "message": needed}]


def test_api_key_holds_exactly_the_permissions_of_its_users_roles(
        seeded: str, client: httpx.Client, database: Any, config_path: Path) -> None:
    bearer = _user(client, "keyed@example.com")
    _ok(config_path, "role", "create", "updater")
    _ok(config_path, "grant", "updater", "orders.read", "orders.update")
    _ok(config_path, "assign", "keyed@example.com", "updater")
    key = _key(client, bearer)
    me = client.get("/auth/me", headers=key).json()
    assert me["provider"] == "api_key" and me["user"]["Mail"] == "keyed@example.com"
    assert me["roles"] == ["updater"] and me["permissions"] == ["orders.read", "orders.update"]
    by_token = client.get("/auth/me", headers=bearer).json()
    assert (by_token["roles"], by_token["permissions"]) == (me["roles"], me["permissions"])
    # What the role grants works with the key...
    target = max(row[0] for row in _orders(database))
    assert client.get("/orders", headers=key).status_code == 200
    r = client.post("/orders/filter", json={"expressions": [_flt("id", "eq", target)]},
                    headers=key)
    assert r.status_code == 200 and [row["id"] for row in r.json()["data"]] == [target]
    r = client.patch(f"/orders/{target}", json={"note": "by key"}, headers=key)
    assert r.status_code == 200 and r.json()["note"] == "by key", r.text
    r = client.put("/orders/filter", json={"expressions": [_flt("id", "eq", target)],
                                           "updateData": {"note": "mass by key"}}, headers=key)
    assert r.status_code == 200 and r.json() == {"updated": 1}, r.text
    # ... and nothing more: each refusal names the missing permission and writes nothing.
    before = _orders(database)
    include = {"expressions": [{"relationship": "customers", "include": True}]}
    for method, path, body, needed in (
            ("POST", "/orders", {"id": 80, "customer_id": 1, "total": 8}, "orders.create"),
            ("POST", "/orders/bulk", [{"id": 81, "customer_id": 1, "total": 8}], "orders.create"),
            ("DELETE", f"/orders/{target}", None, "orders.delete"),
            ("DELETE", "/orders/filter", {"all": True}, "orders.delete"),
            ("POST", "/orders/filter", include, "customers.read"),
            ("POST", "/customers/filter", {}, "customers.read"),
            ("POST", "/customers", {"id": 80, "name": "by key"}, "customers.create")):
        _refused(client.request(method, path, json=body, headers=key), needed)
        assert _orders(database) == before, (method, path)
    assert database.query("SELECT id FROM customers WHERE id = 80") == []


def test_api_key_of_a_user_without_roles_is_refused_on_every_table_action(
        seeded: str, client: httpx.Client, database: Any, config_path: Path) -> None:
    bearer = _user(client, "keyed-nobody@example.com")
    key = _key(client, bearer)  # managing keys is authentication, not table access
    # The anonymous role does not rub off on a key: the key is a (role-less) user.
    _ok(config_path, "role", "create", "guest")
    _ok(config_path, "grant", "guest", "customers.read")
    started = time.monotonic()
    while client.get("/customers").status_code != 200:
        assert time.monotonic() - started < CACHE + 2, "the guest role never took effect"
        time.sleep(0.2)
    _refused(client.get("/customers", headers=key), "customers.read")
    before = _orders(database)
    for method, path, body, needed in ENDPOINTS:
        _refused(_call(client, key, method, path, body), needed)
        assert _orders(database) == before, (method, path)
    me = client.get("/auth/me", headers=key).json()
    assert me["provider"] == "api_key" and me["roles"] == [] and me["permissions"] == []


def test_revoking_a_key_holders_role_applies_within_the_cache_time(
        seeded: str, client: httpx.Client, database: Any, config_path: Path) -> None:
    bearer = _user(client, "keyed-late@example.com")
    _ok(config_path, "assign", "keyed-late@example.com", "member")
    key = _key(client, bearer)
    time.sleep(CACHE + 0.3)
    assert client.get("/orders/count", headers=key).status_code == 200  # loaded and cached
    loaded = time.monotonic()
    folk_hats, who = _q(database, "FolkHats"), _q(database, "Who")
    user_id = database.query(f"SELECT {_q(database, 'FolkId')} FROM {_q(database, 'Folk')} "
                             f"WHERE {_q(database, 'Mail')} = 'keyed-late@example.com'")[0][0]
    with database.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {folk_hats} WHERE {who} = {user_id}")
    # Still cached right after the change, refused once the cache time has passed.
    assert client.get("/orders/count", headers=key).status_code == 200
    while (r := client.get("/orders/count", headers=key)).status_code == 200:
        assert time.monotonic() - loaded < CACHE + 1.5, "the revoked role still applies"
        time.sleep(0.1)
    _refused(r, "orders.read")
    assert time.monotonic() - loaded >= CACHE - 0.1
    # Assigning a role again through the CLI reaches the key the same way.
    _ok(config_path, "assign", "keyed-late@example.com", "member")
    time.sleep(CACHE + 0.3)
    assert client.get("/orders/count", headers=key).status_code == 200


def test_account_owned_keys_name_no_user_and_hold_no_roles(config_path: Path) -> None:
    # With mapping.api_key.accountid a key belongs to a tenant, not a user: no
    # user_role row can reach it, so it holds only what its provider set (here
    # nothing), and no query is made (the runtime is not even attached).
    config, _ = load_config(config_path, "development", environ={})
    rbac = Rbac(config)
    key = Identity(user_id=None, provider="api_key", tenant=7, claims={"api_key_id": 1})
    assert asyncio.run(rbac.effective(key)) == (frozenset(), frozenset())
    customers = Table(name="customers", columns=[])
    with pytest.raises(Forbidden, match=r'missing permission "customers\.read"'):
        asyncio.run(rbac.authorize(key, customers, "read"))
    granted = dataclasses.replace(key, permissions=frozenset({"customers.read"}))
    asyncio.run(rbac.authorize(granted, customers, "read"))


# -- roles and permissions tables without description columns ---------------------------


def test_rbac_tables_without_description_columns_work_end_to_end(
        database: Any, config_path: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path, database.swain_url, auth=SWAIN_CONFIG["auth"],
                        mapping=PLAIN_MAPPING,
                        rbac={"enabled": True, "permission_cache": "0s",
                              "manager_tables": ["orders"]})
    result = CliRunner().invoke(cli, ["--config", str(path), "mapping", "check"])
    assert result.exit_code == 0, result.output
    assert "ok   role -> Caps" in result.output and "ok   permission -> Perms" in result.output
    assert "member: *.read" in _ok(path, "seed")
    out = _ok(path, "role", "create", "auditor", "--description", "reads orders")
    assert "created role auditor" in out
    assert "warning: mapping.role has no description column; --description ignored" in out
    out = _ok(path, "permission", "create", "customers.read", "--description", "ignored")
    assert "created permission customers.read" in out and "mapping.permission has no" in out
    assert "granted orders.read to auditor" in _ok(path, "grant", "auditor", "orders.read")
    roles = _ok(path, "role", "list").splitlines()
    assert "auditor\torders.read" in roles and "admin\t*" in roles, roles
    assert "customers.read" in _ok(path, "permission", "list").splitlines()
    caps = database.query(f"SELECT {_q(database, 'CapName')} FROM {_q(database, 'Caps')}")
    assert sorted(r[0] for r in caps) == ["admin", "auditor", "manager", "member"]
    config, pm = load_config(path, "development", environ={})
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        headers = _user(http, "plain@example.com")
        _refused(http.get("/orders/count", headers=headers), "orders.read")
        assert "assigned auditor" in _ok(path, "assign", "plain@example.com", "auditor")
        r = http.get("/orders/count", headers=headers)
        assert r.status_code == 200 and r.json()["count"] >= 1, r.text
        before = _orders(database)
        _refused(http.delete("/orders/3", headers=headers), "orders.delete")
        assert _orders(database) == before
        me = http.get("/auth/me", headers=headers).json()
        assert me["roles"] == ["auditor"] and me["permissions"] == ["orders.read"]
    assert _ok(path, "permissions", "plain@example.com").splitlines() == [
        "roles: auditor", "orders.read"]
    # The main configuration's tables (Hats, FolkHats) know nothing of it.
    assert _ok(config_path, "permissions", "plain@example.com").splitlines() == ["roles: (none)"]


def test_upserts_answer_under_their_own_permissions_without_read(
        seeded: str, client: httpx.Client, database: Any, config_path: Path) -> None:
    """Like POST /t, an upsert returns the row it wrote under create/update, not read."""
    bearer = _user(client, "writer@example.com")
    _ok(config_path, "role", "create", "writer")
    _ok(config_path, "grant", "writer", "orders.create", "orders.update")
    _ok(config_path, "assign", "writer@example.com", "writer")
    r = client.post("/orders/bulk?on_conflict=update", headers=bearer,
                    json=[{"id": 90, "customer_id": 1, "total": 9, "note": "upserted"}])
    assert r.status_code == 200, r.text
    assert [row["data"]["note"] for row in r.json()["succeeded"]] == ["upserted"]
    r = client.post("/orders/bulk?on_conflict=ignore", headers=bearer,
                    json=[{"id": 90, "customer_id": 1, "total": 1, "note": "ignored"}])
    assert r.status_code == 200, r.text
    assert r.json()["succeeded"][0]["data"]["note"] == "upserted"
    assert database.query("SELECT note FROM orders WHERE id = 90") == [("upserted",)]
    _refused(client.get("/orders/90", headers=bearer), "orders.read")


def test_rbac_commands_are_audited(config_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swain.audit")
    _ok(config_path, "role", "create", "auditor-role")
    _ok(config_path, "grant", "auditor-role", "orders.read")
    _ok(config_path, "role", "list")  # reads are not audited
    events = [r.fields for r in caplog.records if r.name == "swain.audit"]  # type: ignore[attr-defined]
    assert [(e["action"], e["detail"]) for e in events] == [
        ("rbac.role.create", {"role": "auditor-role"}),
        ("rbac.grant", {"role": "auditor-role", "permissions": ["orders.read"]})]
    assert all(e["actor"].startswith("cli:") and e["provider"] == "cli" for e in events)


def test_each_app_has_its_own_permission_cache(config_path: Path) -> None:
    from swain.plugins.rbac import RBAC

    runtimes = [create_app(*load_config(config_path, "development", environ={}))[RUNTIME]
                for _ in range(2)]
    first, second = (r.services.get(RBAC) for r in runtimes)
    assert first is not second and first.runtime is runtimes[0]
    assert runtimes[0].authorizers == [first]
