"""SQLite through aiosqlite: a small pool of connections to one file.

SQLite has no native types for most of what the API serves, so values are
stored in their canonical text form (ISO-8601 timestamps keep their zone,
UUIDs as text, JSON as text, decimals as text when the column has TEXT
affinity) and normalised on the way out.  Foreign keys are switched on for
every connection, and the database runs in WAL mode so readers do not wait
for the writer.

A NUMERIC/DECIMAL column has NUMERIC affinity: SQLite keeps the value as a
REAL (a double), which holds 15 significant digits exactly.  A declared
``NUMERIC(p,s)`` with ``p > 15`` is therefore served as accepting 15 digits
(more is a 422, not a silent rounding); an unconstrained ``NUMERIC`` cannot
be checked that way and rounds beyond 15 digits, and has no scale to restore
(``"0.10"`` reads back as ``"0.1"``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_types
from sqlalchemy.engine import URL

from swain.core.codec import json_from_text, json_text
from swain.core.dialect import (
    DBConnection,
    Dialect,
    ExecResult,
    PoolStats,
    TimedConnection,
    checkout,
    on_conflict_upsert,
    too_many_parameters,
)
from swain.core.errors import ApiError, Conflict, Detail, ServiceUnavailable, ValidationFailed
from swain.core.schema import Column, Table


class SQLiteConnection(TimedConnection):
    """A pooled aiosqlite connection whose every statement is bounded client-side:
    past its deadline the statement is interrupted (the connection stays usable)
    and the request gets a 503."""

    conn: aiosqlite.Connection

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        async with self.answer(), self.conn.execute(sql, params or {}) as cursor:
            return list(await cursor.fetchall())

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        async with self.answer(), self.conn.execute(sql, params or {}) as cursor:
            return ExecResult(cursor.rowcount, cursor.lastrowid)

    async def begin(self) -> None:
        # IMMEDIATE takes the write lock up front, so two writers queue on
        # busy_timeout instead of deadlocking on a read-to-write upgrade.
        async with self.answer():
            await self.conn.execute("BEGIN IMMEDIATE")

    async def abandon(self) -> None:
        await self.conn.interrupt()  # the driver's thread still runs the statement


class SQLiteDialect(Dialect):
    name = "sqlite"
    driver = "sqlite+aiosqlite"
    paramstyle = "named"
    supports_upsert = True
    supports_returning_insert = True
    supports_returning_update = True
    supports_returning_delete = True
    sequences_follow_explicit_keys = True  # the next key is past the largest
    version_query = "SELECT sqlite_version()"

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        database = self.url.database
        if database and database != ":memory:" and not database.startswith("file:") \
                and not os.path.isabs(database):
            # a relative file is relative to the project's folder, not the process's
            self.url = self.url.set(database=str(connection.base_dir / database))
        self.sa_dialect.insert_returning = True
        self.sa_dialect.update_returning = True
        self.sa_dialect.delete_returning = True
        self._idle: asyncio.Queue[aiosqlite.Connection] | None = None
        self._all: list[aiosqlite.Connection] = []
        self._size = max(1, min(connection.pool_size, 4))
        self._lock = asyncio.Lock()
        self.max_parameters = _variable_limit()

    @classmethod
    def create_test_database(cls, name: str, directory: Path) -> URL:
        # one database per folder; the file appears on first connection and the kit
        # removes the folder
        return URL.create("sqlite", database=str(directory / "test.db"))

    @property
    def path(self) -> str:
        return self.url.database or ":memory:"

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None,
                                       timeout=self.connection.connect_timeout)
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(f"PRAGMA busy_timeout = {int(self.connection.statement_timeout * 1000)}")
        if self.path != ":memory:":
            await conn.execute("PRAGMA journal_mode = WAL")
        return conn

    async def open(self) -> None:
        self._idle = asyncio.Queue()

    async def probe(self) -> str:
        # Connecting would create a missing file; a test must not.
        if self.path != ":memory:" and not self.path.startswith("file:") \
                and not os.path.exists(self.path):
            raise FileNotFoundError(f"database file {self.path} does not exist")
        return await super().probe()

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
        self._idle = None

    def pool_stats(self) -> PoolStats | None:
        if self._idle is None:
            return None
        return PoolStats(max=self._size, open=len(self._all), idle=self._idle.qsize())

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[DBConnection]:
        assert self._idle is not None, "dialect not opened"
        conn, deadlines = await checkout(self.connection, self._next_idle())
        try:
            yield SQLiteConnection(conn, deadlines)
        finally:
            if conn.in_transaction:
                await conn.rollback()
            self._idle.put_nowait(conn)

    async def _next_idle(self) -> aiosqlite.Connection:
        assert self._idle is not None, "dialect not opened"
        if self._idle.empty() and len(self._all) < self._size:
            async with self._lock:
                if len(self._all) < self._size:
                    conn = await self._connect()
                    self._all.append(conn)
                    self._idle.put_nowait(conn)
        return await self._idle.get()

    def upsert(self, sa_table: sa.Table, row: Mapping[str, Any], sets: Mapping[str, Any],
               conflict: Sequence[str]) -> sa.Insert:
        return on_conflict_upsert(sqlite_types.insert, sa_table, row, sets, conflict)

    def declared_types(self, sync_conn: Any, schema: str | None, table: str) -> dict[str, str]:
        quoted = table.replace('"', '""')
        rows = sync_conn.exec_driver_sql(f'PRAGMA table_xinfo("{quoted}")').all()
        return {row[1]: str(row[2]) for row in rows if row[2]}

    def unique_constraints(self, sync_conn: Any, inspector: Any, schema: str | None,
                           table: str) -> list[dict[str, Any]]:
        # SQLAlchemy parses the CREATE TABLE text and misses inline ones such
        # as "name VARCHAR(50) UNIQUE"; every UNIQUE constraint has an index
        # of origin "u", so take those and keep the parsed names.
        named = {tuple(u["column_names"]): u.get("name")
                 for u in inspector.get_unique_constraints(table, schema=schema)}
        found = []
        quoted = table.replace('"', '""')
        for row in sync_conn.exec_driver_sql(f'PRAGMA index_list("{quoted}")').all():
            index, origin = str(row[1]), str(row[3])
            if origin != "u":
                continue
            index_quoted = index.replace('"', '""')
            info = sync_conn.exec_driver_sql(f'PRAGMA index_info("{index_quoted}")').all()
            columns = tuple(str(r[2]) for r in sorted(info))
            found.append({"name": named.get(columns), "column_names": list(columns)})
        return found

    def finish_table(self, table: Table) -> None:
        if len(table.primary_key) == 1:
            column = table.column(table.primary_key[0])
            if column is not None and column.sql_type.upper() == "INTEGER":
                column.autoincrement = True  # INTEGER PRIMARY KEY is the rowid
        for column in table.columns:
            # Every SQLite integer is stored in up to 8 bytes, whatever the declared type.
            if column.kind == "integer":
                column.minimum, column.maximum = -(2**63), 2**63 - 1
            if column.kind == "decimal" and (column.precision or 0) > _REAL_DIGITS:
                column.precision = _REAL_DIGITS
                column.scale = min(column.scale or 0, _REAL_DIGITS)

    # -- values ------------------------------------------------------------------

    def encode(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "json":
            return json_text(value)
        if kind in ("datetime", "datetime_tz", "date", "time"):
            return value.isoformat()
        if kind == "uuid":
            return str(value)
        if kind == "decimal":
            return str(value)
        if kind == "array":
            return orjson.dumps(value, default=str).decode()
        return value

    def decoder(self, column: Column) -> Callable[[Any], Any] | None:
        convert = self._converter(column)
        if convert is None:
            return None

        # SQLite accepts any value in any column, so a database other programs
        # write to may hold text in a DATE column: such a value is served as
        # stored instead of failing the whole response.
        def tolerant(value: Any) -> Any:
            try:
                return convert(value)
            except (ValueError, TypeError, ArithmeticError):
                return value

        return tolerant

    def _converter(self, column: Column) -> Callable[[Any], Any] | None:
        kind = column.kind
        if kind == "boolean":
            return _boolean
        if kind in ("json", "array"):
            return lambda v: json_from_text(v) if isinstance(v, str | bytes) else v
        if kind == "decimal":
            exponent = None if column.scale is None else Decimal(1).scaleb(-column.scale)

            def to_decimal(v: Any) -> Any:
                # str() of a REAL is its shortest exact repr, so 0.1 stays 0.1
                number = Decimal(str(v))
                return number if exponent is None else number.quantize(exponent)

            return to_decimal
        if kind == "datetime_tz":
            return _datetime_tz
        if kind == "datetime":
            return _datetime
        if kind == "date":
            return lambda v: dt.date.fromisoformat(v[:10]) if isinstance(v, str) else v
        if kind == "time":
            return lambda v: dt.time.fromisoformat(v) if isinstance(v, str) else v
        if kind == "uuid":
            return lambda v: uuid.UUID(v) if isinstance(v, str) else uuid.UUID(bytes=v)
        return None

    def describe_error(self, exc: BaseException) -> str | None:
        if isinstance(exc, sqlite3.Error):
            # SQLite's messages name tables, columns and constraints, not values
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        return super().describe_error(exc)

    def classify_error(self, exc: BaseException) -> ApiError | None:
        if isinstance(exc, OverflowError):
            # sqlite3 refuses to bind an int beyond 64 bits before SQLite sees it.
            return ValidationFailed("a number is out of range for its column")
        if not isinstance(exc, sqlite3.Error):
            return None
        message = str(exc)
        if isinstance(exc, sqlite3.IntegrityError):
            target = message.split(":", 1)[1].strip() if ":" in message else ""
            if message.startswith("UNIQUE"):
                columns = [c.strip().split(".")[-1] for c in target.split(",") if c.strip()]
                return Conflict(f"unique constraint on {', '.join(columns)} violated: a row with "
                                "that key already exists", [Detail(c, "already exists") for c in columns])
            if message.startswith("FOREIGN KEY"):
                return Conflict("foreign key constraint violated: the row references a row that "
                                "does not exist, or is still referenced")
            if message.startswith("NOT NULL"):
                column = target.split(".")[-1]
                return ValidationFailed(f"{column}: may not be null", [Detail(column, "may not be null")])
            if message.startswith("CHECK"):
                return ValidationFailed(f"check constraint {target!r} violated",
                                        [Detail(target, "check constraint violated")])
            return Conflict("a constraint was violated")
        if isinstance(exc, sqlite3.OperationalError) and "too many SQL variables" in message:
            return too_many_parameters()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message
                                                          or "unable to open" in message):
            return ServiceUnavailable("the database is busy or unavailable; try again shortly")
        return None

    async def estimate_count(self, conn: DBConnection, sql: str, params: Mapping[str, Any],
                             sa_table: sa.Table, filtered: bool) -> int | None:
        return None

    def comparable(self, expression: sa.ColumnElement[Any], kind: str) -> sa.ColumnElement[Any]:
        # Timestamps are text in whatever ISO form was written ("T" or " ",
        # with or without a zone); compare their UTC instants instead.
        if kind in ("datetime", "datetime_tz"):
            return sa.func.strftime(sa.literal_column("'%Y-%m-%d %H:%M:%f'"), expression)
        return expression

    def in_list(self, column: sa.ColumnElement[Any], values: list[Any], spec: Column,
                each: Callable[[Any], Any], negate: bool,
                bind: Callable[[Any], sa.BindParameter[Any]]) -> sa.ColumnElement[bool]:
        # The values travel as one JSON array read by json_each: SQLite numbers
        # named parameters by a linear search while preparing, so a statement with
        # thousands of them takes seconds.  A bound value and json_each's value
        # both lack affinity, so each compares exactly as ``column = value`` would.
        items = sa.func.json_each(bind(orjson.dumps(values).decode())).table_valued("value")
        listed = sa.select(each(items.c.value))
        return column.not_in(listed) if negate else column.in_(listed)

    def like(self, column: sa.ColumnElement[Any], pattern: str, case_sensitive: bool,
             bind: Callable[[Any], Any]) -> sa.ColumnElement[bool]:
        # SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive matcher.
        if case_sensitive:
            return column.op("GLOB", is_comparison=True)(bind(_like_to_glob(pattern)))
        return super().like(column, pattern, case_sensitive, bind)


def _variable_limit() -> int:
    """The SQLite library's limit on parameters per statement (a build option)."""
    probe = sqlite3.connect(":memory:")
    try:
        return int(probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        probe.close()


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escapes) as a GLOB pattern (``*``, ``?``, ``[x]``)."""
    out, escaped = [], False
    for char in pattern:
        if escaped or char not in "%_\\":
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append("*" if char == "%" else "?")
    return "".join(out)


#: significant decimal digits a REAL (IEEE double) holds exactly
_REAL_DIGITS = 15

_TRUE_TEXT = frozenset({"1", "true", "t", "yes", "y", "on"})


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_TEXT
    return bool(value)


def _parse(value: str) -> dt.datetime:
    text = value.replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def _datetime_tz(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parsed = _parse(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _datetime(value: Any) -> Any:
    return _parse(value) if isinstance(value, str) else value
