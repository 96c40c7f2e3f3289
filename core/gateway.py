"""The one way to reach table rows: every statement goes through here.

A :class:`TableGateway` is made per request for the caller's identity.  Before
it runs anything it asks every authorizer, ANDs in every row policy's
predicate and passes writes through every write preparer, so an endpoint
(core's or a plugin's) that uses the gateway cannot forget authorization or
tenant scoping.

SQL is built with SQLAlchemy Core, compiled once per request *shape* and
cached on the catalog; values are bound as parameters on the driver's own
connection.  Where the dialect can, the page is turned into JSON inside the
database and its bytes passed through.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from . import codec
from .catalog import Catalog, Compiled
from .dialect import DBConnection
from .errors import Forbidden, NotFound, ServiceUnavailable, ValidationFailed, invalid
from .protocols import Action, Identity, Predicate
from .runtime import Runtime
from .schema import Column, Table

Decoder = Callable[[Any], Any] | None
#: rows as dicts; an alias because ``TableGateway.list`` shadows ``list`` in annotations
RowDicts = list[dict[str, Any]]


@dataclass(frozen=True)
class Page:
    number: int
    size: int


@dataclass
class ListQuery:
    """What a list, filter or count request asks for, already validated."""

    fields: tuple[str, ...] = ()
    sort: tuple[tuple[str, bool, str | None], ...] = ()  # (column, descending, nulls)
    filters: list[Predicate] = field(default_factory=list)
    page: Page | None = None
    count: str = "exact"  # exact | estimated | none
    distinct: bool = False


@dataclass
class PageResult:
    body: bytes
    total: int | None


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
        #: (sql, params) of every list statement run, for the SQL preview
        self.statements: list[tuple[str, dict[str, Any]]] = []

    # -- policy -----------------------------------------------------------

    async def authorize(self, table: Table, action: Action) -> None:
        for authorizer in self.runtime.authorizers:
            await authorizer.authorize(self.identity, table, action)

    async def scope(self, table: Table, action: Action) -> list[Predicate]:
        """Authorize ``action`` and return the row policies' predicates for it."""
        await self.authorize(table, action)
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
        return values

    # -- reads ------------------------------------------------------------------

    def output_columns(self, table: Table, fields: Sequence[str] = ()) -> list[Column]:
        if not fields:
            return table.visible_columns
        return [table.column(name) for name in fields]  # type: ignore[misc]

    def _decoders(self, columns: Sequence[Column]) -> list[tuple[str, Decoder]]:
        return [(c.name, self.dialect.decoder(c)) for c in columns]

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

    def _order(self, table: Table, sa_table: sa.Table,
               sort: Sequence[tuple[str, bool, str | None]],
               within: Sequence[str] | None = None) -> list[Any]:
        order: list[Any] = []
        used = set()
        for name, descending, nulls in sort:
            order.extend(self.dialect.order_by(sa_table.c[name], descending, nulls))
            used.add(name)
        # Without a key, every orderable column stands in for one, so pages stay
        # stable (rows equal in all of them are indistinguishable anyway).
        tiebreak = table.primary_key or [c.name for c in table.visible_columns
                                         if c.kind != "json"]
        if within is not None:  # DISTINCT may only order by what it selects
            tiebreak = [name for name in tiebreak if name in within]
        order.extend(sa_table.c[name].asc() for name in tiebreak if name not in used)
        return order

    async def list(self, table: Table, query: ListQuery) -> PageResult:
        predicates = await self.scope(table, "read") + query.filters
        columns = self.output_columns(table, query.fields)
        sa_table = self.catalog.sa_table(table)
        params = self._params(predicates)
        key: Hashable = ("list", table.key, query.fields, query.sort, query.distinct,
                         tuple(p.key for p in predicates), query.page is not None, query.count)

        def build() -> Compiled:
            where = self._where(sa_table, predicates)
            projection = [sa_table.c[c.name] for c in columns]
            within = [c.name for c in columns] if query.distinct else None
            stmt = sa.select(*projection).where(*where).order_by(
                *self._order(table, sa_table, query.sort, within))
            if query.distinct:
                stmt = stmt.distinct()
            if query.page is not None:
                stmt = stmt.limit(sa.bindparam("_limit", type_=sa.Integer)).offset(
                    sa.bindparam("_offset", type_=sa.Integer))
            count_stmt = None
            if query.count == "exact":
                inner = sa.select(*projection).where(*where)
                if query.distinct:
                    inner = inner.distinct()
                count_stmt = sa.select(sa.func.count()).select_from(inner.subquery())
                if not query.distinct:
                    count_stmt = sa.select(sa.func.count()).select_from(sa_table).where(*where)
            json_stmt = self.dialect.json_page(stmt, columns, count_stmt)
            if json_stmt is not None:
                sql, names = self.dialect.compile(json_stmt)
                return Compiled(sql, names, list(columns), extra=("json", None))
            sql, names = self.dialect.compile(stmt)
            count_sql = self.dialect.compile(count_stmt)[0] if count_stmt is not None else None
            return Compiled(sql, names, list(columns), extra=("rows", count_sql))

        compiled = self.catalog.compiled(key, build)
        if query.page is not None:
            params["_limit"] = query.page.size
            params["_offset"] = (query.page.number - 1) * query.page.size
        self.statements.append((compiled.sql, params))
        mode, count_sql = compiled.extra
        async with self.dialect.acquire() as conn:
            if mode == "json":
                row = await conn.fetch_one(compiled.sql, params)
                assert row is not None
                total, data = (row[0], row[1]) if len(row) == 2 else (None, row[0])
                body = data.encode() if isinstance(data, str) else bytes(data)
            else:
                rows = await conn.fetch_all(compiled.sql, params)
                body = codec.dumps(self.rows_to_dicts(compiled.columns, rows))
                total = None
                if count_sql is not None:
                    count_row = await conn.fetch_one(count_sql, params)
                    total = int(count_row[0]) if count_row else 0
            if query.count == "estimated":
                estimate_stmt: sa.Select[Any] = sa.select(sa.literal_column("1")).select_from(
                    sa_table).where(*self._where(sa_table, predicates))
                sql, _ = self.dialect.compile(estimate_stmt)
                total = await self.dialect.estimate_count(conn, sql, params, sa_table,
                                                          bool(predicates))
                if total is None:
                    exact = sa.select(sa.func.count()).select_from(sa_table).where(
                        *self._where(sa_table, predicates))
                    row = await conn.fetch_one(self.dialect.compile(exact)[0], params)
                    total = int(row[0]) if row else 0
        return PageResult(body, None if total is None else int(total))

    async def count(self, table: Table, filters: Sequence[Predicate] = ()) -> int:
        predicates = await self.scope(table, "read") + list(filters)
        sa_table = self.catalog.sa_table(table)
        key = ("count", table.key, tuple(p.key for p in predicates))

        def build() -> Compiled:
            stmt = sa.select(sa.func.count()).select_from(sa_table).where(
                *self._where(sa_table, predicates))
            return Compiled(*self.dialect.compile(stmt))

        compiled = self.catalog.compiled(key, build)
        async with self.dialect.acquire() as conn:
            row = await conn.fetch_one(compiled.sql, self._params(predicates))
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
        predicates = await self.scope(table, "read")
        predicates.append(self.key_predicate(table, key_values))
        columns = self.output_columns(table, tuple(fields))
        sa_table = self.catalog.sa_table(table)
        key = ("get", table.key, tuple(fields), tuple(p.key for p in predicates))

        def build() -> Compiled:
            stmt = sa.select(*[sa_table.c[c.name] for c in columns]).where(
                *self._where(sa_table, predicates))
            json_stmt = self.dialect.json_row(stmt, columns)
            if json_stmt is not None:
                return Compiled(*self.dialect.compile(json_stmt), list(columns), extra="json")
            return Compiled(*self.dialect.compile(stmt), list(columns), extra="rows")

        compiled = self.catalog.compiled(key, build)
        async with self.dialect.acquire() as conn:
            rows = await conn.fetch_all(compiled.sql, self._params(predicates))
        if not rows:
            raise NotFound(f"no row in {table.key!r} with that key")
        if compiled.extra == "json":
            data = rows[0][0]
            return data.encode() if isinstance(data, str) else bytes(data)
        return codec.dumps(self.rows_to_dicts(compiled.columns, rows)[0])

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
            async with self.dialect.acquire() as own:
                rows = await own.fetch_all(compiled.sql, params)
        return self.rows_to_dicts(compiled.columns, rows)

    # -- writes -------------------------------------------------------------------

    def check_values(self, table: Table, values: Mapping[str, Any], *, creating: bool,
                     path: str = "") -> dict[str, Any]:
        """Validate a client's row: known, writable columns with values of the right type."""
        if not isinstance(values, Mapping):
            raise ValidationFailed(f"{path or 'body'}: expected a JSON object of column values")
        checked: dict[str, Any] = {}
        errors = []
        for name, value in values.items():
            column = table.column(name)
            where = f"{path}.{name}" if path else name
            if column is None or column.secret:
                allowed = ", ".join(c.name for c in table.visible_columns if not c.generated)
                errors.append(invalid(where, f"unknown column (allowed: {allowed})"))
                continue
            if column.generated:
                errors.append(invalid(where, "generated column; it cannot be written"))
                continue
            try:
                checked[name] = codec.parse_value(column, value, where)
            except ValidationFailed as exc:
                errors.append(exc)
        if creating:
            for column in table.columns:
                if column.name not in values and column.required_on_create and not column.secret:
                    where = f"{path}.{column.name}" if path else column.name
                    errors.append(invalid(where, "required"))
        if errors:
            details = [d for e in errors for d in e.details]
            raise ValidationFailed(errors[0].message if len(errors) == 1 else
                                   f"{len(errors)} invalid values", details)
        return checked

    def _encoded(self, table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
        return {f"_v{i}": self.dialect.encode(table.existing_column(name).kind, value)
                for i, (name, value) in enumerate(values.items())}

    def _require_writable(self, table: Table, action: Action) -> None:
        if not table.updatable:
            raise Forbidden(f"{table.key!r} is read-only ({table.kind} without a way to write it)")

    async def insert(self, table: Table, values: dict[str, Any],
                     conn: DBConnection | None = None) -> dict[str, Any]:
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
        return await self.dialect.run_in_transaction(
            conn, lambda c: self._insert(table, values, compiled, params, c))

    async def _insert(self, table: Table, values: dict[str, Any], compiled: Compiled,
                      params: dict[str, Any], conn: DBConnection) -> dict[str, Any]:
        if self.dialect.supports_returning_insert:
            rows = await conn.fetch_all(compiled.sql, params)
            return self.rows_to_dicts(compiled.columns, rows)[0]
        result = await conn.execute(compiled.sql, params)
        if not table.primary_key:
            return {k: v for k, v in values.items()}
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
                return dict(values)
        # Read back under the write's own action, as RETURNING would: a caller
        # allowed to create a row sees it whether or not it may list the table.
        found = await self._select_by_key(table, key_values, (), conn, action="create")
        return found[0] if found else dict(values)

    async def update(self, table: Table, key_values: Sequence[Any], values: dict[str, Any],
                     conn: DBConnection | None = None) -> dict[str, Any]:
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

        return await self.dialect.run_in_transaction(conn, run)

    async def delete(self, table: Table, key_values: Sequence[Any],
                     conn: DBConnection | None = None) -> dict[str, Any]:
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

        return await self.dialect.run_in_transaction(conn, run)


def equality_filters(table: Table, sa_table: sa.Table, pairs: Sequence[tuple[str, Any]],
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
    # Building the clause costs more than running the query, and it is the same
    # for every request of this shape: keep it on the table (it dies with the catalog).
    clauses = sa_table.info.setdefault("swain.equality_clauses", {})
    clause = clauses.get(shape)
    if clause is None:
        if len(clauses) >= 1024:
            clauses.clear()
        clause = clauses[shape] = sa.and_(*[
            sa_table.c[name].is_(None) if is_null else sa_table.c[name] == sa.bindparam(f"_eq{i}")
            for i, (name, is_null) in enumerate(shape)])
    return Predicate(("eq", shape), clause, params)
