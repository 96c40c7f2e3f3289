"""The filter grammar: JSON payload → typed tree → SQLAlchemy Core.

:func:`parse` checks a payload against a table and returns a :class:`FilterRequest`
whose nodes are typed (:class:`Condition`, :class:`Group`, :class:`RelationFilter`);
every mistake is a 422 naming its path (``expressions[1].expressions[0].operator``)
and what is allowed there.  :class:`FilterCompiler` turns a tree into one
:class:`~swain.core.protocols.Predicate`: named bind parameters, and a key that is
the tree's shape without its values, so the gateway's compiled-SQL cache serves
every request of the same shape.

Matching follows SQL's three-valued logic on every database: a NULL satisfies no
comparison (``ne`` and ``nin`` included), only ``isnull`` tests for it, and NOT of
an unknown stays unknown.  Case-sensitive pattern matching and its escaping are
asked of the dialect (:meth:`~swain.core.dialect.Dialect.like`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.util import ClauseAdapter

from . import codec
from .errors import Detail, ValidationFailed, invalid
from .protocols import Predicate
from .schema import Column, Relationship, Table

if TYPE_CHECKING:
    from .gateway import TableGateway

# -- limits --------------------------------------------------------------------


#: bound parameters kept free for what the API adds to a filter's statement (row
#: policies, paging, the keys of included rows)
PARAMETER_HEADROOM = 5000


@dataclass(frozen=True)
class Limits:
    """How large a filter may be (``[query]`` in ``swain.toml``)."""

    max_depth: int = 8
    max_expressions: int = 200
    max_in_size: int = 1000
    #: values one payload may bind (every ``in`` item counts); below every backend's limit
    max_parameters: int = 20_000
    #: the setting that sets ``max_parameters``, or the database limit that lowered it
    parameters_source: str = "query.max_parameters"

    @classmethod
    def from_config(cls, config: Any, database_limit: int | None = None) -> Limits:
        """The ``[query]`` limits; ``database_limit`` (the dialect's most bound
        parameters per statement) lowers ``max_parameters`` when it must."""
        section = config.section("query")
        max_parameters = section.get("max_parameters", cls.max_parameters)
        source = "query.max_parameters"
        if database_limit is not None and max_parameters > database_limit - PARAMETER_HEADROOM:
            max_parameters = max(1, database_limit - PARAMETER_HEADROOM)
            source = f"the database's limit of {database_limit} parameters per statement"
        return cls(max_depth=section.get("max_depth", cls.max_depth),
                   max_expressions=section.get("max_expressions", cls.max_expressions),
                   max_in_size=section.get("max_in_size", cls.max_in_size),
                   max_parameters=max_parameters, parameters_source=source)


# -- operators -------------------------------------------------------------------

_EQUALITY = ("eq", "ne", "in", "nin")
_ORDER = ("gt", "gte", "lt", "lte", "between")
_PATTERN = ("like", "ilike", "contains", "icontains", "startswith", "istartswith",
            "endswith", "iendswith")

#: Built-in operators per column kind; ``isnull`` works on every kind.
OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    "integer": _EQUALITY + _ORDER,
    "number": _EQUALITY + _ORDER,
    "decimal": _EQUALITY + _ORDER,
    "string": _EQUALITY + _ORDER + _PATTERN,
    "boolean": ("eq", "ne"),
    "date": _EQUALITY + _ORDER,
    "datetime": _EQUALITY + _ORDER,
    "datetime_tz": _EQUALITY + _ORDER,
    "time": _EQUALITY + _ORDER,
    "uuid": _EQUALITY,
    "json": (),
    "binary": ("eq", "ne"),
    "array": (),
    "interval": ("eq", "ne"),
}

_GROUPS = ("AND", "OR", "NOT")
_PAYLOAD_KEYS = ("expressions", "sort", "fields", "distinct", "aggregations")
_RELATION_KEYS = ("relationship", "scope", "include", "expressions", "fields", "sort",
                  "aggregations")
_SCOPES = ("filterParent", "filterRelated")


# -- the typed tree -----------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """``field <operator> value`` on one column; ``value`` is already parsed."""

    path: str
    column: Column
    operator: str
    value: Any


@dataclass(frozen=True)
class Group:
    """AND / OR of its children, or NOT of their AND."""

    path: str
    operator: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class SortTerm:
    field: str
    descending: bool = False
    nulls: str | None = None


@dataclass(frozen=True)
class RelationFilter:
    """Expressions over a related table, reached through one relationship."""

    path: str
    relationship: Relationship
    target: Table
    scope: str
    include: bool
    where: Group
    fields: tuple[str, ...] = ()
    sort: tuple[SortTerm, ...] = ()
    aggregations: Any = None
    #: relationship expressions inside this one that include or filter related rows
    nested: tuple[RelationFilter, ...] = ()


Node = Condition | Group | RelationFilter


@dataclass
class FilterRequest:
    """A parsed payload: the WHERE tree, projection, order and what to embed."""

    table: Table
    where: Group
    sort: tuple[SortTerm, ...] = ()
    fields: tuple[str, ...] = ()
    distinct: bool = False
    aggregations: Any = None
    #: top-level relationship expressions that embed or filter related rows
    relations: tuple[RelationFilter, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    #: how many values the expressions bind (see ``Limits.max_parameters``)
    parameters: int = 0

    @property
    def empty(self) -> bool:
        return not self.where.children


# -- parsing -------------------------------------------------------------------------


class _Counter:
    def __init__(self, limits: Limits, parameters: int = 0) -> None:
        self.limits = limits
        self.count = 0
        #: values bound so far; checked before any SQL is built
        self.parameters = parameters

    def add(self, path: str) -> None:
        self.count += 1
        if self.count > self.limits.max_expressions:
            raise invalid(path, f"too many expressions (at most {self.limits.max_expressions})")

    def bind(self, path: str, values: int) -> None:
        self.parameters += values
        if self.parameters > self.limits.max_parameters:
            raise invalid(path, f"too many values: a filter binds at most "
                          f"{self.limits.max_parameters} (every item of an in list counts; "
                          f"limit from {self.limits.parameters_source})")


def _known_keys(raw: Mapping[str, Any], allowed: Sequence[str], path: str,
                in_what: str = "") -> None:
    """422 on the first key of ``raw`` not in ``allowed`` (``in_what``: " in a group")."""
    for key in raw:
        if key not in allowed:
            raise invalid(_join(path, key), f"unknown key{in_what} (allowed: {', '.join(allowed)})")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse(table: Table, payload: Any, schema_tables: Mapping[str, Table], limits: Limits,
          *, extra_keys: Sequence[str] = (), operators: Mapping[str, Any] | None = None,
          path: str = "") -> FilterRequest:
    """Check ``payload`` against ``table`` and return its typed tree (422 on any mistake)."""
    if not isinstance(payload, Mapping):
        raise invalid(path or "body", "expected a JSON object with an \"expressions\" array")
    _known_keys(payload, (*_PAYLOAD_KEYS, *extra_keys), path)
    parser = _Parser(schema_tables, limits, operators or {})
    where, relations = parser.expressions(table, payload.get("expressions", []),
                                          _join(path, "expressions"), depth=0, top=True)
    distinct = payload.get("distinct", False)
    if not isinstance(distinct, bool):
        raise invalid(_join(path, "distinct"), "expected true or false")
    return FilterRequest(
        table=table, where=where,
        sort=parse_sort(table, payload.get("sort"), _join(path, "sort")),
        fields=parse_fields(table, payload.get("fields"), _join(path, "fields")),
        distinct=distinct, aggregations=payload.get("aggregations"), relations=relations,
        extra={k: payload[k] for k in extra_keys if k in payload},
        parameters=parser.counter.parameters)


def _visible(table: Table, name: Any, path: str) -> Column:
    column = table.column(name) if isinstance(name, str) else None
    if column is None or column.secret:
        allowed = ", ".join(c.name for c in table.visible_columns)
        raise invalid(path, f"unknown field {name!r} of {table.key!r} (allowed: {allowed})")
    return column


def parse_fields(table: Table, raw: Any, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise invalid(path, "expected an array of column names")
    for i, name in enumerate(raw):
        _visible(table, name, f"{path}[{i}]")
    return tuple(dict.fromkeys(raw))


def parse_sort(table: Table | None, raw: Any, path: str,
               extra_names: Sequence[str] = ()) -> tuple[SortTerm, ...]:
    """``[{"field", "direction": asc|desc, "nulls": first|last}]``; ``extra_names`` are
    aliases (aggregations) that may be sorted on besides the table's columns."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid(path, "expected an array of {\"field\", \"direction\", \"nulls\"} objects")
    terms = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise invalid(where, "expected an object {\"field\", \"direction\", \"nulls\"}")
        _known_keys(item, ("field", "direction", "nulls"), where)
        name = item.get("field")
        if name not in extra_names:
            if table is None:
                raise invalid(f"{where}.field", f"unknown name {name!r} (allowed: "
                              f"{', '.join(extra_names)})")
            _visible(table, name, f"{where}.field")
        direction = item.get("direction", "asc")
        if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
            raise invalid(f"{where}.direction", "expected asc or desc")
        nulls = item.get("nulls")
        if nulls is not None and (not isinstance(nulls, str)
                                  or nulls.lower() not in ("first", "last")):
            raise invalid(f"{where}.nulls", "expected first or last")
        terms.append(SortTerm(str(name), direction.lower() == "desc",
                              nulls.lower() if nulls else None))
    return tuple(terms)


