"""PostgreSQL through psycopg 3 (async), with a psycopg_pool connection pool.

Fast paths: pages and rows are turned into JSON by PostgreSQL itself
(``json_agg``/``row_to_json``) and passed through as bytes; statements are
prepared server-side after a few uses (off for PgBouncer).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import socket
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
import sqlalchemy as sa
from psycopg import errors as pgerrors
from psycopg import sql as pgsql
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout
from sqlalchemy.dialects import postgresql as pg_types
from sqlalchemy.engine import URL, make_url

from swain.core.dialect import (
    DBConnection,
    Deadlines,
    Dialect,
    ExecResult,
    PoolStats,
    on_conflict_upsert,
    run_on_server,
    too_many_parameters,
    unanswered,
)
from swain.core.errors import ApiError, Conflict, Detail, ServiceUnavailable, ValidationFailed
from swain.core.handoff import LINGER, HandOff
from swain.core.schema import Column, Table

if TYPE_CHECKING:
    from swain.core.invalidation import Watch

#: statements longer than this are not prepared server-side: such text is all but
#: never repeated, and psycopg would keep it in each connection's statement cache
_PREPARE_MAX_CHARS = 16_384


class PostgresConnection(DBConnection):
    """A pooled psycopg connection whose every round trip is bounded client-side.

    When an operation outlives its deadline, the socket is shut down under
    psycopg: it sees the connection end at once (rather than asking the
    silent server to cancel, and waiting for that), the request gets a 503,
    and the pool discards the dead connection when it comes back."""

    __slots__ = ("conn", "deadlines", "severed")

    def __init__(self, conn: psycopg.AsyncConnection[Any], deadlines: Deadlines) -> None:
        self.conn = conn
        self.deadlines = deadlines
        self.severed = False

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        async with _Answer(self):
            cursor = await self.conn.execute(sql, params, prepare=_prepare(sql))
            return await cursor.fetchall() if cursor.description else []

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult:
        async with _Answer(self):
            cursor = await self.conn.execute(sql, params, prepare=_prepare(sql))
            return ExecResult(cursor.rowcount)

    async def copy_rows(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with _Answer(self), self.conn.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                await copy.write_row(row)

    async def run_once(self, sql: bytes) -> None:
        """Statements that are never prepared (several at once, or holding literals)."""
        async with _Answer(self):
            await self.conn.execute(sql, prepare=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # psycopg's own transaction: nested in a checkout-wide one (native tenant
        # policies) it becomes a savepoint.
        transaction = self.conn.transaction()
        async with _Answer(self):
            await transaction.__aenter__()
        try:
            yield
        except BaseException:
            async with _Answer(self):
                await transaction.__aexit__(*sys.exc_info())
            raise
        async with _Answer(self):
            await transaction.__aexit__(None, None, None)

    def sever(self) -> None:
        """Shut the socket down (not close it: psycopg still watches the descriptor)."""
        self.severed = True
        with contextlib.suppress(OSError, psycopg.Error), \
                socket.socket(fileno=os.dup(self.conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


class _Answer:
    """Arms the deadline around one round trip; a severed one becomes a 503."""

    __slots__ = ("connection", "timer")

    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection
        self.timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_at(self.connection.deadlines.next(loop.time()),
                                  self.connection.sever)

    async def __aexit__(self, kind: type[BaseException] | None, *exc: Any) -> None:
        assert self.timer is not None
        self.timer.cancel()
        if kind is not None and self.connection.severed and issubclass(kind, psycopg.Error):
            raise unanswered(self.connection.deadlines.seconds) from None


def _prepare(sql: str) -> bool | None:
    return None if len(sql) <= _PREPARE_MAX_CHARS else False


class _Acquire:
    """``async with dialect.acquire()``: a connection from the hand-off in front of
    the pool (an idle one at once, else the pool's or the next one released).

    With transaction settings, the whole checkout is one transaction that opens
    with ``SET LOCAL`` of each setting and commits (or rolls back on an error)
    when the connection goes back: nothing outlives the transaction, so a
    connection pooler in transaction mode cannot carry a setting to another
    client.  Explicit transactions inside become savepoints.  Without them, a
    transaction left open is committed, or rolled back on an error, as
    psycopg's own connection block does."""

    __slots__ = ("_connection", "_handoff", "_seconds", "_settings", "_wait")

    def __init__(self, handoff: HandOff[psycopg.AsyncConnection[Any]], wait: float,
                 seconds: float, settings: Callable[[], Mapping[str, str]] | None = None) -> None:
        self._handoff = handoff
        self._wait = wait
        self._seconds = seconds
        self._settings = settings
        self._connection: PostgresConnection | None = None

    async def __aenter__(self) -> DBConnection:
        started = asyncio.get_running_loop().time()
        raw = self._handoff.ready()
        if raw is None:
            raw = await self._handoff.wait(started + self._wait)
        connection = self._connection = PostgresConnection(raw, Deadlines(self._seconds, started))
        if self._settings is not None:
            try:
                await connection.run_once(_begin_with(self._settings()).as_bytes(raw))
            except BaseException:
                await self._release(failed=True)
                raise
        return connection

    async def __aexit__(self, kind: type[BaseException] | None, *exc: Any) -> None:
        await self._release(failed=kind is not None)

    async def _release(self, failed: bool) -> None:
        connection = self._connection
        assert connection is not None
        self._connection = None
        raw = connection.conn
        if raw.pgconn.transaction_status != TransactionStatus.IDLE and not connection.severed \
                and not raw.closed:
            try:
                if self._settings is not None:
                    await connection.run_once(b"ROLLBACK" if failed else b"COMMIT")
                elif failed:
                    with contextlib.suppress(Exception):
                        await raw.rollback()
                else:
                    await raw.commit()
            except BaseException:
                await self._handoff.give_back(raw)
                raise
        if connection.severed or raw.closed or _expired(raw) \
                or raw.pgconn.transaction_status != TransactionStatus.IDLE:
            # the pool closes it (rolling back first where it can) and opens another
            await self._handoff.give_back(raw)
        else:
            self._handoff.put(raw)


def _handoff(pool: AsyncConnectionPool, wait: float) -> HandOff[psycopg.AsyncConnection[Any]]:
    """The hand-off in front of ``pool``: it keeps an idle connection for at most
    a few seconds (and never past the pool's ``max_idle``), and fails a checkout
    as the pool itself would."""
    return HandOff(pool.max_size, lambda seconds: pool.getconn(timeout=seconds), pool.putconn,
                   timed_out=lambda: PoolTimeout(f"couldn't get a connection after {wait:.2f} sec"),
                   closed=lambda: PoolClosed(f"the pool {pool.name!r} is already closed"),
                   linger=min(LINGER, pool.max_idle), alive=_alive)


def _alive(raw: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection still stands: reading what the server sent
    meanwhile (usually nothing: a non-blocking read that finds no data) finds one
    it ended.  The first read may take only its farewell message, the second
    then meets the end of the stream."""
    pgconn = raw.pgconn
    try:
        pgconn.consume_input()
        pgconn.consume_input()
    except psycopg.OperationalError:
        return False
    return pgconn.status == ConnStatus.OK


def _expired(raw: psycopg.AsyncConnection[Any]) -> bool:
    """Past the pool's ``max_lifetime``: the pool replaces it when it comes back."""
    expires: float = getattr(raw, "_expire_at", math.inf)
    return expires <= time.monotonic()


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
    supports_notifications = True
    supports_json_relations = True
    supports_correlated_derived_tables = True
    version_query = "SHOW server_version"
    max_parameters = 65535  # the wire protocol counts parameters in 16 bits

    _JSON_AS_TEXT: ClassVar[set[str]] = {"decimal", "interval"}

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.pool: AsyncConnectionPool | None = None
        #: hands the pool's connections from one request to the next (see _Acquire)
        self.handoff: HandOff[psycopg.AsyncConnection[Any]] | None = None

    @classmethod
    def create_test_database(cls, name: str, directory: Path) -> URL:
        server = make_url(os.environ.get("SWAIN_TEST_POSTGRES_URL", TEST_SERVER))
        run_on_server(server, f'CREATE DATABASE "{name}"')
        return server.set(database=name)

    @classmethod
    def drop_test_database(cls, url: URL) -> None:
        run_on_server(url.set(database="postgres"),
                      f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')

    def conninfo(self, url: URL | None = None) -> str:
        """libpq connection parameters for the stage's URL (or ``url``)."""
        url = self.url if url is None else url
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
            kwargs={"autocommit": True, "prepare_threshold": prepare}, configure=_in_utc,
        )
        await self.pool.open(wait=False)
        self.handoff = _handoff(self.pool, self._wait())

    def _wait(self) -> float:
        """How long a checkout waits for a connection."""
        return min(self.connection.connect_timeout, self.connection.query_timeout)

    async def close(self) -> None:
        if self.handoff is not None:
            await self.handoff.close()
            self.handoff = None
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
        if self.pool is None or self.handoff is None:
            return None
        stats = self.pool.get_stats()
        # the pool counts the hand-off's connections as in use, and only the
        # checkouts waiting on itself
        return PoolStats(max=stats["pool_max"], open=stats["pool_size"],
                         idle=stats["pool_available"] + self.handoff.idle,
                         waiting=stats.get("requests_waiting", 0) + self.handoff.waiting)

    def acquire(self) -> _Acquire:
        assert self.handoff is not None, "dialect not opened"
        return _Acquire(self.handoff, self._wait(), self.connection.query_timeout,
                        self.transaction_settings)

    async def replica_lag(self, conn: DBConnection) -> float | None:
        row = await conn.fetch_one(_REPLICA_LAG)
        return float(row[0]) if row and row[0] is not None else None

    # -- notifications -------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        async with self.acquire() as conn:
            await conn.execute("SELECT pg_notify(%(channel)s, %(payload)s)",
                               {"channel": channel, "payload": payload})

    async def listen(self, channel: str, url: URL | None = None,
                     heartbeat: float = 15.0) -> AsyncGenerator[str | None, None]:
        target = self.url if url is None else url.set(drivername=self.driver)
        conn = await psycopg.AsyncConnection.connect(self.conninfo(target), autocommit=True)
        try:
            await conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))
            yield None
            while True:
                async for message in conn.notifies(timeout=heartbeat):
                    yield message.payload
                # A silent network keeps an idle socket open forever: ask.
                async with asyncio.timeout(self.connection.connect_timeout):
                    await conn.execute("SELECT 1")
        finally:
            await conn.close()

    def notification_triggers(self, channel: str,
                              watched: Sequence[tuple[Table, Watch]]) -> list[str]:
        """One trigger function, ``swain_invalidate(channel, topic[, key column])``,
        and per watch: a row trigger naming the key column's value (the old one, on
        update and delete) for a keyed watch, narrowed to updates that change its
        columns; a statement trigger otherwise (one message however many rows)."""
        q = self.sa_dialect.identifier_preparer.quote
        literal = _text(channel)
        statements = [*self.notification_triggers_removal(), _TRIGGER_FUNCTION]
        for table, watch in watched:
            target = f"{q(table.schema)}.{q(table.name)}" if table.schema else q(table.name)
            topic = _text(watch.topic)
            name = "swain_invalidate_" + re.sub(r"\W", "_", watch.topic)
            if watch.key is None:
                statements.append(
                    f"CREATE TRIGGER {q(name)} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                    f"ON {target} FOR EACH STATEMENT EXECUTE FUNCTION "
                    f"swain_invalidate({literal}, {topic})")
                continue
            call = f"swain_invalidate({literal}, {topic}, {_text(watch.key)})"
            if not watch.columns:
                statements.append(f"CREATE TRIGGER {q(name)} AFTER INSERT OR UPDATE OR DELETE ON "
                                  f"{target} FOR EACH ROW EXECUTE FUNCTION {call}")
                continue
            columns = [q(c) for c in dict.fromkeys([watch.key, *watch.columns])]
            old = ", ".join(f"OLD.{c}" for c in columns)
            new = ", ".join(f"NEW.{c}" for c in columns)
            statements += [
                f"CREATE TRIGGER {q(name + '_update')} AFTER UPDATE OF {', '.join(columns)} ON "
                f"{target} FOR EACH ROW WHEN (ROW({old}) IS DISTINCT FROM ROW({new})) "
                f"EXECUTE FUNCTION {call}",
                f"CREATE TRIGGER {q(name + '_delete')} AFTER DELETE ON {target} FOR EACH ROW "
                f"EXECUTE FUNCTION {call}",
                f"CREATE TRIGGER {q(name + '_truncate')} AFTER TRUNCATE ON {target} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION swain_invalidate({literal}, {topic})"]
        return statements

    def notification_triggers_removal(self) -> list[str]:
        # CASCADE: every trigger calling the function goes with it, whatever
        # tables an earlier run watched.
        return ["DROP FUNCTION IF EXISTS swain_invalidate() CASCADE"]

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

    def staged_insert(self, sa_table: sa.Table, names: Sequence[str], returning: Sequence[Any],
                      stage: str) -> tuple[str, str, sa.Insert] | None:
        """``COPY`` into a temporary table made like the target's columns (so a
        value is read as the column's type, domain checks included), then one
        ``INSERT … SELECT`` into the table itself: its defaults, constraints,
        triggers, row-level security and views' rules apply as to any INSERT, which
        a ``COPY`` straight into the table would not all honour."""
        preparer = self.sa_dialect.identifier_preparer
        quote = preparer.quote
        number = "_swain_n"
        while number in names:
            number += "_"
        columns = ", ".join(quote(name) for name in names)
        create = (f"CREATE TEMPORARY TABLE {quote(stage)} ON COMMIT DROP AS SELECT "
                  f"0::bigint AS {quote(number)}, {columns} FROM "
                  f"{preparer.format_table(sa_table)} WITH NO DATA")
        copy = f"COPY {quote(stage)} ({quote(number)}, {columns}) FROM STDIN"
        staged = sa.table(stage, sa.column(number), *[sa.column(name) for name in names])
        move = sa.insert(sa_table).from_select(
            list(names), sa.select(*[staged.c[name] for name in names]).order_by(
                staged.c[number])).returning(*returning)
        return create, copy, move

    def json_object(self, sa_table: sa.Table, columns: Sequence[Column]) -> Any | None:
        # json_build_object takes at most 100 arguments; intervals' text is not the
        # ISO 8601 the API writes
        if len(columns) > 50 or any(c.kind == "interval" or c.item_kind == "interval"
                                    for c in columns):
            return None
        pairs: list[Any] = []
        for spec in columns:
            value = self._json_expression(sa_table.c[spec.name], spec)
            if value is None:
                return None
            pairs += [sa.literal_column(_text(spec.name)), getattr(value, "element", value)]
        return sa.cast(sa.func.json_build_object(*pairs), sa.Text)

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

    def _projected(self, stmt: sa.Select[Any],
                   columns: Sequence[Column | None]) -> sa.Select[Any] | None:
        projected = [col if spec is None else self._json_expression(col, spec)
                     for col, spec in zip(stmt.selected_columns, columns, strict=True)]
        if any(p is None for p in projected):
            return None
        return stmt.with_only_columns(*projected)

    def json_value(self, value: sa.ColumnElement[Any], column: Column) -> Any:
        found = self._json_expression(value, column)
        return found.element if isinstance(found, sa.Label) else found

    def json_aggregate(self, value: sa.ColumnElement[Any], kind: str,
                       column: Column | None) -> Any:
        if kind == "integer":
            return value
        if kind == "decimal":
            return sa.cast(value, sa.Text)
        if kind == "number":
            # AVG of integers and decimals is numeric, read as a float in Python
            return value if column is not None and column.kind == "number" else \
                sa.cast(value, sa.Double)
        return self.json_value(value, column) if column is not None else None

    def json_rows(self, values: Sequence[tuple[str, Any]], source: sa.Select[Any],
                  order: Sequence[Any], many: bool) -> Any:
        rows = source.with_only_columns(*[value.label(name) for name, value in values]) \
            .order_by(*order)
        if many:
            sub = rows.subquery()
            # the subquery's order is the order json_agg sees, as for json_page
            array = sa.func.coalesce(sa.func.json_agg(sub.table_valued()),
                                     sa.literal_column("'[]'::json"))
            return sa.select(array).select_from(sub).scalar_subquery()
        sub = rows.limit(sa.literal_column("1")).subquery()
        return sa.select(sa.func.row_to_json(sub.table_valued())).select_from(sub) \
            .scalar_subquery()

    def in_list(self, column: sa.ColumnElement[Any], values: list[Any], spec: Column,
                each: Callable[[Any], Any], negate: bool,
                bind: Callable[[Any], sa.BindParameter[Any]]) -> sa.ColumnElement[bool]:
        # One array parameter (``= ANY``), not one parameter per value: psycopg
        # would otherwise parse a statement with tens of thousands of placeholders
        # on the event loop, and no list comes near the protocol's parameter limit.
        probe: sa.BindParameter[Any] = sa.bindparam("probe")
        if each(probe) is not probe or isinstance(column.type, sa.types.NullType | sa.ARRAY
                                                  | sa.JSON):
            return super().in_list(column, values, spec, each, negate, bind)
        array = sa.cast(bind(values), pg_types.ARRAY(_array_of(spec, column.type)))
        return column != sa.all_(array) if negate else column == sa.any_(array)

    def json_page(self, stmt: sa.Select[Any], columns: Sequence[Column | None],
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

    def describe_error(self, exc: BaseException) -> str | None:
        if isinstance(exc, PoolTimeout):
            return f"PoolTimeout: {exc}"
        if isinstance(exc, psycopg.Error):
            return _describe(exc)
        return super().describe_error(exc)

    def classify_error(self, exc: BaseException) -> ApiError | None:
        if isinstance(exc, psycopg.OperationalError) and "number of parameters" in str(exc):
            return too_many_parameters()  # refused by libpq before anything was sent
        if isinstance(exc, PoolTimeout | psycopg.OperationalError | pgerrors.AdminShutdown):
            return ServiceUnavailable("the database is unavailable; try again shortly")
        if isinstance(exc, pgerrors.QueryCanceled):
            return ServiceUnavailable("the query took too long and was cancelled")
        if isinstance(exc, pgerrors.SerializationFailure):
            # also a replica cancelling a query that conflicts with what it replays
            return ServiceUnavailable("the database cancelled the query to keep data "
                                      "consistent; try again")
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


#: seconds behind the primary: none while everything received is replayed (an idle
#: primary sends nothing), else since the last transaction replayed
_REPLICA_LAG = ("SELECT CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = "
                "pg_last_wal_replay_lsn() THEN 0 ELSE extract(epoch FROM now() - "
                "pg_last_xact_replay_timestamp()) END")

_UTC = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Universal", "Zulu", "UCT"})


async def _in_utc(conn: psycopg.AsyncConnection[Any]) -> None:
    """Timestamps leave in UTC.  The connection asks for it in its startup options,
    which a pooler may drop (PgBouncer before 1.20 with ``ignore_startup_parameters
    = options``); then it is set here, a setting PgBouncer keeps for this client
    whichever server connection runs its next transaction."""
    if conn.info.parameter_status("TimeZone") not in _UTC:
        await conn.execute("SET TIME ZONE 'UTC'")


def _text(value: str) -> str:
    """A string literal for DDL (standard-conforming strings: quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


_TRIGGER_FUNCTION = """CREATE FUNCTION swain_invalidate() RETURNS trigger LANGUAGE plpgsql AS $swain$
DECLARE
  entry text;
BEGIN
  IF TG_LEVEL = 'ROW' AND TG_NARGS > 2 THEN
    IF TG_OP = 'INSERT' THEN
      entry := to_jsonb(NEW) ->> TG_ARGV[2];
    ELSE
      entry := to_jsonb(OLD) ->> TG_ARGV[2];
    END IF;
  END IF;
  -- a key too long for a message stands for the whole topic
  PERFORM pg_notify(TG_ARGV[0], TG_ARGV[1] ||
                    coalesce(CASE WHEN length(entry) <= 256 THEN ':' || entry END, ''));
  RETURN NULL;
END
$swain$"""


class _DeclaredType(sa.types.UserDefinedType[Any]):
    """A column's own type name, as the database declared it."""

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **kw: Any) -> str:
        return self.name


