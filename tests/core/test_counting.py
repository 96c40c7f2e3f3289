"""Counting and keyset paging over real HTTP, on every database.

``count=bounded`` (the default) counts exactly up to ``api.exact_count_limit``
(5 here) and estimates beyond, saying so in ``total_is_estimate``; tenant
scoping applies inside the bounded count.  ``after=`` walks every row exactly
once in the request's order; a bad cursor is a 400 naming ``after``.

Tenant a owns 12 items, tenant b 3: a bounded count for b that leaked a's rows
would be over the limit.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from swain.contrib.testing import FreshDatabase
from swain.contrib.testing.auth import FAST_ARGON2
from swain.core import ConfigError, load_config

PASSWORD = "counting-password"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
LIMIT = 5
A_ITEMS, B_ITEMS = 12, 3


def _items() -> str:
    rows = []
    for i in range(1, A_ITEMS + B_ITEMS + 1):
        org = 1 if i <= A_ITEMS else 2
        # scores tie in threes, names tie in pairs, so the key decides within ties
        note = "NULL" if i % 4 == 0 else f"'note {i}'"
        rows.append(f"({i}, {org}, {i % 4}, 'n{i % 6}', {note}, {(i * 37) % 11}.{i % 10}0, "
                    f"'2024-0{1 + i % 3}-1{i % 5}')")
    return ("INSERT INTO items (id, org_id, score, name, note, amount, made) VALUES "
            + ", ".join(rows) + ";")


_ROWS = f"""
INSERT INTO orgs (id, name) VALUES (1, 'a'), (2, 'b');
INSERT INTO users (id, email, firstname, password, isactive, org_id) VALUES
  (1, 'a@a.example', 'a', '{HASH}', {{true}}, 1), (2, 'b@b.example', 'b', '{HASH}', {{true}}, 2);
{_items()}
INSERT INTO tags (id, label) VALUES (1, 'x'), (2, 'y');
INSERT INTO loose (n) VALUES (1), (2);
INSERT INTO events (id, at) VALUES (1, '2024-01-01 10:00:00'), (2, '2024-01-01T09:30:00'),
  (3, '2024-01-01 09:30:00'), (4, '2024-01-02 08:00:00'), (5, '2024-01-01T23:15:00'),
  (6, '2024-01-01 10:00:00'), (7, '2023-12-31 23:59:59');
"""

_TABLES = """
CREATE TABLE orgs (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL);
CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE,
  firstname VARCHAR(50), password VARCHAR(255) NOT NULL, isactive {bool} NOT NULL,
  org_id INTEGER NOT NULL REFERENCES orgs(id));
CREATE TABLE items (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs(id),
  score INTEGER NOT NULL, name VARCHAR(20) NOT NULL, note VARCHAR(20),
  amount NUMERIC(10, 2) NOT NULL, made DATE NOT NULL);
