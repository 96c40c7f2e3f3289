"""The dialect contract: what a database backend gives core.

Core never asks which database it is talking to; it asks the dialect's
capability flags (``supports_*``) and lets the dialect compile, execute and
classify errors.  Backends live in :mod:`swain.dialects` and register through
the ``swain.dialects`` entry-point group (or the ``swain_get_dialect`` hook).
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy import types as sat
from sqlalchemy.engine import URL
from sqlalchemy.engine import Dialect as SADialect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler

from .catalog import Compiled
from .errors import ApiError, ConfigError, ServiceUnavailable, ValidationFailed
from .introspect import integer_bounds, introspect, kind_of
from .schema import Column, Schema, Table

if TYPE_CHECKING:
    from .config import Connection
    from .invalidation import Watch


T = TypeVar("T")


def on_conflict_upsert(insert: Callable[[sa.Table], Any], sa_table: sa.Table,
                       row: Mapping[str, Any], sets: Mapping[str, Any],
                       conflict: Sequence[str]) -> sa.Insert:
    """``INSERT … ON CONFLICT (conflict) DO UPDATE SET … / DO NOTHING``, as PostgreSQL
    and SQLite both write it, built with the backend's own ``insert`` construct."""
    stmt = insert(sa_table).values(dict(row))
    if sets:
        return stmt.on_conflict_do_update(index_elements=list(conflict),  # type: ignore[no-any-return]
                                          set_=dict(sets))
    return stmt.on_conflict_do_nothing(index_elements=list(conflict))  # type: ignore[no-any-return]


def run_on_server(server: URL, statement: str) -> None:
    """Run one administrative statement (``CREATE DATABASE``…) outside a transaction."""
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def unanswered(seconds: float) -> ServiceUnavailable:
    """What a request gets when the database did not answer in time (503)."""
    return ServiceUnavailable(f"the database did not answer within {seconds:g}s; try again "
                              "shortly")


class Deadlines:
    """Client-side time limits of one checkout, for backends to enforce.

    The first operation must have answered ``seconds`` after the checkout
    started (so waiting for a pooled connection counts), each later one within
    ``seconds`` of its own start: a database that stops answering costs a
    request at most ``seconds`` per statement, whatever the pool is doing.
    """

    __slots__ = ("_first", "seconds")

    def __init__(self, seconds: float, started: float) -> None:
        self.seconds = seconds
        self._first: float | None = started + seconds

    def next(self, now: float) -> float:
        """The loop time by which the operation starting now must have answered."""
        first, self._first = self._first, None
        return first if first is not None else now + self.seconds


def too_many_parameters() -> ValidationFailed:
    """What a backend answers when a statement carries more parameters than it
    accepts: the request is too big (422); the database is fine."""
    return ValidationFailed("the request binds more values than the database accepts in one "
                            "statement; send fewer values")


class EachValue(sa.types.TypeDecorator[Any]):
    """The type of an expanding value list whose values are each wrapped in an
    expression (SQLAlchemy writes the wrapper around every value it expands)."""

    impl = sa.types.NullType
    cache_ok = False

    def __init__(self, wrap: Callable[[Any], Any], value_type: Any) -> None:
        super().__init__()
        self.wrap = wrap
        self.impl = value_type  # the values bind (and cast) as the column's type

    def bind_expression(self, bindvalue: Any) -> Any:
        return self.wrap(bindvalue)


@dataclass(frozen=True)
class ExecResult:
    rowcount: int
    lastrowid: Any = None


@dataclass(frozen=True)
class PoolStats:
    """What a connection pool holds at one moment (for ``/metrics``)."""

    #: the most connections the pool opens
    max: int
    #: connections open now
    open: int
    #: open connections waiting to be used
    idle: int
    #: requests waiting for a connection, where the pool tells
    waiting: int | None = None

    @property
    def in_use(self) -> int:
        return self.open - self.idle


