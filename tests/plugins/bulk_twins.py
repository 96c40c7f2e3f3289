"""Twin tables for the bulk-insert path tests: ``fast`` takes the fast path,
``slow`` the path it replaces; the ``slow_path`` fixture arranges it and
:data:`USED` counts the fast paths taken."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from swain.contrib.testing import LiveServer
from swain.core import TableGateway
from swain.core.keys import RUNTIME
from swain.dialects.postgresql import PostgresConnection

#: batches that went through COPY, and multi-row INSERTs read back, by table
USED: Counter[str] = Counter()
SWAIN_CONFIG = {"bulk": {"max_rows": 10_000}, "api": {"max_body_size": 8 * 1024 * 1024}}

TWINS = ("fast", "slow")
_PG = """
CREATE TABLE {t} (id SERIAL PRIMARY KEY, code VARCHAR(8) NOT NULL UNIQUE,
  n INTEGER CHECK (n >= 0), price NUMERIC(10,2), ok BOOLEAN, day DATE, at TIMESTAMPTZ,
  doc JSON, tags TEXT[], bin BYTEA, ref UUID, mood mood, ratio REAL,
  owner_id INTEGER REFERENCES owners (id), note TEXT DEFAULT 'none',
  made TIMESTAMPTZ NOT NULL DEFAULT '2020-01-01T00:00:00Z');
"""
_MYSQL = """
CREATE TABLE {t} (id INTEGER AUTO_INCREMENT PRIMARY KEY, code VARCHAR(8) NOT NULL UNIQUE,
  n INTEGER CHECK (n >= 0), price DECIMAL(10,2), ok BOOLEAN, day DATE, at DATETIME(6),
  doc JSON, bin VARBINARY(64), mood ENUM('happy', 'sad'), ratio DOUBLE,
  owner_id INTEGER, note TEXT, made DATETIME NOT NULL DEFAULT '2020-01-01 00:00:00',
  FOREIGN KEY (owner_id) REFERENCES owners (id));
"""
_SQLITE = """
CREATE TABLE {t} (id INTEGER PRIMARY KEY, code VARCHAR(8) NOT NULL UNIQUE,
  n INTEGER CHECK (n >= 0), price DECIMAL(10,2), ok BOOLEAN, day DATE, at TIMESTAMP,
  doc JSON, bin BLOB, ratio REAL, owner_id INTEGER REFERENCES owners (id),
  note TEXT DEFAULT 'none', made TIMESTAMP NOT NULL DEFAULT '2020-01-01 00:00:00');
"""
DDL = {
    "postgresql": "CREATE TYPE mood AS ENUM ('happy', 'sad');\n"
                  "CREATE TABLE owners (id SERIAL PRIMARY KEY, name TEXT NOT NULL);\n"
                  + "".join(_PG.format(t=t) for t in TWINS)
                  # rows PostgreSQL cannot write in the API's JSON (intervals)
                  + "".join(f"CREATE TABLE {t}_spans (id SERIAL PRIMARY KEY, span INTERVAL, "
                            "n INTEGER CHECK (n > 0));\n" for t in TWINS),
    "mysql": "CREATE TABLE owners (id INTEGER AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL);\n"
             + "".join(_MYSQL.format(t=t) for t in TWINS),
    "sqlite": "CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
              + "".join(_SQLITE.format(t=t) for t in TWINS),
}


def good_and_bad_rows(dialect: str, count: int) -> list[dict[str, Any]]:
    """Good rows of every type, with refused ones among them."""
    rows: list[dict[str, Any]] = []
    for i in range(count):
        row: dict[str, Any] = {
            "code": f"c{i}", "n": i % 7, "price": f"{i % 1000}.{i % 100:02d}",
            "ok": i % 2 == 0, "day": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "at": f"2024-05-06T07:08:{i % 60:02d}.25+00:00", "doc": {"i": i, "k": ["x", None]},
            "bin": "AAEC/w==", "ratio": i / 10, "owner_id": 1 + i % 2,
            "note": None if i % 3 else "x, \"quoted\"\ttab\\n"}
        if dialect == "postgresql":
            row.update({"tags": ["a", "b,c", None], "ref": f"00000000-0000-0000-0000-{i:012d}",
                        "mood": "sad" if i % 2 else "happy"})
        elif dialect == "mysql":
            row["mood"] = "sad" if i % 2 else "happy"
        if i % 5 == 4:
            del row["note"]  # another column set: another group
        rows.append(row)
    rows[3]["n"] = "many"  # refused by the validation
    rows[5]["code"] = "c1"  # a duplicate of an earlier row
    rows[8]["n"] = -1  # the CHECK constraint
    rows[11]["owner_id"] = 999  # no such owner
    rows[-1]["code"] = rows[-2]["code"]  # a duplicate in the last batch
    return rows


def without_keys(answer: httpx.Response, table: str) -> tuple[int, Any]:
    """Status and body with the generated keys left out (a failing batch may use up
    keys differently on each path), and the table's name (in constraint names) too."""
    body = json.loads(answer.text.replace(table, "twin"))
    if "succeeded" in body:
        for item in body["succeeded"]:
            item.pop("id")
            item["data"].pop("id")
    return answer.status_code, body


