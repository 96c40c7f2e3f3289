"""The dialect conformance suite: what swain relies on from a database backend,
checked against a real database over real HTTP.

A dialect's own test module runs it the way SQLAlchemy's ``testing/suite`` is
run: import the suite's tests and fixtures, and say which dialect (by its
registered name, the URL scheme) is under test::

    # tests/test_my_dialect.py
    pytest_plugins = ["swain.contrib.testing.fixtures"]

    from swain.contrib.testing.dialect_suite import *  # noqa: F403 - the tests and fixtures
    from swain.contrib.testing.dialect_suite import dialect_under_test

    suite_dialect = dialect_under_test("mydb")

The dialect creates its own throwaway database
(:meth:`~swain.core.Dialect.create_test_database`); the suite creates its
tables with SQLAlchemy's portable types, serves them with every built-in
plugin, and checks: connecting and readiness, introspection (kinds, keys,
foreign keys, unique constraints, relationships), exact values both ways,
composite keys, the error envelope for constraint and data errors, matching
(case, literal wildcards, NULLs), sorting with ``nulls``, paging and counts,
aggregates, includes and per-parent aggregations (composed as JSON where the
dialect can, the same answer as fetched level by level), bulk inserts and
upserts, updates and deletes by filter (through a relationship), transactions
and savepoints, the pool's statistics, and the
read-back path for a backend without ``RETURNING``.  Each test says what it
needs; every one must pass for a dialect to be complete.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from swain.core import RUNTIME, Dialect

from . import FreshDatabase, LiveServer, serving, write_config
from .api import assert_same_json

__all__ = [
    "suite_apart", "suite_client", "suite_database", "suite_server",
    "test_aggregates_group_and_count", "test_bulk_insert_and_upserts",
    "test_composite_keys_are_addressable", "test_constraint_and_data_errors_are_classified",
    "test_create_read_update_delete", "test_creates_without_returning", "test_introspection",
    "test_matching_is_exact", "test_paging_and_counts", "test_pool_reports_its_state",
    "test_readiness", "test_relations_compose_as_fetched", "test_sorting_places_nulls",
    "test_test_databases_come_and_go", "test_transactions_and_savepoints",
    "test_writes_by_filter",
]

METADATA = sa.MetaData()
AUTHORS = sa.Table(
    "suite_authors", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(50), nullable=False, unique=True),
    sa.Column("mentor_id", sa.Integer, sa.ForeignKey("suite_authors.id"), nullable=True),
)
BOOKS = sa.Table(
    "suite_books", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("suite_authors.id"), nullable=False),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("price", sa.Numeric(10, 2), nullable=False),
    sa.Column("in_stock", sa.Boolean, nullable=False),
    sa.Column("published", sa.Date, nullable=True),
    sa.Column("added_at", sa.DateTime, nullable=True),
    sa.Column("pages", sa.Integer, nullable=True),
    sa.Column("cover", sa.LargeBinary, nullable=True),
)
PAIRS = sa.Table(
    "suite_pairs", METADATA,
    sa.Column("k", sa.String(20), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("note", sa.String(20), nullable=True),
)

# Keys are left to the database (a sequence does not move for explicit ones): in a fresh
# database the rows get 1, 2, 3… in this order.
_AUTHORS: list[dict[str, Any]] = [{"name": "Ann", "mentor_id": None},
                                  {"name": "bob", "mentor_id": 1}, {"name": "Cy", "mentor_id": 1}]
_BOOKS: list[dict[str, Any]] = [
    {"author_id": 1, "title": "Alpha 100%", "price": Decimal("10.50"), "in_stock": True,
     "published": dt.date(2020, 1, 31), "added_at": dt.datetime(2024, 1, 2, 3, 4, 5),
     "pages": 100, "cover": b"\x00\x01\xff"},
    {"author_id": 1, "title": "alpha_beta", "price": Decimal("7.25"), "in_stock": False,
     "published": None, "added_at": None, "pages": None, "cover": None},
    {"author_id": 2, "title": "Gamma", "price": Decimal("99.99"), "in_stock": True,
     "published": dt.date(2021, 6, 1), "added_at": dt.datetime(2024, 5, 6, 7, 8, 9),
     "pages": 300, "cover": None},
    {"author_id": 3, "title": "delta", "price": Decimal("1.00"), "in_stock": True,
     "published": dt.date(2019, 12, 31), "added_at": None, "pages": 50, "cover": None},
]


def dialect_under_test(*names: str) -> Any:
    """The ``suite_dialect`` fixture for the named dialect(s); assign it in the test
    module (``suite_dialect = dialect_under_test("mydb")``)."""

    @pytest.fixture(scope="module", name="suite_dialect", params=list(names))
    def suite_dialect(request: pytest.FixtureRequest) -> str:
        return str(request.param)

    return suite_dialect


@pytest.fixture(scope="module")
def suite_database(suite_dialect: str) -> Iterator[FreshDatabase]:
    database = FreshDatabase(suite_dialect)
    try:
        METADATA.create_all(database.engine)
        with database.engine.begin() as conn:
            for row in _AUTHORS:  # one by one: the keys come in order
                conn.execute(AUTHORS.insert(), row)
            for row in _BOOKS:
                conn.execute(BOOKS.insert(), row)
            conn.execute(PAIRS.insert(), [{"k": "a,b", "n": 1, "note": "comma"},
                                          {"k": "plain", "n": 2, "note": None}])
        yield database
    finally:
        database.drop()


@pytest.fixture(scope="module")
def suite_server(suite_database: FreshDatabase,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(write_config(tmp_path_factory.mktemp("suite"),
                              suite_database.swain_url)) as live:
        yield live


@pytest.fixture(scope="module")
def suite_client(suite_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=suite_server.url, timeout=30) as http:
        yield http


def _dialect(server: LiveServer) -> Dialect:
    return server.app[RUNTIME].dialect


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert "SELECT" not in error["message"] and "INSERT" not in error["message"]
    return error


def _titles(body: dict[str, Any]) -> list[str]:
    return [row["title"] for row in body["data"]]


# -- the tests ------------------------------------------------------------------------


def test_readiness(suite_client: httpx.Client) -> None:
    """The dialect connects, names its server and serves the schema."""
    body = _ok(suite_client.get("/ready"))
    assert body["status"] == "ready" and body["database"] and body["tables"] >= 3


def test_introspection(suite_server: LiveServer) -> None:
    """Kinds, keys, foreign keys, unique constraints and relationships, both ways."""
    schema = suite_server.app[RUNTIME].schema
    books = schema.tables["suite_books"]
    kinds = {c.name: c.kind for c in books.columns}
    assert kinds == {"id": "integer", "author_id": "integer", "title": "string",
                     "price": "decimal", "in_stock": "boolean", "published": "date",
                     "added_at": "datetime", "pages": "integer", "cover": "binary"}
    assert books.primary_key == ["id"] and books.existing_column("id").autoincrement
    assert books.existing_column("title").max_length == 100
    assert not books.existing_column("title").nullable and books.existing_column("pages").nullable
    price = books.existing_column("price")
    assert (price.precision, price.scale) == (10, 2)
    assert [(fk.columns, fk.target, fk.target_columns) for fk in books.foreign_keys] == \
        [(["author_id"], "suite_authors", ["id"])]
    authors = schema.tables["suite_authors"]
    assert [u["columns"] for u in authors.unique_constraints] == [["name"]]
    names = {r.name for r in authors.relationships}
    assert "suite_books" in names and len(authors.relationships) >= 3  # books, mentor both ways
    assert schema.tables["suite_pairs"].primary_key == ["k", "n"]


def test_create_read_update_delete(suite_client: httpx.Client,
                                   suite_database: FreshDatabase) -> None:
    """Values cross JSON exactly in both directions."""
    row = {"author_id": 2, "title": "Épsilon ☃", "price": "12.50", "in_stock": False,
           "published": "2024-02-29", "added_at": "2023-12-31T23:59:58", "pages": 2**31 - 1,
           "cover": base64.b64encode(b"\x00binary\xff").decode()}
    created = _ok(suite_client.post("/suite_books", json=row), 201)
    assert {k: created[k] for k in row} == row
    assert _ok(suite_client.get(f"/suite_books/{created['id']}")) == created
    changed = _ok(suite_client.put(f"/suite_books/{created['id']}",
                                   json={"price": 13, "in_stock": True, "cover": None}))
    assert changed["price"] == "13.00" and changed["in_stock"] is True
    assert changed["cover"] is None and changed["title"] == row["title"]
    assert _ok(suite_client.delete(f"/suite_books/{created['id']}")) == changed
    _error(suite_client.get(f"/suite_books/{created['id']}"), 404)
    assert suite_database.query("SELECT count(*) FROM suite_books WHERE id = :i",
                                {"i": created["id"]}) == [(0,)]


def test_creates_without_returning(suite_client: httpx.Client, suite_server: LiveServer) -> None:
    """A backend (or server version) without ``INSERT … RETURNING`` reads the row back
    by its key: that path must work wherever the driver reports the new key."""
    dialect = _dialect(suite_server)
    saved = dialect.supports_returning_insert
    dialect.supports_returning_insert = False  # type: ignore[misc]
    try:
        created = _ok(suite_client.post("/suite_pairs", json={"k": "nr", "n": 7}), 201)
        assert created == {"k": "nr", "n": 7, "note": None}
    finally:
        dialect.supports_returning_insert = saved  # type: ignore[misc]
    _ok(suite_client.delete("/suite_pairs/nr,7"))


def test_composite_keys_are_addressable(suite_client: httpx.Client) -> None:
    assert _ok(suite_client.get("/suite_pairs/a%2Cb,1"))["note"] == "comma"
    assert _ok(suite_client.patch("/suite_pairs/plain,2", json={"note": "set"}))["note"] == "set"
    _error(suite_client.get("/suite_pairs/plain,3"), 404)


def test_constraint_and_data_errors_are_classified(suite_client: httpx.Client,
                                                    suite_database: FreshDatabase) -> None:
    """Unique and foreign-key violations are 409 naming no SQL; bad values 422;
    nothing is written."""
    before = suite_database.query("SELECT count(*) FROM suite_authors")
    _error(suite_client.post("/suite_authors", json={"name": "Ann"}), 409)
    _error(suite_client.post("/suite_books", json={
        "author_id": 999, "title": "x", "price": 1, "in_stock": True}), 409)
    _error(suite_client.delete("/suite_authors/1"), 409)  # still referenced
    _error(suite_client.post("/suite_authors", json={"name": "x" * 51}), 422)
    _error(suite_client.post("/suite_books", json={
        "author_id": 1, "title": "x", "price": "123456789.00", "in_stock": True}), 422)
    assert suite_database.query("SELECT count(*) FROM suite_authors") == before


def test_matching_is_exact(suite_client: httpx.Client) -> None:
    """Case-sensitive and insensitive matching, literal ``%``/``_``, NULLs matching
    no comparison: the same on every database."""
    def titles(operator: str, value: Any, field: str = "title") -> list[str]:
        return _titles(_ok(suite_client.post("/suite_books/filter", json={
            "expressions": [{"field": field, "operator": operator, "value": value}],
            "sort": [{"field": "id"}]})))

    assert titles("contains", "alpha") == ["alpha_beta"]
    assert titles("icontains", "ALPHA") == ["Alpha 100%", "alpha_beta"]
    assert titles("contains", "%") == ["Alpha 100%"]
    assert titles("contains", "_") == ["alpha_beta"]
    assert titles("startswith", "Al") == ["Alpha 100%"]
    assert titles("eq", "gamma") == []
    assert titles("ne", 100, "pages") == ["Gamma", "delta"]
    assert titles("isnull", True, "pages") == ["alpha_beta"]
    assert titles("gt", "2020-01-01", "published") == ["Alpha 100%", "Gamma"]


def test_sorting_places_nulls(suite_client: httpx.Client) -> None:
    def order(direction: str, nulls: str) -> list[Any]:
        body = _ok(suite_client.post("/suite_books/filter", json={
            "fields": ["id", "pages"],
            "sort": [{"field": "pages", "direction": direction, "nulls": nulls}]}))
        return [row["pages"] for row in body["data"]]

    assert order("asc", "first") == [None, 50, 100, 300]
    assert order("asc", "last") == [50, 100, 300, None]
    assert order("desc", "first") == [None, 300, 100, 50]
    assert order("desc", "last") == [300, 100, 50, None]


def test_paging_and_counts(suite_client: httpx.Client) -> None:
    page = _ok(suite_client.get("/suite_books", params={"page": 2, "page_size": 3,
                                                         "fields": "id"}))
    assert [row["id"] for row in page["data"]] == [4]
    assert (page["total"], page["total_pages"]) == (4, 2)
    estimated = _ok(suite_client.get("/suite_books", params={"count": "estimated"}))["total"]
    assert isinstance(estimated, int) and estimated >= 0
    assert _ok(suite_client.get("/suite_books/count")) == {"count": 4}
    assert _ok(suite_client.post("/suite_books/count", json={"expressions": [
        {"field": "in_stock", "operator": "eq", "value": True}]})) == {"count": 3}


def test_aggregates_group_and_count(suite_client: httpx.Client) -> None:
    body = _ok(suite_client.post("/suite_books/filter", json={"aggregations": {
        "functions": [{"type": "COUNT", "alias": "n"}, {"type": "SUM", "field": "price",
                                                        "alias": "total"},
                      {"type": "MAX", "field": "published", "alias": "latest"}],
        "group_by": ["author_id"],
        "having": [{"field": "n", "operator": "gte", "value": 1}],
        "sort": [{"field": "total", "direction": "desc"}]}}))
    assert body["data"] == [
        {"author_id": 2, "n": 1, "total": "99.99", "latest": "2021-06-01"},
        {"author_id": 1, "n": 2, "total": "17.75", "latest": "2020-01-31"},
        {"author_id": 3, "n": 1, "total": "1.00", "latest": "2019-12-31"}]
    assert body["total"] == 3


def test_bulk_insert_and_upserts(suite_client: httpx.Client, suite_server: LiveServer,
                                 suite_database: FreshDatabase) -> None:
    """Many rows in one request (a bad one reported, the rest written), then upserts:
    ``update`` changes the existing row, ``ignore`` leaves it."""
    r = suite_client.post("/suite_pairs/bulk", json=[
        {"k": "b1", "n": 1}, {"k": "b2", "n": 1, "note": "x" * 21}, {"k": "b3", "n": 1}])
    body = _ok(r, 207)
    assert [s["index"] for s in body["succeeded"]] == [0, 2]
    assert [f["index"] for f in body["failed"]] == [1]
    if not _dialect(suite_server).supports_upsert:
        _error(suite_client.post("/suite_pairs/bulk?on_conflict=update",
                                 json=[{"k": "b1", "n": 1}]), 422)
        return
    r = suite_client.post("/suite_pairs/bulk?on_conflict=update",
                          json=[{"k": "b1", "n": 1, "note": "upd"}, {"k": "b4", "n": 1}])
    assert [s["data"]["note"] for s in _ok(r)["succeeded"]] == ["upd", None]
    r = suite_client.post("/suite_pairs/bulk?on_conflict=ignore",
                          json=[{"k": "b1", "n": 1, "note": "ign"}])
    assert _ok(r)["succeeded"][0] == {"index": 0, "id": ["b1", 1], "ignored": True,
                                      "data": {"k": "b1", "n": 1, "note": "upd"}}
    assert suite_database.query("SELECT note FROM suite_pairs WHERE k = 'b1'") == [("upd",)]
    by_name = "/suite_authors/bulk?on_conflict=update&conflict_columns=name"
    first = _ok(suite_client.post(by_name, json=[{"name": "Dee"}]))["succeeded"][0]["data"]
    again = _ok(suite_client.post(by_name, json=[{"name": "Dee", "mentor_id": 2}]))
    assert again["succeeded"][0]["data"] == {**first, "mentor_id": 2}


def test_writes_by_filter(suite_client: httpx.Client, suite_database: FreshDatabase) -> None:
    """Updates and deletes by filter, through a relationship to the same table (which
    some databases refuse without rewriting), with dry runs and limits."""
    def add(table: str, row: dict[str, Any]) -> Any:
        return _ok(suite_client.post(f"/{table}", json=row), 201)["id"]

    head = add("suite_authors", {"name": "W1"})
    pupils = [add("suite_authors", {"name": n, "mentor_id": head}) for n in ("W2", "W3")]
    books = [add("suite_books", {"author_id": a, "title": "w", "price": 1, "in_stock": False})
             for a in pupils]
    mentored = {"relationship": "mentor_id", "expressions": [
        {"field": "name", "operator": "eq", "value": "W1"}]}
    dry = _ok(suite_client.request("PUT", "/suite_authors/filter?dry_run=true", json={
        "expressions": [mentored], "updateData": {"name": "renamed"}}))
    assert dry == {"updated": 2, "dry_run": True}
    count = suite_database.query("SELECT count(*) FROM suite_books")
    _error(suite_client.request("DELETE", "/suite_books/filter?max_affected=1", json={
        "expressions": [{"field": "in_stock", "operator": "eq", "value": False}]}), 409)
    assert suite_database.query("SELECT count(*) FROM suite_books") == count
    r = suite_client.request("PUT", "/suite_books/filter", json={
        "expressions": [{"relationship": "suite_authors", "expressions": [mentored]}],
        "updateData": {"pages": 7}})
    assert _ok(r) == {"updated": 2}
    assert suite_database.query("SELECT id FROM suite_books WHERE pages = 7 ORDER BY id") == \
        [(b,) for b in books]
    r = suite_client.request("DELETE", "/suite_books/filter", json={
        "expressions": [{"field": "pages", "operator": "eq", "value": 7}]})
    assert _ok(r) == {"deleted": 2}
    r = suite_client.request("PUT", "/suite_authors/filter", json={
        "expressions": [mentored], "updateData": {"mentor_id": None}})
    assert _ok(r) == {"updated": 2}
    r = suite_client.request("DELETE", "/suite_authors/filter", json={
        "expressions": [{"field": "name", "operator": "in", "value": ["W1", "W2", "W3"]}]})
    assert _ok(r) == {"deleted": 3}
    assert suite_database.query("SELECT count(*) FROM suite_books") == [(count[0][0] - 2,)]


@pytest.fixture(scope="module")
def suite_apart(suite_database: FreshDatabase,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The suite's database served with relationships fetched level by level."""
    path = write_config(tmp_path_factory.mktemp("suite_apart"), suite_database.swain_url,
                        query={"compose_json": False})
    with serving(path) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def test_relations_compose_as_fetched(suite_client: httpx.Client, suite_apart: httpx.Client,
                                      suite_server: LiveServer) -> None:
    """Where the dialect composes includes and per-parent aggregations as JSON in the
    page's statement (``supports_json_relations``), the answer is the one fetched level
    by level, value for value (decimals, dates, timestamps, booleans, binary)."""
    books = {"relationship": "suite_books", "scope": "filterRelated", "include": True,
             "sort": [{"field": "price", "direction": "desc"}]}
    functions = [{"type": "COUNT", "alias": "n"},
                 {"type": "SUM", "field": "price", "alias": "total"},
                 {"type": "AVG", "field": "pages", "alias": "avg_pages"},
                 {"type": "MIN", "field": "published", "alias": "first"},
                 {"type": "MAX", "field": "added_at", "alias": "last_added"}]
    payloads: list[tuple[dict[str, Any], bool]] = [  # (payload, groups per parent)
        ({"expressions": [books]}, False),
        ({"expressions": [{**books, "aggregations": {"functions": functions}},
                          {"relationship": "mentor_id", "scope": "filterRelated",
                           "include": True, "fields": ["name"]}]}, False),
        ({"expressions": [{"relationship": "suite_books", "scope": "filterRelated",
                           "aggregations": {"functions": functions,
                                            "group_by": ["in_stock"]}}]}, True),
        ({"expressions": [{**books, "fields": ["title"], "expressions": [
            {"relationship": "suite_authors", "scope": "filterRelated", "include": True,
             "fields": ["name"]}]}]}, False),
    ]
    dialect = _dialect(suite_server)
    for payload, groups in payloads:
        body = _ok(suite_client.post("/suite_authors/filter/query", json=payload))
        apart = _ok(suite_apart.post("/suite_authors/filter", json=payload))
        for key in ("data", "total", "page", "page_size", "total_pages"):
            assert_same_json(body[key], apart[key], key)
        if dialect.supports_json_relations and \
                (not groups or dialect.supports_correlated_derived_tables):
            assert len(body["statements"]) == 1, body["statements"]  # one per page


