"""Includes and per-parent aggregations composed as JSON in the page's own statement
answer exactly as the statement-per-level path does, on every database.

Two servers over one database: the default (``[query] compose_json = true``), and one
with it off.  Every payload gets the same JSON from both, compared strictly: the same
members in the same order, booleans as booleans, decimals as the same strings, dates
and timestamps as the same text, numbers of equal value.  Where the dialect composes
(``supports_json_relations``), the composing server answers with one statement per
page; where a shape needs what the dialect lacks, it falls back, with the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from swain.contrib.testing import LiveServer, write_config
from swain.contrib.testing.api import assert_same_json
from swain.core import RUNTIME, Column, create_app, load_config
from swain.core.codec import strict_json
from swain.core.composed import members_whole

SWAIN_CONFIG = {"api": {"max_page_size": 100, "sql_preview": ["development"]}}

_TYPES = {
    "sqlite": {"big": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN", "ts": "TIMESTAMP",
               "tstz": "TIMESTAMP", "json": "JSON", "uuid": "VARCHAR(36)", "blob": "BLOB",
               "true": "1", "false": "0"},
    "postgresql": {"big": "BIGINT", "double": "DOUBLE PRECISION", "bool": "BOOLEAN",
                   "ts": "TIMESTAMP(6)", "tstz": "TIMESTAMPTZ", "json": "JSON", "uuid": "UUID",
                   "blob": "BYTEA", "true": "TRUE", "false": "FALSE"},
    "mysql": {"big": "BIGINT", "double": "DOUBLE", "bool": "TINYINT(1)", "ts": "DATETIME(6)",
              "tstz": "TIMESTAMP(6) NULL", "json": "JSON", "uuid": "UUID",
              "blob": "VARBINARY(64)", "true": "1", "false": "0"},
}
_DDL = """
CREATE TABLE owners (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, team VARCHAR(10));
CREATE TABLE things (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id),
  label VARCHAR(40), qty {big}, price DECIMAL(12,2), ratio {double}, flag {bool}, day DATE,
  at {ts}, at_tz {tstz}, doc {json}, ref {uuid}, data {blob},
  parent_id INTEGER REFERENCES things(id));
CREATE TABLE parts (id INTEGER PRIMARY KEY, thing_id INTEGER NOT NULL REFERENCES things(id),
  sku VARCHAR(10), weight DECIMAL(8,3));
CREATE TABLE slots (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owners(id),
  starts TIME);
CREATE TABLE messages_between_people_of_this_organisation (id INTEGER PRIMARY KEY,
  sender_person_identifier INTEGER REFERENCES owners(id),
  recipient_person_identifier INTEGER REFERENCES owners(id), body VARCHAR(20));
INSERT INTO owners (id, name, team) VALUES (1, 'ann', 'red'), (2, 'ben', NULL),
  (3, 'cleo', 'red'), (4, 'dan', 'blue'), (5, 'eve', 'blue');
INSERT INTO things (id, owner_id, label, qty, price, ratio, flag, day, at, at_tz, doc, ref, data,
                    parent_id)
VALUES
  (1, 1, 'Zoë "quoted" back\\\\slash', 9007199254740993, '12.50', 0.1, {true}, '2024-01-05',
   '2024-01-05 10:00:00.5', '2024-01-05 10:00:00', '{{"b": 1, "a": [1, 2.5, "x"], "n": null}}',
   '6f1c2a4e-0d6b-4d8e-9a5c-2b7f3c1d9e01', {blob1}, NULL),
  (2, 1, 'plain', -3, '-0.05', 1e-7, {false}, '2023-12-31', '2024-01-05 10:00:00',
   '2024-02-29 23:59:59.123456', '[]', NULL, NULL, 1),
  (3, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1),
  (4, 2, 'two', 7, '99999999.99', 2.5, {true}, '2024-01-05', '1999-01-01 00:00:00.000001',
   NULL, '"text"', NULL, NULL, NULL),
  (5, 3, 'three', 1, '0.01', 3.0, {false}, NULL, NULL, NULL, '{{"k": true}}', NULL, NULL, 4),
  (6, NULL, 'orphan', 2, '1.00', 1.5, {true}, '2024-06-01', NULL, NULL, NULL, NULL, NULL,
   NULL);
INSERT INTO parts (id, thing_id, sku, weight) VALUES (1, 1, 'A', '1.500'), (2, 1, 'B', NULL),
  (3, 1, 'A', '0.250'), (4, 4, NULL, '2.000'), (5, 5, 'C', '0.001');
INSERT INTO slots (id, owner_id, starts) VALUES (1, 1, '09:30:00'), (2, 1, '17:00:00'),
  (3, 2, NULL);
INSERT INTO messages_between_people_of_this_organisation VALUES (1, 1, 2, 'hi'), (2, 2, 1, 'yo')
"""
_BLOBS = {"sqlite": "X'00ff10'", "postgresql": "'\\x00ff10'::bytea", "mysql": "X'00ff10'"}
DDL = {name: _DDL.format(**types, blob1=_BLOBS[name]) for name, types in _TYPES.items()}


@pytest.fixture(scope="module")
def apart(database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The same database served with every relationship fetched level by level."""
    path = write_config(tmp_path_factory.mktemp("apart"), database.swain_url,
                        api={"max_page_size": 100, "sql_preview": ["development"]},
                        query={"compose_json": False})
    config, pm = load_config(Path(path), "development", environ={})
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