CREATE TABLE tags (id INTEGER PRIMARY KEY, label VARCHAR(10) NOT NULL);
CREATE TABLE loose (n INTEGER NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, at {timestamp} NOT NULL);
"""

DDL = {
    "sqlite": _TABLES.format(bool="BOOLEAN", timestamp="TIMESTAMP") + _ROWS.format(true="1"),
    "postgresql": _TABLES.format(bool="BOOLEAN", timestamp="TIMESTAMP")
    + _ROWS.format(true="TRUE"),
    "mysql": _TABLES.format(bool="TINYINT(1)", timestamp="DATETIME") + _ROWS.format(true="1"),
}

SWAIN_CONFIG = {
    "auth": {"enabled": True, "identity_cache": "0s",
             "jwt_secret": "counting test secret, long enough for HS256 signatures",
             **FAST_ARGON2},
    "mapping": {"user": {"table": "users", "id": "id", "email": "email",
                         "firstname": "firstname", "password": "password",
                         "isactive": "isactive"}},
    "rls": {"enabled": True, "tenant_table": "orgs", "tenant_field": "org_id",
            "exclude_tables": ["tags", "loose", "events"]},
    "api": {"exact_count_limit": LIMIT, "max_page_size": 100},
}


@pytest.fixture(scope="module")
def tokens(client: httpx.Client) -> dict[str, dict[str, str]]:
    out = {}
    for name in ("a", "b"):
        r = client.post("/auth/login", json={"email": f"{name}@{name}.example",
                                             "password": PASSWORD})
        assert r.status_code == 200, r.text
        out[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return out


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _refused(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert error["details"][0]["path"] == "after"
    for word in words:
        assert word in error["message"], error["message"]
    return str(error["message"])


# -- counting ---------------------------------------------------------------------------


def test_bounded_is_the_default_and_exact_under_the_limit(
        client: httpx.Client, tokens: dict[str, dict[str, str]]) -> None:
    body = _ok(client.get("/items", headers=tokens["b"]))
    assert (body["total"], body["total_pages"], body["total_is_estimate"]) == (B_ITEMS, 1, False)
    assert "next_after" not in body
    filtered = _ok(client.post("/items/filter", headers=tokens["b"], json={
        "expressions": [{"field": "score", "operator": "gt", "value": 0}]}))
    assert filtered["total_is_estimate"] is False
    assert filtered["total"] == len(filtered["data"]) == sum(1 for i in range(13, 16) if i % 4)


def test_bounded_above_the_limit_is_an_estimate_where_the_planner_has_one(
        client: httpx.Client, tokens: dict[str, dict[str, str]], dialect: str) -> None:
    """PostgreSQL estimates (never below limit + 1); SQLite has no planner estimate and
    MariaDB none for a filtered (here: tenant-scoped) count, so they count exactly and
    say it is no estimate."""
    for params in ({}, {"count": "bounded"}):
        body = _ok(client.get("/items", params=params, headers=tokens["a"]))
        if dialect == "postgresql":
            assert body["total_is_estimate"] is True
            assert body["total"] >= LIMIT + 1
        else:
            assert (body["total"], body["total_is_estimate"]) == (A_ITEMS, False)
        assert len(body["data"]) == A_ITEMS  # the page itself is whole


def test_bounded_unscoped_table(client: httpx.Client, tokens: dict[str, dict[str, str]],
                                database: FreshDatabase, dialect: str) -> None:
    database.run_script("INSERT INTO tags (id, label) VALUES "
                        + ", ".join(f"({i}, 't{i}')" for i in range(3, 10)) + ";")
    try:
        body = _ok(client.get("/tags", headers=tokens["a"]))
        assert body["total"] >= LIMIT + 1
        if not body["total_is_estimate"]:
            assert body["total"] == 9 and dialect != "postgresql"
        exact = _ok(client.get("/tags", params={"count": "exact"}, headers=tokens["a"]))
        assert (exact["total"], exact["total_is_estimate"]) == (9, False)
    finally:
        database.run_script("DELETE FROM tags WHERE id > 2;")


def test_other_count_modes(client: httpx.Client, tokens: dict[str, dict[str, str]]) -> None:
    exact = _ok(client.get("/items", params={"count": "exact"}, headers=tokens["a"]))
    assert (exact["total"], exact["total_pages"], exact["total_is_estimate"]) == \
        (A_ITEMS, 1, False)
    none = _ok(client.get("/items", params={"count": "none"}, headers=tokens["a"]))
    assert (none["total"], none["total_pages"], none["total_is_estimate"]) == (None, None, None)
    estimated = _ok(client.get("/items", params={"count": "estimated"}, headers=tokens["a"]))
    assert isinstance(estimated["total"], int)
    assert isinstance(estimated["total_is_estimate"], bool)
    if not estimated["total_is_estimate"]:
        assert estimated["total"] == A_ITEMS
    r = client.get("/items", params={"count": "approximately"}, headers=tokens["a"])
    assert r.status_code == 422
    assert "bounded" in r.json()["error"]["message"]


def test_bounded_count_of_groups(client: httpx.Client, tokens: dict[str, dict[str, str]],
                                 dialect: str) -> None:
    """Grouped lists count their groups the same way, within the tenant."""
    payload = {"aggregations": {"functions": [{"type": "COUNT", "alias": "n"}],
                                "group_by": ["id"]}}
    small = _ok(client.post("/items/filter", headers=tokens["b"], json=payload))
    assert (small["total"], small["total_is_estimate"]) == (B_ITEMS, False)
    big = _ok(client.post("/items/filter", headers=tokens["a"], json=payload))
    assert len(big["data"]) == A_ITEMS
    assert big["total"] >= LIMIT + 1
    if big["total_is_estimate"] is False:
        assert big["total"] == A_ITEMS and dialect != "postgresql"
    exact = _ok(client.post("/items/filter", params={"count": "exact"}, headers=tokens["a"],
                            json=payload))
    assert (exact["total"], exact["total_is_estimate"]) == (A_ITEMS, False)


def test_sql_preview_shows_the_bounded_count(client: httpx.Client,
                                             tokens: dict[str, dict[str, str]],
                                             dialect: str) -> None:
    body = _ok(client.post("/items/filter/query", headers=tokens["b"], json={}))
    statements = " ".join(s["sql"] for s in body["statements"]).upper()
    assert body["total"] == B_ITEMS
    if dialect == "postgresql":  # the page and its bounded count: one statement
        assert len(body["statements"]) == 1
        assert "COUNT(*)" in statements and "LIMIT" in statements
        assert body["statements"][0]["params"]["_bound"] == LIMIT + 1


# -- keyset paging -----------------------------------------------------------------------


def _sorted_body(body: dict[str, Any], sort: str | None) -> dict[str, Any]:
    """``body`` with ``sort`` as the filter grammar spells it."""
    terms = [{"field": t.lstrip("-"), "direction": "desc" if t.startswith("-") else "asc"}
             for t in (sort or "").split(",") if t]
    return {**body, "sort": terms}


def _walk(client: httpx.Client, headers: dict[str, str], size: int, sort: str | None = None,
          body: dict[str, Any] | None = None, **extra: str) -> list[dict[str, Any]]:
    """Every row, page by page through ``next_after``."""
    params: dict[str, Any] = {"page_size": size, "after": "", **extra}
    if sort and body is None:
        params["sort"] = sort
    if body is not None:
        body = _sorted_body(body, sort)
    rows: list[dict[str, Any]] = []
    for _ in range(50):
        if body is None:
            page = _ok(client.get("/items", params=params, headers=headers))
        else:
            page = _ok(client.post("/items/filter", params=params, headers=headers, json=body))
        assert (page["page"], page["page_size"]) == (1, size)
        assert len(page["data"]) <= size
        rows += page["data"]
        if page["next_after"] is None:
            return rows
        assert len(page["data"]) == size
        params["after"] = page["next_after"]
    raise AssertionError("the walk did not end")


def _paged(client: httpx.Client, headers: dict[str, str], sort: str | None = None,
           body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The same rows in one offset page: the order keyset pages must follow."""
    params: dict[str, Any] = {"page_size": 100}
    if body is None:
        if sort:
            params["sort"] = sort
        return list(_ok(client.get("/items", params=params, headers=headers))["data"])
    return list(_ok(client.post("/items/filter", params=params, headers=headers,
                                json=_sorted_body(body, sort)))["data"])


