"""Related rows for a page: ``include`` embedding and per-parent aggregations.

Relationships come from :attr:`Table.relationships` (both directions of every
foreign key).  Where the database composes them as JSON in the page's own
statement (:mod:`swain.core.composed`) this module only checks the payload;
elsewhere related rows are fetched one query per relationship and level
(per :data:`KEYS_PER_QUERY` parents), batched by the parents' key values (never
one query per parent), through the table gateway, so the related table's
authorization and row policies apply.
``filterParent`` filtering itself is an EXISTS inside the parent's WHERE
(:meth:`FilterCompiler.exists`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa

from . import codec
from .errors import invalid
from .filters import (
    AggregationSpec,
    FilterCompiler,
    Limits,
    RelationFilter,
    aggregate_expression,
    parse_aggregations,
)
from .gateway import AggregateQuery, ListQuery, TableGateway
from .protocols import Predicate
from .schema import Column, Relationship, Table


def needed_columns(table: Table, relations: Sequence[RelationFilter]) -> list[str]:
    """Columns a row of ``table`` must carry so its relations can be matched."""
    names: list[str] = []
    for rel in relations:
        names.extend(rel.relationship.columns)
    return list(dict.fromkeys(names))


def hidden_columns(fields: Sequence[str], selected: Sequence[str],
                   relations: Sequence[RelationFilter]) -> list[str]:
    """Columns selected only to match related rows, to drop from the answer; not one
    an included relationship took the name of (one named after its key column)."""
    included = {rel.relationship.name for rel in relations if rel.include}
    return [name for name in selected if name not in fields and name not in included]


def _key(row: dict[str, Any], names: Sequence[str]) -> tuple[Any, ...] | None:
    if len(names) == 1:
        value = row.get(names[0])
        return None if value is None else (value,)
    values = tuple(row.get(name) for name in names)
    return None if any(v is None for v in values) else values


#: parent keys per related-rows query: far below every backend's parameter limit
KEYS_PER_QUERY = 1000


def _chunks(keys: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    return [keys[i:i + KEYS_PER_QUERY] for i in range(0, len(keys), KEYS_PER_QUERY)]


def _padded(keys: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Pad to a power of two by repeating the last key, so few SQL shapes get cached."""
    size = 1
    while size < len(keys):
        size *= 2
    return keys + [keys[-1]] * (size - len(keys))


def keys_predicate(gw: TableGateway, table: Table, columns: Sequence[str],
                   keys: list[tuple[Any, ...]], prefix: str) -> Predicate:
    """``columns IN keys`` with one named parameter per value."""
    specs = [table.existing_column(name) for name in columns]
    padded = _padded(keys)
    encode = gw.dialect.encode
    params = {f"{prefix}{i}_{j}": encode(spec.kind, codec.parse_value(spec, value, spec.name))
              for i, key in enumerate(padded)
              for j, (spec, value) in enumerate(zip(specs, key, strict=True))}
    # the prefix names the parameters, so it is part of the shape
    shape = ("keys", table.key, tuple(columns), len(padded), prefix)

    def build() -> Any:
        source = gw.catalog.sa_table(table)
        binds: list[list[Any]] = [[sa.bindparam(f"{prefix}{i}_{j}") for j in range(len(columns))]
                 for i in range(len(padded))]
        if len(columns) == 1:
            return source.c[columns[0]].in_([b[0] for b in binds])
        return sa.or_(*[sa.and_(*[source.c[c] == b for c, b in zip(columns, row, strict=True)])
                        for row in binds])

    return Predicate(shape, gw.catalog.clause(shape, build), params)


