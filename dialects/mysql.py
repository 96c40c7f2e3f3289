"""MySQL and MariaDB through aiomysql (PyMySQL underneath).

Sessions run in UTC with strict SQL modes, so a value that does not fit is an
error (422) instead of being silently truncated.  RETURNING is used where the
server has it (MariaDB 10.5+ for INSERT, 10.0+ for DELETE); otherwise rows
are read back by key in the same transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomysql
import pymysql
import sqlalchemy as sa
from pymysql.constants import CLIENT
from sqlalchemy import types as sat
from sqlalchemy.dialects import mysql as mysql_types
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from swain.core import DBConnection, Dialect, ExecResult, PoolStats
from swain.core.codec import json_from_text, json_text
from swain.core.dialect import TimedConnection, checkout, run_on_server
from swain.core.errors import ApiError, Conflict, Detail, ServiceUnavailable, ValidationFailed
from swain.core.introspect import bounds
from swain.core.schema import Column

_SQL_MODE = ("STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
             "NO_ENGINE_SUBSTITUTION")
#: above this many parameters, a statement's values are written into it off the loop
_INLINE_PARAMETERS = 1000
#: the longest GROUP_CONCAT (and MariaDB's JSON_ARRAYAGG) result a session allows
_GROUP_CONCAT_MAX = 4294967295
_DISCONNECTS = {1040, 1053, 1077, 1152, 1205, 1927, 2002, 2003, 2006, 2013, 2014, 2045, 2055, 4031}


class _Cursor(aiomysql.Cursor):  # type: ignore[misc]
    """aiomysql escapes ``bytes`` through a PyMySQL helper that PyMySQL 1.1.1+
    no longer provides; write binary values as hex literals instead."""

    def _escape_args(self, args: Any, conn: aiomysql.Connection) -> Any:
        if isinstance(args, dict):
            return {key: _literal(value, conn) for key, value in args.items()}
        if isinstance(args, tuple | list):
            return tuple(_literal(value, conn) for value in args)
        return _literal(args, conn)


def _literal(value: Any, conn: aiomysql.Connection) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"_binary X'{bytes(value).hex()}'"
    return conn.escape(value)


class MySQLConnection(TimedConnection):
    """A pooled aiomysql connection whose every round trip is bounded client-side:
    past its deadline the connection is closed (its protocol state is unknown)
    and the request gets a 503."""

    conn: aiomysql.Connection

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        async with self.answer(), self.conn.cursor() as cursor:
            await self._run(cursor, sql, params)
            return list(await cursor.fetchall()) if cursor.description else []

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        async with self.answer(), self.conn.cursor() as cursor:
            await self._run(cursor, sql, params)
            return ExecResult(cursor.rowcount, cursor.lastrowid)

    @staticmethod
    async def _run(cursor: aiomysql.Cursor, sql: str, params: Mapping[str, Any] | None) -> None:
        if params and len(params) > _INLINE_PARAMETERS:
            # The driver writes the values into the text itself: for thousands
            # of them (a long in list) that is done off the event loop.
            sql = await asyncio.to_thread(cursor.mogrify, sql, params)
            params = None
        await cursor.execute(sql, params or None)

    async def begin(self) -> None:
        async with self.answer():
            await self.conn.begin()

    async def abandon(self) -> None:
        self.conn.close()


#: the server test databases are created on, unless SWAIN_TEST_MYSQL_URL names one
TEST_SERVER = "mysql+pymysql://root@127.0.0.1:3306/test"


class MySQLDialect(Dialect):
    name = "mysql"
    driver = "mysql+aiomysql"
    supports_upsert = True
    upsert_matches_any_key = True
    sequences_follow_explicit_keys = True  # the next key is past the largest
    version_query = "SELECT VERSION()"

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.pool: aiomysql.Pool | None = None
        self.is_mariadb = False

    @classmethod
    def create_test_database(cls, name: str, directory: Path) -> URL:
        server = make_url(os.environ.get("SWAIN_TEST_MYSQL_URL", TEST_SERVER))
        # A binary collation: the API's text comparisons are exact on every database.
        run_on_server(server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                              "COLLATE utf8mb4_bin")
        return server.set(database=name)

    @classmethod
    def drop_test_database(cls, url: URL) -> None:
        run_on_server(url.set(database="mysql"), f"DROP DATABASE IF EXISTS `{url.database}`")

    async def open(self) -> None:
        url = self.url
        self.pool = await aiomysql.create_pool(
            host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
            password=url.password or "", db=url.database, minsize=0,
            maxsize=self.connection.pool_size, autocommit=True, charset="utf8mb4",
            connect_timeout=self.connection.connect_timeout, pool_recycle=3600,
            client_flag=CLIENT.FOUND_ROWS, cursorclass=_Cursor,
            # group_concat_max_len bounds JSON_ARRAYAGG too (which it cuts short)
            init_command=f"SET time_zone = '+00:00', sql_mode = '{_SQL_MODE}', "
                         f"group_concat_max_len = {_GROUP_CONCAT_MAX}"
                         # MariaDB only (MySQL reads it as a comment): a server-side
                         # bound, so a slow statement ends before the client gives up
                         f" /*M!100108 , max_statement_time = "
                         f"{self.connection.statement_timeout:g} */",
        )
        try:
            await self.ping()
        except Exception:
            return  # the server may come up later; requests meanwhile get 503

    async def ping(self) -> str:
        version = await super().ping()
        self.is_mariadb = "mariadb" in version.lower()
        numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
        self.sa_dialect.server_version_info = numbers
        setattr(self.sa_dialect, "is_mariadb", self.is_mariadb)  # noqa: B010 - not in the base type
        await self._key_step()
        if self.is_mariadb:
            self.supports_returning_insert = numbers >= (10, 5)  # type: ignore[misc]
            self.supports_returning_delete = True  # type: ignore[misc]
            self.sa_dialect.insert_returning = self.supports_returning_insert
            self.sa_dialect.delete_returning = True
            # JSON_ARRAYAGG takes ORDER BY from 10.5 (MySQL's never does)
            self.supports_json_relations = numbers >= (10, 5)  # type: ignore[misc]
        return version

    async def _key_step(self) -> None:
        """InnoDB gives one multi-row INSERT consecutive keys (``auto_increment_increment``
        apart) unless its lock mode is "interleaved" (2), where other statements'
        keys may fall in between."""
        async with self.acquire() as conn:
            row = await conn.fetch_one("SELECT @@auto_increment_increment, "
                                       "@@innodb_autoinc_lock_mode")
        self.generated_key_step = int(row[0]) if row and int(row[1]) in (0, 1) else None

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            await self.pool.wait_closed()
            self.pool = None

    def pool_stats(self) -> PoolStats | None:
        if self.pool is None:
            return None
        return PoolStats(max=self.pool.maxsize, open=self.pool.size, idle=self.pool.freesize)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[DBConnection]:
        assert self.pool is not None, "dialect not opened"
        # bounded here: aiomysql's connect_timeout covers only the TCP connect
        conn, deadlines = await checkout(self.connection, self.pool.acquire())
        try:
            yield MySQLConnection(conn, deadlines)
        except BaseException as exc:
            if _is_disconnect(exc) or not isinstance(exc, pymysql.Error | ApiError):
                conn.close()  # a broken or half-used connection must not go back to the pool
            raise
        finally:
            self.pool.release(conn)

    def default_schema(self, sync_conn: Any) -> str | None:
        return str(sync_conn.execute(sa.text("SELECT DATABASE()")).scalar())

    def declared_types(self, sync_conn: Any, schema: str | None, table: str) -> dict[str, str]:
        rows = sync_conn.execute(sa.text(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = coalesce(:s, DATABASE()) AND TABLE_NAME = :t"),
            {"s": schema, "t": table}).all()
        return {name: str(type_) for name, type_ in rows if str(type_).lower() in ("uuid", "inet6", "inet4")}

    def check_constraints(self, sync_conn: Any, inspector: Any, schema: str | None,
                          table: str) -> list[dict[str, Any]]:
        # MariaDB writes column-level checks (its JSON type's json_valid among
        # them) inline in SHOW CREATE TABLE, where SQLAlchemy does not look.
        if not getattr(sync_conn.dialect, "is_mariadb", False):
            return super().check_constraints(sync_conn, inspector, schema, table)
        rows = sync_conn.execute(sa.text(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = coalesce(:s, DATABASE()) AND TABLE_NAME = :t"),
            {"s": schema, "t": table}).all()
        return [{"name": str(name), "sqltext": str(clause)} for name, clause in rows]

    def view_base_table(self, sync_conn: Any, schema: str | None, view: str) -> str | None:
        # MariaDB has no VIEW_TABLE_USAGE; its stored definition of a simple
        # view is canonical: "select `db`.`t`.`a` AS `a`,... from `db`.`t` [where ...]".
        row = sync_conn.execute(sa.text(
            "SELECT VIEW_DEFINITION, DATABASE() FROM information_schema.VIEWS "
            "WHERE TABLE_SCHEMA = coalesce(:s, DATABASE()) AND TABLE_NAME = :v"),
            {"s": schema, "v": view}).first()
        if row is None:
            return None
        definition, current = str(row[0]), str(row[1])
        match = re.search(r"\sfrom\s+`([^`]+)`\.`([^`]+)`(?:\s+where\s.*)?$", definition,
                          re.IGNORECASE | re.DOTALL)
        if match is None or re.search(r"\sjoin\s", definition, re.IGNORECASE):
            return None
        base_schema, base = match.group(1), match.group(2)
        return base if base_schema == current else f"{base_schema}.{base}"

    def view_updatable(self, sync_conn: Any, schema: str | None, view: str) -> bool:
        row = sync_conn.execute(sa.text(
            "SELECT IS_UPDATABLE FROM information_schema.VIEWS "
            "WHERE TABLE_SCHEMA = coalesce(:s, DATABASE()) AND TABLE_NAME = :v"),
            {"s": schema, "v": view}).first()
        return bool(row and row[0] == "YES")

    # -- types -------------------------------------------------------------------------

    def column_kind(self, type_: sat.TypeEngine[Any]) -> str | None:
        if isinstance(type_, mysql_types.TINYINT) and getattr(type_, "display_width", None) == 1:
            return "boolean"
        if isinstance(type_, mysql_types.TIMESTAMP):
            return "datetime_tz"  # stored in UTC; sessions run with time_zone '+00:00'
        if isinstance(type_, mysql_types.YEAR):
            return "integer"
        return super().column_kind(type_)

    def integer_bounds(self, type_: sat.TypeEngine[Any]) -> tuple[int, int] | None:
        unsigned = bool(getattr(type_, "unsigned", False))
        if isinstance(type_, mysql_types.TINYINT):
            return bounds(8, unsigned)
        if isinstance(type_, mysql_types.MEDIUMINT):
            return bounds(24, unsigned)
        return super().integer_bounds(type_)

    # -- SQL ---------------------------------------------------------------------------

    def upsert(self, sa_table: sa.Table, row: Mapping[str, Any], sets: Mapping[str, Any],
               conflict: Sequence[str]) -> sa.Insert:
        stmt = mysql_types.insert(sa_table).values(dict(row))
        # A no-op assignment skips the row without INSERT IGNORE, which would also
        # turn data errors into warnings.
        return stmt.on_duplicate_key_update(dict(sets) or {conflict[0]: sa_table.c[conflict[0]]})

    def writable_where(self, sa_table: sa.Table, key: Sequence[str],
                       where: Sequence[Any]) -> list[Any]:
        """``key IN (SELECT key FROM (SELECT DISTINCT key FROM t WHERE …) AS m)``.

        MySQL refuses an UPDATE/DELETE whose WHERE reads the target table (error
        1093), as a relationship filter on a self-referencing key does; a derived
        table that cannot be merged (DISTINCT) is materialised first, which lifts it.
        """
        if not key:
            return list(where)
        columns = [sa_table.c[name] for name in key]
        matched = sa.select(*columns).distinct().where(*where).subquery("_swain_match")
        keys = sa.select(*[matched.c[name] for name in key])
        if len(columns) == 1:
            return [columns[0].in_(keys)]
        return [sa.tuple_(*columns).in_(keys)]

    # -- JSON composed by MariaDB -------------------------------------------------

    def json_value(self, value: sa.ColumnElement[Any], column: Column) -> Any:
        kind = column.kind
        if kind in ("integer", "number", "string", "date", "uuid"):
            return value
        if kind == "decimal":
            return sa.cast(value, sa.String)  # exact text, at the column's scale
        if kind == "boolean":
            return value.op("<>")(sa.literal_column("0"))  # JSON true/false
        if kind in ("datetime", "datetime_tz"):
            return _iso_timestamp(value, kind == "datetime_tz")
        if kind == "json":
            return sa.func.json_extract(value, self._text("$"))
        if kind == "binary":
            # TO_BASE64 breaks lines every 76 characters; the API's base64 does not
            return sa.func.replace(sa.func.to_base64(value), self._text("\n"), self._text(""))
        return None  # time (hours past 24 and negative), and kinds MariaDB lacks

    def json_aggregate(self, value: sa.ColumnElement[Any], kind: str,
                       column: Column | None) -> Any:
        if kind in ("integer", "number"):
            return value
        if kind == "decimal":
            return sa.cast(value, sa.String)
        return self.json_value(value, column) if column is not None else None

    def json_rows(self, values: Sequence[tuple[str, Any]], source: sa.Select[Any],
                  order: Sequence[Any], many: bool) -> Any:
        row = sa.func.json_object(*[part for name, value in values
                                    for part in (self._text(name), value)])
        if not many:
            return source.with_only_columns(row).order_by(*order).limit(
                sa.literal_column("1")).scalar_subquery()
        # No COALESCE: a JSON_ARRAYAGG over max_allowed_packet is null, and must not
        # read as no rows (core then fetches the related rows another way).
        array = sa.case((sa.func.count() == sa.literal_column("0"), sa.func.json_array()),
                        else_=_OrderedArrayAgg(row, *order))
        return source.with_only_columns(array).scalar_subquery()

    @staticmethod
    def _text(text: str) -> Any:
        """A string literal written into the statement (keys, constants): quotes
        doubled, backslashes escaped (sessions run without NO_BACKSLASH_ESCAPES);
        the compiler doubles ``%`` for the driver's parameter style."""
        escaped = text.replace("\\", "\\\\").replace("'", "''")
        return sa.literal_column(f"'{escaped}'")

    def order_by(self, column: sa.ColumnElement[Any], descending: bool,
                 nulls: str | None) -> list[Any]:
        # MySQL has no NULLS FIRST/LAST; it sorts NULLs first ascending, last descending.
        direction = column.desc() if descending else column.asc()
        if nulls == "first":
            return [column.is_(None).desc(), direction]
        if nulls == "last":
            return [column.is_(None).asc(), direction]
        return [direction]

    def like(self, column: sa.ColumnElement[Any], pattern: str, case_sensitive: bool,
             bind: Callable[[Any], Any]) -> sa.ColumnElement[bool]:
        # Default collations ignore case; a binary collation on the pattern decides.
        if case_sensitive:
            return column.like(sa.collate(bind(pattern), "utf8mb4_bin"), escape="\\")
        return super().like(column, pattern, case_sensitive, bind)

    def exact_text(self, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.collate(value, "utf8mb4_bin")

    async def estimate_count(self, conn: DBConnection, sql: str, params: Mapping[str, Any],
                             sa_table: sa.Table, filtered: bool) -> int | None:
        if filtered:
            return None
        row = await conn.fetch_one(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            "coalesce(%(s)s, DATABASE()) AND TABLE_NAME = %(t)s",
            {"s": sa_table.schema, "t": sa_table.name})
        return int(row[0]) if row and row[0] is not None else None

    def encode(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "json":
            return json_text(value)
        if kind == "uuid":
            return str(value)
        if kind == "datetime_tz":
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def decoder(self, column: Column) -> Callable[[Any], Any] | None:
        kind = column.kind
        if kind == "boolean":
            return bool
        if kind == "json":
            return lambda v: json_from_text(v) if isinstance(v, str | bytes) else v
        if kind == "uuid":
            return lambda v: uuid.UUID(v.decode() if isinstance(v, bytes) else str(v))
        if kind == "datetime_tz":
            return lambda v: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) else v
        if kind == "time":
            return _time_from_timedelta
        if kind == "decimal":
            return lambda v: v if isinstance(v, Decimal) else Decimal(str(v))
        return None

    def describe_error(self, exc: BaseException) -> str | None:
        if not isinstance(exc, pymysql.Error):
            return super().describe_error(exc)
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        message = str(exc.args[1]) if len(exc.args) > 1 else ""
        # MySQL quotes the values in its messages ("Duplicate entry 'a@b.c' for
        # key ..."): only the code and the names are told.
        parts = [type(exc).__name__, f"code={code}"]
        for label, name in (("key", _quoted(message, "for key")),
                            ("constraint", _quoted(message, "CONSTRAINT")),
                            ("column", _column_in(message))):
            if name:
                parts.append(f"{label}={name}")
        return " ".join(parts)

    def classify_error(self, exc: BaseException) -> ApiError | None:
        if not isinstance(exc, pymysql.Error):
            return None
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        message = str(exc.args[1]) if len(exc.args) > 1 else ""
        if _is_disconnect(exc):
            return ServiceUnavailable("the database is unavailable; try again shortly")
        if code in (1969, 3024):  # max_statement_time (MariaDB), max_execution_time (MySQL)
            return ServiceUnavailable("the query took too long and was cancelled")
        if code == 1062:
            key = _quoted(message, "for key")
            return Conflict(f"unique constraint {key!r} violated: a row with that key already exists",
                            [Detail(key or "", "already exists")])
        if code in (1451, 1452):
            constraint = _quoted(message, "CONSTRAINT")
            what = "is still referenced" if code == 1451 else "references a row that does not exist"
            return Conflict(f"foreign key constraint {constraint!r} violated: {what}",
                            [Detail(constraint or "", what)])
        column = _column_in(message)
        if code in (1048, 1364):
            return ValidationFailed(f"{column}: may not be null", [Detail(column or "", "may not be null")])
        if code in (3819, 4025):
            constraint = _quoted(message, "constraint") or _quoted(message, "CONSTRAINT")
            return ValidationFailed(f"check constraint {constraint!r} violated",
                                    [Detail(constraint or "", "check constraint violated")])
        reason = _DATA_ERRORS.get(code)
        if reason:
            return ValidationFailed(f"{column}: {reason}" if column else reason,
                                    [Detail(column or "", reason)])
        return None


_DATA_ERRORS = {
    1264: "a number is out of range for its column",
    1265: "a value was truncated for its column",
    1292: "a date or time value is invalid",
    1366: "a value has the wrong form for its column type",
    1406: "a value is too long for its column",
    1690: "a number is out of range for its column",
    3140: "a value is not valid JSON",
    4078: "a value has the wrong form for its column type",
}


class _OrderedArrayAgg(FunctionElement[Any]):
    """``JSON_ARRAYAGG(value ORDER BY …)`` (MariaDB 10.5+): the first argument is
    the value, the others the order."""

    name = "json_arrayagg"
    inherit_cache = True


@compiles(_OrderedArrayAgg)
def _ordered_array_agg(element: _OrderedArrayAgg, compiler: Any, **kw: Any) -> str:
    value, *order = list(element.clauses)
    text = compiler.process(value, **kw)
    if order:
        text += " ORDER BY " + ", ".join(compiler.process(term, **kw) for term in order)
    return f"JSON_ARRAYAGG({text})"


class _TrailingZerosTrimmed(FunctionElement[Any]):
    """``TRIM(TRAILING '0' FROM text)``."""

    name = "trim"
    inherit_cache = True


@compiles(_TrailingZerosTrimmed)
def _trailing_zeros_trimmed(element: _TrailingZerosTrimmed, compiler: Any, **kw: Any) -> str:
    (text,) = list(element.clauses)
    return f"TRIM(TRAILING '0' FROM {compiler.process(text, **kw)})"


def _iso_timestamp(value: sa.ColumnElement[Any], utc: bool) -> Any:
    """A DATETIME or TIMESTAMP as the API writes it: ``2024-01-05T10:00:00``, the
    fraction without trailing zeros (none when zero), ``+00:00`` for a TIMESTAMP
    (sessions run in UTC)."""
    text = sa.cast(value, sa.String)
    whole = sa.case((sa.func.microsecond(value) == sa.literal_column("0"),
                     sa.func.left(text, sa.literal_column("19"))),
                    else_=_TrailingZerosTrimmed(text))
    iso = sa.func.replace(whole, sa.literal_column("' '"), sa.literal_column("'T'"))
    return sa.func.concat(iso, sa.literal_column("'+00:00'")) if utc else iso


def _is_disconnect(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError | ConnectionError | OSError):
        return True
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and \
        exc.args[0] in _DISCONNECTS


def _quoted(message: str, after: str) -> str | None:
    match = re.search(re.escape(after) + r"\s+[`'\"]([^`'\"]+)[`'\"]", message)
    return match.group(1) if match else None


def _column_in(message: str) -> str | None:
    """The column a data error names: ``'c'`` or MariaDB's ```db`.`t`.`c```."""
    match = re.search(r"column\s+((?:[`'\"][^`'\"]+[`'\"]\.)*[`'\"][^`'\"]+[`'\"])", message)
    if match is None:
        return None
    return str(re.findall(r"[`'\"]([^`'\"]+)[`'\"]", match.group(1))[-1])


def _time_from_timedelta(value: Any) -> Any:
    if isinstance(value, dt.timedelta):
        seconds = int(value.total_seconds())
        return dt.time(seconds // 3600 % 24, seconds // 60 % 60, seconds % 60, value.microseconds)
    return value