def _ordered(rows: list[dict[str, Any]], sort: str) -> list[int]:
    """Row ids in ``sort`` order with the key as tie-breaker, sorted in Python."""
    found = list(rows)
    for term in reversed([*sort.split(","), "id"]):
        name = term.lstrip("-")
        value = (lambda r, n=name: float(r[n])) if name == "amount" else \
            (lambda r, n=name: r[n])
        found.sort(key=value, reverse=term.startswith("-"))
    return [r["id"] for r in found]


@pytest.mark.parametrize("sort", [None, "score", "-score", "score,-name", "-score,name",
                                  "-amount", "made,-score", "name,score"])
@pytest.mark.parametrize("size", [1, 4, 6])
def test_keyset_walks_every_row_once(client: httpx.Client, tokens: dict[str, dict[str, str]],
                                     sort: str | None, size: int) -> None:
    walked = _walk(client, tokens["a"], size, sort)
    whole = _paged(client, tokens["a"], sort)
    assert len(whole) == A_ITEMS
    assert walked == whole
    assert [r["id"] for r in walked] == _ordered(whole, sort or "id")


@pytest.mark.parametrize("sort", ["score", "-score,name"])
def test_keyset_with_a_filter(client: httpx.Client, tokens: dict[str, dict[str, str]],
                              sort: str) -> None:
    body = {"expressions": [{"field": "score", "operator": "gt", "value": 0}]}
    walked = _walk(client, tokens["a"], 2, sort, body)
    whole = _paged(client, tokens["a"], sort, body)
    assert walked == whole and len(whole) == sum(1 for i in range(1, 13) if i % 4)
    assert [r["id"] for r in walked] == _ordered(whole, sort)
    # GET with equality filters and fields the sort does not include
    names = _walk(client, tokens["a"], 2, sort, fields="name", score="2")
    assert names == [{"name": r["name"]} for r in whole if r["score"] == 2]


