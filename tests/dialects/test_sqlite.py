"""SQLite-only behaviour: declared types it does not enforce (UUID, JSON, TIMESTAMPTZ),
CHECK-list enums, NUMERIC as REAL (exact to 15 significant digits), offsets kept as
given, and rows other programs wrote with values that do not match the declared type."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer
from swain.contrib.testing.api import create_and_read_back
from swain.contrib.testing.fixtures import only_dialect
from swain.core.keys import RUNTIME

dialect = only_dialect("sqlite")


DDL = """
CREATE TABLE things (
    id INTEGER PRIMARY KEY,
    token UUID,
    doc JSON,
    size TEXT NOT NULL DEFAULT 'M' CHECK (size IN ('S', 'M', 'L')),
    amount NUMERIC(17,2),
    free NUMERIC,
    at_tz TIMESTAMPTZ,
    day DATE,
    flag BOOLEAN,
    n SMALLINT
);
INSERT INTO things (id, token, doc, day, flag, amount, n, at_tz)
    VALUES (1000, 'not-a-uuid', 'not json', 'someday', 'false', 'lots', 'many', 'later');
INSERT INTO things (id, flag, day) VALUES (1001, 'true', '2024-01-02 00:00:00')
"""


def _raw(database: FreshDatabase, row_id: int, column: str) -> Any:
    return database.query(f'SELECT "{column}", typeof("{column}") FROM things WHERE id = :i',
                          {"i": row_id})[0]


def test_declared_types_in_the_model(server: LiveServer) -> None:
    table = server.app[RUNTIME].schema.table("things")
    assert table is not None
    c = {col.name: col for col in table.columns}
    assert (c["token"].kind, c["doc"].kind, c["at_tz"].kind) == ("uuid", "json", "datetime_tz")
    assert c["size"].enum_values == ["S", "M", "L"] and not c["size"].required_on_create
    # SQLite stores every integer in up to 8 bytes, whatever the declared type
    assert (c["n"].minimum, c["n"].maximum) == (-(2**63), 2**63 - 1)


def test_uuid_and_json_are_stored_as_text(client: httpx.Client, database: FreshDatabase) -> None:
    token = uuid.uuid4()
    row = create_and_read_back(client, "things", {"token": str(token), "doc": {"k": [1, "ü"]}})
    assert row["token"] == str(token) and row["doc"] == {"k": [1, "ü"]}
    assert _raw(database, row["id"], "token") == (str(token), "text")
    assert _raw(database, row["id"], "doc") == ('{"k":[1,"ü"]}', "text")


def test_check_list_enum(client: httpx.Client, database: FreshDatabase) -> None:
    assert create_and_read_back(client, "things", {})["size"] == "M"
    r = client.post("/things", json={"size": "XL"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "size"


@pytest.mark.parametrize("text", ["1234567890123.45", "0.10", "-9999999999999.99", "0.01"])
def test_decimals_are_exact_within_15_significant_digits(client: httpx.Client,
                                                         database: FreshDatabase,
                                                         text: str) -> None:
    # NUMERIC has REAL affinity: 15 significant digits survive exactly, more do not.
    row = create_and_read_back(client, "things", {"amount": text})
    assert row["amount"] == text
    assert _raw(database, row["id"], "amount")[1] in ("real", "integer")


def test_more_digits_than_a_real_holds_is_422(client: httpx.Client, server: LiveServer,
                                              database: FreshDatabase) -> None:
    amount = server.app[RUNTIME].schema.table("things").column("amount")
    assert (amount.sql_type, amount.precision, amount.scale) == ("NUMERIC(17,2)", 15, 2)
    before = database.query("SELECT COUNT(*) FROM things")
    r = client.post("/things", json={"amount": "123456789012345.67"})  # 17 digits
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "amount"
    assert database.query("SELECT COUNT(*) FROM things") == before


def test_unscaled_numeric_loses_trailing_zeros(client: httpx.Client) -> None:
    # a NUMERIC without a declared scale has none to restore: "0.10" is the REAL 0.1
    assert create_and_read_back(client, "things", {"free": "0.10"})["free"] == "0.1"


def test_offsets_are_kept_as_given(client: httpx.Client, database: FreshDatabase) -> None:
    row = create_and_read_back(client, "things", {"at_tz": "2024-05-06T09:08:09.5+02:00"})
    assert row["at_tz"] == "2024-05-06T09:08:09.5+02:00"
    assert _raw(database, row["id"], "at_tz") == ("2024-05-06T09:08:09.500000+02:00", "text")
    assert dt.datetime.fromisoformat(row["at_tz"]) == \
        dt.datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=dt.UTC)
    naive = create_and_read_back(client, "things", {"at_tz": "2024-05-06T09:08:09"})
    assert naive["at_tz"] == "2024-05-06T09:08:09+00:00"  # no zone given: taken as UTC


def test_rows_written_by_others_are_served_as_stored(client: httpx.Client) -> None:
    r = client.get("/things/1000")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": 1000, "token": "not-a-uuid", "doc": "not json", "size": "M",
                        "amount": "lots", "free": None, "at_tz": "later", "day": "someday",
                        "flag": False, "n": "many"}
    other = client.get("/things/1001").json()
    assert (other["flag"], other["day"]) == (True, "2024-01-02")
    listed = client.get("/things", params={"sort": "-id", "page_size": 50})
    assert listed.status_code == 200 and len(listed.json()["data"]) >= 2
