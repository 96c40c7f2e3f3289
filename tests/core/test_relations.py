"""Relationship filters and includes on every database.

Expectations come from hand-written SQL against the same database or from
Python over the fixture rows.  A row policy hides the orders whose status is
``hidden``: every relationship path (EXISTS filter, include, per-parent
aggregation) must respect it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from swain.contrib.testing import LiveServer
from swain.core import RUNTIME, Predicate, create_app, hookimpl, load_config

SWAIN_CONFIG = {"api": {"max_page_size": 200, "sql_preview": ["development"]}}

ACCOUNTS = [(1, "Acme"), (2, "Globex"), (3, "Empty Co")]
# id, account_id, name, city
USERS = [(1, 1, "ann", "Paris"), (2, 1, "ben", "Lyon"), (3, 2, "cleo", "Paris"),
         (4, 2, "dan", None), (5, None, "eve", "Nice")]
# id, user_id, total, status
ORDERS = [(1, 1, "600.00", "paid"), (2, 1, "20.00", "paid"), (3, 1, "900.00", "hidden"),
          (4, 2, "501.00", "open"), (5, 3, "499.99", "paid"), (6, 3, "1000.00", "hidden"),
          (7, 4, "5.50", "open"), (8, 2, "700.00", "paid")]
# id, order_id, product, qty
ITEMS = [(1, 1, "widget", 2), (2, 1, "gadget", 10), (3, 4, "widget", 1), (4, 5, "gizmo", 7),
         (5, 8, "widget", 3), (6, 3, "secret", 50), (7, 2, "gadget", 6)]
EMPLOYEES = [(1, "boss", None), (2, "mid", 1), (3, "low", 2), (4, "other", 1)]
MESSAGES = [(1, 1, 2, "hi"), (2, 2, 1, "re"), (3, 1, 3, "yo")]


def _values(rows: list[tuple[Any, ...]]) -> str:
    def one(v: Any) -> str:
        return "NULL" if v is None else (str(v) if isinstance(v, int) else f"'{v}'")
    return ", ".join("(" + ", ".join(one(v) for v in row) + ")" for row in rows)


DDL = f"""
CREATE TABLE accounts (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL);
CREATE TABLE users (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts(id),
                    name VARCHAR(40) NOT NULL, city VARCHAR(40), token VARCHAR(40));
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
                     total DECIMAL(10,2) NOT NULL, status VARCHAR(10) NOT NULL);
CREATE TABLE order_items (id INTEGER PRIMARY KEY,
                          order_id INTEGER NOT NULL REFERENCES orders(id),
                          product VARCHAR(20) NOT NULL, qty INTEGER NOT NULL);
CREATE TABLE employees (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL,
                        manager_id INTEGER REFERENCES employees(id));
CREATE TABLE messages (id INTEGER PRIMARY KEY, sender_id INTEGER NOT NULL REFERENCES users(id),
                       recipient_id INTEGER NOT NULL REFERENCES users(id), body VARCHAR(20));
