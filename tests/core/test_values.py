"""Values cross JSON exactly, both ways, on every dialect; a value that does not fit is a 422.

Each row is written through the API (POST, then PUT and PATCH), read back by
key and in a list, and compared with an independent read of the raw table.

What each database gives back for a timestamp with a zone: PostgreSQL and
MariaDB store the instant and answer in UTC (``+00:00``); SQLite stores the
ISO text and answers with the offset it was given.  Decimals travel as JSON
strings keeping the column's scale; SQLite keeps NUMERIC values as REAL, so
it is exact up to 15 significant digits (the rows here stay within that).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from swain.contrib.testing import FreshDatabase

DDL = {
    "postgresql": """
CREATE TYPE vmood AS ENUM ('calm', 'busy');
CREATE TABLE vals (
    id BIGINT PRIMARY KEY,
    label VARCHAR(20) NOT NULL,
    i INTEGER,
    small SMALLINT,
    big BIGINT,
    amount NUMERIC(12,2),
    ratio NUMERIC(6,4),
    flag BOOLEAN,
    day DATE,
    at_tz TIMESTAMPTZ,
    at_naive TIMESTAMP,
    at_time TIME,
    token UUID,
    doc JSONB,
    data BYTEA,
    body TEXT,
    mood vmood
)
""",
    "mysql": """
CREATE TABLE vals (
    id BIGINT PRIMARY KEY,
    label VARCHAR(20) NOT NULL,
    i INT,
    small SMALLINT,
    big BIGINT,
    amount DECIMAL(12,2),
    ratio DECIMAL(6,4),
    flag TINYINT(1),
    day DATE,
    at_tz TIMESTAMP(6) NULL,
    at_naive DATETIME(6),
    at_time TIME(6),
    token UUID,
    doc JSON,
    data VARBINARY(600),
    body TEXT,
    mood ENUM('calm', 'busy')
)
""",
    "sqlite": """