def test_keyset_pages_keep_their_envelope(client: httpx.Client,
                                          tokens: dict[str, dict[str, str]]) -> None:
    first = _ok(client.get("/items", params={"page_size": 6, "after": "", "count": "exact"},
                           headers=tokens["a"]))
    assert (first["total"], first["total_pages"], first["total_is_estimate"]) == (A_ITEMS, 2, False)
    assert isinstance(first["next_after"], str)
    second = _ok(client.get("/items", params={"page_size": 6, "after": first["next_after"],
                                              "count": "exact"}, headers=tokens["a"]))
    # the total counts the filter's rows, not those after the cursor
    assert second["total"] == A_ITEMS
    assert second["next_after"] is None  # exactly full and the last: nothing follows
    assert len(second["data"]) == 6


def test_keyset_stays_within_the_tenant(client: httpx.Client,
                                        tokens: dict[str, dict[str, str]]) -> None:
    walked = _walk(client, tokens["b"], 1, "-score")
    assert {r["org_id"] for r in walked} == {2} and len(walked) == B_ITEMS
    # a's cursor, pointing at a's rows, only moves b along b's own
    a_page = _ok(client.get("/items", params={"page_size": 1, "after": "", "sort": "-score"},
                            headers=tokens["a"]))
    b_rest = _ok(client.get("/items", params={"after": a_page["next_after"], "sort": "-score",
                                              "page_size": 100}, headers=tokens["b"]))
    assert {r["org_id"] for r in b_rest["data"]} <= {2}


@pytest.mark.parametrize("sort", ["at", "-at"])
def test_keyset_by_timestamps_in_any_iso_form(client: httpx.Client,
                                              tokens: dict[str, dict[str, str]],
                                              sort: str) -> None:
    """SQLite keeps timestamps as the text written ("T" or " "): a walk follows their
    instants all the same."""
    params: dict[str, Any] = {"page_size": 2, "after": "", "sort": sort}
    walked: list[dict[str, Any]] = []
    for _ in range(10):
        page = _ok(client.get("/events", params=params, headers=tokens["a"]))
        walked += page["data"]
        if page["next_after"] is None:
            break
        params["after"] = page["next_after"]
    instants = {r["id"]: dt.datetime.fromisoformat(r["at"]) for r in walked}
    assert sorted(instants) == list(range(1, 8))
    expected = sorted(instants, key=lambda i: (instants[i], i) if sort == "at"
                      else (-instants[i].timestamp(), i))
    assert [r["id"] for r in walked] == expected


def _cursor(client: httpx.Client, headers: dict[str, str], **params: str) -> str:
    page = _ok(client.get("/items", params={"page_size": 2, "after": "", **params},
                          headers=headers))
    assert isinstance(page["next_after"], str)
    return str(page["next_after"])