class _Parser:
    def __init__(self, tables: Mapping[str, Table], limits: Limits,
                 operators: Mapping[str, Any], parameters: int = 0) -> None:
        self.tables = tables
        self.limits = limits
        self.operators = operators
        self.counter = _Counter(limits, parameters)

    def expressions(self, table: Table, raw: Any, path: str, depth: int,
                    top: bool) -> tuple[Group, tuple[RelationFilter, ...]]:
        if not isinstance(raw, list):
            raise invalid(path, "expected an array of expressions")
        children: list[Node] = []
        relations: list[RelationFilter] = []
        for i, item in enumerate(raw):
            node = self.node(table, item, f"{path}[{i}]", depth, top)
            if isinstance(node, RelationFilter):
                if node.include or node.scope == "filterRelated" or node.aggregations is not None \
                        or node.nested:
                    relations.append(node)
                if node.scope == "filterParent":
                    children.append(node)
            else:
                children.append(node)
        return Group(path, "AND", tuple(children)), tuple(relations)

    def node(self, table: Table, raw: Any, path: str, depth: int, top: bool) -> Node:
        if depth >= self.limits.max_depth:
            raise invalid(path, f"nested too deep (at most {self.limits.max_depth} levels)")
        self.counter.add(path)
        if not isinstance(raw, Mapping):
            raise invalid(path, "expected an expression object")
        if "relationship" in raw:
            return self.relation(table, raw, path, depth, top)
        if "field" in raw:
            return self.condition(table, raw, path)
        operator = raw.get("operator")
        if isinstance(operator, str) and operator.upper() in _GROUPS:
            _known_keys(raw, ("operator", "expressions"), path, " in a group")
            items = raw.get("expressions")
            if not isinstance(items, list) or not items:
                raise invalid(f"{path}.expressions", "a group needs a non-empty array of "
                              "expressions")
            children = tuple(self.node(table, item, f"{path}.expressions[{i}]", depth + 1, False)
                             for i, item in enumerate(items))
            return Group(path, operator.upper(), children)
        if operator is None:
            raise invalid(path, "expected a condition {\"field\", \"operator\", \"value\"}, a "
                          "group {\"operator\": AND|OR|NOT, \"expressions\"} or a relationship")
        raise invalid(f"{path}.operator", f"unknown group operator {operator!r} (allowed: "
                      "AND, OR, NOT; a condition needs a \"field\")")

    def allowed_operators(self, column: Column) -> list[str]:
        return [*OPERATORS_BY_KIND.get(column.kind, ()), "isnull", *sorted(self.operators)]

    def condition(self, table: Table, raw: Mapping[str, Any], path: str) -> Condition:
        _known_keys(raw, ("field", "operator", "value"), path, " in a condition")
        column = _visible(table, raw["field"], f"{path}.field")
        operator = raw.get("operator")
        allowed = self.allowed_operators(column)
        if not isinstance(operator, str) or operator.lower() not in allowed:
            raise invalid(f"{path}.operator", f"unknown operator {operator!r} for "
                          f"{column.kind} field {column.name!r} (allowed: {', '.join(allowed)})")
        operator = operator.lower()
        if "value" not in raw:
            raise invalid(f"{path}.value", "required")
        value = raw["value"]
        if operator in ("in", "nin", "between"):
            # counted before the values are parsed: a huge list costs nothing to refuse
            self.counter.bind(f"{path}.value", len(value) if isinstance(value, list) else 1)
        elif operator != "isnull":
            self.counter.bind(f"{path}.value", 1)
        return Condition(path, column, operator,
                         self.value(column, operator, value, f"{path}.value"))

    def value(self, column: Column, operator: str, value: Any, path: str) -> Any:
        if operator in self.operators and operator not in OPERATORS_BY_KIND.get(column.kind, ()):
            return value  # a plugin operator checks its own value
        if operator == "isnull":
            if not isinstance(value, bool):
                raise invalid(path, "expected true or false")
            return value
        # A filter value is compared, not stored: no length or precision limits.
        loose = dataclasses.replace(column, nullable=False, max_length=None, precision=None,
                                    scale=None)
        if operator in ("in", "nin"):
            if not isinstance(value, list) or not value:
                raise invalid(path, f"{operator} takes a non-empty array of values")
            if len(value) > self.limits.max_in_size:
                raise invalid(path, f"at most {self.limits.max_in_size} values")
            return tuple(self.scalar(loose, v, f"{path}[{i}]") for i, v in enumerate(value))
        if operator == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise invalid(path, "between takes an array of exactly two values [low, high]")
            return tuple(self.scalar(loose, v, f"{path}[{i}]") for i, v in enumerate(value))
        if operator in _PATTERN:
            if not isinstance(value, str):
                raise invalid(path, "expected a string")
            if "\x00" in value:
                raise invalid(path, "NUL characters are not allowed")
            if operator in ("like", "ilike"):
                check_like_pattern(value, path)
            return value
        return self.scalar(loose, value, path)

    def scalar(self, column: Column, value: Any, path: str) -> Any:
        if value is None:
            raise invalid(path, "null matches nothing; use the isnull operator")
        parsed = codec.parse_value(column, value, path)
        if column.kind == "decimal" and abs(parsed.adjusted()) > 300:
            raise invalid(path, "decimal out of range")
        return parsed

    def relation(self, table: Table, raw: Mapping[str, Any], path: str, depth: int,
                 top: bool) -> RelationFilter:
        _known_keys(raw, _RELATION_KEYS, path, " in a relationship expression")
        name = raw["relationship"]
        rel = table.relationship(name) if isinstance(name, str) else None
        target = self.tables.get(rel.target) if rel is not None else None
        if rel is None or target is None or target.hidden:
            allowed = ", ".join(r.name for r in table.relationships
                                if (t := self.tables.get(r.target)) is not None and not t.hidden)
            raise invalid(f"{path}.relationship", f"unknown relationship {name!r} of "
                          f"{table.key!r} (allowed: {allowed or 'none'})")
        scope = raw.get("scope", "filterParent")
        if scope not in _SCOPES:
            raise invalid(f"{path}.scope", "expected filterParent or filterRelated")
        include = raw.get("include", False)
        if not isinstance(include, bool):
            raise invalid(f"{path}.include", "expected true or false")
        embeds = include or scope == "filterRelated" or "aggregations" in raw \
            or "fields" in raw or "sort" in raw
        if embeds and not top:
            raise invalid(path, "include, filterRelated, fields, sort and aggregations are only "
                          "allowed on relationships in an expressions list, not inside a group")
        where, nested = self.expressions(target, raw.get("expressions", []),
                                         f"{path}.expressions", depth + 1, top=True)
        return RelationFilter(
            path=path, relationship=rel, target=target, scope=scope, include=include,
            where=where, fields=parse_fields(target, raw.get("fields"), f"{path}.fields"),
            sort=parse_sort(target, raw.get("sort"), f"{path}.sort"),
            aggregations=raw.get("aggregations"), nested=nested)


