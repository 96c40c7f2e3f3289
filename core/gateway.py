"""The one way to reach table rows: every statement goes through here.

A :class:`TableGateway` is made per request for the caller's identity.  Before
it runs anything it asks every authorizer, ANDs in every row policy's
predicate and passes writes through every write preparer, so an endpoint
(core's or a plugin's) that uses the gateway cannot forget authorization or
tenant scoping.  Reads (pages, rows, counts, aggregates), single-row writes,
many-row inserts, upserts and by-filter updates and deletes all live here;
what differs between databases is asked of the dialect.

Every write is told to the audit sinks once it has committed: at once for a
statement in its own transaction, and through :meth:`TableGateway.flush_audit`
when the caller runs the transaction (a bulk request).  A write on a table a
plugin watches also reaches the invalidation bus then (see
:mod:`swain.core.invalidation`), so cached facts about callers are dropped on
every instance.

SQL is built with SQLAlchemy Core, compiled once per request *shape* and
cached on the catalog; values are bound as parameters on the driver's own
connection.  Where the dialect can, the page is turned into JSON inside the
database and its bytes passed through.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa

from . import codec, references
from .catalog import Catalog, Compiled
from .dialect import DBConnection
from .errors import Conflict, Forbidden, NotFound, ServiceUnavailable, ValidationFailed, invalid
from .protocols import Action, AuditEvent, Identity, Predicate, WriteOnlyValue
from .replicas import wrote
from .runtime import Runtime, audit_event
from .schema import Column, Table

T = TypeVar("T")
Decoder = Callable[[Any], Any] | None
#: aliases because ``TableGateway.list`` shadows ``list`` in annotations: rows as dicts,
#: rows as the driver returns them, and keys as column names
RowDicts = list[dict[str, Any]]
RawRows = list[Sequence[Any]]
Keys = list[tuple[str, ...]]
Columns = list[Column]


@dataclass(frozen=True)
class Page:
    number: int
    size: int


@dataclass
class JsonMembers:
    """Members each row of a page gains, composed as JSON by the database in the
    page's own statement (see :mod:`swain.core.composed`): ``(name, expression)``
    in the row's order, correlated to ``parent``, a table clause named after the
    page's rows; ``needs`` are the columns of them the expressions read.  ``key``
    is their shape (for the statement cache); ``whole`` tells whether a row's
    members, parsed from the text a driver returned, came back whole."""

    parent: sa.TableClause
    members: list[tuple[str, Any]]
    needs: tuple[str, ...]
    params: dict[str, Any]
    key: Hashable
    whole: Callable[[Mapping[str, Any]], bool]


@dataclass
class ListQuery:
    """What a list, filter or count request asks for, already validated."""

    fields: tuple[str, ...] = ()
    sort: tuple[tuple[str, bool, str | None], ...] = ()  # (column, descending, nulls)
    filters: list[Predicate] = field(default_factory=list)
    page: Page | None = None
    count: str = "exact"  # exact | bounded | estimated | none
    distinct: bool = False
    members: JsonMembers | None = None
    #: keyset mode: the order columns a cursor holds (the page then tells the last
    #: row's values when more rows follow), and the rows-after predicate of a cursor
    keyset: tuple[str, ...] | None = None
    after: Predicate | None = None


@dataclass
class PageResult:
    body: bytes
    total: int | None
    #: ``False`` when composed members came back cut short (a server limit on the
    #: size of an aggregate's result): the caller runs the page another way
    whole: bool = True
    #: whether ``total`` is the planner's estimate rather than a count
    estimated: bool = False
    #: in keyset mode, the last row's order columns when more rows follow
    last: dict[str, Any] | None = None


@dataclass
class AggregateQuery:
    """Grouped aggregates over a table: ``aggregates`` are SQL expressions by alias
    (``shape`` says what they are, for the statement cache); ``having`` is a clause
    on the aliases with its cache key and parameters; ``sort`` orders by group
    columns or aliases.  Without a ``page`` the groups are not paged, and ordered only
    by ``sort``."""

    group_by: tuple[str, ...]
    aggregates: Mapping[str, Any]
    shape: Hashable
    filters: list[Predicate] = field(default_factory=list)
    having: tuple[Any, Hashable, Mapping[str, Any]] | None = None
    sort: tuple[tuple[str, bool, str | None], ...] = ()
    page: Page | None = None
    count: str = "none"  # exact | bounded | estimated | none


class JsonRow(dict[str, Any]):
    """A written row as the database wrote it in JSON (:attr:`json`); the mapping
    itself holds only its primary key."""

    __slots__ = ("json",)

    def __init__(self, key: Mapping[str, Any], json: bytes) -> None:
        super().__init__(key)
        self.json = json


def _bounded_count(rows: sa.Select[Any]) -> sa.Select[Any]:
    """How many of ``rows`` there are, reading at most ``_bound`` of them."""
    # OFFSET spelt out: SQLite's compiler would otherwise bind one nobody supplies
    limited = rows.limit(sa.bindparam("_bound", type_=sa.Integer)).offset(sa.literal_column("0"))
    return sa.select(sa.func.count()).select_from(limited.subquery("s"))


def key_of(table: Table, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A row's primary key as ``{column: value}`` (``None`` without a key)."""
    if not table.primary_key:
        return None
    return {name: row.get(name) for name in table.primary_key}


