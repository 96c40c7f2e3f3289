"""MySQL/MariaDB-only behaviour: tinyint(1) booleans, unsigned and small integer types,
MariaDB's JSON (LONGTEXT + json_valid) and UUID types, ENUM, VARBINARY, TIMESTAMP vs
DATETIME, and the server's own limits reported as 422s naming the column."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer
from swain.contrib.testing.api import create_and_read_back
from swain.contrib.testing.fixtures import only_dialect
from swain.core.keys import RUNTIME

dialect = only_dialect("mysql")


DDL = """
CREATE TABLE things (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    flag TINYINT(1),
    level TINYINT,
    ubyte TINYINT UNSIGNED,
    medium MEDIUMINT,
    huge BIGINT UNSIGNED,
    doc JSON,
    token UUID,
    size ENUM('S', 'M', 'L') NOT NULL DEFAULT 'M',
    raw VARBINARY(16),
    body TEXT,
    at_ts TIMESTAMP(6) NULL,
    at_dt DATETIME(6),
    yr YEAR
)
"""


def _raw(database: FreshDatabase, row_id: int, column: str) -> Any:
    return database.query(f"SELECT `{column}` FROM things WHERE id = :i", {"i": row_id})[0][0]


def _count(database: FreshDatabase) -> int:
    return int(database.query("SELECT COUNT(*) FROM things")[0][0])


def test_types_in_the_model(server: LiveServer) -> None:
    table = server.app[RUNTIME].schema.table("things")
    assert table is not None
    c = {col.name: col for col in table.columns}
    assert (c["flag"].kind, c["level"].kind) == ("boolean", "integer")
    assert (c["level"].minimum, c["level"].maximum) == (-128, 127)
    assert (c["ubyte"].minimum, c["ubyte"].maximum) == (0, 255)
    assert (c["medium"].minimum, c["medium"].maximum) == (-(2**23), 2**23 - 1)
    assert (c["huge"].minimum, c["huge"].maximum) == (0, 2**64 - 1)
    assert (c["doc"].kind, c["token"].kind, c["raw"].kind) == ("json", "uuid", "binary")
    assert c["raw"].max_length == 16
    assert (c["size"].enum_values, c["size"].required_on_create) == (["S", "M", "L"], False)
    assert (c["at_ts"].kind, c["at_dt"].kind) == ("datetime_tz", "datetime")


def test_tinyint1_is_a_boolean_and_tinyint_an_integer(client: httpx.Client,
                                                      database: FreshDatabase) -> None:
    row = create_and_read_back(client, "things",
                               {"flag": True, "level": -128, "ubyte": 255, "medium": 8388607})
    assert (row["flag"], row["level"], row["ubyte"], row["medium"]) == (True, -128, 255, 8388607)
    assert _raw(database, row["id"], "flag") == 1
    r = client.patch(f"/things/{row['id']}", json={"flag": False})
    assert r.json()["flag"] is False and _raw(database, row["id"], "flag") == 0
    assert client.get("/things", params={"flag": "false"}).json()["total"] >= 1


def test_unsigned_bigint_to_its_maximum(client: httpx.Client, database: FreshDatabase) -> None:
    row = create_and_read_back(client, "things", {"huge": 18446744073709551615})
    assert row["huge"] == 18446744073709551615
    assert _raw(database, row["id"], "huge") == 18446744073709551615
    assert json.loads(client.get(f"/things/{row['id']}").content)["huge"] == 2**64 - 1


def test_mariadb_json_is_stored_as_valid_json_text(client: httpx.Client,
                                                   database: FreshDatabase) -> None:
    document = {"a": [1, 2.5, None], "b": {"c": "ü 🎉"}, "big": 123456789012345678901234567890}
    row = create_and_read_back(client, "things", {"doc": document})
    assert row["doc"] == document
    stored = _raw(database, row["id"], "doc")
    assert isinstance(stored, str) and json.loads(stored) == document
    for value in ("text", 42, [1, [2]], False):
        assert create_and_read_back(client, "things", {"doc": value})["doc"] == value


def test_mariadb_uuid(client: httpx.Client, database: FreshDatabase) -> None:
    token = uuid.uuid4()
    row = create_and_read_back(client, "things", {"token": str(token).upper()})
    assert row["token"] == str(token)
    assert uuid.UUID(str(_raw(database, row["id"], "token"))) == token
    listed = client.get("/things", params={"token": str(token)}).json()
    assert [r["id"] for r in listed["data"]] == [row["id"]]


def test_enum_default_and_values(client: httpx.Client, database: FreshDatabase) -> None:
    row = create_and_read_back(client, "things", {})
    assert row["size"] == "M"
    r = client.patch(f"/things/{row['id']}", json={"size": "XL"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "size"
    assert _raw(database, row["id"], "size") == "M"


def test_timestamp_is_utc_and_datetime_is_naive(client: httpx.Client,
                                                database: FreshDatabase) -> None:
    row = create_and_read_back(client, "things", {"at_ts": "2030-06-01T12:00:00.25+05:30",
                                                  "at_dt": "2030-06-01T12:00:00.25"})
    assert row["at_ts"] == "2030-06-01T06:30:00.25+00:00"
    assert row["at_dt"] == "2030-06-01T12:00:00.25"
    # sessions run in UTC, so the stored TIMESTAMP reads back as the UTC wall time
    assert _raw(database, row["id"], "at_ts") == dt.datetime(2030, 6, 1, 6, 30, 0, 250000)


def test_binary_round_trip_and_length(client: httpx.Client, database: FreshDatabase) -> None:
    data = b"\x00\x01\xfe\xff" * 4
    row = create_and_read_back(client, "things", {"raw": base64.b64encode(data).decode()})
    assert base64.b64decode(row["raw"]) == data and _raw(database, row["id"], "raw") == data
    before = _count(database)
    r = client.post("/things", json={"raw": base64.b64encode(data + b"!").decode()})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "raw"
    assert _count(database) == before


@pytest.mark.parametrize(("row", "field"), [
    ({"level": 128}, "level"),
    ({"ubyte": -1}, "ubyte"),
    ({"ubyte": 256}, "ubyte"),
    ({"medium": 2**23}, "medium"),
    ({"huge": -1}, "huge"),
    ({"huge": 2**64}, "huge"),
    ({"flag": 2}, "flag"),
    ({"doc": {"x": 1}, "token": "zz"}, "token"),
])
def test_out_of_range_is_422_naming_the_field(client: httpx.Client, database: FreshDatabase,
                                              row: dict[str, Any], field: str) -> None:
    before = _count(database)
    r = client.post("/things", json=row)
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["error"]["details"]] == [field]
    assert _count(database) == before


@pytest.mark.parametrize(("row", "field"), [
    # limits only the server knows: TEXT holds 65,535 bytes, TIMESTAMP ends in 2038
    ({"body": "x" * 70_000}, "body"),
    ({"at_ts": "2040-01-01T00:00:00Z"}, "at_ts"),
    ({"yr": 1800}, "yr"),
])
def test_server_side_limits_are_422_naming_the_column(client: httpx.Client,
                                                      database: FreshDatabase,
                                                      row: dict[str, Any], field: str) -> None:
    before = _count(database)
    r = client.post("/things", json=row)
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["error"]["details"]] == [field]
    assert _count(database) == before