def stored(database: Any, table: str) -> list[tuple[Any, ...]]:
    rows = database.query(f"SELECT * FROM {table} ORDER BY code")
    return [tuple(row)[1:] for row in rows]


def keys_match(answer: httpx.Response, database: Any, table: str) -> None:
    by_id = {row[0]: row[1] for row in database.query(f"SELECT id, code FROM {table}")}
    for item in answer.json()["succeeded"]:
        assert item["id"] == item["data"]["id"] and by_id[item["id"]] == item["data"]["code"]


#: batches that went through COPY, and multi-row INSERTs read back, by table
USED: Counter[str] = Counter()


@pytest.fixture()
def slow_path(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """``slow`` takes the path the fast one replaces (call the result to also take
    RETURNING away, as on MySQL); :data:`USED` counts the fast paths taken."""
    USED.clear()
    dialect = server.app[RUNTIME].dialect
    staged = dialect.staged_insert
    monkeypatch.setattr(dialect, "staged_insert", lambda sa_table, *args: None
                        if sa_table.name.startswith("slow") else staged(sa_table, *args))
    copy_rows, read_back = PostgresConnection.copy_rows, TableGateway._insert_read_back

    async def copying(conn: Any, sql: str, rows: Any) -> None:
        USED["copy"] += 1
        await copy_rows(conn, sql, rows)

    async def reading_back(gw: Any, table: Any, *args: Any) -> Any:
        USED[f"read back {table.name}"] += 1
        return await read_back(gw, table, *args)

    json_object = dialect.json_object

    def as_json(sa_table: Any, columns: Any) -> Any:
        found = json_object(sa_table, columns)
        USED["rows as JSON"] += found is not None and sa_table.name.startswith("fast")
        return found

    monkeypatch.setattr(dialect, "json_object", as_json)
    monkeypatch.setattr(PostgresConnection, "copy_rows", copying)
    monkeypatch.setattr(TableGateway, "_insert_read_back", reading_back)
    inserts_many = TableGateway.inserts_many

    def no_returning() -> None:
        monkeypatch.setattr(dialect, "supports_returning_insert", False)
        monkeypatch.setattr(TableGateway, "inserts_many", lambda gw, table, names:
                            table.name != "slow" and inserts_many(gw, table, names))

    yield no_returning


def compare(client: httpx.Client, database: Any, dialect: str, query: str = "",
             count: int = 60) -> httpx.Response:
    rows = good_and_bad_rows(dialect, count)
    fast, slow = (client.post(f"/{t}/bulk{query}", json=rows, timeout=120) for t in TWINS)
    assert without_keys(fast, "fast") == without_keys(slow, "slow")
    assert stored(database, "fast") == stored(database, "slow")
    if fast.status_code in (200, 207):
        keys_match(fast, database, "fast")
    for table in TWINS:
        database.run_script(f"DELETE FROM {table}")
    return fast


def owners(database: Any) -> None:
    """Two owners and no rows in the twins."""
    for table in TWINS:
        database.run_script(f"DELETE FROM {table}")
    if not database.query("SELECT count(*) FROM owners")[0][0]:
        database.run_script("INSERT INTO owners (name) VALUES ('a'), ('b')")
