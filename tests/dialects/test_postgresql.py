"""PostgreSQL-only types: arrays, enum types, json and jsonb, unconstrained numeric, bytea."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer
from swain.contrib.testing.api import create_and_read_back
from swain.contrib.testing.fixtures import only_dialect
from swain.core.keys import RUNTIME

dialect = only_dialect("postgresql")


DDL = """
CREATE TYPE "Traffic Light" AS ENUM ('red', 'amber', 'green');
CREATE TABLE things (
    id SERIAL PRIMARY KEY,
    tags TEXT[],
    codes VARCHAR(5)[],
    scores INTEGER[],
    tiny SMALLINT[],
    light "Traffic Light",
    plain JSON,
    doc JSONB,
    exact NUMERIC,
    wide NUMERIC(38,10),
    at_tz TIMESTAMPTZ,
    raw BYTEA,
    stamp TIMESTAMP NOT NULL DEFAULT now()
)
"""


def _raw(database: FreshDatabase, row_id: int, column: str) -> Any:
    return database.query(f'SELECT "{column}" FROM things WHERE id = :i', {"i": row_id})[0][0]


def test_array_columns_in_the_model(server: LiveServer) -> None:
    table = server.app[RUNTIME].schema.table("things")
    assert table is not None
    columns = {c.name: c for c in table.columns}
    assert (columns["tags"].kind, columns["tags"].item_kind, columns["tags"].sql_type) == \
        ("array", "string", "TEXT[]")
    assert (columns["codes"].item_kind, columns["codes"].max_length) == ("string", 5)
    assert (columns["tiny"].minimum, columns["tiny"].maximum) == (-32768, 32767)
    assert columns["light"].enum_values == ["red", "amber", "green"]
    assert (columns["plain"].kind, columns["doc"].kind) == ("json", "json")
    assert (columns["exact"].precision, columns["exact"].scale) == (None, None)


def test_arrays_round_trip(client: httpx.Client, database: FreshDatabase) -> None:
    tags = ["plain", "with,comma", 'with "quotes"', "with {braces}", "ünï 🎉", "", "NULL", None]
    row = create_and_read_back(client, "things", {"tags": tags, "codes": ["ab", "cdefg"],
                                                  "scores": [1, -2, 2147483647], "tiny": []})
    assert (row["tags"], row["codes"], row["scores"], row["tiny"]) == \
        (tags, ["ab", "cdefg"], [1, -2, 2147483647], [])
    assert _raw(database, row["id"], "tags") == tags
    listed = client.get("/things", params={"id": str(row["id"])}).json()["data"]
    assert listed == [row]
    r = client.patch(f"/things/{row['id']}", json={"scores": [7], "tags": None})
    assert r.status_code == 200 and (r.json()["scores"], r.json()["tags"]) == ([7], None)


@pytest.mark.parametrize(("field", "value", "path"), [
    ("scores", [1, 2147483648], "scores[1]"),
    ("scores", [1, "2"], "scores[1]"),
    ("scores", 5, "scores"),
    ("tiny", [32768], "tiny[0]"),
    ("codes", ["abcdef"], "codes[0]"),
    ("tags", "not-an-array", "tags"),
    ("tags", [1], "tags[0]"),
])
def test_bad_array_items_are_422_naming_the_item(client: httpx.Client, database: FreshDatabase,
                                                 field: str, value: Any, path: str) -> None:
    before = database.query("SELECT COUNT(*) FROM things")
    r = client.post("/things", json={field: value})
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["error"]["details"]] == [path]
    assert database.query("SELECT COUNT(*) FROM things") == before


def test_enum_type_with_a_quoted_name(client: httpx.Client, database: FreshDatabase) -> None:
    row = create_and_read_back(client, "things", {"light": "amber"})
    assert row["light"] == "amber"
    assert client.get("/things", params={"light": "amber"}).json()["total"] == 1
    r = client.post("/things", json={"light": "blue"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "light"


def test_json_and_jsonb(client: httpx.Client, database: FreshDatabase) -> None:
    document = {"b": 1, "a": [1.5, "x", None, True], "big": 123456789012345678901234567890,
                "unicode": "מִשְׁפָּט 🎉"}
    for value in (document, [1, 2], "text", 3.25, True):
        row = create_and_read_back(client, "things", {"plain": value, "doc": value})
        assert row["plain"] == value and row["doc"] == value
        assert _raw(database, row["id"], "doc") == value
    # json keeps the text as written (key order), jsonb normalises it
    row = create_and_read_back(client, "things", {"plain": {"z": 1, "a": 2}})
    assert list(client.get(f"/things/{row['id']}").json()["plain"]) == ["z", "a"]


def test_unconstrained_numeric_keeps_its_scale(client: httpx.Client,
                                               database: FreshDatabase) -> None:
    for text in ("0.10", "12345678901234567890.123456789", "-0.0000000001", "100"):
        row = create_and_read_back(client, "things", {"exact": text, "wide": text})
        assert row["exact"] == text
        assert Decimal(row["wide"]) == Decimal(text)
        assert _raw(database, row["id"], "exact") == Decimal(text)
        assert format(_raw(database, row["id"], "exact"), "f") == text


def test_timestamptz_answers_in_utc(client: httpx.Client, database: FreshDatabase) -> None:
    row = create_and_read_back(client, "things", {"at_tz": "2024-03-10T01:30:00.5-08:00"})
    answered = dt.datetime.fromisoformat(row["at_tz"])
    assert answered.utcoffset() == dt.timedelta(0)
    assert answered == dt.datetime(2024, 3, 10, 9, 30, 0, 500000, tzinfo=dt.UTC)
    assert _raw(database, row["id"], "at_tz") == answered
    # a timestamp without a zone given for a zoned column is taken as UTC
    row = create_and_read_back(client, "things", {"at_tz": "2024-03-10T01:30:00"})
    assert dt.datetime.fromisoformat(row["at_tz"]) == dt.datetime(2024, 3, 10, 1, 30, tzinfo=dt.UTC)


def test_long_bytea_is_one_base64_string(client: httpx.Client, database: FreshDatabase) -> None:
    data = bytes(range(256)) * 4
    encoded = base64.b64encode(data).decode()
    row = create_and_read_back(client, "things", {"raw": encoded})
    assert row["raw"] == encoded and "\n" not in row["raw"]
    assert bytes(_raw(database, row["id"], "raw")) == data
    listed = client.get("/things", params={"id": str(row["id"]), "fields": "raw"}).json()
    assert listed["data"] == [{"raw": encoded}]


def test_default_is_applied_and_listed(client: httpx.Client) -> None:
    row = create_and_read_back(client, "things", {})
    assert dt.datetime.fromisoformat(row["stamp"]).year >= 2024
    body = json.loads(client.get(f"/things/{row['id']}").content)
    assert body["stamp"] == row["stamp"]


def test_bulk_insert_keeps_every_type(client: httpx.Client) -> None:
    """Bulk rows go in as one array per column (or, with array columns, as a
    VALUES list): either way each row reads back as a single POST of it does."""
    rows: list[dict[str, Any]] = [
        {"light": "amber", "plain": {"z": 1, "a": [1.5, None]}, "doc": "text", "exact": "10.500",
         "wide": "-12345678901234567890.0123456789", "at_tz": "2024-03-10T01:30:00.5-08:00",
         "raw": base64.b64encode(b"\x00\xff" * 40).decode()},
        {"light": None, "plain": None, "doc": [1, 2], "exact": "7", "at_tz": None, "raw": None},
        {"light": "red", "plain": 3.25, "doc": {"k": "מִשְׁפָּט 🎉"}, "exact": "0.000001",
         "wide": "0", "at_tz": "2024-01-01T00:00:00Z", "raw": ""},
    ]
    same_columns = [{**row, "wide": row.get("wide")} for row in rows]
    with_arrays = [{"tags": ["a", None, "c"], "scores": [1, 2], "light": "green"}]
    for batch in (same_columns, with_arrays):
        r = client.post("/things/bulk", json=batch)
        assert r.status_code == 200, r.text
        created = [item["data"] for item in r.json()["succeeded"]]
        assert len(created) == len(batch)
        for row, sent in zip(created, batch, strict=True):
            single = create_and_read_back(client, "things", sent)
            assert {k: v for k, v in row.items() if k not in ("id", "stamp")} == \
                {k: v for k, v in single.items() if k not in ("id", "stamp")}
            assert client.get(f"/things/{row['id']}").json() == row
    bad = client.post("/things/bulk", json=[{"light": "amber"}, {"light": "purple"}])
    assert bad.status_code == 207 and [f["index"] for f in bad.json()["failed"]] == [1]


def test_transaction_settings_live_in_one_transaction_per_checkout(server: LiveServer) -> None:
    """What the native tenant policies rely on: each checkout is one transaction
    opening with SET LOCAL; writes commit when the connection goes back, a
    failure rolls the checkout back, and nothing stays on the session."""
    dialect = server.app[RUNTIME].dialect
    tenant = {"value": "first"}
    setting = "swain.test_setting"

    async def seen() -> Any:
        async with dialect.acquire() as conn:
            row = await conn.fetch_one(f"SELECT current_setting('{setting}', true)")
            async with conn.transaction():  # nested: a savepoint, same transaction
                inner = await conn.fetch_one(f"SELECT current_setting('{setting}', true)")
            return row[0] if row else None, inner[0] if inner else None

    async def write_then_fail() -> None:
        async with dialect.acquire() as conn:
            await conn.execute("INSERT INTO things (tags) VALUES (ARRAY['rolled-back'])")
            raise RuntimeError("the request failed after its write")

    async def write() -> None:
        async with dialect.acquire() as conn:
            await conn.execute("INSERT INTO things (tags) VALUES (ARRAY['committed'])")

    async def broken_statement() -> None:
        async with dialect.acquire() as conn:
            await conn.execute("SELECT 1 / 0")

    async def on_the_session() -> Any:
        assert dialect.pool is not None
        async with dialect.pool.connection() as raw:
            cursor = await raw.execute(f"SELECT current_setting('{setting}', true)")
            row = await cursor.fetchone()
            return row[0] if row else None

    dialect.transaction_settings = lambda: {setting: tenant["value"]}
    try:
        assert server.call(seen()) == ("first", "first")
        tenant["value"] = "it's second"  # quoted as a literal, never spliced
        assert server.call(seen()) == ("it's second", "it's second")
        with pytest.raises(RuntimeError):
            server.call(write_then_fail())
        server.call(write())
        with pytest.raises(Exception, match="division by zero"):
            server.call(broken_statement())
        assert server.call(seen()) == ("it's second", "it's second")
    finally:
        dialect.transaction_settings = None
    assert server.call(on_the_session()) in ("", None)
    tags = [r["tags"] for r in httpx.get(f"{server.url}/things?page_size=100").json()["data"]]
    assert ["committed"] in tags and ["rolled-back"] not in tags
