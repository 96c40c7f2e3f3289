"""Related rows and per-parent aggregations composed as JSON by the database, in the
page's own statement (one statement per page).

Where the dialect ``supports_json_relations`` (PostgreSQL, MariaDB 10.5+), each
row of a page gains its included relationships and its ``aggregations`` as JSON
the database writes (:meth:`Dialect.json_rows`), computed only for the page's own
rows.  The answer is the one :class:`~swain.core.relations.Embedder` gives with
a statement per relationship and level: the same rows in the same order, the same
values written the same way, and the related tables reached the same way (each
one authorized for ``read``, its row policies ANDed in, its secret columns left
out).  Where the dialect cannot write a kind of value exactly, or a shape needs
what it lacks (groups per parent need a derived table that refers to the parent
row), :func:`compose` answers ``None`` and the embedder serves the request.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .filters import Aggregate, AggregationSpec, FilterCompiler, RelationFilter, aggregate_expression
from .gateway import JsonMembers, TableGateway
from .protocols import Predicate
from .relations import extra_groups, grouped_per_parent, needed_columns
from .schema import Column, Table

#: the name the page's rows go by in the statement (a CTE)
PAGE_ROWS = "_swain_page"
#: aggregate functions whose value for no related rows is 0 (the others' is null)
_COUNTS = ("COUNT", "COUNT_DISTINCT")

#: what a member must be once parsed: ("array" | "object" | "object?", nested members)
Shape = tuple[str, Mapping[str, Any]]


class _Cannot(Exception):
    """The dialect cannot compose this shape exactly: the embedder serves it."""


async def compose(gw: TableGateway, table: Table,
                  relations: Sequence[RelationFilter]) -> JsonMembers | None:
    """The members ``relations`` add to each row of a page of ``table``, composed by
    the database; ``None`` where the dialect cannot (see the module docstring).
    Authorizes ``read`` on every table the relationships reach.

    The SQL expressions are built once per shape and kept in the catalog; each
    request only binds its values (a pass over the relationships that builds the
    relationships' own filters, in the same order, for their parameters)."""
    if not gw.dialect.supports_json_relations or not relations or \
            not gw.runtime.config.query.compose_json:
        return None
    scopes: dict[str, list[Predicate]] = {}
    await _gather(gw, scopes, relations)
    if PAGE_ROWS in scopes:  # a table of that name would be hidden by the page's rows
        return None
    values = _Composer(gw, scopes, build=False)
    _, _, shape = values.row_members(None, relations)
    key = ("composed", table.key, shape)

    def build() -> tuple[sa.TableClause, list[tuple[str, Any]], dict[str, Shape]] | None:
        parent = sa.table(PAGE_ROWS, *[sa.column(c.name) for c in table.columns])
        try:
            members, shapes, _ = _Composer(gw, scopes, build=True).row_members(parent,
                                                                               relations)
        except _Cannot:
            return None
        return parent, members, shapes

    built = gw.catalog.composed(key, build)
    if built is None:
        return None
    parent, members, shapes = built
    return JsonMembers(parent, members, tuple(needed_columns(table, relations)),
                       values.compiler.params, key, lambda row: members_whole(row, shapes))


async def _gather(gw: TableGateway, scopes: dict[str, list[Predicate]],
                  relations: Sequence[RelationFilter]) -> None:
    """Authorize ``read`` and fetch the row policies of every table reached."""
    compiler = FilterCompiler(gw)
    compiler.scopes = scopes
    for node in relations:
        if node.target.key not in scopes:
            scopes[node.target.key] = await gw.scope(node.target, "read")
        await compiler.gather_scopes(node.where)
        await _gather(gw, scopes, node.nested)


def members_whole(row: Mapping[str, Any], shapes: Mapping[str, Shape]) -> bool:
    """Whether parsed members have the shapes they were composed with (a server
    limit may have cut an aggregate's result to null)."""
    for name, (kind, inner) in shapes.items():
        value = row.get(name)
        if kind == "array":
            if not isinstance(value, list) or not all(
                    isinstance(item, dict) and members_whole(item, inner) for item in value):
                return False
        elif value is None:
            if kind == "object":
                return False
        elif not isinstance(value, dict) or not members_whole(value, inner):
            return False
    return True


class _Composer:
    """Walks the relationships in one fixed order, binding their filters' values as
    it goes (so the parameters are named alike on every pass); with ``build`` it also
    builds the JSON expressions, otherwise only their shape (a cache key)."""

    def __init__(self, gw: TableGateway, scopes: dict[str, list[Predicate]],
                 build: bool) -> None:
        self.gw = gw
        self.dialect = gw.dialect
        self.build = build
        self.compiler = FilterCompiler(gw, prefix="_j", aliases="_j")
        self.compiler.scopes = scopes

    # -- a row's members ----------------------------------------------------------

    def row_members(self, source: sa.FromClause | None, relations: Sequence[RelationFilter]
                    ) -> tuple[list[tuple[str, Any]], dict[str, Shape], Hashable]:
        """The members ``relations`` add to a row of ``source``, in the order the
        embedder adds them: ``aggregations`` where the first relationship with
        aggregations comes, each include where its relationship comes."""
        members: list[tuple[str, Any]] = []
        shapes: dict[str, Shape] = {}
        keys: list[Hashable] = []
        aggregating = [node for node in relations if node.aggregations is not None]
        longest = self.dialect.sa_dialect.max_identifier_length
        if self.build and any(len(node.relationship.name) > longest for node in relations):
            raise _Cannot("a relationship's name is longer than the database's names")
        for node in relations:
            if node.aggregations is not None and "aggregations" not in shapes:
                expression, key = self.aggregations(source, aggregating)
                members.append(("aggregations", expression))
                shapes["aggregations"] = ("object", {
                    n.relationship.name: ("array", {}) for n in aggregating
                    if grouped_per_parent(n)})
                keys.append(key)
            if node.include:
                expression, shape, key = self.include(source, node)
                members.append((node.relationship.name, expression))
                shapes[node.relationship.name] = shape
                keys.append(key)
        return members, shapes, tuple(keys)

    def related(self, source: sa.FromClause | None, node: RelationFilter
                ) -> tuple[Any, Any, Hashable]:
        """An alias of the related table, and a statement over the rows of it that
        belong to the row of ``source``, match the relationship's expressions and
        pass the table's row policies (without ``build``: ``None``, ``None``, having
        bound the same values)."""
        target = node.target
        key: Hashable = (node.relationship.name, self.compiler.scope_keys(target))
        if not self.build:
            for predicate in self.compiler.scopes.get(target.key, []):
                self.compiler.params.update(predicate.params)
            if node.where.children:
                key = (key, self.compiler.group(node.where, self.gw.catalog.sa_table(target))[1])
            return None, None, key
        assert source is not None
        alias = self.compiler.alias(target)
        where = [self.compiler.join_condition(node.relationship, source, alias),
                 *self.compiler.scoped(target, alias)]
        if node.where.children:
            clause, inner = self.compiler.group(node.where, alias)
            where.append(clause)
            key = (key, inner)
        return alias, sa.select().select_from(alias).where(*where).correlate(source), key

    def include(self, source: sa.FromClause | None, node: RelationFilter
                ) -> tuple[Any, Shape, Hashable]:
        alias, rows, key = self.related(source, node)
        nested, shapes, nested_key = self.row_members(alias, node.nested)
        sort = tuple((t.field, t.descending, t.nulls) for t in node.sort)
        many = node.relationship.kind != "many_to_one"
        shape: Shape = ("array" if many else "object?", shapes)
        key = ("include", key, node.fields, sort, nested_key)
        if not self.build:
            return None, shape, key
        values = [(column.name, self.value(alias.c[column.name], column))
                  for column in self.gw.output_columns(node.target, node.fields)]
        expression = self.dialect.json_rows([*values, *nested], rows,
                                            self.gw._order(node.target, alias, sort), many)
        return expression, shape, key

    # -- aggregations ---------------------------------------------------------------

    def aggregations(self, source: sa.FromClause | None, nodes: Sequence[RelationFilter]
                     ) -> tuple[Any, Hashable]:
        """The row's ``aggregations`` object: one statement for a lone relationship's
        values, else a value (or a list of groups) per name, in the embedder's order."""
        if len(nodes) == 1 and not grouped_per_parent(nodes[0]):
            node = nodes[0]
            spec: AggregationSpec = node.aggregations
            alias, rows, key = self.related(source, node)
            key = ("values", key, _signature(spec))
            if not self.build:
                return None, key
            values = [(a.alias, self.aggregate(a, alias)) for a in spec.functions]
            return self.dialect.json_rows(values, rows, [], False), key
        pairs: list[tuple[str, Any]] = []
        keys: list[Hashable] = []
        for node in nodes:
            spec = node.aggregations
            if grouped_per_parent(node):
                expression, key = self.groups(source, node)
                pairs.append((node.relationship.name, expression))
                keys.append(key)
                continue
            for aggregate in spec.functions:
                alias, rows, key = self.related(source, node)
                keys.append((key, aggregate.alias, aggregate.function,
                             aggregate.column.name if aggregate.column else None))
                if self.build:
                    value = rows.with_only_columns(self.aggregate(aggregate, alias))
                    pairs.append((aggregate.alias, value.scalar_subquery()))
        key = ("pairs", tuple(keys))
        if not self.build:
            return None, key
        return self.dialect.json_rows(pairs, sa.select(), [], False), key

    def aggregate(self, aggregate: Aggregate, alias: sa.FromClause) -> Any:
        """An aggregate over the related rows as JSON; for no rows, 0 for the counts
        and null for the others, as the embedder answers."""
        expression = aggregate_expression(aggregate, alias)
        if aggregate.function not in _COUNTS:
            expression = sa.case((sa.func.count() == sa.literal_column("0"), sa.null()),
                                 else_=expression)
        return self.rendered(expression, aggregate)

    def rendered(self, expression: Any, aggregate: Aggregate) -> Any:
        """``expression`` written as JSON in the aggregate's result kind (a plugin's
        function may give another kind than its column's)."""
        kind, column = aggregate.result_kind, aggregate.column
        if kind not in ("integer", "number", "decimal") and \
                (column is None or column.kind != kind):
            column = Column(name=aggregate.alias, sql_type="", kind=kind)
        found = self.dialect.json_aggregate(expression, kind, column)
        if found is None:
            raise _Cannot(aggregate.alias)
        return found

    def groups(self, source: sa.FromClause | None, node: RelationFilter
               ) -> tuple[Any, Hashable]:
        """A parent's groups: ordered by the group columns besides the linking ones
        (null first), each with its group columns and aliases."""
        spec: AggregationSpec = node.aggregations
        alias, rows, key = self.related(source, node)
        key = ("groups", key, _signature(spec))
        if not self.build:
            return None, key
        if not self.dialect.supports_correlated_derived_tables:
            raise _Cannot(node.relationship.name)
        grouped = rows.with_only_columns(
            *[alias.c[name].label(f"_g{i}") for i, name in enumerate(spec.group_by)],
            *[aggregate_expression(a, alias).label(f"_a{i}")
              for i, a in enumerate(spec.functions)]).group_by(
            *[alias.c[name] for name in spec.group_by]).subquery()
        values = [(name, self.value(grouped.c[f"_g{i}"], node.target.existing_column(name)))
                  for i, name in enumerate(spec.group_by)]
        values += [(a.alias, self.rendered(grouped.c[f"_a{i}"], a))
                   for i, a in enumerate(spec.functions)]
        labels = {name: f"_g{i}" for i, name in enumerate(spec.group_by)}
        order = [term for name in extra_groups(node)
                 for term in self.dialect.order_by(grouped.c[labels[name]], False, "first")]
        return self.dialect.json_rows(values, sa.select().select_from(grouped), order, True), key

    def value(self, value: Any, column: Column) -> Any:
        found = self.dialect.json_value(value, column)
        if found is None:
            raise _Cannot(column.name)
        return found


def _signature(spec: AggregationSpec) -> Hashable:
    return (spec.group_by, tuple((a.alias, a.function, a.column.name if a.column else None)
                                 for a in spec.functions))