CREATE TABLE vals (
    id INTEGER PRIMARY KEY,
    label VARCHAR(20) NOT NULL,
    i INTEGER,
    small SMALLINT,
    big BIGINT,
    amount NUMERIC(12,2),
    ratio NUMERIC(6,4),
    flag BOOLEAN,
    day DATE,
    at_tz TIMESTAMPTZ,
    at_naive TIMESTAMP,
    at_time TIME,
    token UUID,
    doc JSON,
    data BLOB,
    body TEXT,
    mood TEXT CHECK (mood IN ('calm', 'busy'))
)
""",
}

COLUMNS = ["id", "label", "i", "small", "big", "amount", "ratio", "flag", "day", "at_tz",
           "at_naive", "at_time", "token", "doc", "data", "body", "mood"]

ALL_BYTES = bytes(range(256)) + b"\x00\xff\x00"
UNICODE = ("emoji 🎉👩‍👩‍👧 RTL שלום مرحبا combining e\u0301 zero\u200bwidth "
           "tab\t newline\n quote\" backslash\\ astral \U0001d11e")

ROWS: list[dict[str, Any]] = [
    {
        "id": 9007199254740993,  # 2**53 + 1: no float can hold it
        "label": "first",
        "i": -2147483648,
        "small": 32767,
        "big": 9223372036854775807,
        "amount": "12345678.90",
        "ratio": "-0.0001",
        "flag": True,
        "day": "2024-02-29",
        "at_tz": "2024-05-06T09:08:09.123456+02:00",
        "at_naive": "2024-05-06T07:08:09.654321",
        "at_time": "23:59:58.500000",
        "token": "0b6f8a4e-2c1d-4e5f-9a7b-3c2d1e0f9a8b",
        "doc": {"name": "ünïcødé 🎉", "n": [1, -2.5, 0.1, 12345678901234567890123],
                "nested": {"ok": True, "none": None, "deep": [[{"x": "y"}]]}, "empty": {},
                "list": []},
        "data": base64.b64encode(ALL_BYTES).decode(),
        "body": UNICODE,
        "mood": "busy",
    },
    {
        "id": 9223372036854775807,  # int64 max
        "label": "second",
        "i": 2147483647,
        "small": -32768,
        "big": -9223372036854775808,
        "amount": "0.10",  # the scale survives
        "ratio": "99.9999",
        "flag": False,
        "day": "1999-12-31",
        "at_tz": "2024-01-01T00:00:00Z",
        "at_naive": "2000-01-01T00:00:00",
        "at_time": "00:00:00",
        "token": "ffffffff-ffff-4fff-bfff-ffffffffffff",
        "doc": [1, "two", None, [3], {"k": False}],
        "data": "",
        "body": "",
        "mood": None,
    },
    {"id": -9223372036854775808, "label": "nulls", **{c: None for c in COLUMNS[2:]}},
]


# -- comparing values semantically ------------------------------------------------


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_api(dialect: str, name: str, sent: Any) -> Any:
    """What the API answers for a value it was sent (None stays None)."""
    if sent is None:
        return None
    if name == "at_tz":
        if dialect == "sqlite":
            return _instant(sent)  # the offset as given
        return _instant(sent).astimezone(dt.UTC)
    if name in ("at_naive",):
        return dt.datetime.fromisoformat(sent)
    if name == "at_time":
        return dt.time.fromisoformat(sent)
    return sent


def received_api(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in ("at_tz", "at_naive"):
        return dt.datetime.fromisoformat(value)
    if name == "at_time":
        return dt.time.fromisoformat(value)
    return value


def assert_api_row(dialect: str, got: dict[str, Any], sent: dict[str, Any]) -> None:
    assert list(got) == COLUMNS
    for name in COLUMNS:
        want = expected_api(dialect, name, sent.get(name))
        have = received_api(name, got[name])
        assert have == want, f"{name}: sent {sent.get(name)!r}, answered {got[name]!r}"
        if name == "at_tz" and have is not None:
            # same instant and the same offset
            assert have.utcoffset() == want.utcoffset(), f"at_tz: {got[name]!r}"
        if name in ("amount", "ratio") and want is not None:
            assert isinstance(got[name], str)  # exact decimals travel as strings


def raw_value(dialect: str, name: str, raw: Any) -> Any:
    """A value read straight from the table, in the API's terms."""
    if raw is None:
        return None
    if name in ("amount", "ratio"):
        return Decimal(str(raw))
    if name == "flag":
        return bool(raw)
    if name == "day":
        return str(raw)[:10]
    if name == "at_tz":
        if isinstance(raw, str):
            return _instant(raw.replace(" ", "T"))
        return raw if raw.tzinfo else raw.replace(tzinfo=dt.UTC)  # MariaDB: UTC, naive
    if name == "at_naive":
        return dt.datetime.fromisoformat(raw.replace(" ", "T")) if isinstance(raw, str) else raw
    if name == "at_time":
        if isinstance(raw, dt.timedelta):  # MySQL TIME
            return (dt.datetime.min + raw).time()
        return dt.time.fromisoformat(raw) if isinstance(raw, str) else raw
    if name == "token":
        return uuid.UUID(str(raw))
    if name == "doc":
        return json.loads(raw) if isinstance(raw, str | bytes) else raw
    if name == "data":
        return bytes(raw)
    return raw


def expected_raw(dialect: str, name: str, sent: Any) -> Any:
    if sent is None:
        return None
    if name in ("amount", "ratio"):
        return Decimal(sent)
    if name == "at_tz":
        return _instant(sent)
    if name == "at_naive":
        return dt.datetime.fromisoformat(sent)
    if name == "at_time":
        return dt.time.fromisoformat(sent)
    if name == "token":
        return uuid.UUID(sent)
    if name == "data":
        return base64.b64decode(sent)
    return sent


def assert_raw_row(database: FreshDatabase, sent: dict[str, Any]) -> None:
    rows = database.query(f"SELECT {', '.join(COLUMNS)} FROM vals WHERE id = :id",
                          {"id": sent["id"]})
    assert len(rows) == 1
    for name, raw in zip(COLUMNS, rows[0], strict=True):
        have = raw_value(database.dialect, name, raw)
        want = expected_raw(database.dialect, name, sent.get(name))
        assert have == want, f"{name}: stored {raw!r}, expected {want!r}"


