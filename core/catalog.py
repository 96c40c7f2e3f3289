"""A loaded schema with everything derived from it for serving requests.

A catalog is immutable once built; a reload builds a new one and swaps it in
atomically, so requests in flight finish on the catalog they started with.
Compiled SQL is cached here, keyed by the request's shape, and dies with the
catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

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

_CACHE_LIMIT = 4096

T = TypeVar("T")


@dataclass
class Compiled:
    """SQL compiled once for a request shape; ``columns`` are the output columns."""

    sql: str
    params: list[str]
    columns: list[Any] = field(default_factory=list)
    extra: Any = None


class Catalog:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.metadata = sa.MetaData()
        self.sa_tables: dict[str, sa.Table] = {}
        for table in schema.tables.values():
            self.sa_tables[table.key] = self._sa_table(table)
        self._compiled: dict[Hashable, Compiled] = {}
        self._clauses: dict[Hashable, Any] = {}

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
        return _remembered(self._clauses, key, build)

    def compiled(self, key: Hashable, build: Callable[[], Compiled]) -> Compiled:
        """SQL compiled once per request shape."""
        return _remembered(self._compiled, key, build)

    def reserved_collisions(self) -> list[str]:
        return sorted(t.key for t in self.schema.visible_tables if t.key.lower() in RESERVED_NAMES)


def _remembered(cache: dict[Hashable, T], key: Hashable, build: Callable[[], T]) -> T:
    """``cache[key]``, built on first use; the cache is emptied when it is full."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        found = cache[key] = build()
    return found
