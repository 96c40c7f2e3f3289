"""A loaded schema with everything derived from it for serving requests.

A catalog is immutable once built; a reload builds a new one and swaps it in
atomically, so requests in flight finish on the catalog they started with.
Compiled SQL is cached here, keyed by the request's shape, and dies with the
catalog.  The caches are bounded in (estimated) bytes and drop the least
recently used shapes first, so no stream of distinct shapes can grow a
worker's memory without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler

from .schema import Schema, Table

_SA_TYPES: dict[str, Callable[[], Any]] = {
    "integer": sa.BigInteger, "number": sa.Float, "decimal": sa.Numeric, "string": sa.String,
    "boolean": sa.Boolean, "date": sa.Date, "datetime": sa.DateTime,
    "datetime_tz": lambda: sa.DateTime(timezone=True), "time": sa.Time, "uuid": sa.Uuid,
    "json": sa.JSON, "binary": sa.LargeBinary, "interval": sa.Interval,
}

#: Paths the API itself owns; a table with one of these names is only at /tables/{name}.
RESERVED_NAMES = frozenset({"auth", "swagger", "openapi.json", "openapi.yaml", "tables", "_swain",
                            "health", "ready", "metrics", ".well-known"})

#: default budget of each cache of a catalog (compiled statements, clauses), in bytes
CACHE_BYTES = 16 * 1024 * 1024
#: rough bytes an SQLAlchemy clause element costs (objects, dicts, annotations)
_ELEMENT_BYTES = 400

T = TypeVar("T")


@dataclass
class Compiled:
    """SQL compiled once for a request shape; ``columns`` are the output columns.

    A statement with value lists of open length (``in`` filters) keeps its
    compiler as ``expander``: the SQL then has one placeholder per list, and
    :meth:`render` writes one parameter per value for each execution, so a
    list's length never makes a new shape.
    """

    sql: str
    params: list[str]
    columns: list[Any] = field(default_factory=list)
    extra: Any = None
    expander: SQLCompiler | None = None

    def render(self, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The SQL and parameters to run for ``params``."""
        if self.expander is None:
            return self.sql, dict(params)
        state = self.expander.construct_expanded_state(dict(params), escape_names=False)
        return state.statement, dict(state.parameters)

    @property
    def weight(self) -> int:
        """Estimated bytes held by this entry."""
        size = 256 + 2 * len(self.sql) + 80 * len(self.params)
        if self.expander is not None:  # the compiler keeps its statement tree
            size += 4 * len(self.sql)
        return size


class BoundedCache(Generic[T]):
    """Least-recently-used entries within a budget of estimated bytes."""

    def __init__(self, budget: int, weigh: Callable[[T], int]) -> None:
        self.budget = budget
        self.weigh = weigh
        self.used = 0
        self._entries: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``'s value for ``key``, built on first use."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found[0]
        value = build()
        weight = self.weigh(value)
        if weight > self.budget:
            return value  # larger than the whole cache: used once, never kept
        self._entries[key] = (value, weight)
        self.used += weight
        while self.used > self.budget:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.used -= dropped
        return value


def clause_weight(clause: Any) -> int:
    """Estimated bytes of a clause: its elements, counted once when it is built."""
    return _ELEMENT_BYTES * sum(1 for _ in visitors.iterate(clause))


def _composed_weight(entry: Any) -> int:
    if entry is None:
        return 64
    return 256 + sum(clause_weight(expression) for _, expression in entry[1])


class Catalog:
    def __init__(self, schema: Schema, cache_bytes: int = CACHE_BYTES) -> None:
        self.schema = schema
        self.metadata = sa.MetaData()
        self.sa_tables: dict[str, sa.Table] = {}
        for table in schema.tables.values():
            table.freeze()
            self.sa_tables[table.key] = self._sa_table(table)
        self._compiled: BoundedCache[Compiled] = BoundedCache(cache_bytes, lambda c: c.weight)
        self._clauses: BoundedCache[Any] = BoundedCache(cache_bytes, clause_weight)
        self._composed: BoundedCache[Any] = BoundedCache(cache_bytes, _composed_weight)
        #: per table, what a plain read by key needs (one entry per table at most)
        self._by_key: dict[str, Any] = {}

    def _sa_table(self, table: Table) -> sa.Table:
        columns = []
        for column in table.columns:
            if column.kind == "array":
                type_: Any = sa.ARRAY(_SA_TYPES.get(column.item_kind or "string", sa.String)())
            elif column.kind == "string" and column.enum_values:
                # An Enum binds without a ::VARCHAR cast, which PostgreSQL
                # would refuse for a column of an enum type.
                type_ = sa.Enum(*column.enum_values, name="swain_enum", create_type=False,
                                validate_strings=False)
            else:
                type_ = _SA_TYPES.get(column.kind, sa.String)()
            columns.append(sa.Column(column.name, type_, key=column.name,
                                     primary_key=column.name in table.primary_key))
        return sa.Table(table.name, self.metadata, *columns, schema=table.schema)

    def table(self, key: str) -> Table | None:
        return self.schema.table(key)

    def sa_table(self, table: Table) -> sa.Table:
        return self.sa_tables[table.key]

    def key_clause(self, table: Table) -> Any:
        """``pk = :_pk0 [AND …]`` for the table's primary key: the same on every
        by-key request."""
        sa_table = self.sa_tables[table.key]
        return self.clause(("key", table.key), lambda: sa.and_(
            *[sa_table.c[name] == sa.bindparam(f"_pk{i}")
              for i, name in enumerate(table.primary_key)]))

    def clause(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """A clause built once per shape: building clauses costs more than the query."""
        return self._clauses.get(key, build)

    def compiled(self, key: Hashable, build: Callable[[], Compiled]) -> Compiled:
        """SQL compiled once per request shape."""
        return self._compiled.get(key, build)

    def by_key(self, table: Table, build: Callable[[], T]) -> T:
        """What reading one row of ``table`` by its key, with no field list or scope,
        needs (its statement and parameters), built on first use."""
        found = self._by_key.get(table.key)
        if found is None:
            found = self._by_key[table.key] = build()
        return found

    def composed(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """JSON members of a page built once per shape (:mod:`swain.core.composed`):
        ``(parent, [(name, expression)], shapes)``, or ``None`` for a shape the
        dialect cannot compose."""
        return self._composed.get(key, build)

    @property
    def cache_bytes(self) -> int:
        """Estimated bytes held by the caches (compiled statements, clauses, members)."""
        return self._compiled.used + self._clauses.used + self._composed.used

    def reserved_collisions(self) -> list[str]:
        return sorted(t.key for t in self.schema.visible_tables if t.key.lower() in RESERVED_NAMES)