INSERT INTO accounts (id, name) VALUES {_values(ACCOUNTS)};
INSERT INTO users (id, account_id, name, city) VALUES {_values(USERS)};
INSERT INTO orders (id, user_id, total, status) VALUES {_values(ORDERS)};
INSERT INTO order_items (id, order_id, product, qty) VALUES {_values(ITEMS)};
INSERT INTO employees (id, name, manager_id) VALUES {_values(EMPLOYEES)};
INSERT INTO messages (id, sender_id, recipient_id, body) VALUES {_values(MESSAGES)}
"""


class HideOrders:
    """Row policy: nobody sees orders whose status is ``hidden``."""

    async def predicate(self, identity: Any, table: Any, sa_table: sa.Table,
                        action: str) -> Predicate | None:
        if table.name != "orders":
            return None
        return Predicate(("hide_orders",), sa_table.c.status != sa.bindparam("_hidden_status"),
                         {"_hidden_status": "hidden"})


class DivisibleBy:
    """A plugin filter operator: ``field divisible_by n``."""

    def build(self, column: Any, value: Any) -> Any:
        return column % value == 0


class PolicyPlugin:
    @hookimpl
    def swain_row_policies(self, config: Any) -> list[Any]:
        return [HideOrders()]

    @hookimpl
    def swain_filter_operators(self, config: Any) -> dict[str, Any]:
        return {"divisible_by": DivisibleBy()}

    @hookimpl
    def swain_prepare_schema(self, schema: Any, config: Any) -> None:
        column = schema.tables["users"].column("token")
        column.secret = True


@pytest.fixture(scope="module")
def server(config_path: Path) -> Iterator[LiveServer]:
    config, pm = load_config(config_path, "development", environ={}, plugins=[PolicyPlugin()])
    with LiveServer(create_app(config, pm)) as live:
        yield live


VISIBLE_ORDERS = [o for o in ORDERS if o[3] != "hidden"]


def ids(r: httpx.Response) -> list[int]:
    assert r.status_code == 200, r.text
    return [row["id"] for row in r.json()["data"]]


def cond(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def test_filter_parent_is_exists_without_duplicates(client: httpx.Client, database: Any) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "expressions": [cond("total", "gt", 500)]}]})
    expected = [row[0] for row in database.query(
        "SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id "
        "AND o.total > 500 AND o.status <> 'hidden') ORDER BY id")]
    assert ids(r) == expected == [1, 2]
    assert r.json()["total"] == 2
    # cleo's only order above 500 is hidden by the row policy
    assert 3 not in ids(r)


def test_relationship_names_match_case_insensitively(client: httpx.Client) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "ORDERS", "scope": "filterParent",
         "expressions": [cond("status", "eq", "open")]}]})
    assert ids(r) == sorted({o[1] for o in VISIBLE_ORDERS if o[3] == "open"})


def test_not_and_or_around_relationships(client: httpx.Client) -> None:
    big = {"relationship": "orders", "expressions": [cond("total", "gt", 500)]}
    r = client.post("/users/filter",
                    json={"expressions": [{"operator": "NOT", "expressions": [big]}]})
    with_big = {o[1] for o in VISIBLE_ORDERS if Decimal(o[2]) > 500}
    assert ids(r) == [u[0] for u in USERS if u[0] not in with_big]
    r = client.post("/users/filter", json={"expressions": [{"operator": "OR", "expressions": [
        big, cond("city", "eq", "Nice")]}]})
    assert ids(r) == [u[0] for u in USERS if u[0] in with_big or u[3] == "Nice"]


def test_nested_filter_parent_three_levels(client: httpx.Client, database: Any) -> None:
    r = client.post("/accounts/filter", json={"expressions": [
        {"relationship": "users", "expressions": [
            {"relationship": "orders", "expressions": [
                {"relationship": "order_items", "expressions": [cond("qty", "gte", 7)]}]}]}]})
    expected = [row[0] for row in database.query(
        "SELECT a.id FROM accounts a WHERE EXISTS (SELECT 1 FROM users u JOIN orders o ON "
        "o.user_id = u.id JOIN order_items i ON i.order_id = o.id WHERE u.account_id = a.id "
        "AND i.qty >= 7 AND o.status <> 'hidden') ORDER BY a.id")]
    assert ids(r) == expected == [1, 2]


def test_include_one_to_many_and_many_to_one(client: httpx.Client) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "scope": "filterRelated", "include": True,
         "expressions": [cond("status", "eq", "paid")],
         "sort": [{"field": "total", "direction": "desc"}]}]})
    data = r.json()["data"]
    assert [u["id"] for u in data] == [u[0] for u in USERS]  # parents untouched
    for user in data:
        expected = sorted((o for o in VISIBLE_ORDERS if o[1] == user["id"] and o[3] == "paid"),
                          key=lambda o: -Decimal(o[2]))
        assert [o["id"] for o in user["orders"]] == [o[0] for o in expected]
        assert all(o["total"] == next(x[2] for x in ORDERS if x[0] == o["id"])
                   for o in user["orders"])
    r = client.post("/orders/filter", json={"expressions": [
        {"relationship": "users", "include": True, "fields": ["name"]}]})
    for order in r.json()["data"]:
        user = next(u for u in USERS if u[0] == order["user_id"])
        assert order["users"] == {"name": user[2]}
    assert ids(r) == [o[0] for o in VISIBLE_ORDERS]


def test_filter_parent_with_include_embeds_only_matches(client: httpx.Client) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "include": True, "expressions": [cond("total", "gt", 500)]}],
        "fields": ["name"]})
    data = r.json()["data"]
    assert [u["name"] for u in data] == ["ann", "ben"]
    assert [[o["id"] for o in u["orders"]] for u in data] == [[1], [4, 8]]
    assert all(set(u) == {"name", "orders"} for u in data)


def test_many_to_one_null_key_embeds_null(client: httpx.Client) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "accounts", "scope": "filterRelated", "include": True}]})
    by_id = {u["id"]: u for u in r.json()["data"]}
    assert by_id[5]["accounts"] is None
    assert by_id[1]["accounts"] == {"id": 1, "name": "Acme"}


def test_three_level_include_with_one_query_per_level(client: httpx.Client,
                                                      server: LiveServer) -> None:
    payload = {"expressions": [
        {"relationship": "users", "scope": "filterRelated", "include": True, "expressions": [
            {"relationship": "orders", "scope": "filterRelated", "include": True, "expressions": [
                {"relationship": "order_items", "scope": "filterRelated", "include": True}]}]}]}
    r = client.post("/accounts/filter/query", json=payload)
    assert r.status_code == 200, r.text
    body = r.json()
    # the page's own statement composing every level as JSON where the database can,
    # else the page, then exactly one statement per relationship level
    composes = server.app[RUNTIME].dialect.supports_json_relations
    assert len(body["statements"]) == (1 if composes else 4)
    for account in body["data"]:
        users = [u for u in USERS if u[1] == account["id"]]
        assert [u["id"] for u in account["users"]] == [u[0] for u in users]
        for user in account["users"]:
            orders = [o for o in VISIBLE_ORDERS if o[1] == user["id"]]
            assert [o["id"] for o in user["orders"]] == [o[0] for o in orders]
            for order in user["orders"]:
                assert [i["id"] for i in order["order_items"]] == \
                    [i[0] for i in ITEMS if i[1] == order["id"]]
    assert next(a for a in body["data"] if a["id"] == 3)["users"] == []


def test_self_reference_and_two_keys_to_one_table(client: httpx.Client) -> None:
    r = client.post("/employees/filter", json={"expressions": [
        {"relationship": "manager_id", "include": True,
         "expressions": [cond("name", "eq", "boss")]}]})
    data = r.json()["data"]
    assert [e["id"] for e in data] == [2, 4]
    assert all(e["manager_id"] == {"id": 1, "name": "boss", "manager_id": None} or
               e["manager_id"]["name"] == "boss" for e in data)
    r = client.post("/employees/filter", json={"expressions": [
        {"relationship": "employees_manager_id", "scope": "filterRelated", "include": True,
         "fields": ["id"]}]})
    reports = {e["id"]: [x["id"] for x in e["employees_manager_id"]] for e in r.json()["data"]}
    assert reports == {e[0]: [x[0] for x in EMPLOYEES if x[2] == e[0]] for e in EMPLOYEES}
    r = client.post("/messages/filter", json={"expressions": [
        {"relationship": "recipient_id", "expressions": [cond("name", "eq", "ann")]},
        {"relationship": "sender_id", "include": True, "fields": ["name"]}]})
    assert r.json()["data"] == [{"id": 2, "sender_id": {"name": "ben"}, "recipient_id": 1,
                                 "body": "re"}]


def test_related_row_policy_applies_to_includes(client: httpx.Client) -> None:
    r = client.post("/users/filter", json={"expressions": [
        cond("id", "eq", 1),
        {"relationship": "orders", "scope": "filterRelated", "include": True}]})
    assert [o["id"] for o in r.json()["data"][0]["orders"]] == [1, 2]


def test_relationship_errors_name_the_path(client: httpx.Client) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "expressions": [cond("nope", "eq", 1)]}]})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "expressions[0].expressions[0].field"
    r = client.post("/users/filter", json={"expressions": [{"relationship": "invoices"}]})
    assert r.status_code == 422 and "orders" in r.json()["error"]["message"]
    r = client.post("/users/filter", json={"expressions": [{"operator": "OR", "expressions": [
        {"relationship": "orders", "include": True}]}]})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "expressions[0].expressions[0]"
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "scope": "everything"}]})
    assert r.json()["error"]["details"][0]["path"] == "expressions[0].scope"


def test_count_uses_the_relationship_filter(client: httpx.Client) -> None:
    r = client.post("/users/count", json={"expressions": [
        {"relationship": "orders", "expressions": [cond("status", "eq", "open")]}]})
    assert r.json() == {"count": len({o[1] for o in VISIBLE_ORDERS if o[3] == "open"})}


def test_plugin_filter_operators(client: httpx.Client) -> None:
    r = client.post("/orders/filter", json={"expressions": [
        {"field": "id", "operator": "divisible_by", "value": 2}]})
    assert ids(r) == [o[0] for o in VISIBLE_ORDERS if o[0] % 2 == 0]
    r = client.post("/orders/filter", json={"expressions": [
        {"field": "id", "operator": "divides", "value": 2}]})
    assert r.status_code == 422 and "divisible_by" in r.json()["error"]["message"]


@pytest.mark.parametrize(("payload", "path"), [
    ({"expressions": [cond("token", "eq", "x")]}, "expressions[0].field"),
    ({"expressions": [cond("token", "isnull", True)]}, "expressions[0].field"),
    ({"sort": [{"field": "token"}]}, "sort[0].field"),
    ({"fields": ["id", "token"]}, "fields[1]"),
    ({"aggregations": {"functions": [{"type": "COUNT", "field": "token"}]}},
     "aggregations.functions[0].field"),
    ({"aggregations": {"functions": [{"type": "COUNT"}], "group_by": ["token"]}},
     "aggregations.group_by[0]"),
])
def test_secret_columns_cannot_be_filtered_sorted_or_selected(
        client: httpx.Client, payload: dict[str, Any], path: str) -> None:
    r = client.post("/users/filter", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == path
    assert "token" not in r.json()["error"]["message"].split("allowed:")[-1]


def test_secret_columns_stay_hidden_through_relationships(client: httpx.Client) -> None:
    r = client.post("/orders/filter", json={"expressions": [
        {"relationship": "users", "include": True}]})
    assert all("token" not in order["users"] for order in r.json()["data"])
    r = client.post("/orders/filter", json={"expressions": [
        {"relationship": "users", "expressions": [cond("token", "isnull", True)]}]})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "expressions[0].expressions[0].field"