def test_transactions_and_savepoints(suite_server: LiveServer,
                                     suite_database: FreshDatabase) -> None:
    """A failed transaction leaves nothing; a savepoint undoes only its part."""
    dialect = _dialect(suite_server)
    insert = dialect.compile(sa.insert(PAIRS).values(k=sa.bindparam("k"),
                                                     n=sa.literal_column("1")))[0]

    async def failing() -> None:
        async with dialect.transaction() as conn:
            await conn.execute(insert, {"k": "tx1"})
            raise RuntimeError("roll back")

    async def partial() -> None:
        async with dialect.transaction() as conn:
            await conn.execute(insert, {"k": "tx2"})
            await conn.savepoint("swain_sp")
            await conn.execute(insert, {"k": "tx3"})
            await conn.rollback_to_savepoint("swain_sp")
            await conn.release_savepoint("swain_sp")

    with pytest.raises(RuntimeError):
        suite_server.call(failing())
    suite_server.call(partial())
    assert suite_database.query("SELECT k FROM suite_pairs WHERE k LIKE 'tx%'") == [("tx2",)]
    suite_database.run_script("DELETE FROM suite_pairs WHERE k = 'tx2'")


def test_pool_reports_its_state(suite_client: httpx.Client, suite_server: LiveServer) -> None:
    _ok(suite_client.get("/suite_books"))
    stats = _dialect(suite_server).pool_stats()
    if stats is None:
        return  # the dialect cannot tell; /metrics then has no pool gauges
    assert 0 <= stats.idle <= stats.open <= stats.max and stats.in_use >= 0
    metrics = suite_client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    assert f"swain_db_pool_max {float(stats.max)}" in metrics.text


def test_test_databases_come_and_go(suite_dialect: str) -> None:
    """The dialect makes the throwaway databases suites run on: empty, apart from
    each other, and dropped afterwards without error."""
    first, second = FreshDatabase(suite_dialect), FreshDatabase(suite_dialect)
    try:
        first.run_script("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        first.run_script("INSERT INTO t (id) VALUES (1)")
        assert first.query("SELECT count(*) FROM t") == [(1,)]
        second.run_script("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        assert second.query("SELECT count(*) FROM t") == [(0,)]
    finally:
        first.drop()
        second.drop()