class TableGateway:
    def __init__(self, runtime: Runtime, identity: Identity | None,
                 catalog: Catalog | None = None) -> None:
        self.runtime = runtime
        self.identity = identity
        found = catalog or runtime.catalog
        if found is None:
            raise ServiceUnavailable("the schema is not loaded yet; the database may be "
                                     "unreachable")
        self.catalog: Catalog = found
        self.dialect = runtime.dialect
        self.reads = runtime.reads
        #: (sql, params) of every list statement run, for the SQL preview
        self.statements: list[tuple[str, dict[str, Any]]] = []
        #: audit events of writes in a caller's transaction, until it commits
        self._pending: list[AuditEvent] = []
        #: staging tables this request made (see insert_many)
        self._stages = 0
        #: per table, the columns a client may write and those a create must set
        self._writable: dict[str, tuple[dict[str, Column], Columns]] = {}

    @functools.cached_property
    def explicit_keys(self) -> bool:
        """Whether clients may write keys the database generates (see check_values)."""
        return bool(self.runtime.config.api.allow_explicit_keys) or \
            self.dialect.sequences_follow_explicit_keys

    # -- audit ------------------------------------------------------------

    async def _audited(self, action: str, table: Table, target: Any,
                       conn: DBConnection | None, detail: Mapping[str, Any] | None = None) -> None:
        """Tell the sinks about a write: now when it ran in its own (committed)
        transaction, else once the caller's transaction commits."""
        if not self._audits(table):
            return
        event = audit_event(self.identity, action, table.key, target, detail)
        if conn is None:
            await self.runtime.audit([event])
        else:
            self._pending.append(event)

    def _audits(self, table: Table) -> bool:
        """Whether writes to ``table`` are told to anyone (sinks, invalidations)."""
        return bool(self.runtime.audit_sinks) or self.runtime.invalidations.watched(table.key)

    async def flush_audit(self) -> None:
        """The caller's transaction committed: record its writes."""
        events, self._pending = self._pending, []
        await self.runtime.audit(events)

    def discard_audit(self) -> None:
        """The caller's transaction rolled back: nothing it wrote happened."""
        self._pending = []

    # -- policy -----------------------------------------------------------

    async def authorize(self, table: Table, action: Action) -> None:
        for authorizer in self.runtime.authorizers:
            await authorizer.authorize(self.identity, table, action)

    @property
    def unscoped(self) -> bool:
        """No authorizer or row policy exists: :meth:`scope` has nothing to ask."""
        return not self.runtime.authorizers and not self.runtime.row_policies

    async def scope(self, table: Table, action: Action) -> list[Predicate]:
        """Authorize ``action`` and return the row policies' predicates for it."""
        if self.unscoped:
            return []
        await self.authorize(table, action)
        return await self.policies(table, action)

    async def policies(self, table: Table, action: Action) -> list[Predicate]:
        """The row policies' predicates confining ``action`` on ``table`` (no
        authorization: e.g. which rows a foreign key may point at)."""
        sa_table = self.catalog.sa_table(table)
        found = []
        for policy in self.runtime.row_policies:
            predicate = await policy.predicate(self.identity, table, sa_table, action)
            if predicate is not None:
                found.append(predicate)
        return found

    async def prepare_write(self, table: Table, values: dict[str, Any],
                            action: Action) -> dict[str, Any]:
        for preparer in self.runtime.write_preparers:
            values = await preparer.prepare(self.identity, table, values, action)
        for name, value in values.items():
            if isinstance(value, WriteOnlyValue):
                raise RuntimeError(f"{table.key}.{name} is write-only, but no write preparer "
                                   "turned the value into what is stored")
        return values

    @staticmethod
    def _without_secrets(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
        """Written values as a row to answer with: secret columns never leave."""
        return {name: value for name, value in values.items()
                if not (column := table.column(name)) or not column.secret}

    # -- reads ------------------------------------------------------------------

    async def read(self, work: Callable[[DBConnection], Awaitable[T]]) -> T:
        """Run a read: on a read replica when there are some and this request may
        use one (it wrote nothing yet and did not ask for the primary), else on the
        primary (:mod:`swain.core.replicas`)."""
        if self.reads is None:
            async with self.dialect.acquire() as conn:
                return await work(conn)
        return await self.reads.run(work)

    def output_columns(self, table: Table, fields: Sequence[str] = ()) -> list[Column]:
        if not fields:
            return table.visible_columns
        return [table.column(name) for name in fields]  # type: ignore[misc]

    def _decoders(self, columns: Sequence[Column]) -> list[tuple[str, Decoder]]:
        return [(c.name, self.dialect.decoder(c)) for c in columns]

    def _composed_dicts(self, specs: Sequence[Column | None], names: Sequence[str],
                        rows: RawRows, members: JsonMembers) -> tuple[RowDicts, bool]:
        """Rows of columns and members (a ``None`` spec: JSON text the database
        composed) as dicts, and whether every member came back whole."""
        decoders = [(name, None if spec is None else self.dialect.decoder(spec), spec is None)
                    for name, spec in zip(names, specs, strict=True)]
        found: RowDicts = []
        for row in rows:
            item: dict[str, Any] = {}
            for (name, decode, composed), value in zip(decoders, row, strict=True):
                if composed:
                    try:
                        value = codec.strict_json(value)
                    except ValueError:
                        return found, False  # cut short: not JSON any more
                elif decode is not None and value is not None:
                    value = decode(value)
                item[name] = value
            if not members.whole(item):
                return found, False
            found.append(item)
        return found, True

    def rows_to_dicts(self, columns: Sequence[Column],
                      rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        decoders = self._decoders(columns)
        return [
            {name: (value if decode is None or value is None else decode(value))
             for (name, decode), value in zip(decoders, row, strict=True)}
            for row in rows
        ]

    def _where(self, sa_table: sa.Table, predicates: Sequence[Predicate]) -> list[Any]:
        return [p.clause for p in predicates]

    @staticmethod
    def _params(predicates: Sequence[Predicate]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for predicate in predicates:
            params.update(predicate.params)
        return params

    @staticmethod
    def _tiebreak(table: Table, sort: Sequence[tuple[str, bool, str | None]],
                  within: Sequence[str] | None = None) -> list[str]:
        """The columns ordered by after ``sort``, so pages stay stable."""
        # Without a key, every orderable column stands in for one (rows equal in
        # all of them are indistinguishable anyway).
        tiebreak = table.primary_key or [c.name for c in table.visible_columns
                                         if c.kind != "json"]
        if within is not None:  # DISTINCT may only order by what it selects
            tiebreak = [name for name in tiebreak if name in within]
        used = {name for name, _, _ in sort}
        return [name for name in tiebreak if name not in used]

    def _order(self, table: Table, sa_table: sa.FromClause,
               sort: Sequence[tuple[str, bool, str | None]],
               within: Sequence[str] | None = None, keyset: bool = False) -> list[Any]:
        """ORDER BY terms; for a keyset page, in the form the cursor's comparison
        uses (timestamps SQLite keeps as text of any ISO form: by their instant)."""
        def term(name: str) -> Any:
            column = sa_table.c[name]
            return self.dialect.comparable(column, table.existing_column(name).kind) \
                if keyset else column

        order: list[Any] = []
        for name, descending, nulls in sort:
            order.extend(self.dialect.order_by(term(name), descending, nulls))
        order.extend(term(name).asc() for name in self._tiebreak(table, sort, within))
        return order

    async def list(self, table: Table, query: ListQuery) -> PageResult:
        predicates = await self.scope(table, "read") + query.filters
        fields = query.fields
        extra_fields: list[str] = []
        if query.keyset is not None and fields:  # the cursor reads the order columns
            extra_fields = [name for name in query.keyset if name not in fields]
            fields = (*fields, *extra_fields)
        columns = self.output_columns(table, fields)
        sa_table = self.catalog.sa_table(table)
        params = self._params(predicates)
        after = query.after
        if after is not None:
            params.update(after.params)
        members = query.members
        key: Hashable = ("list", table.key, fields, query.sort, query.distinct,
                         tuple(p.key for p in predicates), query.page is not None, query.count,
                         members.key if members is not None else None,
                         query.keyset is not None, None if after is None else after.key)
        if members is not None:
            params.update(members.params)

        keyset = query.keyset is not None

        def build() -> Compiled:
            where = self._where(sa_table, predicates)
            # the rows after a cursor are the page's, not the count's
            page_where = where if after is None else [*where, after.clause]
            projection = [sa_table.c[c.name] for c in columns]
            selected = [c.name for c in columns]
            if members is not None:  # the columns the members and the order read
                selected = list(dict.fromkeys([*selected, *members.needs]))
                if not query.distinct:
                    selected = list(dict.fromkeys([
                        *selected, *(name for name, _, _ in query.sort),
                        *self._tiebreak(table, query.sort)]))
                projection = [sa_table.c[name] for name in selected]
            within = selected if query.distinct else None
            stmt = sa.select(*projection).where(*page_where).order_by(
                *self._order(table, sa_table, query.sort, within, keyset))
            if query.distinct:
                stmt = stmt.distinct()
            if query.page is not None:
                stmt = stmt.limit(sa.bindparam("_limit", type_=sa.Integer)).offset(
                    sa.bindparam("_offset", type_=sa.Integer))
            count_stmt = self._count_statement(sa_table, projection, where, query)
            specs: list[Column | None] = list(columns)
            names = [c.name for c in columns]
            if members is not None:
                # The members are computed for the page's rows only (a CTE named as
                # their parent), not for the rows an OFFSET skips.  A member named as
                # a column (a relationship named after its key column) takes its place.
                rows = members.parent
                composed = dict(members.members)
                outputs = [composed[c.name].label(c.name) if c.name in composed
                           else rows.c[c.name] for c in columns]
                specs = [None if c.name in composed else c for c in columns]
                for name, expression in members.members:
                    if name not in names:
                        outputs.append(expression.label(name))
                        specs.append(None)
                        names.append(name)
                stmt = sa.select(*outputs).select_from(rows).add_cte(stmt.cte(rows.name)) \
                    .order_by(*self._order(table, rows, query.sort, within, keyset))
            json_stmt = self.dialect.json_page(stmt, specs, count_stmt)
            if json_stmt is not None:
                return self.dialect.compiled(json_stmt, specs, extra=("json", None, names))
            count = self.dialect.compiled(count_stmt) if count_stmt is not None else None
            return self.dialect.compiled(stmt, specs, extra=("rows", count, names))

        compiled = self.catalog.compiled(key, build)
        limit = self.runtime.exact_count_limit
        if query.count == "bounded":
            params["_bound"] = limit + 1
        if query.page is not None:
            # in keyset mode one row more tells whether another page follows
            params["_limit"] = query.page.size + (query.keyset is not None)
            params["_offset"] = (query.page.number - 1) * query.page.size
        mode, count_compiled, names = compiled.extra
        sql, bound = compiled.render(params)
        self.statements.append((sql, bound))

        async def page(conn: DBConnection) -> PageResult:
            whole = True
            if mode == "json":
                row = await conn.fetch_one(sql, bound)
                assert row is not None
                total, data = (row[0], row[1]) if len(row) == 2 else (None, row[0])
                body = data.encode() if isinstance(data, str) else bytes(data)
            else:
                rows = await conn.fetch_all(sql, bound)
                if members is None:
                    found = self.rows_to_dicts(compiled.columns, rows)
                else:
                    found, whole = self._composed_dicts(compiled.columns, names, rows, members)
                body = codec.dumps(found)
                total = None
                if count_compiled is not None:
                    count_row = await conn.fetch_one(*count_compiled.render(params))
                    total = int(count_row[0]) if count_row else 0
            estimated = False
            if query.count == "estimated":
                total, estimated = await self._estimate(table, sa_table, predicates, params,
                                                        conn)
            elif query.count == "bounded" and total is not None and int(total) > limit:
                total, estimated = await self._estimate(table, sa_table, predicates, params,
                                                        conn)
                total = max(total, limit + 1)
            result = PageResult(body, None if total is None else int(total), whole, estimated)
            if query.keyset is not None and query.page is not None:
                self._keyset_page(result, query.keyset, query.page.size, extra_fields)
            return result

        return await self.read(page)

    @staticmethod
    def _count_statement(sa_table: sa.Table, projection: Sequence[Any], where: Sequence[Any],
                         query: ListQuery) -> sa.Select[Any] | None:
        """How a page's total is counted: every matching row (``exact``), or at most
        ``_bound`` of them (``bounded``: it never reads more)."""
        if query.count not in ("exact", "bounded"):
            return None
        if query.distinct:
            inner = sa.select(*projection).where(*where).distinct()
        elif query.count == "bounded":
            inner = sa.select(sa.literal_column("1")).select_from(sa_table).where(*where)
        else:
            return sa.select(sa.func.count()).select_from(sa_table).where(*where)
        if query.count == "bounded":
            return _bounded_count(inner)
        return sa.select(sa.func.count()).select_from(inner.subquery("s"))

    @staticmethod
    def _keyset_page(result: PageResult, keyset: Sequence[str], size: int,
                     extra_fields: Sequence[str]) -> None:
        """Cut a keyset page's look-ahead row; keep the last row's order columns when
        more follow; drop the columns read only for the cursor."""
        rows: RowDicts = orjson.loads(result.body)
        if len(rows) <= size and not extra_fields:
            return
        if len(rows) > size:
            rows = rows[:size]
            result.last = {name: rows[-1][name] for name in keyset}
        for row in rows:
            for name in extra_fields:
                row.pop(name, None)
        result.body = codec.dumps(rows)

    async def _estimate(self, table: Table, sa_table: sa.Table, predicates: Sequence[Predicate],
                        params: Mapping[str, Any], conn: DBConnection) -> tuple[int, bool]:
        """The planner's estimate of the matching rows, or the exact count without one;
        and whether it is an estimate."""
        key = ("estimate", table.key, tuple(p.key for p in predicates))

        def build() -> Compiled:
            where = self._where(sa_table, predicates)
            probe: sa.Select[Any] = sa.select(sa.literal_column("1")).select_from(
                sa_table).where(*where)
            exact = sa.select(sa.func.count()).select_from(sa_table).where(*where)
            return self.dialect.compiled(probe, extra=self.dialect.compiled(exact))

        compiled = self.catalog.compiled(key, build)
        sql, bound = compiled.render(params)
        total = await self.dialect.estimate_count(conn, sql, bound, sa_table, bool(predicates))
        if total is None:
            row = await conn.fetch_one(*compiled.extra.render(params))
            return (int(row[0]) if row else 0), False
        return total, True

    async def count(self, table: Table, filters: Sequence[Predicate] = ()) -> int:
        predicates = await self.scope(table, "read") + list(filters)
        sa_table = self.catalog.sa_table(table)
        key = ("count", table.key, tuple(p.key for p in predicates))

        def build() -> Compiled:
            stmt = sa.select(sa.func.count()).select_from(sa_table).where(
                *self._where(sa_table, predicates))
            return self.dialect.compiled(stmt)

        compiled = self.catalog.compiled(key, build)
        row = await self.read(lambda conn: conn.fetch_one(
            *compiled.render(self._params(predicates))))
        return int(row[0]) if row else 0

    def key_predicate(self, table: Table, key_values: Sequence[Any]) -> Predicate:
        params = {f"_pk{i}": self.dialect.encode(table.existing_column(name).kind, value)
                  for i, (name, value) in enumerate(zip(table.primary_key, key_values, strict=True))}
        return Predicate(("pk", table.key), self.catalog.key_clause(table), params)

    async def get(self, table: Table, key_values: Sequence[Any], fields: Sequence[str] = (),
                  conn: DBConnection | None = None) -> dict[str, Any]:
        rows = await self._select_by_key(table, key_values, fields, conn)
        if not rows:
            raise NotFound(f"no row in {table.key!r} with that key")
        return rows[0]

    async def get_json(self, table: Table, key_values: Sequence[Any],
                       fields: Sequence[str] = ()) -> bytes:
        """One row as JSON bytes (built inside the database where the dialect can)."""
        if not fields and self.unscoped:
            # the common request: its statement and parameter names are made once per table
            compiled, names = self.catalog.by_key(table, lambda: (
                self._get_compiled(table, [Predicate(("pk", table.key),
                                                     self.catalog.key_clause(table), {})]),
                [(f"_pk{i}", table.existing_column(name).kind)
                 for i, name in enumerate(table.primary_key)]))
            encode = self.dialect.encode
            params = {name: encode(kind, value)
                      for (name, kind), value in zip(names, key_values, strict=True)}
        else:
            predicates = await self.scope(table, "read")
            predicates.append(self.key_predicate(table, key_values))
            compiled = self._get_compiled(table, predicates, tuple(fields))
            params = self._params(predicates)
        rows = await self.read(lambda conn: conn.fetch_all(compiled.sql, params))
        if not rows:
            raise NotFound(f"no row in {table.key!r} with that key")
        if compiled.extra == "json":
            data = rows[0][0]
            return data.encode() if isinstance(data, str) else bytes(data)
        return codec.dumps(self.rows_to_dicts(compiled.columns, rows)[0])

    def _get_compiled(self, table: Table, predicates: Sequence[Predicate],
                      fields: tuple[str, ...] = ()) -> Compiled:
        """The statement of :meth:`get_json` (``predicates``: scope and key)."""
        columns = self.output_columns(table, fields)
        sa_table = self.catalog.sa_table(table)
        key = ("get", table.key, fields, tuple(p.key for p in predicates))

        def build() -> Compiled:
            stmt = sa.select(*[sa_table.c[c.name] for c in columns]).where(
                *self._where(sa_table, predicates))
            json_stmt = self.dialect.json_row(stmt, columns)
            if json_stmt is not None:
                return Compiled(*self.dialect.compile(json_stmt), list(columns), extra="json")
            return Compiled(*self.dialect.compile(stmt), list(columns), extra="rows")

        return self.catalog.compiled(key, build)

    async def _select_by_key(self, table: Table, key_values: Sequence[Any], fields: Sequence[str],
                             conn: DBConnection | None, action: Action = "read",
                             lock: bool = False) -> RowDicts:
        predicates = await self.scope(table, action)
        predicates.append(self.key_predicate(table, key_values))
        columns = self.output_columns(table, tuple(fields))
        sa_table = self.catalog.sa_table(table)
        key = ("by_key", table.key, tuple(fields), tuple(p.key for p in predicates), lock)

        def build() -> Compiled:
            stmt = sa.select(*[sa_table.c[c.name] for c in columns]).where(
                *self._where(sa_table, predicates))
            if lock:
                stmt = stmt.with_for_update()
            return Compiled(*self.dialect.compile(stmt), list(columns))

        compiled = self.catalog.compiled(key, build)
        params = self._params(predicates)
        if conn is not None:
            rows = await conn.fetch_all(compiled.sql, params)
        else:
            rows = await self.read(lambda own: own.fetch_all(compiled.sql, params))
        return self.rows_to_dicts(compiled.columns, rows)

    # -- writes -------------------------------------------------------------------

    def check_values(self, table: Table, values: Mapping[str, Any], *, creating: bool,
                     path: str = "") -> dict[str, Any]:
        """Validate a client's row: known, writable columns with values of the right type."""
        if type(values) is not dict and not isinstance(values, Mapping):
            raise ValidationFailed(f"{path or 'body'}: expected a JSON object of column values")
        writable, required = self._writing(table)
        checked: dict[str, Any] = {}
        errors = []
        parse = codec.parse_value
        for name, value in values.items():
            where = f"{path}.{name}" if path else name
            column = writable.get(name)
            if column is None:
                errors.append(self._unwritable(table, name, where))
                continue
            if column.write_only:
                if value is not None:
                    if isinstance(value, str):
                        checked[name] = WriteOnlyValue(value, where)
                    else:
                        errors.append(invalid(where, "expected a string"))
                    continue
                if column.generated or (column.autoincrement and not self.explicit_keys):
                    errors.append(self._unwritable(table, name, where))
                    continue
            try:
                checked[name] = parse(column, value, where)
            except ValidationFailed as exc:
                errors.append(exc)
        if creating:
            for column in required:
                if column.name not in values:
                    where = f"{path}.{column.name}" if path else column.name
                    errors.append(invalid(where, "required"))
        if errors:
            details = [d for e in errors for d in e.details]
            raise ValidationFailed(errors[0].message if len(errors) == 1 else
                                   f"{len(errors)} invalid values", details)
        return checked

    def _writing(self, table: Table) -> tuple[dict[str, Column], Columns]:
        """The columns a client may write, by name (a write-only one whatever else it
        is: its value is checked apart), and those a create must set; worked out
        once per table and request (a bulk request checks thousands of rows)."""
        found = self._writable.get(table.key)
        if found is None:
            writable = {c.name: c for c in table.columns
                        if (not c.secret or c.write_only) and (c.write_only or (
                            not c.generated and not (c.autoincrement and not self.explicit_keys)))}
            required = [c for c in table.columns
                        if c.required_on_create and (not c.secret or c.write_only)]
            found = self._writable[table.key] = (writable, required)
        return found

    def _unwritable(self, table: Table, name: str, where: str) -> ValidationFailed:
        """Why the client may not write the column ``name``."""
        column = table.column(name)
        if column is None or (column.secret and not column.write_only):
            allowed = ", ".join(c.name for c in table.columns if c.writable_by_clients)
            return invalid(where, f"unknown column (allowed: {allowed})")
        if column.generated:
            return invalid(where, "generated column; it cannot be written")
        # The database's sequence does not move past a value chosen by a client: a
        # later plain insert (anyone's) would collide with it.
        return invalid(where, "the database generates this key; it cannot be written "
                              "(api.allow_explicit_keys)")

    def _encoded(self, table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
        return {f"_v{i}": self.dialect.encode(table.existing_column(name).kind, value)
                for i, (name, value) in enumerate(values.items())}

    def _require_writable(self, table: Table, action: Action) -> None:
        if not table.updatable:
            raise Forbidden(f"{table.key!r} is read-only ({table.kind} without a way to write it)")

    async def insert(self, table: Table, values: dict[str, Any],
                     conn: DBConnection | None = None) -> dict[str, Any]:
        wrote()
        self._require_writable(table, "create")
        await self.authorize(table, "create")
        values = await self.prepare_write(table, values, "create")
        sa_table = self.catalog.sa_table(table)
        columns = self.output_columns(table)
        names = tuple(values)
        returning = self.dialect.supports_returning_insert
        key = ("insert", table.key, names, returning)

        def build() -> Compiled:
            stmt = sa.insert(sa_table).values(
                {name: sa.bindparam(f"_v{i}") for i, name in enumerate(names)})
            if returning:
                stmt = stmt.returning(*[sa_table.c[c.name] for c in columns])
            return Compiled(*self.dialect.compile(stmt), list(columns))

        compiled = self.catalog.compiled(key, build)
        params = self._encoded(table, values)
        row = await self.dialect.run_in_transaction(
            conn, lambda c: self._insert(table, values, compiled, params, c))
        await self._audited("create", table, key_of(table, row), conn)
        return row

    async def _insert(self, table: Table, values: dict[str, Any], compiled: Compiled,
                      params: dict[str, Any], conn: DBConnection) -> dict[str, Any]:
        await references.check(self, table, values, conn)
        if self.dialect.supports_returning_insert:
            rows = await conn.fetch_all(compiled.sql, params)
            return self.rows_to_dicts(compiled.columns, rows)[0]
        result = await conn.execute(compiled.sql, params)
        if not table.primary_key:
            return self._without_secrets(table, values)
        key_values = []
        for name in table.primary_key:
            column = table.column(name)
            if name in values:
                key_values.append(values[name])
            elif column is not None and column.autoincrement and result.lastrowid:
                key_values.append(result.lastrowid)
            else:
                # A key filled by some other default cannot be found again
                # without RETURNING: answer with what was written.
                return self._without_secrets(table, values)
        # Read back under the write's own action, as RETURNING would: a caller
        # allowed to create a row sees it whether or not it may list the table.
        found = await self._select_by_key(table, key_values, (), conn, action="create")
        return found[0] if found else self._without_secrets(table, values)

    async def update(self, table: Table, key_values: Sequence[Any], values: dict[str, Any],
                     conn: DBConnection | None = None) -> dict[str, Any]:
        wrote()
        self._require_writable(table, "update")
        predicates = await self.scope(table, "update")
        predicates.append(self.key_predicate(table, key_values))
        values = await self.prepare_write(table, values, "update")
        if not values:
            raise ValidationFailed("body: no columns to update", [])
        sa_table = self.catalog.sa_table(table)
        columns = self.output_columns(table)
        names = tuple(values)
        returning = self.dialect.supports_returning_update
        key = ("update", table.key, names, tuple(p.key for p in predicates), returning)

        def build() -> Compiled:
            stmt = sa.update(sa_table).where(*self._where(sa_table, predicates)).values(
                {name: sa.bindparam(f"_v{i}") for i, name in enumerate(names)})
            if returning:
                stmt = stmt.returning(*[sa_table.c[c.name] for c in columns])
            return Compiled(*self.dialect.compile(stmt), list(columns))

        compiled = self.catalog.compiled(key, build)
        params = {**self._params(predicates), **self._encoded(table, values)}
        new_key = [values.get(name, old) for name, old in zip(table.primary_key, key_values,
                                                                 strict=True)]

        async def run(c: DBConnection) -> dict[str, Any]:
            await references.check(self, table, values, c)
            if returning:
                rows = await c.fetch_all(compiled.sql, params)
                if not rows:
                    raise NotFound(f"no row in {table.key!r} with that key")
                return self.rows_to_dicts(compiled.columns, rows)[0]
            result = await c.execute(compiled.sql, params)
            if result.rowcount == 0:
                raise NotFound(f"no row in {table.key!r} with that key")
            found = await self._select_by_key(table, new_key, (), c, action="update")
            if not found:
                raise NotFound(f"no row in {table.key!r} with that key")
            return found[0]

        row = await self.dialect.run_in_transaction(conn, run)
        await self._audited("update", table, key_of(table, row), conn)
        return row

    async def delete(self, table: Table, key_values: Sequence[Any],
                     conn: DBConnection | None = None) -> dict[str, Any]:
        wrote()
        self._require_writable(table, "delete")
        predicates = await self.scope(table, "delete")
        predicates.append(self.key_predicate(table, key_values))
        sa_table = self.catalog.sa_table(table)
        columns = self.output_columns(table)
        returning = self.dialect.supports_returning_delete
        key = ("delete", table.key, tuple(p.key for p in predicates), returning)

        def build() -> Compiled:
            stmt: Any = sa.delete(sa_table).where(*self._where(sa_table, predicates))
            if returning:
                stmt = stmt.returning(*[sa_table.c[c.name] for c in columns])
            return Compiled(*self.dialect.compile(stmt), list(columns))

        compiled = self.catalog.compiled(key, build)
        params = self._params(predicates)

        async def run(c: DBConnection) -> dict[str, Any]:
            if returning:
                rows = await c.fetch_all(compiled.sql, params)
                if not rows:
                    raise NotFound(f"no row in {table.key!r} with that key")
                return self.rows_to_dicts(compiled.columns, rows)[0]
            found = await self._select_by_key(table, key_values, (), c, action="delete", lock=True)
            if not found:
                raise NotFound(f"no row in {table.key!r} with that key")
            await c.execute(compiled.sql, params)
            return found[0]

        row = await self.dialect.run_in_transaction(conn, run)
        await self._audited("delete", table, key_of(table, row), conn)
        return row


    # -- many rows ----------------------------------------------------------------

    def inserts_many(self, table: Table, names: tuple[str, ...]) -> bool:
        """Whether :meth:`insert_many` takes rows setting ``names`` (else they go in
        one at a time): with RETURNING always; without, when each row's key is
        known after the statement (written, or generated consecutively) so the rows
        can be read back."""
        if not names:
            return False
        if self.dialect.supports_returning_insert:
            return True
        if len(table.primary_key) != 1:
            return False
        key = table.primary_key[0]
        return key in names or (table.existing_column(key).autoincrement
                                and self.dialect.generated_key_step is not None)

    async def insert_many(self, table: Table, names: tuple[str, ...], rows: RowDicts,
                          conn: DBConnection) -> RowDicts:
        """Insert rows in one go and return them as stored (needs RETURNING).

        The rows all have the columns ``names`` and are already checked, authorized
        and prepared by the caller (who can then replay a failing batch row by row
        with :meth:`insert`).  Where the dialect has a bulk-load path they go through
        it (:meth:`Dialect.staged_insert`: PostgreSQL's ``COPY``); else, where it
        can, each column travels as one array (:meth:`Dialect.insert_from_arrays`);
        else as a multi-row INSERT."""
        wrote()
        sa_table = self.catalog.sa_table(table)
        if not self.dialect.supports_returning_insert:
            return await self._insert_read_back(table, sa_table, names, rows, conn)
        columns = self.output_columns(table)
        returning = [sa_table.c[c.name] for c in columns]
        kinds = [table.existing_column(name).kind for name in names]
        encode = self.dialect.encode
        # one staging table per batch of the transaction, named alike in every
        # request so the statements repeat (and get prepared)
        stage = f"swain_stage_{self._stages}"

        def staged() -> Compiled:
            # the rows' key and their JSON, built by the database, where it can
            as_json = self.dialect.json_object(sa_table, columns) if table.primary_key else None
            keys = [table.existing_column(name) for name in table.primary_key]
            found = self.dialect.staged_insert(
                sa_table, names, returning if as_json is None else
                [*(sa_table.c[c.name] for c in keys), as_json], stage)
            if found is None:
                return Compiled("", [])  # remembered: no bulk-load path
            create, copy, move = found
            return Compiled(*self.dialect.compile(move), keys if as_json is not None else
                            list(columns), extra=(create, copy, as_json is not None))

        compiled = self.catalog.compiled(("insert_staged", table.key, names, stage), staged)
        if compiled.sql:
            self._stages += 1
            create, copy, as_json = compiled.extra
            await conn.execute(create)
            pairs = list(zip(names, kinds, strict=True))
            await conn.copy_rows(copy, ([n, *[encode(kind, row[name]) for name, kind in pairs]]
                                        for n, row in enumerate(rows)))
            if not as_json:
                return await self._inserted(table, compiled, None, conn)
            keys = self._decoders(compiled.columns)
            stored: RowDicts = []
            for *key, text in await conn.fetch_all(compiled.sql):
                stored.append(JsonRow({name: value if decode is None or value is None
                                       else decode(value)
                                       for (name, decode), value in zip(keys, key, strict=True)},
                                      text.encode() if isinstance(text, str) else bytes(text)))
            if self._audits(table):
                for row in stored:
                    await self._audited("create", table, key_of(table, row), conn)
            return stored
        return await self._insert_statement(table, sa_table, names, rows, returning, conn)

    async def _insert_read_back(self, table: Table, sa_table: sa.Table, names: tuple[str, ...],
                                rows: RowDicts, conn: DBConnection) -> RowDicts:
        """:meth:`insert_many` without RETURNING (MySQL): one multi-row INSERT, then the
        rows read back by key (written, or generated from ``lastrowid`` on), under
        the write's own action as for one row (:meth:`_insert`)."""
        kinds = [table.existing_column(name).kind for name in names]
        encode = self.dialect.encode

        def build() -> Compiled:
            stmt = sa.insert(sa_table).values([
                {name: sa.bindparam(f"_b{i}_{j}") for j, name in enumerate(names)}
                for i in range(len(rows))])
            return Compiled(*self.dialect.compile(stmt))

        compiled = self.catalog.compiled(("insert_values", table.key, names, len(rows), False),
                                         build)
        result = await conn.execute(compiled.sql, {
            f"_b{i}_{j}": encode(kind, row[name]) for i, row in enumerate(rows)
            for j, (name, kind) in enumerate(zip(names, kinds, strict=True))})
        key = table.primary_key[0]
        if key in names:
            keys = [row[key] for row in rows]
        else:
            step = self.dialect.generated_key_step
            assert step is not None and result.lastrowid, "inserts_many said no"
            keys = [result.lastrowid + i * step for i in range(len(rows))]
        predicates = await self.scope(table, "create")
        column = table.existing_column(key)
        columns = self.output_columns(table)
        shape = ("read_back", table.key, tuple(p.key for p in predicates))

        def select() -> Compiled:
            wanted = sa_table.c[key].in_(sa.bindparam("_keys", expanding=True))
            stmt = sa.select(*[sa_table.c[c.name] for c in columns]).where(
                wanted, *self._where(sa_table, predicates))
            return self.dialect.compiled(stmt, columns)

        reading = self.catalog.compiled(shape, select)
        params = self._params(predicates)
        params["_keys"] = [encode(column.kind, value) for value in keys]
        found = {codec.dumps(row[key]): row for row in self.rows_to_dicts(
            reading.columns, await conn.fetch_all(*reading.render(params)))}
        # a row the caller may not read back is answered with what was written
        stored = [found.get(codec.dumps(value)) or dict(row)
                  for value, row in zip(keys, rows, strict=True)]
        if self._audits(table):
            for row in stored:
                await self._audited("create", table, key_of(table, row), conn)
        return stored

    async def _inserted(self, table: Table, compiled: Compiled, params: dict[str, Any] | None,
                        conn: DBConnection) -> RowDicts:
        stored = self.rows_to_dicts(compiled.columns, await conn.fetch_all(compiled.sql, params))
        if self._audits(table):
            for row in stored:
                await self._audited("create", table, key_of(table, row), conn)
        return stored

    async def _insert_statement(self, table: Table, sa_table: sa.Table, names: tuple[str, ...],
                                rows: RowDicts, returning: Sequence[Any],
                                conn: DBConnection) -> RowDicts:
        """:meth:`insert_many` as one INSERT statement."""
        columns = self.output_columns(table)
        kinds = [table.existing_column(name).kind for name in names]
        encode = self.dialect.encode

        def from_arrays() -> Compiled:
            stmt = self.dialect.insert_from_arrays(table, sa_table, names, returning)
            if stmt is None:
                return Compiled("", [])  # remembered: this shape has no array form
            return Compiled(*self.dialect.compile(stmt), list(columns))

        compiled = self.catalog.compiled(("insert_arrays", table.key, names), from_arrays)
        if compiled.sql:
            params: dict[str, Any] = {
                f"_a{j}": [encode(kind, row[name]) for row in rows]
                for j, (name, kind) in enumerate(zip(names, kinds, strict=True))}
        else:
            def from_values() -> Compiled:
                stmt = sa.insert(sa_table).values([
                    {name: sa.bindparam(f"_b{i}_{j}") for j, name in enumerate(names)}
                    for i in range(len(rows))]).returning(*returning)
                return Compiled(*self.dialect.compile(stmt), list(columns))

            compiled = self.catalog.compiled(("insert_values", table.key, names, len(rows)),
                                             from_values)
            params = {f"_b{i}_{j}": encode(kind, row[name]) for i, row in enumerate(rows)
                      for j, (name, kind) in enumerate(zip(names, kinds, strict=True))}
        return await self._inserted(table, compiled, params, conn)

    async def select_matching(self, table: Table, match: Mapping[str, Any],
                              predicates: Sequence[Predicate], conn: DBConnection) -> RowDicts:
        """Rows whose columns equal ``match``, under ``predicates`` (none: every row,
        whoever's it is, for a clash check)."""
        sa_table = self.catalog.sa_table(table)
        columns = self.output_columns(table)
        names = tuple(match)
        clauses = [sa_table.c[n] == sa.bindparam(f"_m{i}") for i, n in enumerate(names)]
        stmt = sa.select(*[sa_table.c[c.name] for c in columns]).where(
            *clauses, *[p.clause for p in predicates])
        params = {f"_m{i}": self.dialect.encode(table.existing_column(n).kind, match[n])
                  for i, n in enumerate(names)}
        params.update(self._params(predicates))
        sql, _ = self.dialect.compile(stmt)
        return self.rows_to_dicts(columns, await conn.fetch_all(sql, params))

    def unique_keys(self, table: Table, values: Mapping[str, Any]) -> Keys:
        """The primary key and unique constraints whose every column ``values`` sets."""
        keys = [tuple(table.primary_key)] + [tuple(u["columns"]) for u in table.unique_constraints]
        return list(dict.fromkeys(k for k in keys if k and all(n in values for n in k)))

    async def upsert(self, table: Table, values: dict[str, Any], conflict: tuple[str, ...],
                     mode: str, update_scope: Sequence[Predicate],
                     conn: DBConnection) -> tuple[dict[str, Any], bool]:
        """Insert a checked row, or on a clash with ``conflict`` update it (``mode``
        ``update``) or leave it (``ignore``); the row as the caller may read it and
        whether ``ignore`` skipped it.  ``update_scope`` are the caller's predicates
        for ``update`` (the database's upsert cannot see row policies)."""
        wrote()
        await references.check(self, table, values, conn)
        sa_table = self.catalog.sa_table(table)
        match = {name: values[name] for name in conflict}
        any_key = self.dialect.upsert_matches_any_key
        if mode == "update" and update_scope:
            # A conflicting row the caller may not update must not be overwritten
            # through the upsert; where it fires on any unique key, every key the
            # row carries must pass the check.
            keys = self.unique_keys(table, values) if any_key else [conflict]
            for names in keys:
                match_k = {name: values[name] for name in names}
                if await self.select_matching(table, match_k, [], conn) and \
                        not await self.select_matching(table, match_k, update_scope, conn):
                    raise Conflict("a row with this key exists and you may not change it")
        inserted = await self.prepare_write(table, dict(values), "create")
        names = tuple(inserted)
        updated = await self.prepare_write(table, {k: v for k, v in values.items()
                                                   if k not in conflict}, "update") \
            if mode == "update" else {}
        update_names = tuple(updated)
        params = {f"_v{i}": self.dialect.encode(table.existing_column(n).kind, inserted[n])
                  for i, n in enumerate(names)}
        params.update({f"_w{i}": self.dialect.encode(table.existing_column(n).kind, updated[n])
                       for i, n in enumerate(update_names)})

        def build() -> Compiled:
            row: dict[str, Any] = {n: sa.bindparam(f"_v{i}") for i, n in enumerate(names)}
            sets: dict[str, Any] = {n: sa.bindparam(f"_w{i}") for i, n in enumerate(update_names)}
            return Compiled(*self.dialect.compile(self.dialect.upsert(sa_table, row, sets,
                                                                      conflict)))

        compiled = self.catalog.compiled(("upsert", table.key, names, update_names, conflict),
                                         build)
        skipped = False
        if mode == "ignore" and any_key:
            # Its row count answers a skipped row and a new one alike: look first.
            for names_k in self.unique_keys(table, inserted):
                if await self.select_matching(table, {n: inserted[n] for n in names_k}, [], conn):
                    skipped = True
                    break
        outcome = await conn.execute(compiled.sql, params)
        if mode == "ignore" and not any_key:
            skipped = outcome.rowcount == 0
        # read back under the write's own action, as RETURNING would (not under read)
        found = await self.select_matching(
            table, match, await self.scope(table, "update" if mode == "update" else "create"),
            conn)
        if found:
            if not skipped:
                await self._audited("upsert", table, key_of(table, found[0]), conn)
            return found[0], skipped
        if skipped:
            # ``ignore`` met a row the caller cannot see (another tenant's, or outside
            # a row policy).  Reporting success would be a lie (the row is not theirs
            # and a read says 404), and the key is taken for every caller alike: a
            # plain insert of it already answers 409.  So answer exactly that, from
            # the same statement a plain insert runs: the database's own unique
            # violation, classified as for POST /{t} (no data of the other row).  A
            # new key still succeeds, and ignoring adds nothing a plain insert does
            # not already tell.  If the other row is gone by now, the insert succeeds.
            return await self.insert(table, dict(values), conn), False
        await self._audited("upsert", table, key_of(table, values), conn)
        return self._without_secrets(table, values), False

    # -- by filter ------------------------------------------------------------------

    async def count_where(self, table: Table, action: Action,
                          filters: Sequence[Predicate]) -> int:
        """How many rows an ``action`` by filter would change (a dry run)."""
        return await self._where_statement(table, action, filters, {}, None, None, dry_run=True)

    async def update_where(self, table: Table, filters: Sequence[Predicate],
                           values: dict[str, Any], *, max_affected: int | None = None,
                           detail: Mapping[str, Any] | None = None) -> int:
        """Set checked ``values`` on every row the filters (and the caller's scope)
        match, in one transaction; more than ``max_affected`` rows is a 409 and
        nothing changes.  ``detail`` (e.g. the filter) goes into the audit event."""
        values = await self.prepare_write(table, values, "update")
        await references.check(self, table, values)
        return await self._where_statement(table, "update", filters, values, max_affected,
                                           detail)

    async def delete_where(self, table: Table, filters: Sequence[Predicate], *,
                           max_affected: int | None = None,
                           detail: Mapping[str, Any] | None = None) -> int:
        """Delete every row the filters (and the caller's scope) match; as
        :meth:`update_where`."""
        return await self._where_statement(table, "delete", filters, {}, max_affected, detail)

    async def _where_statement(self, table: Table, action: Action, filters: Sequence[Predicate],
                               values: Mapping[str, Any], max_affected: int | None,
                               detail: Mapping[str, Any] | None, dry_run: bool = False) -> int:
        self._require_writable(table, action)
        predicates = await self.scope(table, action) + list(filters)
        sa_table = self.catalog.sa_table(table)
        where = self._where(sa_table, predicates)
        names = tuple(values)
        shape = ("by_filter", action, dry_run, table.key, names, tuple(p.key for p in predicates))

        def build() -> Compiled:
            if dry_run:
                return self.dialect.compiled(
                    sa.select(sa.func.count()).select_from(sa_table).where(*where))
            clauses = self.dialect.writable_where(sa_table, table.primary_key, where)
            stmt: Any = sa.update(sa_table).where(*clauses).values(
                {n: sa.bindparam(f"_u{i}") for i, n in enumerate(names)}) \
                if action == "update" else sa.delete(sa_table).where(*clauses)
            return self.dialect.compiled(stmt)

        compiled = self.catalog.compiled(shape, build)
        params = self._params(predicates)
        params.update({f"_u{i}": self.dialect.encode(table.existing_column(n).kind, values[n])
                       for i, n in enumerate(names)})
        sql, bound = compiled.render(params)
        if dry_run:  # on the primary: the count of what a write would change now
            async with self.dialect.acquire() as conn:
                row = await conn.fetch_one(sql, bound)
            return int(row[0]) if row else 0
        wrote()
        async with self.dialect.transaction() as conn:
            affected = int((await conn.execute(sql, bound)).rowcount)
            if max_affected is not None and affected > max_affected:
                raise Conflict(f"this would {action} {affected} rows, more than max_affected="
                               f"{max_affected}; nothing was changed")
        await self._audited(f"mass_{action}", table, None, None,
                            {**(detail or {}), "columns": list(names), "affected": affected})
        return affected

    # -- aggregates -------------------------------------------------------------------

    async def aggregate(self, table: Table,
                        query: AggregateQuery) -> tuple[RawRows, int | None, bool]:
        """The groups of ``query`` as rows (group columns, then the aggregates in
        order), unless ``count`` is ``none`` how many groups there are, and whether
        that is the planner's estimate (``bounded`` beyond ``api.exact_count_limit``)."""
        predicates = await self.scope(table, "read") + query.filters
        sa_table = self.catalog.sa_table(table)
        having, having_key, having_params = query.having or (None, None, {})
        shape = ("aggregate", table.key, query.group_by, query.shape, having_key, query.sort,
                 tuple(p.key for p in predicates), query.page is not None, query.count)

        def build() -> Compiled:
            group = [sa_table.c[name] for name in query.group_by]
            labels = [expr.label(alias) for alias, expr in query.aggregates.items()]
            # FROM named: a COUNT(*) alone, unfiltered, would otherwise select from nothing
            stmt = sa.select(*group, *labels).select_from(sa_table).where(
                *self._where(sa_table, predicates))
            if group:
                stmt = stmt.group_by(*group)
            if having is not None:
                stmt = stmt.having(having)
            counts: tuple[Compiled, Compiled | None, Compiled | None] | None = None
            if query.count != "none":
                exact = self.dialect.compiled(sa.select(sa.func.count()).select_from(
                    stmt.subquery()))
                counts = (exact, None, None)
                if query.count == "bounded":  # at most _bound groups; the planner beyond
                    counts = (self.dialect.compiled(_bounded_count(stmt)),
                              self.dialect.compiled(stmt), exact)
            if query.page is not None or query.sort:
                outputs = {**{name: sa_table.c[name] for name in query.group_by},
                           **query.aggregates}
                order: list[Any] = []
                for name, descending, nulls in query.sort:
                    order.extend(self.dialect.order_by(outputs[name], descending, nulls))
                sorted_by = {name for name, _, _ in query.sort}
                order.extend(sa_table.c[name].asc() for name in query.group_by
                             if name not in sorted_by)
                stmt = stmt.order_by(*order)
            if query.page is not None:
                stmt = stmt.limit(sa.bindparam("_limit", type_=sa.Integer)).offset(
                    sa.bindparam("_offset", type_=sa.Integer))
            return self.dialect.compiled(stmt, extra=counts)

        compiled = self.catalog.compiled(shape, build)
        params = self._params(predicates)
        params.update(having_params)
        limit = self.runtime.exact_count_limit
        count_params = {**params, "_bound": limit + 1}
        if query.page is not None:
            params["_limit"] = query.page.size
            params["_offset"] = (query.page.number - 1) * query.page.size
        sql, bound = compiled.render(params)
        if query.page is not None:
            self.statements.append((sql, bound))
        async def groups(conn: DBConnection) -> tuple[RawRows, int | None, bool]:
            rows = await conn.fetch_all(sql, bound)
            if compiled.extra is None:
                return rows, None, False
            counted, probe, exact = compiled.extra
            row = await conn.fetch_one(*counted.render(count_params))
            total = int(row[0]) if row else 0
            if probe is None or total <= limit:
                return rows, total, False
            probe_sql, probe_params = probe.render(count_params)
            estimate = await self.dialect.estimate_count(conn, probe_sql, probe_params,
                                                         sa_table, True)
            if estimate is None:
                row = await conn.fetch_one(*exact.render(count_params))
                return rows, int(row[0]) if row else 0, False
            return rows, max(estimate, limit + 1), True

        return await self.read(groups)


def equality_filters(table: Table, catalog: Catalog, pairs: Sequence[tuple[str, Any]],
                     encode: Callable[[str, Any], Any]) -> Predicate | None:
    """``?column=value`` query filters as one predicate."""
    if not pairs:
        return None
    params = {}
    for i, (name, value) in enumerate(pairs):
        column = table.column(name)
        assert column is not None
        if value is not None:
            params[f"_eq{i}"] = encode(column.kind, value)
    shape = tuple((n, v is None) for n, v in pairs)
    sa_table = catalog.sa_table(table)
    # Building the clause costs more than running the query, and it is the same
    # for every request of this shape: keep it in the catalog's clause cache.
    clause = catalog.clause(("eq", table.key, shape), lambda: sa.and_(*[
        sa_table.c[name].is_(None) if is_null else sa_table.c[name] == sa.bindparam(f"_eq{i}")
        for i, (name, is_null) in enumerate(shape)]))
    return Predicate(("eq", shape), clause, params)