def full(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in COLUMNS}


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=["extremes", "edges", "nulls"])
def test_create_read_and_list_round_trip(client: httpx.Client, database: FreshDatabase,
                                         dialect: str, row: dict[str, Any]) -> None:
    r = client.post("/vals", json=row)
    assert r.status_code == 201, r.text
    assert_api_row(dialect, r.json(), full(row))
    by_id = client.get(f"/vals/{row['id']}")
    assert by_id.status_code == 200, by_id.text
    assert_api_row(dialect, by_id.json(), full(row))
    listed = client.get("/vals", params={"id": str(row["id"])}).json()["data"]
    assert len(listed) == 1
    assert_api_row(dialect, listed[0], full(row))
    assert_raw_row(database, full(row))


def test_whole_list_matches_rows_by_key(client: httpx.Client, dialect: str) -> None:
    listed = client.get("/vals", params={"sort": "id"}).json()["data"]
    assert [r["id"] for r in listed] == sorted(r["id"] for r in ROWS)
    for row in listed:
        assert client.get(f"/vals/{row['id']}").json().keys() == row.keys()
        assert_api_row(dialect, row, full(next(r for r in ROWS if r["id"] == row["id"])))


def test_put_swaps_every_value(client: httpx.Client, database: FreshDatabase,
                               dialect: str) -> None:
    first, second = ROWS[0], ROWS[1]
    changed = {k: v for k, v in second.items() if k not in ("id", "label")}
    r = client.put(f"/vals/{first['id']}", json=changed)
    assert r.status_code == 200, r.text
    expected = full({**changed, "id": first["id"], "label": first["label"]})
    assert_api_row(dialect, r.json(), expected)
    assert_api_row(dialect, client.get(f"/vals/{first['id']}").json(), expected)
    assert_raw_row(database, expected)
    # and back again with PATCH
    back = {k: v for k, v in first.items() if k != "id"}
    r = client.patch(f"/vals/{first['id']}", json=back)
    assert r.status_code == 200, r.text
    assert_api_row(dialect, r.json(), full(first))
    assert_raw_row(database, full(first))


def test_patch_one_field_leaves_the_rest(client: httpx.Client, database: FreshDatabase,
                                         dialect: str) -> None:
    row = ROWS[0]
    r = client.patch(f"/vals/{row['id']}", json={"amount": "-9999999999.99"})
    assert r.status_code == 200, r.text
    expected = full({**row, "amount": "-9999999999.99"})
    assert_api_row(dialect, r.json(), expected)
    assert_raw_row(database, expected)
    assert client.patch(f"/vals/{row['id']}", json={"amount": row["amount"]}).status_code == 200


def test_numbers_and_decimals_given_as_json_numbers(client: httpx.Client,
                                                    database: FreshDatabase) -> None:
    r = client.post("/vals", json={"id": 11, "label": "numbers", "amount": 1234.5, "ratio": 0.25,
                                   "big": 9007199254740993})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["amount"], body["ratio"], body["big"]) == ("1234.50", "0.2500", 9007199254740993)
    assert database.query("SELECT big FROM vals WHERE id = 11") == [(9007199254740993,)]
    assert client.delete("/vals/11").status_code == 200


def test_uuid_input_is_normalised(client: httpx.Client) -> None:
    r = client.post("/vals", json={"id": 12, "label": "uuid",
                                   "token": "{0B6F8A4E-2C1D-4E5F-9A7B-3C2D1E0F9A8C}"})
    assert r.status_code == 201, r.text
    assert r.json()["token"] == "0b6f8a4e-2c1d-4e5f-9a7b-3c2d1e0f9a8c"
    listed = client.get("/vals", params={"token": "0b6f8a4e-2c1d-4e5f-9a7b-3c2d1e0f9a8c"})
    assert [row["id"] for row in listed.json()["data"]] == [12]
    assert client.delete("/vals/12").status_code == 200


def test_big_keys_in_the_path(client: httpx.Client) -> None:
    for row in ROWS:
        assert client.get(f"/vals/{row['id']}").json()["id"] == row["id"]
    assert client.get("/vals/9223372036854775806").status_code == 404


# -- values that do not fit: 422 naming the field, nothing written -------------------------