#: the longest name a client may give (an alias): every database accepts 63 characters
MAX_NAME_LENGTH = 63


def check_name(name: Any, path: str) -> None:
    """A name a client chooses that becomes an SQL identifier (an alias): 1 to
    :data:`MAX_NAME_LENGTH` characters, none of them a control character (a NUL
    would cut the statement short)."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise invalid(path, f"expected a name of 1 to {MAX_NAME_LENGTH} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise invalid(path, "control characters (such as NUL) are not allowed in a name")


def check_like_pattern(pattern: str, path: str) -> None:
    """A LIKE pattern: ``%`` any run, ``_`` one character, ``\\`` escapes the next one."""
    escaped = False
    for char in pattern:
        escaped = not escaped and char == "\\"
    if escaped:
        raise invalid(path, "a pattern may not end with a lone escape character \\")


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern that matches it literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_PATTERN_FORMS = {
    "contains": ("%", "%"), "startswith": ("", "%"), "endswith": ("%", ""),
}


def like_pattern(operator: str, value: str) -> tuple[str, bool]:
    """The LIKE pattern for a pattern operator and whether it is case-sensitive."""
    sensitive = not operator.startswith("i")
    base = operator[1:] if operator.startswith("i") and operator != "in" else operator
    if base == "like":
        return value, sensitive
    before, after = _PATTERN_FORMS[base]
    return before + escape_like(value) + after, sensitive


# -- compiling ------------------------------------------------------------------------


class FilterCompiler:
    """Turns typed trees into clauses with named bind parameters for one gateway.

    Row policies of every related table reached through a relationship are
    fetched (``gw.scope(target, "read")``) before compiling, so a relationship
    filter sees only rows the caller may read.
    """

    def __init__(self, gw: TableGateway, prefix: str = "_f", *,
                 typed_params: bool = False, aliases: str = "_r") -> None:
        self.gw = gw
        # Aggregates have no column type to coerce a parameter to (SQLite would
        # compare a decimal's text with a number), so HAVING types its numbers.
        self.typed_params = typed_params
        self.dialect = gw.dialect
        self.catalog = gw.catalog
        self.prefix = prefix
        self.params: dict[str, Any] = {}
        self.scopes: dict[str, list[Predicate]] = {}
        #: how the aliases of related tables are named (``_r1``, ``_r2``…)
        self.aliases = aliases
        self._aliases = 0

    def bind(self, value: Any) -> sa.BindParameter[Any]:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return sa.bindparam(name)

    def bind_value(self, column: Column, value: Any) -> Any:
        return self.comparable_value(self.bind(self.encode(column, value)), column)

    def comparable_value(self, bound: Any, column: Column, exact: bool = False) -> Any:
        """A bound value in the form it is compared with ``column`` in."""
        if self.typed_params and column.kind == "decimal":
            return sa.cast(bound, sa.Numeric(38, 10))
        value = self.dialect.comparable(bound, column.kind)
        return self.dialect.exact_text(value) if exact else value

    def in_list(self, col: Any, column: Column, values: Sequence[Any], exact: bool,
                negate: bool) -> Any:
        """``col [NOT] IN`` the values, bound as one list expanded per execution: the
        statement's shape does not depend on how many values there are."""
        return self.dialect.in_list(col, [self.encode(column, v) for v in values], column,
                                    lambda b: self.comparable_value(b, column, exact), negate,
                                    self.bind)

    async def gather_scopes(self, group: Group) -> None:
        """Authorize and fetch row policies for every table a tree reaches."""
        for node in _walk(group):
            if isinstance(node, RelationFilter) and node.target.key not in self.scopes:
                self.scopes[node.target.key] = await self.gw.scope(node.target, "read")

    async def predicate(self, table: Table, group: Group,
                        source: sa.FromClause | None = None) -> Predicate | None:
        """The tree as one predicate (``None`` when it has no conditions)."""
        if not group.children:
            return None
        await self.gather_scopes(group)
        start = len(self.params)
        source = source if source is not None else self.catalog.sa_table(table)
        clause, key = self.group(group, source)
        params = dict(list(self.params.items())[start:])
        return Predicate(("filter", key), clause, params)

    def group(self, group: Group, source: sa.FromClause) -> tuple[Any, Hashable]:
        parts = [self.node(child, source) for child in group.children]
        clauses = [c for c, _ in parts]
        key = (group.operator, tuple(k for _, k in parts))
        if group.operator == "OR":
            return sa.or_(*clauses), key
        combined = sa.and_(*clauses) if len(clauses) != 1 else clauses[0]
        if group.operator == "NOT":
            return sa.not_(combined), key
        return combined, key

    def node(self, node: Node, source: sa.FromClause) -> tuple[Any, Hashable]:
        if isinstance(node, Group):
            return self.group(node, source)
        if isinstance(node, RelationFilter):
            return self.exists(node, source)
        return self.condition(node, source)

    def encode(self, column: Column, value: Any) -> Any:
        return self.dialect.encode(column.kind, value)

    def condition(self, cond: Condition, source: sa.FromClause) -> tuple[Any, Hashable]:
        op, value, spec = cond.operator, cond.value, cond.column
        col: Any = source.c[spec.name]
        if op not in ("isnull", *_PATTERN):
            col = self.dialect.comparable(col, spec.kind)
        key: Hashable = (spec.name, op)
        if op == "isnull":
            return (col.is_(None) if value else col.is_not(None)), (spec.name, op, value)
        exact = spec.kind == "string" and op in _EQUALITY
        if op in ("eq", "ne", "gt", "gte", "lt", "lte"):
            bound = self.bind_value(spec, value)
            if exact:
                bound = self.dialect.exact_text(bound)
            clause = {"eq": col == bound, "ne": col != bound, "gt": col > bound,
                      "gte": col >= bound, "lt": col < bound, "lte": col <= bound}[op]
            return clause, key
        if op in ("in", "nin"):
            return self.in_list(col, spec, value, exact, op == "nin"), key
        if op == "between":
            low, high = (self.bind_value(spec, v) for v in value)
            return col.between(low, high), key
        if op in _PATTERN:
            pattern, sensitive = like_pattern(op, value)
            return self.dialect.like(col, pattern, sensitive, self.bind), key
        operator = self.gw.runtime.filter_operators[op]
        return self.named(operator.build(col, self.bind(value))), key

    def named(self, clause: Any) -> Any:
        """``clause`` with every literal a plugin wrote (``col % 2 == 0``) turned into a
        named parameter: statements run with our parameters only."""

        def replace(element: Any) -> Any:
            if isinstance(element, sa.BindParameter) and element.key not in self.params:
                return sa.bindparam(self.bind(element.value).key, type_=element.type)
            return None

        return visitors.replacement_traverse(clause, {}, replace)  # type: ignore[call-overload]

    def alias(self, table: Table) -> sa.FromClause:
        self._aliases += 1
        return self.catalog.sa_table(table).alias(f"{self.aliases}{self._aliases}")

    def scoped(self, table: Table, alias: sa.FromClause) -> list[Any]:
        """The target's row-policy clauses, rewritten onto ``alias``."""
        adapter = ClauseAdapter(alias)
        clauses = []
        for predicate in self.scopes.get(table.key, []):
            clauses.append(adapter.traverse(predicate.clause))
            self.params.update(predicate.params)
        return clauses

    def scope_keys(self, table: Table) -> Hashable:
        return tuple(p.key for p in self.scopes.get(table.key, []))

    def join_condition(self, rel: Relationship, parent: sa.FromClause,
                       child: sa.FromClause) -> Any:
        return sa.and_(*[child.c[t] == parent.c[c]
                         for c, t in zip(rel.columns, rel.target_columns, strict=True)])

    def exists(self, node: RelationFilter, source: sa.FromClause) -> tuple[Any, Hashable]:
        target = self.alias(node.target)
        where = [self.join_condition(node.relationship, source, target),
                 *self.scoped(node.target, target)]
        key: Hashable = ("exists", node.relationship.name, self.scope_keys(node.target))
        if node.where.children:
            clause, inner = self.group(node.where, target)
            where.append(clause)
            key = (*key, inner)  # type: ignore[misc]
        return sa.exists(sa.select(sa.literal_column("1")).select_from(target).where(*where)), key


