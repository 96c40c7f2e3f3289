"""The filter grammar over real HTTP on every database.

Every answer is checked against an independent expectation: the same question
asked of Python over the fixture rows (:data:`ROWS`) or of the database with
hand-written SQL.  NULLs, empty results, unicode, large numbers and decimals
are part of the data on purpose.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest

SWAIN_CONFIG = {"api": {"max_page_size": 500, "sql_preview": ["development"]},
                "query": {"max_depth": 4, "max_expressions": 30, "max_in_size": 5}}

# id, name, city, age, score, big, active
ROWS: list[tuple[int, str, str | None, int | None, str | None, int | None, bool]] = [
    (1, "Alice", "Paris", 30, "10.50", 9007199254740993, True),
    (2, "alice", "paris", None, "0.00", -9007199254740993, False),
    (3, "Bob", None, 25, None, 0, True),
    (4, "Zoë", "Zürich", 41, "99999999.99", 1, True),
    (5, "50% off", "Lyon", 19, "-3.25", None, False),
    (6, "under_score", "Lyon", 30, "1.05", 42, True),
    (7, "ALICE SMITH", "Nice", 55, "10.50", 7, False),
    (8, "a\\b", "Paris", 25, "2.00", 8, True),
]


def _sql_value(value: Any, booleans: tuple[str, str] = ("1", "0")) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return booleans[0] if value else booleans[1]
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _inserts(booleans: tuple[str, str] = ("1", "0"), table: str = "people") -> str:
    values = ", ".join("(" + ", ".join(_sql_value(v, booleans) for v in row) + ")" for row in ROWS)
    return f"INSERT INTO {table} (id, name, city, age, score, big, active) VALUES {values}"


DDL = {
    "sqlite": """
CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, city VARCHAR(40),
                     age INTEGER, score DECIMAL(10,2), big BIGINT, active BOOLEAN NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMP, at_tz TIMESTAMP);
INSERT INTO events (id, at, at_tz) VALUES (1, '2024-01-01 10:00:00', NULL);
""" + _inserts(),
    "postgresql": """
CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, city VARCHAR(40),
                     age INTEGER, score NUMERIC(10,2), big BIGINT, active BOOLEAN NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMP, at_tz TIMESTAMPTZ);
INSERT INTO events (id, at, at_tz) VALUES (1, '2024-01-01 10:00:00', NULL);
""" + _inserts(("true", "false")).replace("%", "%%"),
    # A case-insensitive collation, as MariaDB installs by default: matching
    # must still be case-sensitive where the grammar says so.
    "mysql": """
CREATE TABLE people (id INTEGER PRIMARY KEY,
                     name VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL,
                     city VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci,
                     age INTEGER, score DECIMAL(10,2), big BIGINT, active BOOLEAN NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, at DATETIME, at_tz TIMESTAMP NULL);