def _element_type(table: Table, sa_table: sa.Table, name: str) -> Any:
    return _array_of(table.existing_column(name), sa_table.c[name].type)


def _array_of(column: Column, sa_type: Any) -> Any:
    """The element type of an array of ``column``'s values: an enum (an enum type or a
    CHECK list) needs its declared type, since text does not turn into an enum
    implicitly."""
    if column.enum_values and column.sql_type:
        return _DeclaredType(column.sql_type)
    return sa_type


#: SQLSTATE classes whose primary message names only objects, never values:
#: integrity constraints (23), connections (08), resources (53), operator (57)
_NAMES_ONLY = ("23", "08", "53", "57")


def _describe(exc: psycopg.Error) -> str:
    diag = exc.diag
    state = diag.sqlstate or ""
    parts = [f"{type(exc).__name__}", f"sqlstate={state or '-'}"]
    for label, value in (("table", diag.table_name), ("column", diag.column_name),
                         ("constraint", diag.constraint_name)):
        if value:
            parts.append(f"{label}={value}")
    if state[:2] in _NAMES_ONLY and diag.message_primary:
        parts.append(f"message={diag.message_primary!r}")
    elif not state:  # raised by the client library: its own words, no server data
        parts.append(f"message={str(exc).splitlines()[0][:200]!r}")
    return " ".join(parts)


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
