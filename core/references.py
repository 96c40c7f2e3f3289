"""Foreign keys under row policies: a write may only point at rows its caller can read.

The database checks that a referenced row exists, not whose it is.  Under row
policies (tenant isolation) that would let a caller link a row to another
tenant's (and then block its deletion), and tell from 201 against 409 which
keys exist elsewhere.  So before a row is written, every foreign key it sets is
looked up in the referenced table under that table's own ``read`` policies;
a row the caller cannot see is refused exactly as a missing one is, with the
409 of a violated foreign key.  Tables whose referenced tables have no
policies are left to the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import codec
from .dialect import DBConnection
from .errors import ApiError, Conflict, Detail
from .protocols import Predicate
from .schema import ForeignKey, Table

if TYPE_CHECKING:
    from .gateway import TableGateway

MISSING = "references a row that does not exist"


def missing_reference(fk: ForeignKey) -> Conflict:
    """The 409 of a foreign key naming no row (the caller may see)."""
    name = fk.name or "_".join(fk.columns)
    return Conflict(f"foreign key constraint {name!r} violated: {MISSING}",
                    [Detail(column, MISSING) for column in fk.columns])


def _comparable(value: Any) -> bytes:
    """A key value in one form, whether it came from a client or from a driver."""
    return codec.dumps(value)


async def unreachable(gw: TableGateway, table: Table, rows: Sequence[Mapping[str, Any]],
                      conn: DBConnection | None = None) -> dict[int, ApiError]:
    """Rows (by position) whose foreign keys name a row the caller cannot read, or
    no row at all, each with the error to answer."""
    failures: dict[int, ApiError] = {}
    for fk in table.foreign_keys:
        target = gw.catalog.schema.tables.get(fk.target)
        if target is None:
            continue
        predicates = await gw.policies(target, "read")
        if not predicates:
            continue
        wanted: dict[tuple[bytes, ...], tuple[tuple[Any, ...], list[int]]] = {}
        for index, row in enumerate(rows):
            if index in failures or not all(name in row for name in fk.columns):
                continue
            key = tuple(row[name] for name in fk.columns)
            if any(value is None for value in key):
                continue
            wanted.setdefault(tuple(map(_comparable, key)), (key, []))[1].append(index)
        if not wanted:
            continue
        found = await _visible(gw, target, fk, [key for key, _ in wanted.values()], predicates,
                               conn)
        for normalised, (_, indexes) in wanted.items():
            if normalised not in found:
                for index in indexes:
                    failures[index] = missing_reference(fk)
    return failures


async def check(gw: TableGateway, table: Table, values: Mapping[str, Any],
                conn: DBConnection | None = None) -> None:
    """Raise the 409 of the first foreign key in ``values`` the caller cannot follow."""
    failures = await unreachable(gw, table, [values], conn)
    if failures:
        raise failures[0]


async def _visible(gw: TableGateway, target: Table, fk: ForeignKey, keys: list[tuple[Any, ...]],
                   predicates: list[Predicate], conn: DBConnection | None
                   ) -> set[tuple[bytes, ...]]:
    """Which of ``keys`` name a row of ``target`` the caller may read."""
    sa_table = gw.catalog.sa_table(target)
    specs = [target.existing_column(name) for name in fk.target_columns]
    params: dict[str, Any] = {}

    def bind(value: Any) -> sa.BindParameter[Any]:
        name = f"_ref{len(params)}"
        params[name] = value
        return sa.bindparam(name)

    if len(specs) == 1:
        spec = specs[0]
        matches = [gw.dialect.in_list(sa_table.c[spec.name],
                                      [gw.dialect.encode(spec.kind, key[0]) for key in keys],
                                      spec, lambda value: value, False, bind)]
    else:  # composite keys are rare: one condition per key
        matches = [sa.or_(*[sa.and_(*[sa_table.c[spec.name] == bind(gw.dialect.encode(
            spec.kind, value)) for spec, value in zip(specs, key, strict=True)]) for key in keys])]
    for predicate in predicates:
        params.update(predicate.params)
    statement = sa.select(*[sa_table.c[spec.name] for spec in specs]).where(
        *matches, *[p.clause for p in predicates])
    shape = ("references", target.key, tuple(fk.target_columns), len(specs) > 1 and len(keys),
             tuple(p.key for p in predicates))
    compiled = gw.catalog.compiled(shape, lambda: gw.dialect.compiled(statement, specs))
    sql, bound = compiled.render(params)
    if conn is not None:
        rows = await conn.fetch_all(sql, bound)
    else:
        async with gw.dialect.acquire() as own:
            rows = await own.fetch_all(sql, bound)
    return {tuple(map(_comparable, row.values()))
            for row in gw.rows_to_dicts(specs, rows)}
