"""Bulk inserts/updates, upserts and mass operations on every database.

Every check reads the database back with hand-written SQL: what the response
claims must be what was (or was not) written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from swain.contrib.testing import LiveServer
from swain.core import (
    DBConnection,
    ExecResult,
    Forbidden,
    Predicate,
    create_app,
    hookimpl,
    invalid,
    load_config,
)
from swain.core.keys import RUNTIME

# upserts below address rows by their generated key, on PostgreSQL too
SWAIN_CONFIG = {"bulk": {"max_rows": 10_000}, "api": {"allow_explicit_keys": True}}

DDL = {
    "sqlite": """
CREATE TABLE items (id INTEGER PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE,
                    name VARCHAR(20) NOT NULL, qty INTEGER, price DECIMAL(10,2));
CREATE TABLE big (id INTEGER PRIMARY KEY, label VARCHAR(30) NOT NULL, n INTEGER NOT NULL);
CREATE TABLE mass (id INTEGER PRIMARY KEY, grp VARCHAR(5) NOT NULL, v INTEGER);
""",
    "postgresql": """
CREATE TABLE items (id SERIAL PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE,
                    name VARCHAR(20) NOT NULL, qty INTEGER, price NUMERIC(10,2));
CREATE TABLE big (id SERIAL PRIMARY KEY, label VARCHAR(30) NOT NULL, n INTEGER NOT NULL);
CREATE TABLE mass (id INTEGER PRIMARY KEY, grp VARCHAR(5) NOT NULL, v INTEGER);
""",
    "mysql": """
CREATE TABLE items (id INTEGER AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE,
                    name VARCHAR(20) NOT NULL, qty INTEGER, price DECIMAL(10,2));
CREATE TABLE big (id INTEGER AUTO_INCREMENT PRIMARY KEY, label VARCHAR(30) NOT NULL,
                  n INTEGER NOT NULL);