_BAD_COMMON: list[tuple[str, Any]] = [
    ("label", "x" * 21),
    ("label", None),
    ("label", 5),
    ("label", "nul\x00char"),
    ("i", "12"),
    ("i", 1.5),
    ("i", True),
    ("i", 2**64),
    ("big", 2**63),
    ("big", -(2**63) - 1),
    ("amount", "123456789012.00"),
    ("amount", "1.234"),
    ("amount", "-00.123"),
    ("amount", "+0012345678901.5"),
    ("amount", "abc"),
    ("amount", "NaN"),
    ("amount", True),
    ("amount", [1]),
    ("ratio", "100"),
    ("flag", "yes"),
    ("flag", 1),
    ("day", "2024-02-30"),
    ("day", "2024-13-01"),
    ("day", "yesterday"),
    ("day", 20240101),
    ("at_tz", "not a time"),
    ("at_tz", "2024-05-06T25:00:00Z"),
    ("at_naive", "2024-05-06 7pm"),
    ("at_time", "24:00:01"),
    ("at_time", "noon"),
    ("token", "not-a-uuid"),
    ("token", "0b6f8a4e-2c1d-4e5f-9a7b-3c2d1e0f9a8"),
    ("token", 123),
    ("data", "@@@"),
    ("data", "abc"),
    ("data", 5),
    ("body", 5),
    ("body", {"a": 1}),
    ("mood", "angry"),
    ("mood", 1),
]

#: integer ranges the database enforces: SQLite's are 64-bit whatever the declared type
_BAD_RANGES: dict[str, list[tuple[str, Any]]] = {
    "sqlite": [("i", 2**63), ("i", -(2**63) - 1), ("small", 2**63), ("small", -(2**63) - 1)],
    "postgresql": [("i", 2**31), ("i", -(2**31) - 1), ("small", 32768), ("small", -32769)],
    "mysql": [("i", 2**31), ("i", -(2**31) - 1), ("small", 32768), ("small", -32769)],
}


def _cases(dialect: str) -> list[tuple[str, Any]]:
    return _BAD_COMMON + _BAD_RANGES[dialect]


@pytest.fixture(scope="module")
def count(database: FreshDatabase) -> Iterator[Callable[[], int]]:
    """Rows in ``vals``, read on a pooled connection of its own (checked after every case)."""
    engine = sa.create_engine(database.url)

    def rows() -> int:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM vals").scalar_one())

    yield rows
    engine.dispose()


def _assert_422_naming(response: httpx.Response, field: str) -> dict[str, Any]:
    assert response.status_code == 422, f"{field}: {response.status_code} {response.text}"
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [d["path"] for d in error["details"]] == [field], error
    return dict(error)


@pytest.mark.parametrize("case", range(len(_BAD_COMMON) + 4))
def test_bad_value_on_create_is_422(client: httpx.Client, count: Callable[[], int],
                                    dialect: str, case: int) -> None:
    field, value = _cases(dialect)[case]
    before = count()
    row = {"id": 500 + case, "label": "bad", field: value}
    _assert_422_naming(client.post("/vals", json=row), field)
    assert count() == before == len(ROWS)


def test_bad_values_on_update_change_nothing(client: httpx.Client, database: FreshDatabase,
                                             dialect: str) -> None:
    row = ROWS[0]
    before = database.query(f"SELECT {', '.join(COLUMNS)} FROM vals WHERE id = :id",
                            {"id": row["id"]})
    for field, value in _cases(dialect):
        for method in (client.put, client.patch):
            response = method(f"/vals/{row['id']}", json={"ratio": "1.5", field: value})
            _assert_422_naming(response, field)
    after = database.query(f"SELECT {', '.join(COLUMNS)} FROM vals WHERE id = :id",
                           {"id": row["id"]})
    assert after == before


def test_several_bad_values_are_all_named(client: httpx.Client, count: Callable[[], int]) -> None:
    before = count()
    r = client.post("/vals", json={"id": 600, "i": "x", "day": "never", "token": "nope"})
    assert r.status_code == 422, r.text
    paths = sorted(d["path"] for d in r.json()["error"]["details"])
    assert paths == ["day", "i", "label", "token"]  # label: required
    assert count() == before


def test_unknown_column_is_422(client: httpx.Client, count: Callable[[], int]) -> None:
    before = count()
    error = _assert_422_naming(client.post("/vals", json={"id": 601, "label": "x", "nope": 1}),
                               "nope")
    assert "label" in error["details"][0]["message"]  # lists what is allowed
    assert count() == before


def test_bad_key_in_the_path_is_422(client: httpx.Client) -> None:
    _assert_422_naming(client.get("/vals/abc"), "id")
    _assert_422_naming(client.get(f"/vals/{2**64}"), "id")
