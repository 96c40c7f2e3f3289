"""Aggregations: grouped results and per-parent aggregates, on every database.

Expectations come from hand-written SQL on the same database or from Python
over the fixture rows.  The documented example payloads run as written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import LiveServer, write_config
from swain.core import create_app, load_config

SWAIN_CONFIG = {"api": {"max_page_size": 100}}

# id, email, status, role, createdAt
USERS = [(1, "a@x.io", "active", "admin", "2024-02-01 10:00:00"),
         (2, "b@x.io", "active", "user", "2023-05-01 10:00:00"),
         (3, "c@x.io", "blocked", "manager", "2024-03-01 10:00:00"),
         (4, "d@x.io", "active", "manager", "2024-06-01 10:00:00"),
         (5, "e@x.io", "pending", "user", "2022-01-01 10:00:00")]
# id, user_id, total (NULL allowed), note
ORDERS = [(1, 1, "600.00", "x"), (2, 1, "20.10", None), (3, 2, "501.00", "y"),
          (4, 3, "99999999.99", "z"), (5, 3, "0.01", None), (6, 4, None, None),
          (7, 4, "12.34", "w"), (8, 1, "0.45", "x")]


def _v(value: Any) -> str:
    return "NULL" if value is None else (str(value) if isinstance(value, int) else f"'{value}'")


def _rows(rows: list[tuple[Any, ...]]) -> str:
    return ", ".join("(" + ", ".join(_v(v) for v in row) + ")" for row in rows)


_DDL = f"""
CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(40) NOT NULL, status VARCHAR(10) NOT NULL,
                    role VARCHAR(10) NOT NULL, "createdAt" TIMESTAMP NOT NULL);
CREATE TABLE "Orders" (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
                       total DECIMAL(12,2), note VARCHAR(10));