CREATE TABLE mass (id INTEGER PRIMARY KEY, grp VARCHAR(5) NOT NULL, v INTEGER);
""",
}


def items(database: Any) -> dict[str, tuple[Any, ...]]:
    # SQLite's driver hands decimals back as floats; compare them as decimals.
    return {row[0]: (row[1], row[2], None if row[3] is None else Decimal(str(row[3])))
            for row in database.query("SELECT sku, name, qty, price FROM items ORDER BY sku")}


def test_all_good_rows_are_written(client: httpx.Client, database: Any) -> None:
    rows = [{"sku": "a1", "name": "Ünïcode ✓", "qty": 1, "price": "9.99"},
            {"sku": "a2", "name": "two", "qty": None, "price": "0.01"},
            {"sku": "a3", "name": "three", "qty": 2147483647, "price": "99999999.99"}]
    r = client.post("/items/bulk", json=rows)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["failed"] == []
    assert [s["index"] for s in body["succeeded"]] == [0, 1, 2]
    stored = items(database)
    for item, result in zip(rows, body["succeeded"], strict=True):
        assert result["data"]["sku"] == item["sku"] and result["data"]["price"] == item["price"]
        assert result["id"] == result["data"]["id"]
        assert stored[item["sku"]][0] == item["name"]
        assert stored[item["sku"]][2] == Decimal(item["price"])
    ids = {row[0]: row[1] for row in database.query("SELECT id, sku FROM items")}
    assert {s["id"]: s["data"]["sku"] for s in body["succeeded"]} == \
        {k: v for k, v in ids.items() if v in ("a1", "a2", "a3")}


def test_bad_rows_are_reported_and_good_rows_kept(client: httpx.Client, database: Any) -> None:
    before = items(database)
    rows = [{"sku": "b1", "name": "ok"},
            {"sku": "a1", "name": "duplicate sku"},          # unique violation (database)
            {"sku": "b2", "name": "bad qty", "qty": "many"},  # wrong type (validation)
            {"sku": "b3"},                                  # missing required column
            {"sku": "b4", "name": "ok too", "qty": 4},
            "not an object"]
    r = client.post("/items/bulk", json=rows)
    assert r.status_code == 207, r.text
    body = r.json()
    assert [s["index"] for s in body["succeeded"]] == [0, 4]
    failed = {f["index"]: f["error"] for f in body["failed"]}
    assert set(failed) == {1, 2, 3, 5}
    assert failed[1]["code"] == "conflict"
    assert failed[2]["code"] == "validation_error" and failed[2]["details"][0]["path"] == "[2].qty"
    assert failed[3]["details"][0]["path"] == "[3].name"
    after = items(database)
    assert set(after) - set(before) == {"b1", "b4"}
    assert after["a1"] == before["a1"]


def test_atomic_writes_nothing_when_a_row_fails(client: httpx.Client, database: Any) -> None:
    before = items(database)
    r = client.post("/items/bulk?atomic=true", json=[{"sku": "c1", "name": "fine"},
                                                     {"sku": "a1", "name": "duplicate"}])
    assert r.status_code == 409, r.text
    assert r.json()["succeeded"] == [] and r.json()["failed"][0]["index"] == 1
    r = client.post("/items/bulk?atomic=true", json=[{"sku": "c1", "name": "fine"},
                                                     {"sku": "c2", "name": 5}])
    assert r.status_code == 422, r.text
    assert items(database) == before
    r = client.post("/items/bulk?atomic=true", json=[{"sku": "c1", "name": "fine"}])
    assert r.status_code == 200 and "c1" in items(database)


def test_upsert_update_and_ignore(client: httpx.Client, database: Any) -> None:
    client.post("/items/bulk", json=[{"sku": "u1", "name": "old", "qty": 1},
                                     {"sku": "u2", "name": "old", "qty": 2}])
    r = client.post("/items/bulk?on_conflict=update&conflict_columns=sku",
                    json=[{"sku": "u1", "name": "new", "qty": 10},
                          {"sku": "u3", "name": "fresh", "qty": 3}])
    assert r.status_code == 200, r.text
    stored = items(database)
    assert stored["u1"][:2] == ("new", 10) and stored["u3"][:2] == ("fresh", 3)
    assert [s["data"]["name"] for s in r.json()["succeeded"]] == ["new", "fresh"]
    r = client.post("/items/bulk?on_conflict=ignore&conflict_columns=sku",
                    json=[{"sku": "u2", "name": "ignored", "qty": 20},
                          {"sku": "u4", "name": "added"}])
    assert r.status_code == 200, r.text
    stored = items(database)
    assert stored["u2"][:2] == ("old", 2) and stored["u4"][0] == "added"
    assert r.json()["succeeded"][0]["data"]["name"] == "old"
    # the skipped row says so; the written one does not carry the flag
    assert r.json()["succeeded"][0]["ignored"] is True
    assert "ignored" not in r.json()["succeeded"][1]
    # a clash on another unique key than the conflict columns is no skip, on
    # every database (MySQL's ON DUPLICATE KEY fires on any key): it fails
    # exactly as a plain insert of the row does
    clash = [{"id": 987654, "sku": "u1", "name": "other key"}]
    ignored = client.post("/items/bulk?on_conflict=ignore", json=clash)
    plain = client.post("/items/bulk", json=clash)
    assert ignored.status_code == plain.status_code == 207, ignored.text
    assert ignored.json() == plain.json()
    assert ignored.json()["failed"][0]["error"]["code"] == "conflict"
    assert items(database) == stored
    existing_id = database.query("SELECT id FROM items WHERE sku = 'u2'")[0][0]
    r = client.post("/items/bulk?on_conflict=update",
                    json=[{"id": existing_id, "sku": "u2", "name": "by key"}])
    assert r.status_code == 200, r.text
    assert items(database)["u2"][0] == "by key"


@pytest.mark.parametrize("query", ["on_conflict=replace",
                                   "on_conflict=update&conflict_columns=name",
                                   "on_conflict=update&conflict_columns=nope",
                                   "conflict_columns=sku", "atomic=perhaps"])
def test_bad_bulk_options_are_422(client: httpx.Client, database: Any, query: str) -> None:
    before = items(database)
    r = client.post(f"/items/bulk?{query}", json=[{"sku": "z1", "name": "never"}])
    assert r.status_code == 422, r.text
    assert items(database) == before


@pytest.mark.parametrize("body", [{"sku": "z1"}, "rows", 3, {"rows": []}])
def test_bulk_body_must_be_an_array(client: httpx.Client, database: Any, body: Any) -> None:
    before = items(database)
    r = client.post("/items/bulk", json=body)
    assert r.status_code == 422, r.text
    assert items(database) == before


def test_row_cap(client: httpx.Client, database: Any) -> None:
    r = client.post("/items/bulk", json=[{"sku": f"cap{i}", "name": "x"} for i in range(10_001)])
    assert r.status_code == 422 and "10000" in r.json()["error"]["message"]
    assert database.query("SELECT count(*) FROM items WHERE sku LIKE 'cap%'")[0][0] == 0


class _Counting(DBConnection):
    """A real connection that counts the statements sent through it."""

    def __init__(self, inner: DBConnection, seen: list[str]) -> None:
        self.inner = inner
        self.seen = seen

    async def fetch_all(self, sql: str,
                        params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        self.seen.append(sql)
        return await self.inner.fetch_all(sql, params)

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        self.seen.append(sql)
        return await self.inner.execute(sql, params)

    async def copy_rows(self, sql: str, rows: Any) -> None:
        self.seen.append(sql)
        await self.inner.copy_rows(sql, rows)

    def transaction(self) -> Any:
        return self.inner.transaction()


@pytest.fixture()
def statements(server: LiveServer) -> Iterator[list[str]]:
    dialect = server.app[RUNTIME].dialect
    original = dialect.acquire
    seen: list[str] = []

    @asynccontextmanager
    async def counting() -> AsyncIterator[DBConnection]:
        async with original() as conn:
            yield _Counting(conn, seen)

    dialect.acquire = counting  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del dialect.acquire


def test_ten_thousand_rows_without_ten_thousand_round_trips(
        client: httpx.Client, database: Any, dialect: str, statements: list[str]) -> None:
    rows = [{"label": f"row {i} ✓", "n": i} for i in range(10_000)]
    r = client.post("/big/bulk", json=rows, timeout=120)
    assert r.status_code == 200, r.text[:500]
    assert len(r.json()["succeeded"]) == 10_000
    assert database.query("SELECT count(*), sum(n) FROM big")[0] == (10_000, sum(range(10_000)))
    assert len(statements) < 50, len(statements)
    # PostgreSQL loads them with COPY
    assert any(sql.startswith("COPY ") for sql in statements) == (dialect == "postgresql")


def test_failing_batch_falls_back_to_rows(client: httpx.Client, database: Any) -> None:
    rows = [{"sku": f"f{i}", "name": "x"} for i in range(50)]
    rows[17]["sku"] = "a1"  # duplicate of an existing row
    r = client.post("/items/bulk", json=rows)
    assert r.status_code == 207
    assert [f["index"] for f in r.json()["failed"]] == [17]
    assert database.query("SELECT count(*) FROM items WHERE name = 'x'")[0][0] == 49


def test_bulk_update_by_primary_key(client: httpx.Client, database: Any) -> None:
    ids = {row[1]: row[0] for row in database.query("SELECT id, sku FROM items")}
    r = client.put("/items/bulk", json=[
        {"id": ids["a1"], "qty": 100},
        {"id": 999_999, "qty": 1},                 # no such row
        {"qty": 5},                                # no key
        {"id": ids["a2"], "price": "1.234"},       # too many decimals
        {"id": ids["a3"], "name": "renamed", "price": "0.50"}])
    assert r.status_code == 207, r.text
    body = r.json()
    assert [s["index"] for s in body["succeeded"]] == [0, 4]
    failed = {f["index"]: f["error"]["code"] for f in body["failed"]}
    assert failed == {1: "not_found", 2: "validation_error", 3: "validation_error"}
    stored = items(database)
    assert stored["a1"][1] == 100 and stored["a3"][0] == "renamed"
    assert stored["a3"][2] == Decimal("0.50") and stored["a2"][2] == Decimal("0.01")


def _mass(database: Any) -> dict[int, tuple[str, int | None]]:
    return {row[0]: (row[1], row[2]) for row in database.query("SELECT id, grp, v FROM mass")}


def test_mass_update_and_delete(client: httpx.Client, database: Any) -> None:
    client.post("/mass/bulk", json=[{"id": i, "grp": "ab"[i % 2], "v": i} for i in range(1, 11)])
    flt = [{"field": "grp", "operator": "eq", "value": "a"}]
    r = client.put("/mass/filter?dry_run=true", json={"expressions": flt, "updateData": {"v": 0}})
    assert r.json() == {"updated": 5, "dry_run": True}
    assert all(v == i for i, (_, v) in _mass(database).items())
    r = client.put("/mass/filter?max_affected=4", json={"expressions": flt, "updateData": {"v": 0}})
    assert r.status_code == 409, r.text
    assert all(v == i for i, (_, v) in _mass(database).items())
    r = client.put("/mass/filter?max_affected=5", json={"expressions": flt, "updateData": {"v": 0}})
    assert r.status_code == 200 and r.json() == {"updated": 5}
    assert {i for i, (_, v) in _mass(database).items() if v == 0} == {2, 4, 6, 8, 10}
    r = client.request("DELETE", "/mass/filter", json={"expressions": [
        {"field": "v", "operator": "gt", "value": 6}]})
    assert r.json() == {"deleted": 2}
    assert set(_mass(database)) == {1, 2, 3, 4, 5, 6, 8, 10}
    r = client.request("DELETE", "/mass/filter?dry_run=true", json={"all": True})
    assert r.json() == {"deleted": 8, "dry_run": True}
    assert len(_mass(database)) == 8


@pytest.mark.parametrize(("method", "body", "path"), [
    ("PUT", {"expressions": [], "updateData": {"v": 1}}, "expressions"),
    ("PUT", {"updateData": {"v": 1}}, "expressions"),
    ("DELETE", {"expressions": []}, "expressions"),
    ("DELETE", {}, "expressions"),
    ("PUT", {"all": True}, "updateData"),
    ("PUT", {"all": True, "updateData": {}}, "updateData"),
    ("PUT", {"all": True, "updateData": {"v": "x"}}, "updateData.v"),
    ("PUT", {"all": True, "updateData": {"nope": 1}}, "updateData.nope"),
    ("PUT", {"all": "yes", "updateData": {"v": 1}}, "all"),
    ("DELETE", {"expressions": [{"field": "nope", "operator": "eq", "value": 1}]},
     "expressions[0].field"),
    ("DELETE", {"all": True, "sort": [{"field": "v"}]}, "body"),
])
def test_mass_operations_refuse_bad_input(client: httpx.Client, database: Any, method: str,
                                          body: Any, path: str) -> None:
    before = _mass(database)
    r = client.request(method, "/mass/filter", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == path
    assert _mass(database) == before
    r = client.request(method, "/mass/filter?max_affected=-1", json={"all": True,
                                                                     "updateData": {"v": 1}})
    assert r.status_code == 422
    assert _mass(database) == before


def test_openapi_documents_bulk_and_filter_operations(client: httpx.Client) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").json()
    validate(doc)
    operations = {op["operationId"] for path in doc["paths"].values()
                  for op in path.values() if isinstance(op, dict) and "operationId" in op}
    for name in ("bulkCreateItems", "bulkUpdateItems", "updateByFilterItems",
                 "deleteByFilterItems", "filterItems", "countItems", "filterQueryItems"):
        assert name in operations, name
    schemas = doc["components"]["schemas"]
    assert {"BulkCreateResult", "ItemsFilterResponse", "FilterRequest",
            "FilterExpression"} <= set(schemas)
    assert set(doc["paths"]["/items/bulk"]) >= {"post", "put"}
    assert set(doc["paths"]["/items/filter"]) >= {"post", "put", "delete"}
    assert set(doc["paths"]["/items/count"]) >= {"get", "post"}


# -- the same authorization, row policies and write preparers as single rows -----------


class _Protect:
    """Rows of group ``z`` in ``mass`` may be read but not updated or deleted."""

    async def predicate(self, identity: Any, table: Any, sa_table: Any,
                        action: str) -> Any:
        if table.name != "mass" or action not in ("update", "delete"):
            return None
        return Predicate(("protect_z",), sa_table.c.grp != sa.bindparam("_protected"),
                         {"_protected": "z"})


class _Stamp:
    """New ``mass`` rows without a value get 7; an update may never set 13."""

    async def prepare(self, identity: Any, table: Any, values: dict[str, Any],
                      action: str) -> dict[str, Any]:
        if table.name == "mass" and action == "create" and values.get("v") is None:
            values = {**values, "v": 7}
        if table.name == "mass" and action == "update" and values.get("v") == 13:
            raise invalid("v", "13 is not allowed")
        return values


class _NoDeletingItems:
    async def authorize(self, identity: Any, table: Any, action: str) -> None:
        if table.name == "items" and action == "delete":
            raise Forbidden("deleting items is not allowed")


class _Policies:
    @hookimpl
    def swain_row_policies(self, config: Any) -> list[Any]:
        return [_Protect()]

    @hookimpl
    def swain_write_preparers(self, config: Any) -> list[Any]:
        return [_Stamp()]

    @hookimpl
    def swain_authorizers(self, config: Any) -> list[Any]:
        return [_NoDeletingItems()]


@pytest.fixture(scope="module")
def policed(config_path: Any) -> Iterator[httpx.Client]:
    config, pm = load_config(config_path, "development", environ={}, plugins=[_Policies()])
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def test_bulk_and_mass_obey_policies(policed: httpx.Client, database: Any) -> None:
    r = policed.post("/mass/bulk", json=[{"id": 100, "grp": "z"}, {"id": 101, "grp": "y"},
                                         {"id": 102, "grp": "z", "v": 1}])
    assert r.status_code == 200, r.text
    assert [s["data"]["v"] for s in r.json()["succeeded"]] == [7, 7, 1]
    stored = _mass(database)
    assert stored[100] == ("z", 7) and stored[101] == ("y", 7) and stored[102] == ("z", 1)
    # mass update/delete only reach rows the policy lets them change
    r = policed.put("/mass/filter", json={"expressions": [
        {"field": "id", "operator": "gte", "value": 100}], "updateData": {"v": 5}})
    assert r.json() == {"updated": 1}
    assert _mass(database)[100] == ("z", 7) and _mass(database)[101] == ("y", 5)
    r = policed.put("/mass/filter", json={"all": True, "updateData": {"v": 13}})
    assert r.status_code == 422
    assert _mass(database)[101] == ("y", 5)
    r = policed.request("DELETE", "/mass/filter?dry_run=true", json={"expressions": [
        {"field": "id", "operator": "gte", "value": 100}]})
    assert r.json() == {"deleted": 1, "dry_run": True}
    # bulk update and upsert cannot change a protected row
    r = policed.put("/mass/bulk", json=[{"id": 100, "v": 0}, {"id": 101, "v": 0}])
    assert r.status_code == 207
    assert [f["index"] for f in r.json()["failed"]] == [0]
    r = policed.post("/mass/bulk?on_conflict=update", json=[{"id": 102, "grp": "z", "v": 99}])
    assert r.status_code == 207 and r.json()["failed"][0]["error"]["code"] == "conflict"
    assert _mass(database)[102] == ("z", 1) and _mass(database)[101] == ("y", 0)
    # an authorizer's refusal stops the whole mass delete
    before = items(database)
    r = policed.request("DELETE", "/items/filter", json={"all": True})
    assert r.status_code == 403
    assert items(database) == before