def _walk(group: Group) -> list[Node]:
    found: list[Node] = []
    for child in group.children:
        found.append(child)
        if isinstance(child, Group):
            found.extend(_walk(child))
        elif isinstance(child, RelationFilter):
            found.extend(_walk(child.where))
    return found


def reject(path: str, message: str) -> ValidationFailed:
    """A 422 for a payload problem found after parsing."""
    return ValidationFailed(f"{path}: {message}", [Detail(path, message)])


# -- aggregations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregate:
    """One aggregate function call: ``alias = FUNCTION(column)``."""

    alias: str
    function: str
    implementation: Any
    column: Column | None
    result_kind: str


@dataclass(frozen=True)
class AggregationSpec:
    """Aggregations of a payload: functions, grouping, HAVING on aliases, order."""

    path: str
    functions: tuple[Aggregate, ...]
    group_by: tuple[str, ...] = ()
    having: Group | None = None
    sort: tuple[SortTerm, ...] = ()
    #: columns and aliases HAVING and sort may name, with their result kinds
    outputs: tuple[Column, ...] = ()


_AGGREGATION_KEYS = ("functions", "group_by", "having", "sort")


def parse_aggregations(table: Table, raw: Any, path: str, functions: Mapping[str, Any],
                       limits: Limits, *, per_parent: bool = False,
                       parameters: int = 0) -> AggregationSpec:
    """Check an ``aggregations`` object against ``table`` and the enabled functions;
    ``parameters`` are the values the rest of the payload binds already.  ``per_parent``
    aggregations (inside a relationship) take ``functions`` and ``group_by`` only."""
    if not functions:
        raise invalid(path, "no aggregate functions are enabled (the aggregations plugin is "
                      "disabled)")
    if not isinstance(raw, Mapping):
        raise invalid(path, "expected an object {\"functions\": [...], \"group_by\": [...]}")
    allowed_keys = ("functions", "group_by") if per_parent else _AGGREGATION_KEYS
    for key in raw:
        if key not in allowed_keys and key in _AGGREGATION_KEYS:
            raise invalid(f"{path}.{key}", f"{key} is not supported inside a relationship: "
                          "per-parent aggregations take functions and group_by")
        if key not in allowed_keys:
            raise invalid(f"{path}.{key}", f"unknown key (allowed: {', '.join(allowed_keys)})")
    items = raw.get("functions")
    if not isinstance(items, list) or not items:
        raise invalid(f"{path}.functions", "expected a non-empty array of {\"type\", \"field\", "
                      "\"alias\"}")
    if len(items) > limits.max_expressions:
        raise invalid(f"{path}.functions", f"at most {limits.max_expressions} functions")
    group_by = parse_fields(table, raw.get("group_by"), f"{path}.group_by")
    aggregates: list[Aggregate] = []
    names = set(group_by)
    for i, item in enumerate(items):
        where = f"{path}.functions[{i}]"
        if not isinstance(item, Mapping):
            raise invalid(where, "expected an object {\"type\", \"field\", \"alias\"}")
        _known_keys(item, ("type", "field", "alias"), where)
        kind = item.get("type")
        impl = functions.get(kind.upper()) if isinstance(kind, str) else None
        if impl is None or not isinstance(kind, str):
            raise invalid(f"{where}.type", f"unknown aggregate function {kind!r} (allowed: "
                          f"{', '.join(sorted(functions))})")
        name = kind.upper()
        column = None
        if item.get("field") is not None:
            column = _visible(table, item["field"], f"{where}.field")
            kinds = getattr(impl, "kinds", None)
            if kinds is not None and column.kind not in kinds:
                raise invalid(f"{where}.field", f"{name} does not apply to {column.kind} field "
                              f"{column.name!r} (it takes {', '.join(kinds)})")
        elif getattr(impl, "needs_field", True):
            raise invalid(f"{where}.field", f"{name} needs a field")
        alias = item.get("alias") or (f"{name.lower()}_{column.name}" if column else name.lower())
        check_name(alias, f"{where}.alias")
        if alias in names or alias == "aggregations":
            raise invalid(f"{where}.alias", f"{alias!r} is already used in this result")
        names.add(alias)
        result = impl.result_kind(column) if hasattr(impl, "result_kind") else "number"
        aggregates.append(Aggregate(alias, name, impl, column, result))
    grouped = [_visible(table, n, f"{path}.group_by") for n in group_by]
    outputs = tuple([*grouped, *(Column(name=a.alias, sql_type="", kind=a.result_kind)
                                 for a in aggregates)])
    having = None
    if raw.get("having") is not None:
        pseudo = Table(name=table.name, columns=list(outputs))
        having, _ = _Parser({}, limits, {}, parameters).expressions(pseudo, raw["having"], f"{path}.having",
                                                        depth=0, top=False)
    sort = parse_sort(None, raw.get("sort"), f"{path}.sort", [c.name for c in outputs])
    return AggregationSpec(path, tuple(aggregates), group_by, having, sort, outputs)


class Outputs:
    """Named expressions standing in for a table when compiling HAVING on aliases."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.c = columns


def aggregate_expression(aggregate: Aggregate, source: sa.FromClause) -> Any:
    column = source.c[aggregate.column.name] if aggregate.column is not None else None
    return aggregate.implementation.build(column)