#: a relationship's name longer than PostgreSQL's 63-character names
LONG = "messages_between_people_of_this_organisation_sender_person_identifier"
ALL_THINGS = {"relationship": "things", "scope": "filterRelated", "include": True}
AGGREGATES = [
    {"type": "COUNT", "alias": "n"}, {"type": "COUNT", "field": "price", "alias": "priced"},
    {"type": "COUNT_DISTINCT", "field": "day", "alias": "days"},
    {"type": "SUM", "field": "price", "alias": "spent"},
    {"type": "SUM", "field": "qty", "alias": "qty"}, {"type": "SUM", "field": "ratio", "alias": "r"},
    {"type": "AVG", "field": "price", "alias": "avg_price"},
    {"type": "AVG", "field": "qty", "alias": "avg_qty"},
    {"type": "AVG", "field": "ratio", "alias": "avg_ratio"},
    {"type": "MIN", "field": "day", "alias": "first_day"},
    {"type": "MAX", "field": "at", "alias": "last_at"},
    {"type": "MAX", "field": "at_tz", "alias": "last_at_tz"},
    {"type": "MIN", "field": "label", "alias": "first_label"},
    {"type": "MAX", "field": "price", "alias": "top"}]

# (name, table, payload, query string, groups per parent by other columns)
CASES: list[tuple[str, str, dict[str, Any], str, bool]] = [
    ("every type included", "owners", {"expressions": [ALL_THINGS]}, "", False),
    ("fields, sort and a filter", "owners", {"expressions": [
        {**ALL_THINGS, "fields": ["label", "price", "at"],
         "sort": [{"field": "price", "direction": "desc", "nulls": "last"}],
         "expressions": [{"field": "qty", "operator": "isnull", "value": False}]}]}, "", False),
    ("many to one, a null key", "things", {"expressions": [
        {"relationship": "owners", "scope": "filterRelated", "include": True}]}, "", False),
    ("three levels", "owners", {"expressions": [{**ALL_THINGS, "expressions": [
        {"relationship": "parts", "scope": "filterRelated", "include": True,
         "sort": [{"field": "sku", "nulls": "first"}]},
        {"relationship": "owners", "scope": "filterRelated", "include": True,
         "fields": ["name"]}]}]}, "", False),
    ("per-parent values", "owners", {"expressions": [
        {"relationship": "things", "scope": "filterRelated",
         "aggregations": {"functions": AGGREGATES}}]}, "", False),
    ("grouped by the link", "owners", {"expressions": [
        {"relationship": "things", "include": True, "fields": ["id"],
         "expressions": [{"field": "flag", "operator": "eq", "value": True}],
         "aggregations": {"functions": AGGREGATES[:4], "group_by": ["owner_id"]}}],
        "distinct": True}, "", False),
    ("groups per parent", "owners", {"expressions": [
        {"relationship": "things", "scope": "filterRelated",
         "aggregations": {"functions": AGGREGATES, "group_by": ["flag", "day"]}}]}, "", True),
    ("two relationships into one object", "owners", {"expressions": [
        {"relationship": "slots", "scope": "filterRelated",
         "aggregations": {"functions": [{"type": "COUNT", "alias": "slots"}]}},
        {**ALL_THINGS, "fields": ["id", "label"],
         "aggregations": {"functions": AGGREGATES[:5]}}]}, "", False),
    ("values and groups side by side", "owners", {"expressions": [
        {"relationship": "slots", "scope": "filterRelated",
         "aggregations": {"functions": [{"type": "COUNT", "alias": "slots"}]}},
        {"relationship": "things", "scope": "filterRelated",
         "aggregations": {"functions": [{"type": "SUM", "field": "price", "alias": "s"}],
                          "group_by": ["label"]}}]}, "", True),
    ("nested aggregations", "owners", {"expressions": [{**ALL_THINGS, "fields": ["id"],
        "expressions": [{"relationship": "parts", "scope": "filterRelated", "aggregations": {
            "functions": [{"type": "SUM", "field": "weight", "alias": "w"},
                          {"type": "MAX", "field": "sku", "alias": "sku"}]}}]}]}, "", False),
    ("nested groups", "owners", {"expressions": [{**ALL_THINGS, "fields": ["id"],
        "expressions": [{"relationship": "parts", "scope": "filterRelated", "aggregations": {
            "functions": [{"type": "SUM", "field": "weight", "alias": "w"}],
            "group_by": ["sku"]}}]}]}, "", True),
    ("parents filtered through the include", "owners", {"expressions": [
        {"relationship": "things", "include": True,
         "expressions": [{"field": "price", "operator": "gt", "value": "1"}]}],
        "sort": [{"field": "team", "direction": "desc", "nulls": "first"}]}, "", False),
    ("distinct parents", "owners", {"fields": ["team"], "distinct": True,
                                    "sort": [{"field": "team", "nulls": "first"}],
                                    "expressions": [{**ALL_THINGS, "fields": ["id"]}]}, "",
     False),
    ("a later page", "owners", {"expressions": [ALL_THINGS]}, "?page=2&page_size=2", False),
    ("no count", "owners", {"expressions": [ALL_THINGS]}, "?count=none&page_size=3", False),
    ("times", "owners", {"expressions": [
        {"relationship": "slots", "scope": "filterRelated", "include": True,
         "aggregations": {"functions": [{"type": "MAX", "field": "starts", "alias": "last"}]}}]},
     "", False),
    ("a relationship named as its key column", "things", {"expressions": [
        {"relationship": "parent_id", "scope": "filterRelated", "include": True,
         "fields": ["id", "label"]}]}, "", False),
    ("... with fields", "things", {"fields": ["label", "parent_id"], "expressions": [
        {"relationship": "parent_id", "scope": "filterRelated", "include": True,
         "fields": ["id"]}]}, "", False),
    ("... not selected", "things", {"fields": ["label"], "expressions": [
        {"relationship": "parent_id", "scope": "filterRelated", "include": True,
         "fields": ["id"]},
        {"relationship": "things_parent_id", "scope": "filterRelated", "include": True,
         "fields": ["id"], "expressions": [{"relationship": "parent_id", "include": True,
                                            "scope": "filterRelated", "fields": ["label"]}]}]},
     "", False),
    ("odd aliases", "owners", {"expressions": [
        {"relationship": "things", "scope": "filterRelated", "aggregations": {"functions": [
            {"type": "COUNT", "alias": "it's 100% \"odd\" \\ too"},
            {"type": "SUM", "field": "price", "alias": "Ünï cödé"}]}}]}, "", False),
    ("names longer than the database's", "owners", {"expressions": [
        {"relationship": LONG, "scope": "filterRelated", "include": True}]}, "", False),
    ("no parent rows", "owners", {"expressions": [
        {"field": "id", "operator": "eq", "value": -1}, ALL_THINGS]}, "", False),
]


