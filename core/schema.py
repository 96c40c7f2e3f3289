"""The schema model: what introspection found, in a form the API serves from.

It is plain data (dataclasses), saved as ``swain.schema.json`` by ``swain
schema sync`` and compared by ``swain schema diff``.  Relationship names are
derived here once so every part of the API agrees on them.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

#: JSON-level kinds of a column; codecs, filters and OpenAPI key off these.
KINDS = ("integer", "number", "decimal", "string", "boolean", "date", "datetime",
         "datetime_tz", "time", "uuid", "json", "binary", "array", "interval")


@dataclass
class Column:
    """One column as the API sees it.

    ``default`` is the database's default expression (SQL text), applied by
    the database when a create omits the column; ``generated`` columns are
    computed by the database and never written.  For an ``array`` column,
    ``item_kind``, ``max_length`` and ``minimum``/``maximum`` describe its
    elements.
    """

    name: str
    sql_type: str
    kind: str
    nullable: bool = True
    default: str | None = None
    autoincrement: bool = False
    generated: bool = False
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    enum_values: list[str] | None = None
    item_kind: str | None = None
    comment: str | None = None
    #: the integer range the column accepts (integer columns and integer arrays)
    minimum: int | None = None
    maximum: int | None = None
    #: set by plugins (e.g. the auth mapping): never read, written, filtered or sorted.
    secret: bool = False
    #: set by plugins on a secret column they prepare writes of (the user card's
    #: password): writes accept it as text (a :class:`~swain.core.protocols.WriteOnlyValue`
    #: the plugin's write preparer turns into what is stored); still never read,
    #: filtered or sorted.
    write_only: bool = False
    #: set by plugins whose write preparer fills the column on every insert
    #: (e.g. the tenant column): a create may omit it.
    stamped: bool = False

    @property
    def untyped(self) -> bool:
        """Declared without a type (SQLite: a view's computed column, or ``CREATE TABLE
        t (x)``): it holds whatever was stored, served as it is."""
        return self.sql_type.strip().upper() in ("", "NULL")

    @property
    def has_default(self) -> bool:
        return self.default is not None or self.autoincrement or self.generated

    @property
    def required_on_create(self) -> bool:
        return not self.nullable and not self.has_default and not self.stamped

    @property
    def writable_by_clients(self) -> bool:
        """Whether a client's row may set it: not secret unless write-only, not generated."""
        return (not self.secret or self.write_only) and not self.generated

    def fresh_key(self) -> Any:
        """A new value for this key column when the database does not fill it: a
        UUID for uuid and text keys, else ``None``."""
        if self.has_default:
            return None
        if self.kind == "uuid":
            return uuid.uuid4()
        if self.kind == "string":
            return uuid.uuid4().hex
        return None


@dataclass
class ForeignKey:
    name: str | None
    columns: list[str]
    target: str
    target_columns: list[str]


@dataclass
class Relationship:
    """A way from one table to another through a foreign key, in either direction."""

    name: str
    kind: str  # "many_to_one" (object) | "one_to_many" (array)
    target: str
    columns: list[str]
    target_columns: list[str]
    constraint: str | None = None


@dataclass
class Table:
    name: str
    columns: list[Column]
    schema: str | None = None
    kind: str = "table"  # table | view
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    unique_constraints: list[dict[str, Any]] = field(default_factory=list)
    indexes: list[dict[str, Any]] = field(default_factory=list)
    #: whether rows can be created, changed and deleted: a table or updatable
    #: view with a primary key (introspection clears it for keyless ones)
    updatable: bool = True
    comment: str | None = None
    relationships: list[Relationship] = field(default_factory=list)
    hidden: bool = False

    def __post_init__(self) -> None:
        self._by_name = {c.name: c for c in self.columns}
        self._visible: list[Column] | None = None

    def freeze(self) -> None:
        """The schema is prepared (plugins marked their secret columns): what
        depends on it is worked out once, not on every request."""
        self._visible = [c for c in self.columns if not c.secret]

    @property
    def key(self) -> str:
        """The name the API uses: ``name``, or ``schema.name`` outside the default schema."""
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @property
    def writable(self) -> bool:
        return self.updatable and (self.kind == "table" or self.kind == "view")

    @property
    def has_key(self) -> bool:
        return bool(self.primary_key)

    @property
    def model_name(self) -> str:
        """PascalCase for OpenAPI: ``order items`` → ``OrderItems``, ``userRoles`` → ``UserRoles``."""
        return pascal_case(self.key)

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    def existing_column(self, name: str) -> Column:
        """The column ``name``, which the caller already knows exists."""
        return self._by_name[name]

    @property
    def visible_columns(self) -> list[Column]:
        """The columns a client may see (not secret); shared once frozen, so
        callers never change the list."""
        if self._visible is not None:
            return self._visible
        return [c for c in self.columns if not c.secret]

    def relationship(self, name: str) -> Relationship | None:
        lowered = name.lower()
        for rel in self.relationships:
            if rel.name.lower() == lowered:
                return rel
        return None