INSERT INTO events (id, at, at_tz) VALUES (1, '2024-01-01 10:00:00', NULL);
""" + _inserts().replace("%", "%%").replace("\\", "\\\\"),
}

FIELDS = ("id", "name", "city", "age", "score", "big", "active")


def rows_as_dicts() -> list[dict[str, Any]]:
    return [dict(zip(FIELDS, row, strict=True)) for row in ROWS]


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def expect(predicate: Any) -> list[int]:
    return [row["id"] for row in rows_as_dicts() if predicate(row)]


def post(client: Any, expressions: list[Any], **extra: Any) -> Any:
    return client.post("/people/filter", json={"expressions": expressions, **extra},
                       params={"page_size": 500})


def cond(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@pytest.mark.parametrize(("operator", "value", "python"), [
    ("eq", 30, lambda r: r["age"] == 30),
    ("ne", 30, lambda r: r["age"] is not None and r["age"] != 30),
    ("gt", 25, lambda r: r["age"] is not None and r["age"] > 25),
    ("gte", 25, lambda r: r["age"] is not None and r["age"] >= 25),
    ("lt", 30, lambda r: r["age"] is not None and r["age"] < 30),
    ("lte", 30, lambda r: r["age"] is not None and r["age"] <= 30),
    ("in", [25, 41, 1000], lambda r: r["age"] in (25, 41, 1000)),
    ("nin", [25, 41], lambda r: r["age"] is not None and r["age"] not in (25, 41)),
    ("between", [25, 41], lambda r: r["age"] is not None and 25 <= r["age"] <= 41),
    ("isnull", True, lambda r: r["age"] is None),
    ("isnull", False, lambda r: r["age"] is not None),
    ("eq", 1000, lambda r: False),
])
def test_comparisons_on_integers(client: Any, operator: str, value: Any, python: Any) -> None:
    assert ids(post(client, [cond("age", operator, value)])) == expect(python)


@pytest.mark.parametrize(("operator", "value", "python"), [
    ("eq", "10.5", lambda r: _dec(r["score"]) == Decimal("10.5")),
    ("gt", "10.499", lambda r: r["score"] is not None and _dec(r["score"]) > Decimal("10.499")),
    ("lte", -3.25, lambda r: r["score"] is not None and _dec(r["score"]) <= Decimal("-3.25")),
    ("between", ["0", "2"], lambda r: r["score"] is not None
     and Decimal(0) <= _dec(r["score"]) <= Decimal(2)),  # type: ignore[operator]
    ("ne", "10.50", lambda r: r["score"] is not None and _dec(r["score"]) != Decimal("10.50")),
])
def test_comparisons_on_decimals(client: Any, operator: str, value: Any, python: Any) -> None:
    assert ids(post(client, [cond("score", operator, value)])) == expect(python)


@pytest.mark.parametrize(("operator", "value", "python"), [
    ("eq", 9007199254740993, lambda r: r["big"] == 9007199254740993),
    ("lt", -9007199254740992, lambda r: r["big"] is not None and r["big"] < -9007199254740992),
    ("gte", 8, lambda r: r["big"] is not None and r["big"] >= 8),
])
def test_large_integers_stay_exact(client: Any, operator: str, value: Any, python: Any) -> None:
    assert ids(post(client, [cond("big", operator, value)])) == expect(python)


@pytest.mark.parametrize(("operator", "value", "python"), [
    ("eq", "Alice", lambda r: r["name"] == "Alice"),
    ("like", "A%", lambda r: r["name"].startswith("A")),
    ("like", "_lice", lambda r: len(r["name"]) == 5 and r["name"][1:] == "lice"),
    ("ilike", "a%", lambda r: r["name"].lower().startswith("a")),
    ("contains", "lic", lambda r: "lic" in r["name"]),
    ("contains", "LIC", lambda r: "LIC" in r["name"]),
    ("icontains", "LIC", lambda r: "lic" in r["name"].lower()),
    ("startswith", "al", lambda r: r["name"].startswith("al")),
    ("istartswith", "al", lambda r: r["name"].lower().startswith("al")),
    ("endswith", "ice", lambda r: r["name"].endswith("ice")),
    ("iendswith", "ICE", lambda r: r["name"].lower().endswith("ice")),
    ("contains", "%", lambda r: "%" in r["name"]),
    ("contains", "_", lambda r: "_" in r["name"]),
    ("startswith", "50%", lambda r: r["name"].startswith("50%")),
    ("contains", "\\", lambda r: "\\" in r["name"]),
    ("like", "a\\\\b", lambda r: r["name"] == "a\\b"),
    ("like", "%\\%%", lambda r: "%" in r["name"]),
    ("contains", "ë", lambda r: "ë" in r["name"]),
    ("eq", "Zoë", lambda r: r["name"] == "Zoë"),
    ("contains", "zz", lambda r: False),
    ("in", ["Bob", "Zoë"], lambda r: r["name"] in ("Bob", "Zoë")),
])
def test_text_matching_is_the_same_everywhere(client: Any, operator: str, value: str,
                                              python: Any) -> None:
    assert ids(post(client, [cond("name", operator, value)])) == expect(python)


def test_null_matches_no_comparison_and_not_keeps_unknown(client: Any) -> None:
    # city is NULL for Bob: ne, nin and NOT(eq) all leave him out.
    assert 3 not in ids(post(client, [cond("city", "ne", "Paris")]))
    assert 3 not in ids(post(client, [cond("city", "nin", ["Paris"])]))
    got = ids(post(client, [{"operator": "NOT", "expressions": [cond("city", "eq", "Paris")]}]))
    assert got == expect(lambda r: r["city"] is not None and r["city"] != "Paris")
    got = ids(post(client, [{"operator": "not", "expressions": [cond("city", "isnull", True)]}]))
    assert got == expect(lambda r: r["city"] is not None)


def test_groups_nest(client: Any) -> None:
    tree = [
        cond("active", "eq", True),
        {"operator": "OR", "expressions": [
            cond("age", "gte", 40),
            {"operator": "AND", "expressions": [cond("city", "eq", "Paris"),
                                                cond("score", "lt", "5")]},
            {"operator": "NOT", "expressions": [cond("age", "ne", 25)]},
        ]},
    ]
    expected = expect(lambda r: r["active"] and (
        (r["age"] is not None and r["age"] >= 40)
        or (r["city"] == "Paris" and r["score"] is not None and Decimal(r["score"]) < 5)
        or (r["age"] is not None and r["age"] == 25)))
    assert ids(post(client, tree)) == expected and expected


def test_answers_match_hand_written_sql(client: Any, database: Any) -> None:
    true = "true" if database.dialect == "postgresql" else "1"
    expected = [r[0] for r in database.query(
        f"SELECT id FROM people WHERE active = {true} AND (age >= 40 OR city IN ('Lyon', 'Nice')) "
        "ORDER BY id")]
    got = ids(post(client, [cond("active", "eq", True), {"operator": "OR", "expressions": [
        cond("age", "gte", 40), cond("city", "in", ["Lyon", "Nice"])]}]))
    assert got == expected and got


def test_values_come_back_faithfully(client: Any) -> None:
    r = post(client, [cond("id", "in", [1, 2, 5])])
    data = {row["id"]: row for row in r.json()["data"]}
    assert data[1]["big"] == 9007199254740993 and data[1]["score"] == "10.50"
    assert data[2]["big"] == -9007199254740993 and data[2]["age"] is None
    assert data[5]["score"] == "-3.25" and data[5]["big"] is None and data[5]["active"] is False


def test_empty_result_and_empty_filter(client: Any) -> None:
    r = post(client, [cond("age", "gt", 1000)])
    assert r.status_code == 200 and r.json()["data"] == [] and r.json()["total"] == 0
    assert ids(post(client, [])) == [row[0] for row in ROWS]
    assert ids(client.post("/people/filter", json={})) == [row[0] for row in ROWS]


def test_sort_with_nulls_fields_and_distinct(client: Any) -> None:
    r = post(client, [], sort=[{"field": "age", "direction": "desc", "nulls": "first"}],
             fields=["id", "age"])
    data = r.json()["data"]
    assert all(set(row) == {"id", "age"} for row in data)
    ages = [row["age"] for row in data]
    assert ages[0] is None and ages[1:] == sorted((a for a in ages if a is not None), reverse=True)
    r = post(client, [], sort=[{"field": "age", "direction": "asc", "nulls": "last"}])
    ages = [row["age"] for row in r.json()["data"]]
    assert ages[-1] is None and ages[:-1] == sorted(a for a in ages if a is not None)
    r = post(client, [cond("city", "isnull", False)], fields=["city"], distinct=True,
             sort=[{"field": "city"}])
    cities = [row["city"] for row in r.json()["data"]]
    assert sorted(cities, key=lambda c: (c.lower(), c)) == sorted(
        {row[2] for row in ROWS if row[2] is not None}, key=lambda c: (c.lower(), c)) or \
        len(cities) == len({c.lower() for c in cities})
    assert r.json()["total"] == len(cities)


def test_paging_and_total(client: Any) -> None:
    r = client.post("/people/filter?page=2&page_size=2", json={"expressions": [
        cond("active", "eq", True)]})
    body = r.json()
    expected = expect(lambda row: row["active"])
    assert body["total"] == len(expected) and body["page"] == 2
    assert [row["id"] for row in body["data"]] == expected[2:4]


def test_count_with_and_without_a_filter(client: Any) -> None:
    r = client.post("/people/count", json={"expressions": [cond("city", "eq", "Lyon")]})
    lyon = expect(lambda x: x["city"] == "Lyon")
    assert r.status_code == 200 and r.json() == {"count": len(lyon)}
    r = client.post("/people/count")
    assert r.json() == {"count": len(ROWS)}


def test_get_with_a_filter_parameter(client: Any) -> None:
    payload = json.dumps({"expressions": [cond("age", "between", [20, 35])]})
    r = client.get(f"/people?filter={quote(payload)}&fields=id,age&sort=-age&page_size=50")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [row["id"] for row in data] == [
        row["id"] for row in sorted((x for x in rows_as_dicts()
                                     if x["age"] is not None and 20 <= x["age"] <= 35),
                                    key=lambda x: (-x["age"], x["id"]))]
    assert all(set(row) == {"id", "age"} for row in data)
    r = client.get(f"/people?filter={quote(payload)}&active=true")
    assert ids(r) == expect(lambda x: x["age"] is not None and 20 <= x["age"] <= 35 and x["active"])
    r = client.get("/people?filter=%7Bnot-json")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "filter"


def test_sql_preview_lists_sql_and_params_apart(client: Any) -> None:
    r = client.post("/people/filter/query", json={"expressions": [cond("name", "eq", "Bob")]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [row["id"] for row in body["data"]] == [3]
    assert "people" in body["sql"] and "Bob" not in body["sql"]
    assert "Bob" in body["params"].values()


@pytest.mark.parametrize(("payload", "path"), [
    ([], "body"),
    ({"expressions": {}}, "expressions"),
    ({"expressions": [cond("nope", "eq", 1)]}, "expressions[0].field"),
    ({"expressions": [cond("age", "resembles", 1)]}, "expressions[0].operator"),
    ({"expressions": [cond("age", "eq", "ten")]}, "expressions[0].value"),
    ({"expressions": [cond("age", "eq", None)]}, "expressions[0].value"),
    ({"expressions": [cond("age", "in", [1, 2, 3, 4, 5, 6])]}, "expressions[0].value"),
    ({"expressions": [cond("age", "in", [])]}, "expressions[0].value"),
    ({"expressions": [cond("age", "in", 3)]}, "expressions[0].value"),
    ({"expressions": [cond("age", "between", [1])]}, "expressions[0].value"),
    ({"expressions": [cond("age", "between", [1, "x"])]}, "expressions[0].value[1]"),
    ({"expressions": [cond("age", "isnull", "yes")]}, "expressions[0].value"),
    ({"expressions": [cond("age", "like", "1%")]}, "expressions[0].operator"),
    ({"expressions": [cond("active", "gt", True)]}, "expressions[0].operator"),
    ({"expressions": [cond("name", "like", "abc\\")]}, "expressions[0].value"),
    ({"expressions": [cond("score", "eq", "1e999999999")]}, "expressions[0].value"),
    ({"expressions": [cond("score", "eq", [1])]}, "expressions[0].value"),
    ({"expressions": [{"operator": "XOR", "expressions": []}]}, "expressions[0].operator"),
    ({"expressions": [{"operator": "OR", "expressions": []}]}, "expressions[0].expressions"),
    ({"expressions": [{"operator": "OR", "expressions": [
        {"operator": "OR", "expressions": [cond("nope", "eq", 1)]}]}]},
     "expressions[0].expressions[0].expressions[0].field"),
    ({"expressions": [{"operator": "OR", "expressions": [
        {"operator": "OR", "expressions": [{"operator": "OR", "expressions": [
            {"operator": "OR", "expressions": [cond("age", "eq", 1)]}]}]}]}]},
     "expressions[0].expressions[0].expressions[0].expressions[0].expressions[0]"),
    ({"expressions": [cond("age", "eq", 1)] * 31}, "expressions[30]"),
    ({"expressions": [{"field": "age", "operator": "eq", "value": 1, "x": 2}]},
     "expressions[0].x"),
    ({"expressions": [], "sort": [{"field": "nope"}]}, "sort[0].field"),
    ({"expressions": [], "sort": [{"field": "age", "direction": "up"}]}, "sort[0].direction"),
    ({"expressions": [], "sort": [{"field": "age", "nulls": "middle"}]}, "sort[0].nulls"),
    ({"expressions": [], "fields": ["id", "nope"]}, "fields[1]"),
    ({"expressions": [], "distinct": "yes"}, "distinct"),
    ({"expressions": [], "bogus": 1}, "bogus"),
    ({"expressions": [{"relationship": "nothing", "expressions": []}]},
     "expressions[0].relationship"),
    ({"expressions": [], "aggregations": {"functions": [{"type": "MEDIAN", "field": "age"}]}},
     "aggregations.functions[0].type"),
])
def test_malformed_payloads_are_422_naming_the_path(client: Any, payload: Any, path: str) -> None:
    r = client.post("/people/filter", json=payload)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["path"] == path, error


def test_unknown_operator_lists_the_allowed_ones(client: Any) -> None:
    r = client.post("/people/filter", json={"expressions": [cond("name", "resembles", "x")]})
    message = r.json()["error"]["message"]
    for name in ("eq", "contains", "icontains", "startswith", "isnull", "between"):
        assert name in message


def test_broken_json_is_400_and_writes_nothing(client: Any, database: Any) -> None:
    before = database.query("SELECT count(*) FROM people")[0][0]
    for body in (b"{", b'{"expressions": [], "expressions": []}', b'{"x": NaN}'):
        r = client.post("/people/filter", content=body,
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
    assert database.query("SELECT count(*) FROM people")[0][0] == before


def test_timestamps_compare_as_instants(client: Any, database: Any) -> None:
    # rows written through the API ("T", zone given) and by SQL (" ") compare alike
    for i, (stamp, zoned) in enumerate([("2024-01-01 10:00:00", "2024-01-01T12:00:00+02:00"),
                                        ("2024-01-01 10:00:01", "2024-01-01T10:00:01Z"),
                                        ("2024-01-01 09:59:59", "2024-01-01T09:59:59+00:00")]):
        r = client.post("/events", json={"id": 100 + i, "at": stamp, "at_tz": zoned})
        assert r.status_code == 201, r.text

    def got(field: str, operator: str, value: Any) -> list[int]:
        r = client.post("/events/filter", json={"expressions": [cond(field, operator, value)]})
        return ids(r)

    assert got("at", "eq", "2024-01-01T10:00:00") == [1, 100]
    assert got("at", "gt", "2024-01-01T10:00:00") == [101]
    assert got("at", "lte", "2024-01-01 10:00:00") == [1, 100, 102]
    assert got("at_tz", "eq", "2024-01-01T10:00:00Z") == [100]
    assert got("at_tz", "gte", "2024-01-01T11:00:00+01:00") == [100, 101]
    assert got("at_tz", "lt", "2024-01-01T10:00:00+00:00") == [102]
    assert got("at", "between", ["2024-01-01T09:00:00", "2024-01-01T10:00:00"]) == [1, 100, 102]