class Embedder:
    """Fills ``include``d relations and relationship aggregations into rows."""

    def __init__(self, gw: TableGateway) -> None:
        self.gw = gw
        self._level = 0

    async def authorize(self, relations: Sequence[RelationFilter]) -> None:
        """Authorize ``read`` on every table the relationships reach, before any row
        is read: a page with no rows is refused as one with rows would be."""
        for node in relations:
            await self.gw.authorize(node.target, "read")
            await self.authorize(node.nested)

    async def embed(self, rows: list[dict[str, Any]],
                    relations: Sequence[RelationFilter]) -> None:
        for rel in relations:
            await self.one(rows, rel)

    async def one(self, rows: list[dict[str, Any]], node: RelationFilter) -> None:
        rel = node.relationship
        # Keys are read before anything is embedded: an include named after its key
        # column (a self-reference's "parent_id") replaces the value in the row.
        row_keys = [_key(row, rel.columns) for row in rows]
        keys = list(dict.fromkeys(k for k in row_keys if k is not None))
        if node.aggregations is not None:
            await self.aggregate(rows, row_keys, node, keys)
        if not (node.include or node.nested):
            return
        related: list[dict[str, Any]] = []
        if keys:
            for chunk in _chunks(keys):
                related.extend(await self.fetch(node, chunk))
        by_key: dict[Hashable, list[dict[str, Any]]] = {}
        for row in related:
            found = _key(row, rel.target_columns)
            if found is not None:
                by_key.setdefault(found, []).append(row)
        if node.nested:
            await self.embed(related, node.nested)
        if not node.include:
            return
        hidden = self._hidden(node)
        for row in related:
            for name in hidden:
                row.pop(name, None)
        for row, key in zip(rows, row_keys, strict=True):
            matches = by_key.get(key or (), [])
            if rel.kind == "many_to_one":
                row[rel.name] = matches[0] if matches else None
            else:
                row[rel.name] = matches

    def _fields(self, node: RelationFilter) -> tuple[str, ...]:
        if not node.fields:
            return ()
        extra = [*node.relationship.target_columns, *needed_columns(node.target, node.nested)]
        return tuple(dict.fromkeys([*node.fields, *extra]))

    def _hidden(self, node: RelationFilter) -> list[str]:
        if not node.fields:
            return []
        return hidden_columns(node.fields, self._fields(node), node.nested)

    async def fetch(self, node: RelationFilter,
                    keys: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        self._level += 1
        compiler = FilterCompiler(self.gw, prefix=f"_i{self._level}_")
        filters = [keys_predicate(self.gw, node.target, node.relationship.target_columns, keys,
                                  f"_k{self._level}_")]
        predicate = await compiler.predicate(node.target, node.where)
        if predicate is not None:
            filters.append(predicate)
        sort = tuple((t.field, t.descending, t.nulls) for t in node.sort)
        result = await self.gw.list(node.target, ListQuery(
            fields=self._fields(node), sort=sort, filters=filters, page=None, count="none"))
        loaded: list[dict[str, Any]] = orjson.loads(result.body)
        return loaded

    async def aggregate(self, rows: list[dict[str, Any]], row_keys: list[Any],
                        node: RelationFilter, keys: list[tuple[Any, ...]]) -> None:
        spec: AggregationSpec = node.aggregations
        found: dict[Hashable, Any] = {}
        if keys:
            for chunk in _chunks(keys):
                found.update(await per_parent(self.gw, node, spec, chunk, self._level))
        if grouped_per_parent(node):
            for row, key in zip(rows, row_keys, strict=True):
                row.setdefault("aggregations", {})[node.relationship.name] = \
                    found.get(key or (), [])
            return
        empty = empty_aggregates(spec)
        for row, key in zip(rows, row_keys, strict=True):
            row.setdefault("aggregations", {}).update(found.get(key or (), empty))


def empty_aggregates(spec: AggregationSpec) -> dict[str, Any]:
    """A parent's aggregates when it has no related rows: counts 0, the rest null."""
    return {a.alias: (0 if a.function in ("COUNT", "COUNT_DISTINCT") else None)
            for a in spec.functions}


def grouped_per_parent(node: RelationFilter) -> bool:
    """Whether a relationship's aggregations give each parent a list of groups: they are
    grouped by a column other than those linking the related rows to their parent
    (grouped by those alone, there is one group per parent: plain values)."""
    spec: AggregationSpec | None = node.aggregations
    return spec is not None and not set(spec.group_by) <= set(node.relationship.target_columns)


def extra_groups(node: RelationFilter) -> tuple[str, ...]:
    """The group columns of a relationship's aggregations besides the linking ones."""
    spec: AggregationSpec = node.aggregations
    link = node.relationship.target_columns
    return tuple(name for name in spec.group_by if name not in link)


def prepare_relations(relations: Sequence[RelationFilter], functions: Mapping[str, Any],
                      limits: Limits) -> tuple[RelationFilter, ...]:
    """``relations`` (and those nested in them) with their aggregations parsed; 422 for
    a mistake, or for two relationships that would put values under one name of their
    parent row's ``aggregations``: aliases, or the relationship's name for a list of
    groups."""
    prepared = []
    taken: dict[str, str] = {}
    for node in relations:
        spec = None
        if node.aggregations is not None:
            path = f"{node.path}.aggregations"
            spec = parse_aggregations(node.target, node.aggregations, path, functions, limits,
                                      per_parent=True)
        node = dataclasses.replace(node, aggregations=spec,
                                   nested=prepare_relations(node.nested, functions, limits))
        if spec is not None:
            names = [(node.relationship.name, f"{node.path}.relationship")] \
                if grouped_per_parent(node) else \
                [(a.alias, f"{node.path}.aggregations.functions[{i}].alias")
                 for i, a in enumerate(spec.functions)]
            for name, path in names:
                if name in taken:
                    raise invalid(path, f"{name!r} is already used in the row's aggregations "
                                  f"(by {taken[name]}); choose another alias")
                taken[name] = path
        prepared.append(node)
    return tuple(prepared)


async def per_parent(gw: TableGateway, node: RelationFilter, spec: AggregationSpec,
                     keys: list[tuple[Any, ...]], level: int) -> dict[Hashable, Any]:
    """Aggregates of each parent's related rows, in one grouped query: by parent key,
    the aliases' values, or (:func:`grouped_per_parent`) a list of groups ordered by
    their columns."""
    target = node.target
    rel: Relationship = node.relationship
    sa_table = gw.catalog.sa_table(target)
    predicates = [keys_predicate(gw, target, rel.target_columns, keys, f"_ak{level}_")]
    compiler = FilterCompiler(gw, prefix=f"_ai{level}_")
    predicate = await compiler.predicate(target, node.where)
    if predicate is not None:
        predicates.append(predicate)
    extra = extra_groups(node)
    rows, _, _ = await gw.aggregate(target, AggregateQuery(
        group_by=(*rel.target_columns, *extra),
        aggregates={a.alias: aggregate_expression(a, sa_table) for a in spec.functions},
        shape=("per_parent", tuple((a.alias, a.function, a.column.name if a.column else None)
                                   for a in spec.functions)),
        filters=predicates, sort=tuple((name, False, "first") for name in extra)))
    width = len(rel.target_columns)
    key_columns = [target.existing_column(c) for c in rel.target_columns]
    out: dict[Hashable, Any] = {}
    for row in rows:
        key = tuple(_json_value(gw, spec_col, value)
                    for spec_col, value in zip(key_columns, row[:width], strict=True))
        values = {a.alias: result_value(gw, a.result_kind, a.column, v)
                  for a, v in zip(spec.functions, row[width + len(extra):], strict=True)}
        if not extra:
            out[key] = values
            continue
        found = dict(zip(rel.target_columns, row[:width], strict=True))
        found.update(zip(extra, row[width:width + len(extra)], strict=True))
        group = {name: decoded(gw, target.existing_column(name), found[name])
                 for name in spec.group_by}
        out.setdefault(key, []).append({**group, **values})
    return out


def decoded(gw: TableGateway, column: Column, value: Any) -> Any:
    """A driver value of ``column`` normalised as the JSON rows carry it."""
    decode = gw.dialect.decoder(column)
    return decode(value) if decode is not None and value is not None else value


def _json_value(gw: TableGateway, column: Column, value: Any) -> Any:
    """A driver value as it appears in the JSON rows (to match parents' keys)."""
    decode = gw.dialect.decoder(column)
    if decode is not None and value is not None:
        value = decode(value)
    return orjson.loads(codec.dumps(value))


def result_value(gw: TableGateway, kind: str, column: Column | None, value: Any) -> Any:
    """An aggregate's driver value in its result kind, the same on every database."""
    if value is None:
        return None
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "decimal":
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        scale = column.scale if column is not None else None
        if scale is not None:
            number = number.quantize(Decimal(1).scaleb(-scale))
        return number
    if column is not None:
        decode = gw.dialect.decoder(column)
        if decode is not None:
            return decode(value)
    return value
