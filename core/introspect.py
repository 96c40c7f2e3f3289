"""Introspection: SQLAlchemy's inspector, through a dialect, into the schema model.

Runs synchronously inside ``AsyncConnection.run_sync`` on the dialect's own
async driver.  Type mapping is the dialect's (:meth:`Dialect.column_kind`,
whose default is :func:`kind_of` over SQLAlchemy's generic type classes),
then by the declared type name (for types SQLAlchemy does not know, such as
MariaDB's ``UUID`` or SQLite's free-form names), then by CHECK constraints
(MariaDB's JSON is ``LONGTEXT CHECK (json_valid(...))``, an SQLite "enum" is
a ``CHECK (x IN (...))`` list).  This module knows no particular database:
what it asks of one is :class:`IntrospectionRules`, which every dialect is.

Rules the API relies on:

* primary-key columns are never nullable;
* a view the database can update, over exactly one base table, takes that
  table's column facts (nullability, defaults, enum values...) and, when it
  shows every key column, its primary key;
* anything without a primary key (table or view) is read-only, since rows
  without an address can be listed and counted but not changed one by one.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import types as sat

from .config import Connection
from .schema import Column, ForeignKey, Schema, Table


class IntrospectionRules(Protocol):
    """What introspection asks of a dialect (every :class:`~swain.core.Dialect` is one)."""

    name: str
    server_version: str
    connection: Connection

    def column_kind(self, type_: sat.TypeEngine[Any]) -> str | None: ...

    def integer_bounds(self, type_: sat.TypeEngine[Any]) -> tuple[int, int] | None: ...

    def default_schema(self, sync_conn: Any) -> str | None: ...

    def declared_types(self, sync_conn: Any, schema: str | None, table: str) -> dict[str, str]: ...

    def check_constraints(self, sync_conn: Any, inspector: Any, schema: str | None,
                          table: str) -> list[dict[str, Any]]: ...

    def check_constraint_kinds(self, checks: list[dict[str, Any]]
                               ) -> dict[str, tuple[str, Any]]: ...

    def unique_constraints(self, sync_conn: Any, inspector: Any, schema: str | None,
                           table: str) -> list[dict[str, Any]]: ...

    def view_updatable(self, sync_conn: Any, schema: str | None, view: str) -> bool: ...

    def view_base_table(self, sync_conn: Any, schema: str | None, view: str) -> str | None: ...

    def finish_table(self, table: Table) -> None: ...

_NAME_KINDS: list[tuple[str, str]] = [
    (r"\bbool", "boolean"),
    (r"uuid|uniqueidentifier", "uuid"),
    (r"json", "json"),
    (r"timestamptz|timestamp\s*with\s*time\s*zone|datetimeoffset", "datetime_tz"),
    (r"datetime|timestamp", "datetime"),
    (r"^date$", "date"),
    (r"^time", "time"),
    (r"interval", "interval"),
    (r"int", "integer"),
    (r"decimal|numeric|money", "decimal"),
    (r"real|floa|doub", "number"),
    (r"blob|binary|bytea", "binary"),
    (r"char|text|clob|string|enum|inet|cidr|xml", "string"),
]


def kind_by_name(type_name: str) -> str | None:
    lowered = type_name.lower().strip()
    for pattern, kind in _NAME_KINDS:
        if re.search(pattern, lowered):
            return kind
    return None


def kind_of(type_: sat.TypeEngine[Any]) -> str | None:
    """The JSON-level kind for a generic SQLAlchemy type, or ``None`` when it cannot tell."""
    checks: list[tuple[type[Any], str]] = [
        (sat.Boolean, "boolean"),
        (sat.Enum, "string"),
        (sat.Integer, "integer"),
        (sat.Float, "number"),
        (sat.Numeric, "decimal"),
        (sat.Uuid, "uuid"),
        (sat.JSON, "json"),
        (sat.DateTime, "datetime"),
        (sat.Date, "date"),
        (sat.Time, "time"),
        (sat.Interval, "interval"),
        (sat.ARRAY, "array"),
        (sat._Binary, "binary"),
        (sat.String, "string"),
    ]
    for cls, kind in checks:
        if isinstance(type_, cls):
            if kind == "datetime" and getattr(type_, "timezone", False):
                return "datetime_tz"
            return kind
    return None


def bounds(bits: int, unsigned: bool) -> tuple[int, int]:
    """The range of a ``bits``-wide integer."""
    return (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def integer_bounds(type_: sat.TypeEngine[Any]) -> tuple[int, int] | None:
    """The values a generic integer column type holds, or ``None`` when it cannot tell."""
    unsigned = bool(getattr(type_, "unsigned", False))
    if isinstance(type_, sat.SmallInteger):
        return bounds(16, unsigned)
    if isinstance(type_, sat.BigInteger):
        return bounds(64, unsigned)
    if isinstance(type_, sat.Integer):
        return bounds(32, unsigned)
    return None


def _column(rules: IntrospectionRules, info: dict[str, Any], declared: str | None,
            implied: tuple[str, Any] | None, sa_dialect: Any) -> Column:
    type_ = info["type"]
    kind = None if isinstance(type_, sat.NullType) else rules.column_kind(type_)
    sql_type = declared or _type_name(type_, sa_dialect)
    if kind is None or (declared and kind in ("decimal", "string") and kind_by_name(declared)
                        not in (None, kind)):
        kind = kind_by_name(sql_type) or "string"
    enum_values: list[str] | None = list(type_.enums) if isinstance(type_, sat.Enum) else None
    if implied:
        implied_kind, values = implied
        if implied_kind == "json" and kind == "string":
            kind = "json"
        elif implied_kind == "enum" and kind == "string":
            enum_values = values
    column = Column(
        name=info["name"],
        sql_type=sql_type,
        kind=kind,
        nullable=bool(info.get("nullable", True)),
        default=None if info.get("default") is None else str(info["default"]),
        autoincrement=info.get("autoincrement") is True or "identity" in info,
        generated="computed" in info,
        comment=info.get("comment"),
        enum_values=enum_values,
    )
    # An enum's "length" is its longest label, not a limit the client must know.
    if isinstance(type_, sat.String) and type_.length and not isinstance(type_, sat.Enum):
        column.max_length = int(type_.length)
    if kind == "binary" and getattr(type_, "length", None):
        column.max_length = int(type_.length)  # bytes: VARBINARY(n), BINARY(n)
    if isinstance(type_, sat.Numeric) and kind == "decimal":
        column.precision, column.scale = type_.precision, type_.scale
    if kind == "integer":
        found = rules.integer_bounds(type_)
        if found is not None:
            column.minimum, column.maximum = found
    if isinstance(type_, sat.ARRAY):
        column.item_kind = rules.column_kind(type_.item_type) or "string"
        if column.item_kind == "integer":
            found = rules.integer_bounds(type_.item_type)
            if found is not None:
                column.minimum, column.maximum = found
        item_length = getattr(type_.item_type, "length", None)
        if column.item_kind == "string" and item_length:
            column.max_length = int(item_length)
    return column


def _type_name(type_: sat.TypeEngine[Any], sa_dialect: Any = None) -> str:
    """The type as the database spells it (``TIMESTAMP WITH TIME ZONE``, ``TEXT[]``, ``mood``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dialect in (sa_dialect, None):
            try:
                return str(type_.compile(dialect=dialect))
            except Exception:
                continue
    return type(type_).__name__.upper()


def introspect(sync_conn: sa.Connection, dialect: IntrospectionRules) -> Schema:
    inspector = sa.inspect(sync_conn)
    default_schema = dialect.default_schema(sync_conn)
    wanted: list[str | None] = [*dialect.connection.schemas] or [None]
    tables: dict[str, Table] = {}
    for schema_name in wanted:
        key_schema = None if schema_name in (None, default_schema) else schema_name
        names = [(n, "table") for n in inspector.get_table_names(schema=schema_name)]
        names += [(n, "view") for n in inspector.get_view_names(schema=schema_name)]
        for name, kind in names:
            table = _table(inspector, sync_conn, dialect, schema_name, key_schema, name, kind,
                           default_schema)
            tables[table.key] = table
    schema = Schema(dialect=dialect.name, server_version=dialect.server_version, tables=tables)
    for table in tables.values():
        table.foreign_keys = [fk for fk in table.foreign_keys if fk.target in tables]
    for table in tables.values():
        if table.kind == "view" and table.updatable:
            base_key = dialect.view_base_table(sync_conn, table.schema, table.name)
            base = tables.get(base_key) if base_key else None
            if base is not None and base.kind == "table":
                _adopt_base_table(table, base)
        if not table.primary_key:
            table.updatable = False
    schema.derive_relationships()
    return schema


_ADOPTED = ("nullable", "default", "autoincrement", "generated", "max_length", "precision",
            "scale", "enum_values", "minimum", "maximum", "item_kind")


def _adopt_base_table(view: Table, base: Table) -> None:
    """A simple updatable view speaks for its base table's columns and key."""
    for column in view.columns:
        source = base.column(column.name)
        if source is None or source.kind != column.kind:
            continue
        for attr in _ADOPTED:
            setattr(column, attr, getattr(source, attr))
    if base.primary_key and all(view.column(name) is not None for name in base.primary_key):
        view.primary_key = list(base.primary_key)
        for name in view.primary_key:
            view.existing_column(name).nullable = False


def _table(inspector: Any, sync_conn: sa.Connection, dialect: IntrospectionRules, schema_name: str | None,
           key_schema: str | None, name: str, kind: str, default_schema: str | None) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        raw_columns = inspector.get_columns(name, schema=schema_name)
        declared = dialect.declared_types(sync_conn, schema_name, name)
        checks = dialect.check_constraints(sync_conn, inspector, schema_name, name)
        implied = dialect.check_constraint_kinds(checks)
        columns = [_column(dialect, c, declared.get(c["name"]), implied.get(c["name"]),
                           sync_conn.dialect) for c in raw_columns]
        pk = inspector.get_pk_constraint(name, schema=schema_name) if kind == "table" else {}
        fks = inspector.get_foreign_keys(name, schema=schema_name) if kind == "table" else []
        uniques = (dialect.unique_constraints(sync_conn, inspector, schema_name, name)
                   if kind == "table" else [])
        indexes = inspector.get_indexes(name, schema=schema_name) if kind == "table" else []
        comment = None
        with contextlib.suppress(NotImplementedError):
            comment = inspector.get_table_comment(name, schema=schema_name).get("text")
    foreign_keys = []
    for fk in fks:
        target_schema = fk.get("referred_schema")
        if target_schema == default_schema:
            target_schema = None
        target = (f"{target_schema}.{fk['referred_table']}" if target_schema
                  else fk["referred_table"])
        foreign_keys.append(ForeignKey(fk.get("name"), list(fk["constrained_columns"]), target,
                                       list(fk["referred_columns"])))
    primary_key = list(pk.get("constrained_columns") or [])
    for column in columns:
        if column.name in primary_key:
            column.nullable = False
    updatable = kind == "table" or dialect.view_updatable(sync_conn, schema_name, name)
    table = Table(
        name=name,
        schema=key_schema,
        kind=kind,
        columns=columns,
        primary_key=primary_key,
        foreign_keys=foreign_keys,
        unique_constraints=[{"name": u.get("name"), "columns": list(u["column_names"])}
                            for u in uniques],
        indexes=[{"name": i.get("name"), "columns": [c for c in i["column_names"] if c],
                  "unique": bool(i.get("unique"))} for i in indexes],
        updatable=updatable,
        comment=comment,
    )
    dialect.finish_table(table)
    return table