INSERT INTO users (id, email, status, role, "createdAt") VALUES {_rows(USERS)};
INSERT INTO "Orders" (id, user_id, total, note) VALUES {_rows(ORDERS)}
"""
DDL = {"default": _DDL, "mysql": _DDL.replace('"', "`").replace("TIMESTAMP", "DATETIME")}


def totals() -> dict[int, list[Decimal]]:
    found: dict[int, list[Decimal]] = defaultdict(list)
    for _, user_id, total, _ in ORDERS:
        if total is not None:
            found[user_id].append(Decimal(total))
    return found


def _cents(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)).quantize(Decimal("0.01")))


def test_grouped_results_match_sql(client: httpx.Client, database: Any) -> None:
    r = client.post("/Orders/filter", json={"aggregations": {
        "functions": [{"type": "COUNT", "alias": "n"},
                      {"type": "COUNT", "field": "total", "alias": "with_total"},
                      {"type": "COUNT_DISTINCT", "field": "note", "alias": "notes"},
                      {"type": "SUM", "field": "total", "alias": "sum"},
                      {"type": "MIN", "field": "total", "alias": "lo"},
                      {"type": "MAX", "field": "total", "alias": "hi"},
                      {"type": "AVG", "field": "total", "alias": "avg"}],
        "group_by": ["user_id"]}})
    assert r.status_code == 200, r.text
    body = r.json()
    q = '"Orders"' if database.dialect != "mysql" else "`Orders`"
    expected = database.query(
        f"SELECT user_id, count(*), count(total), count(DISTINCT note), sum(total), min(total), "
        f"max(total), avg(total) FROM {q} GROUP BY user_id ORDER BY user_id")
    assert body["total"] == len(expected)
    for row, (user_id, n, with_total, notes, total, lo, hi, avg) in zip(
            body["data"], expected, strict=True):
        assert row["user_id"] == user_id and row["n"] == n and row["with_total"] == with_total
        assert row["notes"] == notes
        assert row["sum"] == _cents(total)
        assert row["lo"] == _cents(lo)
        assert row["hi"] == _cents(hi)
        assert row["avg"] == (None if avg is None else pytest.approx(float(avg)))
    # the decimal sum stays exact, large values included
    by_user = {row["user_id"]: row for row in body["data"]}
    assert by_user[3]["sum"] == "100000000.00"
    assert by_user[1]["sum"] == str(sum(totals()[1]))


def test_having_on_aliases_sort_by_alias_and_paging(client: httpx.Client) -> None:
    payload = {"aggregations": {
        "functions": [{"type": "SUM", "field": "total", "alias": "spent"},
                      {"type": "COUNT", "alias": "orders"}],
        "group_by": ["user_id"],
        "having": [{"field": "orders", "operator": "gte", "value": 2}],
        "sort": [{"field": "spent", "direction": "desc"}]}}
    r = client.post("/Orders/filter", json=payload)
    expected = sorted(((u, sum(t)) for u, t in totals().items()
                       if sum(1 for o in ORDERS if o[1] == u) >= 2), key=lambda x: -x[1])
    assert [(row["user_id"], Decimal(row["spent"])) for row in r.json()["data"]] == expected
    r = client.post("/Orders/filter?page=2&page_size=1", json=payload)
    assert r.json()["total"] == len(expected)
    assert [row["user_id"] for row in r.json()["data"]] == [expected[1][0]]
    r = client.post("/Orders/filter", json={"aggregations": {
        **payload["aggregations"], "having": [{"operator": "OR", "expressions": [
            {"field": "spent", "operator": "gt", "value": "1000"},
            {"field": "user_id", "operator": "eq", "value": 4}]}]}})
    assert sorted(row["user_id"] for row in r.json()["data"]) == sorted(
        u for u, t in totals().items() if sum(t) > 1000 or u == 4)


def test_filter_then_aggregate_without_groups(client: httpx.Client) -> None:
    r = client.post("/Orders/filter", json={
        "expressions": [{"field": "total", "operator": "gt", "value": 100}],
        "aggregations": {"functions": [{"type": "COUNT", "alias": "n"},
                                       {"type": "SUM", "field": "total", "alias": "t"}]}})
    big = [Decimal(o[2]) for o in ORDERS if o[2] is not None and Decimal(o[2]) > 100]
    assert r.json()["data"] == [{"n": len(big), "t": str(sum(big))}]
    r = client.post("/Orders/filter", json={
        "expressions": [{"field": "total", "operator": "gt", "value": 10 ** 12}],
        "aggregations": {"functions": [{"type": "COUNT", "alias": "n"},
                                       {"type": "MAX", "field": "total", "alias": "m"}]}})
    assert r.json()["data"] == [{"n": 0, "m": None}]
    # no filter and no group: COUNT(*) alone still counts the table's rows
    r = client.post("/Orders/filter", json={"aggregations": {"functions": [
        {"type": "COUNT", "alias": "n"}]}})
    assert r.json()["data"] == [{"n": len(ORDERS)}]


def test_spec_example_payload_runs_as_written(client: httpx.Client) -> None:
    payload = {
        "expressions": [
            {"field": "status", "operator": "eq", "value": "active"},
            {"operator": "OR", "expressions": [
                {"field": "createdAt", "operator": "gte", "value": "2024-01-01T00:00:00Z"},
                {"field": "role", "operator": "in", "value": ["admin", "manager"]}]},
            {"relationship": "Orders", "scope": "filterParent", "include": False,
             "expressions": [{"field": "total", "operator": "gt", "value": 500}]}],
        "sort": [{"field": "createdAt", "direction": "desc"}],
        "fields": ["id", "email", "createdAt"],
        "distinct": False,
    }
    r = client.post("/users/filter", json=payload)
    assert r.status_code == 200, r.text
    big = {o[1] for o in ORDERS if o[2] is not None and Decimal(o[2]) > 500}
    expected = sorted((u for u in USERS if u[2] == "active" and (
        u[4] >= "2024-01-01" or u[3] in ("admin", "manager")) and u[0] in big),
        key=lambda u: u[4], reverse=True)
    assert [row["id"] for row in r.json()["data"]] == [u[0] for u in expected] == [1]
    assert set(r.json()["data"][0]) == {"id", "email", "createdAt"}
    # The same payload with the documented aggregations part: grouped by status.
    grouped = {"expressions": payload["expressions"][:2],
               "aggregations": {"functions": [{"type": "COUNT", "alias": "t"}],
                                "group_by": ["status"]}}
    r = client.post("/users/filter", json=grouped)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"status": "active", "t": len([
        u for u in USERS if u[2] == "active" and (u[4] >= "2024-01-01" or
                                                  u[3] in ("admin", "manager"))])}]


def test_per_parent_aggregations_inside_a_relationship(client: httpx.Client) -> None:
    r = client.post("/users/filter", json={"expressions": [
        {"relationship": "Orders", "scope": "filterRelated",
         "expressions": [{"field": "total", "operator": "gt", "value": "0.10"}],
         "aggregations": {"functions": [{"type": "SUM", "field": "total", "alias": "spent"},
                                        {"type": "COUNT", "alias": "orders"},
                                        {"type": "AVG", "field": "total", "alias": "avg"}]}}]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [u["id"] for u in data] == [u[0] for u in USERS]
    for user in data:
        mine = [Decimal(o[2]) for o in ORDERS if o[1] == user["id"] and o[2] is not None
                and Decimal(o[2]) > Decimal("0.10")]
        aggregations = user["aggregations"]
        assert aggregations["orders"] == len(mine)
        assert aggregations["spent"] == (str(sum(mine)) if mine else None)
        assert aggregations["avg"] == (pytest.approx(float(sum(mine) / len(mine))) if mine
                                       else None)
        assert "Orders" not in user  # not included, only aggregated


def test_aggregation_errors_are_422(client: httpx.Client) -> None:
    cases = [
        ({"aggregations": {"functions": []}}, "aggregations.functions"),
        ({"aggregations": {"functions": [{"type": "SUM", "field": "email"}]}},
         "aggregations.functions[0].field"),
        ({"aggregations": {"functions": [{"type": "SUM"}]}}, "aggregations.functions[0].field"),
        ({"aggregations": {"functions": [{"type": "COUNT", "alias": "n"}],
                           "having": [{"field": "m", "operator": "eq", "value": 1}]}},
         "aggregations.having[0].field"),
        ({"aggregations": {"functions": [{"type": "COUNT", "alias": "n"}],
                           "having": [{"field": "n", "operator": "eq", "value": "x"}]}},
         "aggregations.having[0].value"),
        ({"aggregations": {"functions": [{"type": "COUNT", "alias": "n"},
                                         {"type": "COUNT", "alias": "n"}]}},
         "aggregations.functions[1].alias"),
        ({"aggregations": {"functions": [{"type": "COUNT"}], "sort": [{"field": "zzz"}]}},
         "aggregations.sort[0].field"),
        ({"aggregations": {"functions": [{"type": "COUNT"}], "group_by": ["nope"]}},
         "aggregations.group_by[0]"),
        ({"aggregations": ["COUNT"]}, "aggregations"),
    ]
    for payload, path in cases:
        r = client.post("/Orders/filter", json=payload)
        assert r.status_code == 422, (payload, r.text)
        assert r.json()["error"]["details"][0]["path"] == path, (payload, r.json())


@pytest.fixture(scope="module")
def without_plugins(database: Any,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path = write_config(tmp_path_factory.mktemp("disabled"), database.swain_url,
                        plugins={"disable": ["aggregations", "bulk"]},
                        api={"sql_preview": ["production"]})
    config, pm = load_config(Path(path), "development", environ={})
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def test_disabling_the_plugins_removes_them(without_plugins: httpx.Client, database: Any) -> None:
    r = without_plugins.post("/Orders/filter", json={"aggregations": {
        "functions": [{"type": "COUNT"}]}})
    assert r.status_code == 422 and "disabled" in r.json()["error"]["message"]
    r = without_plugins.post("/Orders/bulk", json=[{"id": 99, "user_id": 1}])
    assert r.status_code in (404, 405)
    q = '"Orders"' if database.dialect != "mysql" else "`Orders`"
    assert database.query(f"SELECT count(*) FROM {q}")[0][0] == len(ORDERS)
    r = without_plugins.post("/Orders/filter", json={"expressions": [
        {"field": "id", "operator": "eq", "value": 1}]})
    assert r.status_code == 200 and [o["id"] for o in r.json()["data"]] == [1]


def test_sql_preview_only_on_listed_stages(without_plugins: httpx.Client) -> None:
    r = without_plugins.post("/Orders/filter/query", json={"expressions": []})
    assert r.status_code == 404, r.text
    assert "sql" not in r.text
    doc = without_plugins.get("/openapi.json").json()
    operations = {op.get("operationId") for path in doc["paths"].values() for op in path.values()
                  if isinstance(op, dict)}
    assert "filterOrders" in operations and "filterQueryOrders" not in operations
    assert "bulkCreateOrders" not in operations