class DBConnection(abc.ABC):
    """One pooled driver connection, already in autocommit mode."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]: ...

    async def fetch_one(self, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    @abc.abstractmethod
    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> ExecResult: ...

    async def begin(self) -> None:
        await self.execute("BEGIN")

    async def commit(self) -> None:
        await self.execute("COMMIT")

    async def rollback(self) -> None:
        await self.execute("ROLLBACK")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """BEGIN … COMMIT, or ROLLBACK on an exception."""
        await self.begin()
        try:
            yield
        except BaseException:
            await self.rollback()
            raise
        else:
            await self.commit()

    async def copy_rows(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Send ``rows`` through a ``COPY … FROM STDIN`` statement; only called where
        the dialect's :meth:`Dialect.staged_insert` gives one."""
        raise NotImplementedError(f"{type(self).__name__} has no COPY")

    async def savepoint(self, name: str) -> None:
        await self.execute(f"SAVEPOINT {name}")

    async def release_savepoint(self, name: str) -> None:
        await self.execute(f"RELEASE SAVEPOINT {name}")

    async def rollback_to_savepoint(self, name: str) -> None:
        await self.execute(f"ROLLBACK TO SAVEPOINT {name}")


async def checkout(connection: Connection, get: Awaitable[T]) -> tuple[T, Deadlines]:
    """Wait for ``get`` (a pooled connection) within the connection's bounds (a new
    one may hang in its handshake, past any driver timeout), and start the
    checkout's :class:`Deadlines`; 503 when it does not come."""
    deadlines = Deadlines(connection.query_timeout, asyncio.get_running_loop().time())
    wait = min(connection.connect_timeout, connection.query_timeout)
    try:
        async with asyncio.timeout(wait):
            return await get, deadlines
    except TimeoutError:
        raise unanswered(wait) from None