def _writes(dialect: Any, kind: str) -> bool:
    """Whether the dialect composes values of ``kind`` as JSON."""
    column = Column(name="v", sql_type="", kind=kind)
    return dialect.json_value(sa.column("v"), column) is not None


@pytest.mark.parametrize(("name", "table", "payload", "query", "groups"), CASES,
                         ids=[case[0] for case in CASES])
def test_both_paths_answer_alike(client: httpx.Client, apart: httpx.Client, server: LiveServer,
                                 name: str, table: str, payload: dict[str, Any], query: str,
                                 groups: bool) -> None:
    composed = client.post(f"/{table}/filter/query{query}", json=payload)
    fetched = apart.post(f"/{table}/filter/query{query}", json=payload)
    assert composed.status_code == fetched.status_code == 200, (composed.text, fetched.text)
    body, other = composed.json(), fetched.json()
    for key in ("data", "total", "page", "page_size", "total_pages"):
        assert_same_json(body[key], other[key], key)
    dialect = server.app[RUNTIME].dialect
    can = dialect.supports_json_relations and \
        (not groups or dialect.supports_correlated_derived_tables) and \
        (name != "times" or _writes(dialect, "time")) and \
        ("longer" not in name or len(LONG) <= dialect.sa_dialect.max_identifier_length)
    assert bool(body["data"]) == (name != "no parent rows")
    if table == "things" and "parent_id" in json.dumps(payload):  # the include is there
        assert any(isinstance(row.get("parent_id"), dict) for row in body["data"])
    if can:  # one statement for the page, its relationships and aggregations
        assert len(body["statements"]) == 1, body["statements"]
        assert "_swain_page" in body["statements"][0]["sql"]
    else:  # fetched level by level, as with composing off
        assert [s["sql"] for s in body["statements"]] == \
            [s["sql"] for s in other["statements"]]


def test_members_cut_short_are_told_apart() -> None:
    """A database may cut an aggregate's JSON short (MariaDB: to null past
    max_allowed_packet, or mid-text past group_concat_max_len): such members are not
    taken for an answer, and the page is fetched level by level instead."""
    shapes = {"aggregations": ("object", {"orders": ("array", {})}),
              "orders": ("array", {"parts": ("array", {}), "owner": ("object?", {})}),
              "owner": ("object?", {})}
    whole = {"aggregations": {"n": 1, "orders": []},
             "orders": [{"id": 1, "parts": [{"id": 2}], "owner": None}], "owner": None}
    assert members_whole(whole, shapes)
    for cut in ({**whole, "orders": None}, {**whole, "aggregations": None},
                {**whole, "aggregations": {"n": 1, "orders": None}},
                {**whole, "orders": [{"id": 1, "parts": None, "owner": None}]},
                {**whole, "owner": []}):
        assert not members_whole(cut, shapes), cut
    with pytest.raises(ValueError):
        strict_json('[{"id": 1},{"i')
    assert strict_json('{"n": 123456789012345678901234567890}') == \
        {"n": 123456789012345678901234567890}
    assert strict_json(None) is None