def pascal_case(name: str) -> str:
    parts = re.split(r"[^0-9A-Za-z]+", name)
    words: list[str] = []
    for part in parts:
        if part:
            words.append(part[0].upper() + part[1:])
    result = "".join(words) or "Table"
    return result if not result[0].isdigit() else f"T{result}"


@dataclass
class Schema:
    dialect: str
    server_version: str
    tables: dict[str, Table]

    def table(self, key: str) -> Table | None:
        table = self.tables.get(key)
        return None if table is None or table.hidden else table

    @property
    def visible_tables(self) -> list[Table]:
        return [t for t in self.tables.values() if not t.hidden]

    # -- relationships -------------------------------------------------

    def derive_relationships(self) -> None:
        """Name every foreign key in both directions.

        Forward (many-to-one) relationships take the target table's name, or
        the key column when two keys of one table point at the same target
        (or at the table itself).  Reverse (one-to-many) ones take the source
        table's name, or ``{source}_{column}`` in the same ambiguous cases.
        """
        for table in self.tables.values():
            table.relationships = []
        for table in self.tables.values():
            targets = Counter(fk.target for fk in table.foreign_keys)
            for fk in table.foreign_keys:
                target = self.tables.get(fk.target)
                if target is None:
                    continue
                ambiguous = targets[fk.target] > 1 or fk.target == table.key
                column_name = "_".join(fk.columns)
                forward = column_name if ambiguous else target.name
                reverse = f"{table.name}_{column_name}" if ambiguous else table.name
                _add(table, Relationship(forward, "many_to_one", target.key, fk.columns,
                                         fk.target_columns, fk.name))
                _add(target, Relationship(reverse, "one_to_many", table.key, fk.target_columns,
                                          fk.columns, fk.name))

    # -- persistence -----------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "server_version": self.server_version,
            "tables": [_table_json(t) for t in self.tables.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schema:
        tables: dict[str, Table] = {}
        for raw in data["tables"]:
            raw = dict(raw)
            raw["columns"] = [Column(**c) for c in raw["columns"]]
            raw["foreign_keys"] = [ForeignKey(**f) for f in raw["foreign_keys"]]
            raw.pop("relationships", None)
            table = Table(**raw)
            tables[table.key] = table
        schema = cls(data["dialect"], data["server_version"], tables)
        schema.derive_relationships()
        return schema


def _add(table: Table, rel: Relationship) -> None:
    taken = {r.name.lower() for r in table.relationships}
    name, n = rel.name, 2
    while name.lower() in taken:
        name, n = f"{rel.name}_{n}", n + 1
    rel.name = name
    table.relationships.append(rel)


def _table_json(table: Table) -> dict[str, Any]:
    data = asdict(table)
    data.pop("hidden", None)
    for column in data["columns"]:
        column.pop("secret", None)
        column.pop("write_only", None)
    return data


def diff(old: Schema, new: Schema) -> list[str]:
    """Human-readable drift between two snapshots (``+`` added, ``-`` removed, ``~`` changed)."""
    lines: list[str] = []
    for key in sorted(set(old.tables) | set(new.tables)):
        a, b = old.tables.get(key), new.tables.get(key)
        if a is None:
            lines.append(f"+ table {key}")
            continue
        if b is None:
            lines.append(f"- table {key}")
            continue
        cols_a = {c.name: c for c in a.columns}
        cols_b = {c.name: c for c in b.columns}
        for name in sorted(set(cols_a) | set(cols_b)):
            ca, cb = cols_a.get(name), cols_b.get(name)
            if ca is None:
                lines.append(f"+ column {key}.{name} {cb.sql_type if cb else ''}")
            elif cb is None:
                lines.append(f"- column {key}.{name}")
            else:
                changes = [
                    f"{attr}: {getattr(ca, attr)!r} -> {getattr(cb, attr)!r}"
                    for attr in ("sql_type", "nullable", "default", "enum_values")
                    if getattr(ca, attr) != getattr(cb, attr)
                ]
                if changes:
                    lines.append(f"~ column {key}.{name} ({'; '.join(changes)})")
        if a.primary_key != b.primary_key:
            lines.append(f"~ table {key} primary key {a.primary_key} -> {b.primary_key}")
        fks_a = {(tuple(f.columns), f.target, tuple(f.target_columns)) for f in a.foreign_keys}
        fks_b = {(tuple(f.columns), f.target, tuple(f.target_columns)) for f in b.foreign_keys}
        for cols, target, tcols in sorted(fks_b - fks_a):
            lines.append(f"+ foreign key {key}({', '.join(cols)}) -> {target}({', '.join(tcols)})")
        for cols, target, tcols in sorted(fks_a - fks_b):
            lines.append(f"- foreign key {key}({', '.join(cols)}) -> {target}({', '.join(tcols)})")
    return lines
