"""PostgreSQL through psycopg 3 (async), with a psycopg_pool connection pool.

Fast paths: pages and rows are turned into JSON by PostgreSQL itself
(``json_agg``/``row_to_json``) and passed through as bytes; statements are
prepared server-side after a few uses (off for PgBouncer).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import sqlalchemy as sa
from psycopg import errors as pgerrors
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.dialects import postgresql as pg_types
from sqlalchemy.engine import URL, make_url

from swain.core.dialect import (
    DBConnection,
    Dialect,
    ExecResult,
    PoolStats,
    on_conflict_upsert,
    run_on_server,
)
from swain.core.errors import ApiError, Conflict, Detail, ServiceUnavailable, ValidationFailed
from swain.core.schema import Column, Table


class PostgresConnection(DBConnection):
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        cursor = await self.conn.execute(sql, params)
        return await cursor.fetchall() if cursor.description else []

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        cursor = await self.conn.execute(sql, params)
        return ExecResult(cursor.rowcount)

    def transaction(self) -> Any:
        return self.conn.transaction()


class _Acquire:
    """``async with dialect.acquire()``: the pool's own context manager, without a
    generator-based one around it (every query pays for that layer).

    With transaction settings, the whole checkout is one transaction that opens
    with ``SET LOCAL`` of each setting and commits (or rolls back on an error)
    when the connection goes back: nothing outlives the transaction, so a
    connection pooler in transaction mode cannot carry a setting to another
    client.  Explicit transactions inside become savepoints."""

    __slots__ = ("_inner", "_raw", "_settings")

    def __init__(self, pool: AsyncConnectionPool,
                 settings: Callable[[], Mapping[str, str]] | None = None) -> None:
        self._inner = pool.connection()
        self._settings = settings
        self._raw: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> DBConnection:
        raw = await self._inner.__aenter__()
        if self._settings is not None:
            try:
                await raw.execute(_begin_with(self._settings()), prepare=False)
            except BaseException:
                await self._inner.__aexit__(*sys.exc_info())
                raise
            self._raw = raw
        return PostgresConnection(raw)

    async def __aexit__(self, *exc: Any) -> bool | None:
        raw = self._raw
        if raw is not None and raw.info.transaction_status != TransactionStatus.IDLE:
            try:
                await raw.execute(b"ROLLBACK" if exc[0] is not None else b"COMMIT", prepare=False)
            except BaseException:
                await self._inner.__aexit__(*sys.exc_info())
                raise
        return await self._inner.__aexit__(*exc)


def _begin_with(settings: Mapping[str, str]) -> pgsql.Composed:
    """``BEGIN`` and every setting made transaction-local, in one round trip (the
    values are quoted literals, so the simple query protocol can carry both)."""
    calls = pgsql.SQL(", ").join(pgsql.SQL("set_config({}, {}, true)").format(pgsql.Literal(name),
                                                                             pgsql.Literal(value))
                               for name, value in settings.items())
    return pgsql.SQL("BEGIN; SELECT {}").format(calls)


#: the server test databases are created on, unless SWAIN_TEST_POSTGRES_URL names one
TEST_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class PostgresDialect(Dialect):
    name = "postgresql"
    driver = "postgresql+psycopg"
    supports_returning_insert = True
    supports_returning_update = True
    supports_returning_delete = True
    supports_transaction_settings = True
    supports_upsert = True
    version_query = "SHOW server_version"

    _JSON_AS_TEXT: ClassVar[set[str]] = {"decimal", "interval"}

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.pool: AsyncConnectionPool | None = None

    @classmethod
    def create_test_database(cls, name: str, directory: Path) -> URL:
        server = make_url(os.environ.get("SWAIN_TEST_POSTGRES_URL", TEST_SERVER))
        run_on_server(server, f'CREATE DATABASE "{name}"')
        return server.set(database=name)

    @classmethod
    def drop_test_database(cls, url: URL) -> None:
        run_on_server(url.set(database="postgres"),
                      f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')

    def conninfo(self) -> str:
        url = self.url
        options = f"-c timezone=UTC -c statement_timeout={int(self.connection.statement_timeout * 1000)}"
        return psycopg.conninfo.make_conninfo(
            host=url.host or "", port=url.port or "", dbname=url.database or "",
            user=url.username or "", password=url.password or "", options=options,
            connect_timeout=max(1, int(self.connection.connect_timeout)),
            **{k: v for k, v in url.query.items() if isinstance(v, str)},
        )

    async def open(self) -> None:
        prepare = 5 if self.connection.prepared_statements else None
        self.pool = AsyncConnectionPool(
            self.conninfo(), min_size=1, max_size=self.connection.pool_size, open=False,
            timeout=self.connection.connect_timeout, reconnect_timeout=3600,
            kwargs={"autocommit": True, "prepare_threshold": prepare},
        )
        await self.pool.open(wait=False)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def probe(self) -> str:
        # The pool retries in the background and reports only a timeout; one
        # direct connection surfaces the server's own reason.
        async with await psycopg.AsyncConnection.connect(self.conninfo(), autocommit=True) as conn:
            cursor = await conn.execute(self.version_query)
            row = await cursor.fetchone()
        self.server_version = str(row[0]) if row else ""
        return self.server_version

    def pool_stats(self) -> PoolStats | None:
        if self.pool is None:
            return None
        stats = self.pool.get_stats()
        return PoolStats(max=stats["pool_max"], open=stats["pool_size"],
                         idle=stats["pool_available"], waiting=stats.get("requests_waiting", 0))

    def acquire(self) -> _Acquire:
        assert self.pool is not None, "dialect not opened"
        return _Acquire(self.pool, self.transaction_settings)

    # -- SQL ------------------------------------------------------------------

    def default_schema(self, sync_conn: Any) -> str | None:
        return str(sync_conn.execute(sa.text("SELECT current_schema()")).scalar())

    def view_updatable(self, sync_conn: Any, schema: str | None, view: str) -> bool:
        row = sync_conn.execute(sa.text(
            "SELECT is_insertable_into = 'YES' OR is_updatable = 'YES' FROM information_schema.views "
            "WHERE table_schema = coalesce(:s, current_schema()) AND table_name = :v"),
            {"s": schema, "v": view}).first()
        return bool(row and row[0])

    def view_base_table(self, sync_conn: Any, schema: str | None, view: str) -> str | None:
        rows = sync_conn.execute(sa.text(
            "SELECT table_schema, table_name, current_schema() "
            "FROM information_schema.view_table_usage "
            "WHERE view_schema = coalesce(:s, current_schema()) AND view_name = :v"),
            {"s": schema, "v": view}).all()
        if len(rows) != 1:
            return None
        base_schema, base, current = (str(v) for v in rows[0])
        return base if base_schema == current else f"{base_schema}.{base}"

    def upsert(self, sa_table: sa.Table, row: Mapping[str, Any], sets: Mapping[str, Any],
               conflict: Sequence[str]) -> sa.Insert:
        return on_conflict_upsert(pg_types.insert, sa_table, row, sets, conflict)

    def insert_from_arrays(self, table: Table, sa_table: sa.Table, names: Sequence[str],
                           returning: Sequence[Any]) -> sa.Insert | None:
        """``INSERT … SELECT * FROM unnest(:_a0::T0[], …)``: one array per column.
        Arrays of arrays would flatten, and a type SQLAlchemy does not know has no
        array type to cast to: those shapes bind every value instead."""
        for name in names:
            if table.existing_column(name).kind == "array" or \
                    isinstance(sa_table.c[name].type, sa.types.NullType | sa.ARRAY):
                return None
        arrays = [sa.cast(sa.bindparam(f"_a{j}"), pg_types.ARRAY(_element_type(table, sa_table,
                                                                              name)))
                  for j, name in enumerate(names)]
        source: Any = sa.select(sa.literal_column("*")).select_from(
            sa.func.unnest(*arrays).alias("u"))
        return sa.insert(sa_table).from_select(list(names), source).returning(*returning)

    def _json_expression(self, column: sa.ColumnElement[Any], spec: Column) -> Any:
        if spec.kind in self._JSON_AS_TEXT or (spec.kind == "array" and spec.item_kind in
                                               self._JSON_AS_TEXT | {"binary"}):
            if spec.kind == "array":
                return None
            return sa.cast(column, sa.Text).label(spec.name)
        if spec.kind == "binary":
            # encode(..., 'base64') wraps lines at 76 characters (MIME style).
            return sa.func.translate(sa.func.encode(column, sa.literal_column("'base64'")),
                                     sa.literal_column("E'\\n'"), sa.literal_column("''")
                                     ).label(spec.name)
        return column

    def _projected(self, stmt: sa.Select[Any], columns: Sequence[Column]) -> sa.Select[Any] | None:
        projected = [self._json_expression(col, spec)
                     for col, spec in zip(stmt.selected_columns, columns, strict=True)]
        if any(p is None for p in projected):
            return None
        return stmt.with_only_columns(*projected)

    def json_page(self, stmt: sa.Select[Any], columns: Sequence[Column],
                  count_stmt: sa.Select[Any] | None) -> sa.Select[Any] | None:
        inner = self._projected(stmt, columns)
        if inner is None:
            return None
        sub = inner.subquery("q")
        data = sa.select(sa.cast(sa.func.coalesce(
            sa.func.json_agg(sa.literal_column("q")), sa.literal_column("'[]'::json")),
            sa.Text)).select_from(sub).scalar_subquery()
        if count_stmt is None:
            return sa.select(data)
        return sa.select(count_stmt.scalar_subquery(), data)

    def json_row(self, stmt: sa.Select[Any], columns: Sequence[Column]) -> sa.Select[Any] | None:
        inner = self._projected(stmt, columns)
        if inner is None:
            return None
        sub = inner.subquery("q")
        return sa.select(sa.cast(sa.func.row_to_json(sa.literal_column("q")), sa.Text)).select_from(sub)

    async def estimate_count(self, conn: DBConnection, sql: str, params: Mapping[str, Any],
                             sa_table: sa.Table, filtered: bool) -> int | None:
        row = await conn.fetch_one(f"EXPLAIN (FORMAT JSON) {sql}", params)
        if not row:
            return None
        plan = row[0]
        return int(plan[0]["Plan"]["Plan Rows"])

    def encode(self, kind: str, value: Any) -> Any:
        if kind == "json" and value is not None:
            # json, not jsonb: a json column keeps the document as written
            # (key order included); a jsonb column converts it on assignment.
            return Json(value)
        return value

    # -- errors -----------------------------------------------------------------

    def classify_error(self, exc: BaseException) -> ApiError | None:
        if isinstance(exc, PoolTimeout | psycopg.OperationalError | pgerrors.AdminShutdown):
            return ServiceUnavailable("the database is unavailable; try again shortly")
        if isinstance(exc, pgerrors.QueryCanceled):
            return ServiceUnavailable("the query took too long and was cancelled")
        if not isinstance(exc, psycopg.Error) or exc.diag is None:
            return None
        diag = exc.diag
        constraint, column = diag.constraint_name, diag.column_name
        if isinstance(exc, pgerrors.UniqueViolation):
            columns = _key_columns(diag.message_detail)
            return Conflict(f"unique constraint {constraint!r} violated: a row with "
                            f"{', '.join(columns) or 'that key'} already exists",
                            [Detail(c, "already exists") for c in columns])
        if isinstance(exc, pgerrors.ForeignKeyViolation):
            columns = _key_columns(diag.message_detail)
            referenced = "is still referenced" if "still referenced" in (diag.message_detail or "") \
                else "references a row that does not exist"
            return Conflict(f"foreign key constraint {constraint!r} violated: {referenced}",
                            [Detail(c, referenced) for c in columns])
        if isinstance(exc, pgerrors.NotNullViolation):
            return ValidationFailed(f"{column}: may not be null", [Detail(column or "", "may not be null")])
        if isinstance(exc, pgerrors.CheckViolation):
            return ValidationFailed(f"check constraint {constraint!r} violated",
                                    [Detail(constraint or "", "check constraint violated")])
        if isinstance(exc, pgerrors.InsufficientPrivilege) and "row-level security" in str(exc):
            # Native tenant policies: an upsert met another tenant's row, which
            # the API's own checks could not see either.
            return Conflict("a row with this key exists and you may not change it")
        if isinstance(exc, pgerrors.ExclusionViolation):
            return Conflict(f"exclusion constraint {constraint!r} violated")
        if isinstance(exc, pgerrors.DataError):
            reason = _DATA_ERRORS.get(diag.sqlstate or "", "a value does not fit its column")
            return ValidationFailed(f"{column}: {reason}" if column else reason,
                                    [Detail(column or "", reason)])
        return None


class _DeclaredType(sa.types.UserDefinedType[Any]):
    """A column's own type name, as the database declared it."""

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **kw: Any) -> str:
        return self.name


def _element_type(table: Table, sa_table: sa.Table, name: str) -> Any:
    """The array element type for a column: an enum (an enum type or a CHECK list)
    needs its declared type, since text does not turn into an enum implicitly."""
    column = table.existing_column(name)
    if column.enum_values and column.sql_type:
        return _DeclaredType(column.sql_type)
    return sa_table.c[name].type


def _key_columns(detail: str | None) -> list[str]:
    match = re.search(r"Key \((.*?)\)=", detail or "")
    return [c.strip().strip('"') for c in match.group(1).split(",")] if match else []


_DATA_ERRORS = {
    "22001": "a value is too long for its column",
    "22003": "a number is out of range for its column",
    "22P02": "a value has the wrong form for its column type",
    "22007": "a date or time value is invalid",
    "22008": "a date or time value is out of range",
    "22012": "division by zero",
    "22021": "a value is not valid text in the database encoding",
    "2202E": "an array value is malformed",
}
