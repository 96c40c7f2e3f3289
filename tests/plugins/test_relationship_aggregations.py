"""Aggregations inside a relationship, with and without ``group_by``, and ``distinct``
together with includes, on every database.

The product document's "Counts & Aggregations" payloads run as written.  Grouped by
the column that links the related rows to their parent, a relationship's aggregates
are one value per parent (``row["aggregations"]["order_value"]``); grouped by other
columns they are a list of groups per parent, under the relationship's name.  A row
policy hides the orders whose status is ``void``: no aggregate may count them.
Expectations are computed in Python over the fixture rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from swain.contrib.testing import LiveServer
from swain.core import Predicate, create_app, hookimpl, load_config

SWAIN_CONFIG = {"api": {"max_page_size": 100}}

# id, email, status
USERS = [(1, "a@x.io", "active"), (2, "b@x.io", "active"), (3, "c@x.io", "trial"),
         (4, "d@x.io", "active"), (5, "e@x.io", "churned")]
# id, user_id, status, total, placed_on, paid
ORDERS = [(1, 1, "completed", "600.00", "2024-01-05", True),
          (2, 1, "completed", "20.10", "2024-02-01", True),
          (3, 1, "pending", "0.45", None, False),
          (4, 2, "completed", "501.00", "2024-01-05", True),
          (5, 2, "void", "1000.00", "2024-03-01", False),
          (6, 3, "pending", None, None, None),
          (7, 3, "completed", "99999999.99", "2023-12-31", True),
          (8, 5, "refunded", "12.34", "2024-01-05", False)]
# id, order_id, sku, qty
ITEMS = [(1, 1, "A", 2), (2, 1, "B", 1), (3, 2, "A", 5), (4, 4, "C", 1), (5, 7, "A", 3),
         (6, 5, "A", 9), (7, 1, "A", 4)]


def _v(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value) if isinstance(value, int) else f"'{value}'"


def _rows(rows: list[tuple[Any, ...]]) -> str:
    return ", ".join("(" + ", ".join(_v(v) for v in row) + ")" for row in rows)


DDL = f"""
CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(40) NOT NULL,
                    status VARCHAR(10) NOT NULL, secret VARCHAR(40));
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
                     status VARCHAR(12) NOT NULL, total DECIMAL(12,2), placed_on DATE,
                     paid BOOLEAN);
CREATE TABLE order_items (id INTEGER PRIMARY KEY,
                          order_id INTEGER NOT NULL REFERENCES orders(id),
                          sku VARCHAR(10) NOT NULL, qty INTEGER NOT NULL);