class TimedConnection(DBConnection):
    """A connection whose every round trip must answer by its :class:`Deadlines`;
    past one, :meth:`abandon` deals with the operation still under way and the
    request gets a 503.  ``conn`` is the driver's connection (its ``commit`` and
    ``rollback`` are coroutines)."""

    def __init__(self, conn: Any, deadlines: Deadlines) -> None:
        self.conn = conn
        self.deadlines = deadlines

    @abc.abstractmethod
    async def abandon(self) -> None:
        """Stop, or throw away, the connection's unanswered operation."""

    @asynccontextmanager
    async def answer(self) -> AsyncIterator[None]:
        """One round trip, within its deadline."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(self.deadlines.next(loop.time())):
                yield
        except TimeoutError:
            await self.abandon()
            raise unanswered(self.deadlines.seconds) from None

    async def commit(self) -> None:
        async with self.answer():
            await self.conn.commit()

    async def rollback(self) -> None:
        async with self.answer():
            await self.conn.rollback()


class Dialect(abc.ABC):
    """A database backend.  Subclasses set the flags and implement the I/O."""

    name: ClassVar[str]
    #: the SQLAlchemy driver name used for compiling SQL and for introspection
    driver: ClassVar[str]

    #: INSERT / UPDATE / DELETE … RETURNING: the written row comes back in one statement
    #: (otherwise it is read back by key in the same transaction)
    supports_returning_insert: ClassVar[bool] = False
    supports_returning_update: ClassVar[bool] = False
    supports_returning_delete: ClassVar[bool] = False
    #: without INSERT … RETURNING: the step between the keys one multi-row INSERT
    #: generates when the server hands them out consecutively (the first is the
    #: statement's ``lastrowid``), else ``None``; then bulk rows with a generated
    #: key go in one at a time, each read back by its own ``lastrowid``
    generated_key_step: int | None = None
    #: every connection checkout can run as one transaction opening with settings made
    #: transaction-local (see :meth:`use_transaction_settings`)
    supports_transaction_settings: ClassVar[bool] = False
    #: :meth:`upsert` builds an insert-or-update statement (bulk ``on_conflict``)
    supports_upsert: ClassVar[bool] = False
    #: the upsert of :meth:`upsert` fires on a clash with *any* unique key of the row,
    #: not only the one named, and its row count cannot tell an ignored row from a
    #: written one (MySQL's ``ON DUPLICATE KEY``): callers look for clashes first
    upsert_matches_any_key: ClassVar[bool] = False
    #: whether a generated key's sequence moves past a value written explicitly
    #: (SQLite, MySQL); where it does not, such values are refused by default
    sequences_follow_explicit_keys: ClassVar[bool] = False
    #: the most bound parameters one statement may carry, or ``None`` for no limit
    #: (filters are refused with a 422 well below it)
    max_parameters: int | None = None
    #: the server carries messages between sessions (PostgreSQL's ``LISTEN/NOTIFY``):
    #: :meth:`notify`, :meth:`listen` and :meth:`notification_triggers` work
    supports_notifications: ClassVar[bool] = False
    #: included related rows and per-parent aggregates can be composed as JSON inside
    #: the page's own statement (:meth:`json_value`, :meth:`json_aggregate`,
    #: :meth:`json_rows`, and :meth:`json_page`'s ``members``); otherwise core fetches
    #: them with a statement per relationship and level
    supports_json_relations: ClassVar[bool] = False
    #: a subquery in FROM may refer to the row an enclosing query is at (PostgreSQL;
    #: MariaDB refuses it): per-parent aggregations grouped by other columns than the
    #: linking ones are composed as JSON only where it can
    supports_correlated_derived_tables: ClassVar[bool] = False

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.url = connection.url.set(drivername=self.driver)
        self.sa_dialect: SADialect = self.compiler()
        self.server_version = ""
        #: where ``supports_transaction_settings``: settings made transaction-local
        #: on every checkout, which then runs as one transaction; ``None`` is plain
        #: autocommit.  Core sets it from ``swain_transaction_settings``.
        self.transaction_settings: Callable[[], Mapping[str, str]] | None = None

    def use_transaction_settings(self, settings: Callable[[], Mapping[str, str]]) -> None:
        """Apply ``settings()`` transaction-locally on every checkout from now on."""
        if not self.supports_transaction_settings:
            raise ConfigError(f"a plugin asks for per-transaction settings "
                              f"(swain_transaction_settings), which the {self.name} dialect "
                              "cannot apply")
        self.transaction_settings = settings

    paramstyle: ClassVar[str] = "pyformat"

    # -- test databases ------------------------------------------------------

    @classmethod
    def create_test_database(cls, name: str, directory: Path) -> URL:
        """Create an empty database called ``name`` for a test suite and return a
        *synchronous* SQLAlchemy URL to it (the testing kit sets up and checks data
        through it; ``directory`` is a scratch folder for file databases).  Server
        backends read the server's address from an environment variable of their
        choosing (``SWAIN_TEST_<NAME>_URL``)."""
        raise NotImplementedError(f"the {cls.name} dialect cannot create test databases")

    @classmethod  # noqa: B027 - optional: a file database needs no drop
    def drop_test_database(cls, url: URL) -> None:
        """Drop a database :meth:`create_test_database` made."""

    @classmethod
    def compiler(cls) -> SADialect:
        """The SQLAlchemy dialect this backend compiles SQL (and DDL) with; no connection."""
        return URL.create(cls.driver).get_dialect()(paramstyle=cls.paramstyle)  # type: ignore[call-arg]

    # -- lifecycle -------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Create the connection pool (sized by ``connection.pool_size``)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every pooled connection."""

    @abc.abstractmethod
    def acquire(self) -> Any:
        """An async context manager yielding a :class:`DBConnection`."""

    def pool_stats(self) -> PoolStats | None:
        """The pool's state now, or ``None`` when it is closed or cannot tell."""
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DBConnection]:
        async with self.acquire() as conn, conn.transaction():
            yield conn

    async def run_in_transaction(self, conn: DBConnection | None,
                                 work: Callable[[DBConnection], Awaitable[T]]) -> T:
        """Run ``work`` on ``conn`` (inside the caller's transaction), or in a new one."""
        if conn is not None:
            return await work(conn)
        async with self.transaction() as own:
            return await work(own)

    async def ping(self) -> str:
        """Reach the server; return its version string or raise."""
        async with self.acquire() as conn:
            row = await conn.fetch_one(self.version_query)
        self.server_version = str(row[0]) if row else ""
        return self.server_version

    async def probe(self) -> str:
        """Connect once and return the server version, raising the driver's own error
        (wrong port, password, missing database) rather than a pool timeout.
        Used by ``swain connection test``; backends whose pool hides the cause override it."""
        await self.open()
        try:
            return await self.ping()
        finally:
            await self.close()

    version_query: ClassVar[str] = "SELECT version()"

    async def replica_lag(self, conn: DBConnection) -> float | None:
        """How many seconds the replica ``conn`` is connected to lags behind its primary
        (0 when it has replayed all it received), or ``None`` when it cannot tell;
        read when ``max_replica_lag`` is set."""
        return None

    # -- notifications ---------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        """Send ``payload`` to every session listening on ``channel`` (on commit)."""
        raise NotImplementedError(f"the {self.name} dialect has no notifications")

    def listen(self, channel: str, url: URL | None = None,
               heartbeat: float = 15.0) -> AsyncGenerator[str | None, None]:
        """Listen on ``channel`` over a connection of its own (to ``url``, by default
        the stage's; a pooler in transaction mode cannot hold a listener): yield
        ``None`` once listening, then every payload.  An idle connection is checked
        every ``heartbeat`` seconds; a lost one raises, and closing the generator
        closes it."""
        raise NotImplementedError(f"the {self.name} dialect has no notifications")

    def notification_triggers(self, channel: str,
                              watched: Sequence[tuple[Table, Watch]]) -> list[str]:
        """DDL making every change of each watched table notify ``channel`` with the
        watch's message (``topic`` or ``topic:<key column's value>``), replacing any
        triggers an earlier run installed (it begins with
        :meth:`notification_triggers_removal`).  Run in one transaction."""
        raise NotImplementedError(f"the {self.name} dialect has no notifications")

    def notification_triggers_removal(self) -> list[str]:
        """DDL removing every trigger :meth:`notification_triggers` installed."""
        raise NotImplementedError(f"the {self.name} dialect has no notifications")

    # -- SQL -----------------------------------------------------------------

    def compile(self, statement: sa.ClauseElement) -> tuple[str, list[str]]:
        """Compile once: the SQL text and the names of its bind parameters."""
        compiled = statement.compile(dialect=self.sa_dialect,
                                     compile_kwargs={"render_postcompile": True})
        return str(compiled), list(compiled.params)

    def compiled(self, statement: sa.ClauseElement, columns: Sequence[Any] = (),
                 extra: Any = None) -> Compiled:
        """Compile once, leaving value lists of open length (expanding parameters)
        to be written per execution by :meth:`Compiled.render`."""
        compiler = statement.compile(dialect=self.sa_dialect)
        assert isinstance(compiler, SQLCompiler)
        expander = compiler if compiler.post_compile_params or \
            compiler.literal_execute_params else None
        return Compiled(compiler.string, list(compiler.params), list(columns), extra, expander)

    def in_list(self, column: sa.ColumnElement[Any], values: list[Any], spec: Column,
                each: Callable[[Any], Any], negate: bool,
                bind: Callable[[Any], sa.BindParameter[Any]]) -> sa.ColumnElement[bool]:
        """``column [NOT] IN values`` (already encoded), bound as *one* parameter
        (``bind(value)`` makes it), so the statement is the same whatever the list's
        length; ``each`` puts one value in the form it is compared in.  Here the list
        is expanded into a parameter per value when the statement runs (see
        :meth:`compiled`); backends that can bind a whole list (an array, a JSON
        document) override this."""
        name = bind(values).key
        probe: sa.BindParameter[Any] = sa.bindparam(name, expanding=True)
        bound = probe if each(probe) is probe else \
            sa.bindparam(name, expanding=True, type_=EachValue(each, column.type))
        return column.not_in(bound) if negate else column.in_(bound)

    def order_by(self, column: sa.ColumnElement[Any], descending: bool,
                 nulls: str | None) -> list[Any]:
        """ORDER BY terms for one column; ``nulls`` is ``first``, ``last`` or ``None``."""
        clause = column.desc() if descending else column.asc()
        if nulls == "first":
            clause = clause.nulls_first()
        elif nulls == "last":
            clause = clause.nulls_last()
        return [clause]

    def like(self, column: sa.ColumnElement[Any], pattern: str, case_sensitive: bool,
             bind: Callable[[Any], Any]) -> sa.ColumnElement[bool]:
        """``column`` matched against a LIKE ``pattern`` (``%``, ``_``, ``\\`` escapes),
        case-sensitively or not, the same on every database; ``bind`` makes a parameter.
        Backends whose LIKE ignores case override the case-sensitive form."""
        if case_sensitive:
            return column.like(bind(pattern), escape="\\")
        return column.ilike(bind(pattern), escape="\\")

    def comparable(self, expression: sa.ColumnElement[Any], kind: str) -> sa.ColumnElement[Any]:
        """``expression`` (a column or a parameter of ``kind``) in a form that compares
        correctly; backends storing timestamps as text normalise them here."""
        return expression

    def exact_text(self, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A text value for an equality test in which case and accents count, whatever
        the column's collation (backends with case-insensitive defaults override)."""
        return value

    def upsert(self, sa_table: sa.Table, row: Mapping[str, Any], sets: Mapping[str, Any],
               conflict: Sequence[str]) -> sa.Insert:
        """``INSERT`` of ``row`` that, when a row with the ``conflict`` key exists,
        sets ``sets`` on it instead (or, with no ``sets``, leaves it as it is).  Only
        where :attr:`supports_upsert`."""
        raise NotImplementedError(f"the {self.name} dialect has no upsert")

    def insert_from_arrays(self, table: Table, sa_table: sa.Table, names: Sequence[str],
                           returning: Sequence[Any]) -> sa.Insert | None:
        """An ``INSERT … RETURNING`` taking each column of many rows as one array
        parameter ``_a<j>`` (a short statement the server can prepare instead of a
        parameter per value), or ``None`` to bind every value (the default)."""
        return None

    def staged_insert(self, sa_table: sa.Table, names: Sequence[str], returning: Sequence[Any],
                      stage: str) -> tuple[str, str, sa.Insert] | None:
        """The database's bulk-load path for many rows, or ``None`` without one (then
        they go in as multi-row INSERTs): a statement creating ``stage``, a staging
        table dropped at commit with a row number and the columns ``names`` typed as
        in ``sa_table``; the ``COPY`` filling it (:meth:`DBConnection.copy_rows`,
        each row its number and then its values); and the ``INSERT … SELECT …
        RETURNING returning`` moving its rows on in their order."""
        return None

    def json_object(self, sa_table: sa.Table, columns: Sequence[Column]) -> Any | None:
        """An expression for ``RETURNING`` giving each written row's ``columns`` as the
        JSON text the API answers with, built by the database, or ``None`` when it
        cannot build exactly that (then rows are serialised in Python)."""
        return None

    def writable_where(self, sa_table: sa.Table, key: Sequence[str],
                       where: Sequence[Any]) -> list[Any]:
        """The WHERE clauses of an ``UPDATE``/``DELETE`` by filter; backends that
        refuse a subquery on the target table rewrite them here."""
        return list(where)

    def json_page(self, stmt: sa.Select[Any], columns: Sequence[Column | None],
                  count_stmt: sa.Select[Any] | None) -> sa.Select[Any] | None:
        """A statement returning ``(total?, json_text)`` for a page, built in the database,
        or ``None`` when the dialect cannot (then rows are serialised in Python).
        ``columns`` describe the selected columns; ``None`` marks one that is JSON
        already (a member composed by :meth:`json_rows`)."""
        return None

    def json_value(self, value: sa.ColumnElement[Any], column: Column) -> Any:
        """``value``, of ``column``'s kind, as the JSON value the rows serialised in
        Python (or by :meth:`json_page`) carry, for :meth:`json_rows`; ``None`` when
        the dialect cannot write that kind exactly (then core fetches related rows
        with statements of their own).  Only where :attr:`supports_json_relations`."""
        return None

    def json_aggregate(self, value: sa.ColumnElement[Any], kind: str,
                       column: Column | None) -> Any:
        """An aggregate's ``value`` as JSON, as its result ``kind`` reads in Python
        (``integer``, ``number``: a float, ``decimal``: exact text at the column's
        scale, or the ``column``'s own kind for MIN and MAX); ``None`` when it cannot."""
        return None

    def json_rows(self, values: Sequence[tuple[str, Any]], source: sa.Select[Any],
                  order: Sequence[Any], many: bool) -> Any:
        """A scalar subquery: each row of ``source`` (its FROM, WHERE and GROUP BY; it
        selects nothing itself) as a JSON object of ``values`` (name, a JSON-ready
        expression), in ``order``: an array of them (``[]`` for none) when ``many``,
        else the first one's object (``null`` for none).  ``values`` may hold the
        scalar subqueries of further ``json_rows``, which nest as JSON.  Only where
        :attr:`supports_json_relations`."""
        raise NotImplementedError(f"the {self.name} dialect does not compose JSON")

    def json_row(self, stmt: sa.Select[Any], columns: Sequence[Column]) -> sa.Select[Any] | None:
        """Like :meth:`json_page` for a single row (one JSON object)."""
        return None

    def decoder(self, column: Column) -> Callable[[Any], Any] | None:
        """A function normalising this column's driver values, or ``None`` if none is needed."""
        return None

    async def estimate_count(self, conn: DBConnection, sql: str, params: Mapping[str, Any],
                             sa_table: sa.Table, filtered: bool) -> int | None:
        """The planner's row estimate for a query, or ``None`` when it has none."""
        return None

    # -- values ----------------------------------------------------------------

    def encode(self, kind: str, value: Any) -> Any:
        """A Python value (already checked by the codec) as the driver wants it."""
        if kind == "json" and value is not None:
            return json.dumps(value)
        return value

    # -- errors ------------------------------------------------------------------

    @abc.abstractmethod
    def classify_error(self, exc: BaseException) -> ApiError | None:
        """Map a driver exception onto the error envelope (409/422/503), or ``None``."""

    def describe_error(self, exc: BaseException) -> str | None:
        """A one-line description of a driver exception fit for the log: its kind,
        code and the names it concerns (constraint, table, column), never the values
        its message may quote (a failing row, a duplicate email, a password hash).
        ``None`` for an exception that is not the driver's.  Backends refine this;
        by default only the exception's class is told."""
        module = type(exc).__module__
        if module.startswith(("builtins", "swain.", "asyncio", "aiohttp")):
            return None
        return f"{type(exc).__name__} (details withheld: they may hold row values)"

    # -- introspection -------------------------------------------------------------

    def introspection_engine(self) -> Any:
        return create_async_engine(self.url, poolclass=NullPool)

    async def introspect(self) -> Schema:
        engine = self.introspection_engine()
        try:
            async with engine.connect() as conn:
                schema: Schema = await conn.run_sync(introspect, self)
        finally:
            await engine.dispose()
        return schema

    def column_kind(self, type_: sat.TypeEngine[Any]) -> str | None:
        """The JSON-level kind of an introspected column type, or ``None`` when the
        type alone cannot tell (then its declared name decides).  Backends add
        their own types (MySQL's ``TINYINT(1)`` is a boolean) before the generic rules."""
        return kind_of(type_)

    def integer_bounds(self, type_: sat.TypeEngine[Any]) -> tuple[int, int] | None:
        """The values an integer column type holds, or ``None`` when it cannot tell."""
        return integer_bounds(type_)

    def declared_types(self, sync_conn: Any, schema: str | None, table: str) -> dict[str, str]:
        """Column → declared type name, for types SQLAlchemy does not recognise."""
        return {}

    def view_updatable(self, sync_conn: Any, schema: str | None, view: str) -> bool:
        return False

    def view_base_table(self, sync_conn: Any, schema: str | None, view: str) -> str | None:
        """The key of the one table an updatable view selects from, or ``None``."""
        return None

    def check_constraints(self, sync_conn: Any, inspector: Any, schema: str | None,
                          table: str) -> list[dict[str, Any]]:
        """CHECK constraints as ``{"name", "sqltext"}``, column-level ones included."""
        try:
            return list(inspector.get_check_constraints(table, schema=schema))
        except NotImplementedError:
            return []

    def unique_constraints(self, sync_conn: Any, inspector: Any, schema: str | None,
                           table: str) -> list[dict[str, Any]]:
        """Unique constraints as ``{"name", "column_names"}``."""
        return list(inspector.get_unique_constraints(table, schema=schema))

    def check_constraint_kinds(self, checks: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
        """Column kinds implied by CHECK constraints (JSON validity, enum lists)."""
        found: dict[str, tuple[str, Any]] = {}
        for check in checks:
            text = str(check.get("sqltext", ""))
            json_valid = re.search(r"json_valid\(\s*[`\"]?([^`\")]+)[`\"]?\s*\)", text, re.I)
            if json_valid:
                found[json_valid.group(1)] = ("json", None)
                continue
            enum = re.fullmatch(r"\s*\(?\s*[`\"]?(\w[^`\"]*?)[`\"]?\s+IN\s*\(([^)]*)\)\s*\)?\s*",
                                text, re.I)
            if enum:
                values = re.findall(r"'((?:[^']|'')*)'", enum.group(2))
                if values:
                    found[enum.group(1)] = ("enum", [v.replace("''", "'") for v in values])
        return found

    def finish_table(self, table: Table) -> None:  # noqa: B027 - an optional hook, not abstract
        """Last dialect-specific touches to an introspected table."""

    def default_schema(self, sync_conn: Any) -> str | None:
        return None