def _tampered(cursor: str, values: list[Any]) -> str:
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    data["v"] = values
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_bad_cursors_are_400(client: httpx.Client, tokens: dict[str, dict[str, str]]) -> None:
    a = tokens["a"]
    for garbage in ("!!!", "bm90IGpzb24", base64.urlsafe_b64encode(b"[1, 2]").decode(),
                    base64.urlsafe_b64encode(b'{"f": "x"}').decode()):
        _refused(client.get("/items", params={"after": garbage}, headers=a), "cursor")
    by_score = _cursor(client, a, sort="score")
    _refused(client.get("/items", params={"after": by_score, "sort": "-score"}, headers=a),
             "another table or sort")
    _refused(client.get("/items", params={"after": by_score}, headers=a), "another")
    _refused(client.post("/items/filter", params={"after": by_score}, headers=a, json={
        "sort": [{"field": "name", "direction": "asc"}]}), "another")
    tag_cursor = _ok(client.get("/tags", params={"page_size": 1, "after": ""},
                                headers=a))["next_after"]
    _refused(client.get("/items", params={"after": tag_cursor}, headers=a), "another table")
    for values, words in ((["three", 1], ("'score'", "integer")), ([1], ("does not match",)),
                          ([None, 1], ("'score'", "null")), ([1, 2.5], ("'id'",))):
        _refused(client.get("/items", params={"after": _tampered(by_score, values),
                                              "sort": "score"}, headers=a), *words)
    by_amount = _cursor(client, a, sort="amount")
    _refused(client.get("/items", params={"after": _tampered(by_amount, [{"x": 1}, 1]),
                                          "sort": "amount"}, headers=a), "'amount'")
    by_made = _cursor(client, a, sort="made")
    _refused(client.get("/items", params={"after": _tampered(by_made, ["yesterday", 1]),
                                          "sort": "made"}, headers=a), "'made'")


def test_keyset_refusals(client: httpx.Client, tokens: dict[str, dict[str, str]]) -> None:
    a = tokens["a"]
    _refused(client.get("/items", params={"after": "", "page": 2}, headers=a), "page")
    cursor = _cursor(client, a)
    _refused(client.get("/items", params={"after": cursor, "page": "2"}, headers=a), "page")
    _refused(client.get("/items", params={"after": "", "sort": "note"}, headers=a),
             "'note'", "null")
    _refused(client.post("/items/filter", params={"after": ""}, headers=a, json={
        "sort": [{"field": "note", "direction": "desc"}]}), "'note'")
    _refused(client.get("/loose", params={"after": ""}, headers=a), "primary key")
    _refused(client.post("/items/filter", params={"after": ""}, headers=a, json={
        "aggregations": {"functions": [{"type": "COUNT", "alias": "n"}]}}), "aggregations")
    _refused(client.post("/items/filter", params={"after": ""}, headers=a, json={
        "fields": ["name"], "distinct": True}), "distinct")
    # without after, the nullable column sorts as before
    assert len(_ok(client.get("/items", params={"sort": "note"}, headers=a))["data"]) == A_ITEMS


# -- the setting ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", '"x"', "1.5", "true"])
def test_exact_count_limit_must_be_a_positive_integer(tmp_path: Path, value: str) -> None:
    path = tmp_path / "swain.toml"
    path.write_text('[connections.development]\nurl = "sqlite:///dev.db"\n'
                    f"[api]\nexact_count_limit = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.exact_count_limit"):
        load_config(path, None, environ={})


def test_exact_count_limit_default(tmp_path: Path) -> None:
    path = tmp_path / "swain.toml"
    path.write_text('[connections.development]\nurl = "sqlite:///dev.db"\n', encoding="utf-8")
    config, _ = load_config(path, None, environ={})
    assert config.api.exact_count_limit == 10000


def test_openapi_documents_counting_and_keyset(client: httpx.Client,
                                               tokens: dict[str, dict[str, str]]) -> None:
    document = _ok(client.get("/openapi.json", headers=tokens["a"]))
    listing = document["paths"]["/items"]["get"]
    filtering = document["paths"]["/items/filter"]["post"]
    for operation in (listing, filtering):
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert parameters["count"]["schema"]["enum"] == ["bounded", "exact", "estimated", "none"]
        assert parameters["count"]["schema"]["default"] == "bounded"
        assert str(LIMIT) in parameters["count"]["description"]
        assert parameters["after"]["schema"] == {"type": "string"}
        page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        properties = document["components"]["schemas"][page.rsplit("/", 1)[-1]]["properties"]
        assert properties["total_is_estimate"]["type"] == "boolean"
        assert properties["next_after"]["nullable"] is True