INSERT INTO users (id, email, status) VALUES {_rows(USERS)};
INSERT INTO orders (id, user_id, status, total, placed_on, paid) VALUES {_rows(ORDERS)};
INSERT INTO order_items (id, order_id, sku, qty) VALUES {_rows(ITEMS)}
"""


class HideVoid:
    """Row policy: nobody sees orders whose status is ``void``."""

    async def predicate(self, identity: Any, table: Any, sa_table: sa.Table,
                        action: str) -> Predicate | None:
        if table.name != "orders":
            return None
        return Predicate(("hide_void",), sa_table.c.status != sa.bindparam("_void"),
                         {"_void": "void"})


class PolicyPlugin:
    @hookimpl
    def swain_row_policies(self, config: Any) -> list[Any]:
        return [HideVoid()]

    @hookimpl
    def swain_prepare_schema(self, schema: Any, config: Any) -> None:
        schema.tables["users"].column("secret").secret = True


@pytest.fixture(scope="module")
def server(config_path: Path) -> Iterator[LiveServer]:
    config, pm = load_config(config_path, "development", environ={}, plugins=[PolicyPlugin()])
    with LiveServer(create_app(config, pm)) as live:
        yield live


VISIBLE = [o for o in ORDERS if o[2] != "void"]


def _data(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def _sum(orders: list[tuple[Any, ...]]) -> str | None:
    totals = [Decimal(o[3]) for o in orders if o[3] is not None]
    return str(sum(totals)) if totals else None


def test_the_documented_payload_runs_as_written(client: httpx.Client) -> None:
    payload = {
        "expressions": [
            {
                "relationship": "Orders",
                "include": True,
                "expressions": [
                    {"field": "status", "operator": "eq", "value": "completed"}
                ],
                "aggregations": {
                    "functions": [{"type": "SUM", "field": "total", "alias": "order_value"}],
                    "group_by": ["user_id"]
                }
            }
        ],
        "distinct": True
    }
    data = _data(client.post("/users/filter", json=payload))
    completed = [o for o in VISIBLE if o[2] == "completed"]
    assert [u["id"] for u in data] == sorted({o[1] for o in completed}) == [1, 2, 3]
    for user in data:
        mine = [o for o in completed if o[1] == user["id"]]
        assert user["aggregations"] == {"order_value": _sum(mine)}
        assert [o["id"] for o in user["orders"]] == [o[0] for o in mine]
    assert data[2]["aggregations"]["order_value"] == "99999999.99"


def test_the_python_example_reads_one_value_per_parent(client: httpx.Client) -> None:
    agg_payload = {
        "expressions": [{
            "relationship": "Orders",
            "include": True,
            "aggregations": {
                "functions": [{"type": "SUM", "field": "total", "alias": "order_value"}],
                "group_by": ["user_id"]
            }
        }]
    }
    r = client.post("/users/filter?page=1&page_size=1", json=agg_payload)
    report = r.json()
    assert report["total"] == len({o[1] for o in VISIBLE})
    assert report["data"][0]["aggregations"]["order_value"] == _sum(
        [o for o in VISIBLE if o[1] == 1]) == "620.55"
    # without group_by: the same values
    plain = {"expressions": [{**agg_payload["expressions"][0], "aggregations": {
        "functions": agg_payload["expressions"][0]["aggregations"]["functions"]}}]}
    again = _data(client.post("/users/filter", json=plain))
    assert [u["aggregations"] for u in again] == [
        u["aggregations"] for u in _data(client.post("/users/filter", json=agg_payload))]


def _groups(user_id: int, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """What the API answers for ``group_by`` ``names`` (of orders), computed here."""
    index = {"user_id": 1, "status": 2, "placed_on": 4, "paid": 5}
    found: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for order in VISIBLE:
        if order[1] == user_id:
            found[tuple(order[index[n]] for n in names)].append(order)

    def order_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple((value is not None, value) for value in key)  # nulls first

    return [{**dict(zip(names, key, strict=True)), "value": _sum(orders), "n": len(orders)}
            for key, orders in sorted(found.items(), key=lambda item: order_key(item[0]))]


FUNCTIONS = [{"type": "SUM", "field": "total", "alias": "value"}, {"type": "COUNT", "alias": "n"}]


@pytest.mark.parametrize("group_by", [("status",), ("user_id", "status"), ("paid", "placed_on")])
def test_other_group_columns_give_a_list_of_groups_per_parent(
        client: httpx.Client, group_by: tuple[str, ...]) -> None:
    data = _data(client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "scope": "filterRelated",
         "aggregations": {"functions": FUNCTIONS, "group_by": list(group_by)}}]}))
    assert [u["id"] for u in data] == [u[0] for u in USERS]
    for user in data:
        assert set(user["aggregations"]) == {"orders"}
        assert user["aggregations"]["orders"] == _groups(user["id"], group_by), user
        assert "orders" not in {k for k in user if k != "aggregations"}  # not included
    by_id = {u["id"]: u for u in data}
    assert by_id[4]["aggregations"]["orders"] == []  # no orders: no groups
    assert all(g["status"] != "void" for g in by_id[2]["aggregations"]["orders"]
               if "status" in g)


def test_groups_and_values_sit_side_by_side(client: httpx.Client) -> None:
    """One relationship grouped by status, another (the same table) per parent."""
    data = _data(client.post("/users/filter?page_size=2", json={"expressions": [
        {"relationship": "orders", "scope": "filterRelated", "include": True,
         "fields": ["id"], "aggregations": {"functions": FUNCTIONS, "group_by": ["status"]}},
        {"relationship": "orders", "scope": "filterRelated",
         "expressions": [{"field": "paid", "operator": "eq", "value": True}],
         "aggregations": {"functions": [{"type": "MAX", "field": "placed_on",
                                         "alias": "last_paid"}]}}]}))
    for user in data:
        mine = [o for o in VISIBLE if o[1] == user["id"]]
        assert user["aggregations"]["orders"] == _groups(user["id"], ("status",))
        paid = [o[4] for o in mine if o[5]]
        assert user["aggregations"]["last_paid"] == (max(paid) if paid else None)
        assert user["orders"] == [{"id": o[0]} for o in mine]


def test_nested_grouped_aggregations_inside_included_rows(client: httpx.Client) -> None:
    data = _data(client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "scope": "filterRelated", "include": True,
         "fields": ["id"],
         "expressions": [{"relationship": "order_items", "scope": "filterRelated",
                          "aggregations": {"functions": [{"type": "SUM", "field": "qty",
                                                          "alias": "qty"}],
                                           "group_by": ["sku"]}}]}]}))
    for user in data:
        for order in user["orders"]:
            items = [i for i in ITEMS if i[1] == order["id"]]
            skus = sorted({i[2] for i in items})
            assert order["aggregations"] == {"order_items": [
                {"sku": sku, "qty": sum(i[3] for i in items if i[2] == sku)} for sku in skus]}
            assert set(order) == {"id", "aggregations"}


def test_many_to_one_grouped_by_its_link_is_one_value(client: httpx.Client) -> None:
    data = _data(client.post("/orders/filter", json={"expressions": [
        {"relationship": "users", "aggregations": {
            "functions": [{"type": "COUNT", "alias": "owners"}], "group_by": ["id"]}}]}))
    assert [o["id"] for o in data] == [o[0] for o in VISIBLE]
    assert all(o["aggregations"] == {"owners": 1} for o in data)


def test_distinct_with_includes_keeps_distinct_parent_rows(client: httpx.Client) -> None:
    statuses = _data(client.post("/users/filter", json={"fields": ["status"], "distinct": True,
                                                        "sort": [{"field": "status"}]}))
    assert statuses == [{"status": s} for s in sorted({u[2] for u in USERS})]
    # With an include, each parent row keeps its own related rows: parents that differ
    # only in the columns linking them (here the key) stay apart.
    data = _data(client.post("/users/filter", json={
        "fields": ["status"], "distinct": True, "sort": [{"field": "status"}],
        "expressions": [{"relationship": "orders", "include": True, "fields": ["id"]}]}))
    owners = sorted({o[1] for o in VISIBLE})
    expected = sorted(([u for u in USERS if u[0] in owners]), key=lambda u: (u[2], u[0]))
    assert data == [{"status": u[2], "orders": [{"id": o[0]} for o in VISIBLE if o[1] == u[0]]}
                    for u in expected]


@pytest.mark.parametrize(("aggregations", "path"), [
    ({"functions": FUNCTIONS, "group_by": ["nope"]}, "expressions[0].aggregations.group_by[0]"),
    ({"functions": FUNCTIONS, "group_by": "status"}, "expressions[0].aggregations.group_by"),
    ({"functions": FUNCTIONS, "having": []}, "expressions[0].aggregations.having"),
    ({"functions": FUNCTIONS, "sort": []}, "expressions[0].aggregations.sort"),
    ({"functions": [{"type": "SUM", "field": "status"}]},
     "expressions[0].aggregations.functions[0].field"),
    ({"functions": FUNCTIONS, "group_by": ["status"], "extra": 1},
     "expressions[0].aggregations.extra"),
])
def test_bad_relationship_aggregations_are_422(client: httpx.Client, aggregations: Any,
                                              path: str) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "orders", "aggregations": aggregations}]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == path, r.json()


def test_secret_columns_cannot_be_grouped_through_a_relationship(client: httpx.Client) -> None:
    r = client.post("/orders/filter", json={"expressions": [
        {"relationship": "users", "aggregations": {
            "functions": [{"type": "COUNT", "alias": "n"}], "group_by": ["secret"]}}]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == "expressions[0].aggregations.group_by[0]"
    assert "secret" not in r.json()["error"]["message"].split("allowed:")[-1]
    r = client.post("/orders/filter", json={"expressions": [
        {"relationship": "users", "aggregations": {
            "functions": [{"type": "COUNT_DISTINCT", "field": "secret"}]}}]})
    assert r.status_code == 422, r.text


def test_two_relationships_may_not_write_the_same_name(client: httpx.Client) -> None:
    sums = {"functions": [{"type": "SUM", "field": "total", "alias": "orders"}]}
    grouped = {"functions": FUNCTIONS, "group_by": ["status"]}
    for first, second, path in [
            (sums, sums, "expressions[1].aggregations.functions[0].alias"),
            (grouped, grouped, "expressions[1].relationship"),
            (sums, grouped, "expressions[1].relationship")]:
        r = client.post("/users/filter", json={"expressions": [
            {"relationship": "orders", "scope": "filterRelated", "aggregations": first},
            {"relationship": "orders", "scope": "filterRelated", "aggregations": second}]})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["path"] == path, r.json()
