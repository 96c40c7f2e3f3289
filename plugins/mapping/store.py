"""Reads and writes on the mapped tables, whatever they are called: the one
place that resolves a card's table and columns and encodes values for them,
for the auth plugins and RBAC alike.

Statements are SQLAlchemy Core over the catalog's tables, compiled once per
shape (and cached on the catalog, so a schema reload starts afresh), with
values bound as parameters through the dialect's encoder.  Conditions and
values are given by *role* (``email``, ``userid``…); the card translates them
into the operator's column names.  A feature with statements of its own (RBAC's
joins) builds them from :meth:`Store.table` and :meth:`Store.sa_column` and runs
them with :meth:`Store.rows` / :meth:`Store.execute`.

These tables are the auth layer's and RBAC's own bookkeeping, so the
statements bypass the table gateway's authorizers and row policies on purpose.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from swain.core import ConfigError, DBConnection, Runtime, ServiceUnavailable, Table
from swain.core.catalog import Catalog, Compiled

from .cards import MappedCard

#: condition operators: equality, case-insensitive equality, IS NULL
Condition = tuple[str, str, Any]  # (role, "eq" | "ieq" | "null", value)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Store:
    runtime: Runtime
    cards: Mapping[str, MappedCard]

    # -- plumbing ------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        catalog = self.runtime.catalog
        if catalog is None:
            raise ServiceUnavailable("the schema is not loaded yet; the database may be "
                                     "unreachable")
        return catalog

    def card(self, name: str) -> MappedCard:
        return self.cards[name]

    def has(self, name: str) -> bool:
        return name in self.cards

    def table(self, name: str) -> tuple[Table, sa.Table]:
        card = self.cards[name]
        catalog = self.catalog
        table = catalog.schema.tables.get(card.table)
        if table is None:
            raise ConfigError(f"mapping.{name}.table: table {card.table!r} not in schema")
        return table, catalog.sa_table(table)

    def column(self, name: str, role: str) -> Any:
        table, _ = self.table(name)
        column = table.column(self.cards[name].column(role))
        assert column is not None
        return column

    def sa_column(self, name: str, role: str) -> sa.Column[Any]:
        """The SQLAlchemy column playing ``role`` on card ``name``, for a feature's
        own statements."""
        _, sa_table = self.table(name)
        return sa_table.c[self.cards[name].column(role)]

    def encode(self, name: str, role: str, value: Any) -> Any:
        """``value`` for the column playing ``role``, as the driver wants it.  Text
        for an integer or UUID column is converted (a ``ValueError`` if it is not
        one), so an id typed on a command line finds its row."""
        column = self.column(name, role)
        if isinstance(value, dt.datetime):
            value = self._time_value(column.kind, value)
        elif column.kind == "integer" and isinstance(value, bool | str):
            value = int(value)
        elif column.kind == "uuid" and isinstance(value, str):
            value = uuid.UUID(value)
        return self.runtime.dialect.encode(column.kind, value)

    @staticmethod
    def _time_value(kind: str, value: dt.datetime) -> Any:
        value = value.astimezone(dt.UTC)
        if kind == "datetime_tz":
            return value
        if kind == "integer":
            return int(value.timestamp())
        if kind == "string":
            return value.isoformat()
        return value.replace(tzinfo=None)  # naive columns hold UTC

    def decode_time(self, name: str, role: str, value: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            text = value.replace(" ", "T", 1)
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            value = dt.datetime.fromisoformat(text)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return None

    def _run_key(self, *parts: Any) -> tuple[Any, ...]:
        return ("mapping", *parts)

    def _where(self, name: str, sa_table: sa.Table, conditions: Sequence[Condition]) -> list[Any]:
        card = self.cards[name]
        clauses: list[Any] = []
        for i, (role, op, _) in enumerate(conditions):
            column = sa_table.c[card.column(role)]
            if op == "null":
                clauses.append(column.is_(None))
            elif op == "ieq":
                clauses.append(sa.func.lower(column) == sa.bindparam(f"w{i}"))
            else:
                clauses.append(column == sa.bindparam(f"w{i}"))
        return clauses

    def _params(self, name: str, conditions: Sequence[Condition]) -> dict[str, Any]:
        params = {}
        for i, (role, op, value) in enumerate(conditions):
            if op == "ieq":
                params[f"w{i}"] = str(value).lower()
            elif op != "null":
                params[f"w{i}"] = self.encode(name, role, value)
        return params

    @staticmethod
    def _shape(conditions: Sequence[Condition]) -> tuple[tuple[str, str], ...]:
        return tuple((role, op) for role, op, _ in conditions)

    # -- statements ---------------------------------------------------------------

    def compiled(self, key: Hashable, build: Callable[[], Any]) -> Compiled:
        """``build()``'s statement compiled once per ``key`` (cached on the catalog)."""
        return self.catalog.compiled(self._run_key(key),
                                     lambda: Compiled(*self.runtime.dialect.compile(build())))

    async def rows(self, key: Hashable, build: Callable[[], Any], params: Mapping[str, Any],
                   conn: DBConnection | None = None) -> list[Sequence[Any]]:
        """The rows of a feature's own statement (see :meth:`compiled`)."""
        sql = self.compiled(key, build).sql
        if conn is not None:
            return await conn.fetch_all(sql, params)
        own: DBConnection
        async with self.runtime.dialect.acquire() as own:
            rows: list[Sequence[Any]] = await own.fetch_all(sql, params)
        return rows

    async def execute(self, key: Hashable, build: Callable[[], Any], params: Mapping[str, Any],
                      conn: DBConnection | None = None) -> int:
        """Run a feature's own write; the number of rows it changed."""
        sql = self.compiled(key, build).sql
        if conn is not None:
            return int((await conn.execute(sql, params)).rowcount)
        async with self.runtime.dialect.acquire() as own:
            return int((await own.execute(sql, params)).rowcount)

    async def _new_id(self, name: str) -> Any:
        """A key for a new row when the database does not fill it: a UUID for uuid
        and text keys, else the next integer (``None``: the database assigns one)."""
        column = self.column(name, "id")
        fresh = column.fresh_key()
        if fresh is not None or column.has_default or column.kind != "integer":
            return fresh
        rows = await self.rows(("max_id", name), lambda: sa.select(
            sa.func.max(self.sa_column(name, "id"))), {})
        return int(rows[0][0] or 0) + 1

    async def fetch(self, name: str, conditions: Sequence[Condition],
                    roles: Sequence[str] | None = None, *, columns: Sequence[str] = (),
                    conn: DBConnection | None = None, limit: int | None = None,
                    lock: bool = False) -> list[dict[str, Any]]:
        """Rows matching all conditions, keyed by role (and by column name for
        ``columns``, extra columns of the table such as a user's visible ones)."""
        card = self.cards[name]
        table, sa_table = self.table(name)
        wanted = [r for r in (roles if roles is not None else card.columns) if card.has(r)]
        selected = [(f"role:{r}", card.column(r)) for r in wanted] + \
            [(f"col:{c}", c) for c in columns]
        key = self._run_key("fetch", name, tuple(selected), self._shape(conditions), limit, lock)

        def build() -> Compiled:
            stmt = sa.select(*[sa_table.c[c] for _, c in selected]).where(
                *self._where(name, sa_table, conditions))
            if limit is not None:
                stmt = stmt.limit(sa.bindparam("_limit", type_=sa.Integer)).offset(
                    sa.bindparam("_offset", type_=sa.Integer))
            if lock:
                stmt = stmt.with_for_update()
            return Compiled(*self.runtime.dialect.compile(stmt))

        compiled = self.catalog.compiled(key, build)
        params = self._params(name, conditions)
        if limit is not None:
            params["_limit"], params["_offset"] = limit, 0
        if conn is None:
            async with self.runtime.dialect.acquire() as own:
                rows = await own.fetch_all(compiled.sql, params)
        else:
            rows = await conn.fetch_all(compiled.sql, params)
        decoders = [self.runtime.dialect.decoder(table.existing_column(c)) for _, c in selected]
        out = []
        for row in rows:
            item: dict[str, Any] = {}
            for (label, _), decode, value in zip(selected, decoders, row, strict=True):
                kind, _, label_name = label.partition(":")
                item_value = value if decode is None or value is None else decode(value)
                if kind == "role":
                    item[label_name] = item_value
                else:
                    item.setdefault("_columns", {})[label_name] = item_value
            out.append(item)
        return out

    async def fetch_one(self, name: str, conditions: Sequence[Condition],
                        roles: Sequence[str] | None = None, **kwargs: Any) -> dict[str, Any] | None:
        rows = await self.fetch(name, conditions, roles, limit=2, **kwargs)
        return rows[0] if rows else None

    async def insert(self, name: str, values: Mapping[str, Any], *,
                     extra: Mapping[str, Any] | None = None,
                     conn: DBConnection | None = None) -> Any:
        """Insert a row (``values`` by role, ``extra`` by column name); return its id."""
        card = self.cards[name]
        table, sa_table = self.table(name)
        values = dict(values)
        if "id" not in values and card.has("id"):
            generated = await self._new_id(name)
            if generated is not None:
                values["id"] = generated
        by_column = {card.column(role): self.encode(name, role, v) for role, v in values.items()}
        for column_name, value in (extra or {}).items():
            column = table.column(column_name)
            assert column is not None
            by_column[column_name] = self.runtime.dialect.encode(column.kind, value)
        names = tuple(by_column)
        returning = self.runtime.dialect.supports_returning_insert and "id" not in values \
            and card.has("id")
        key = self._run_key("insert", name, names, returning)
        id_column = card.columns.get("id", "")

        def build() -> Compiled:
            stmt = sa.insert(sa_table).values({n: sa.bindparam(f"v{i}")
                                               for i, n in enumerate(names)})
            if returning:
                stmt = stmt.returning(sa_table.c[id_column])
            return Compiled(*self.runtime.dialect.compile(stmt))

        compiled = self.catalog.compiled(key, build)
        params = {f"v{i}": by_column[n] for i, n in enumerate(names)}

        async def run(c: DBConnection) -> Any:
            if returning:
                rows = await c.fetch_all(compiled.sql, params)
                decode = self.runtime.dialect.decoder(table.existing_column(id_column))
                value = rows[0][0]
                return value if decode is None or value is None else decode(value)
            result = await c.execute(compiled.sql, params)
            return values.get("id", result.lastrowid)

        if conn is not None:
            return await run(conn)
        async with self.runtime.dialect.acquire() as own:
            return await run(own)

    async def update(self, name: str, conditions: Sequence[Condition], values: Mapping[str, Any],
                     *, conn: DBConnection | None = None) -> int:
        """Set ``values`` (by role) on matching rows; the number of rows changed."""
        card = self.cards[name]
        _, sa_table = self.table(name)
        roles = tuple(values)
        params = self._params(name, conditions)
        params.update({f"v{i}": self.encode(name, r, values[r]) for i, r in enumerate(roles)})
        return await self.execute(
            ("update", name, roles, self._shape(conditions)),
            lambda: sa.update(sa_table).where(*self._where(name, sa_table, conditions)).values(
                {card.column(r): sa.bindparam(f"v{i}") for i, r in enumerate(roles)}),
            params, conn)

    async def delete(self, name: str, conditions: Sequence[Condition], *,
                     conn: DBConnection | None = None) -> int:
        _, sa_table = self.table(name)
        return await self.execute(
            ("delete", name, self._shape(conditions)),
            lambda: sa.delete(sa_table).where(*self._where(name, sa_table, conditions)),
            self._params(name, conditions), conn)
