"""Keyset pagination: ``after=<cursor>`` on ``GET /{t}`` and ``POST /{t}/filter``.

A page in keyset mode answers ``next_after``, an opaque cursor for the rows
strictly after its last row in the request's order (the sort, then the primary
key); passing it back as ``after=`` continues from there without an OFFSET, so
a deep page costs what the first one does.  ``after=`` with no value starts
keyset mode on the first page.

The cursor is base64url of compact JSON: ``{"f": fingerprint, "v": [values]}``,
the last row's values of the order columns as the API wrote them and a
fingerprint of the table and the order, so a cursor is refused (400 naming
``after``) with another sort or table, and when it is not one at all.  Its
values are parsed like any client value for their columns and bound as
parameters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from . import codec
from .catalog import Catalog
from .errors import ApiError, BadRequest, Detail
from .protocols import Predicate
from .schema import Table

PARAMETER = "after"
#: a dialect's ``comparable``: an expression of a kind in the form it compares in
Comparable = Callable[[sa.ColumnElement[Any], str], sa.ColumnElement[Any]]


def refused(message: str) -> BadRequest:
    """A 400 naming ``after``."""
    return BadRequest(f"{PARAMETER}: {message}", [Detail(PARAMETER, message)])


@dataclass(frozen=True)
class Keyset:
    """The order a keyset page walks: ``(column, descending)``, the sort then the key."""

    table: str
    columns: tuple[tuple[str, bool], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def fingerprint(self) -> str:
        shape = orjson.dumps([self.table, [[n, d] for n, d in self.columns]])
        return hashlib.sha256(shape).hexdigest()[:16]


def keyset_for(table: Table, sort: Sequence[tuple[str, bool, str | None]]) -> Keyset:
    """The keyset of ``sort`` on ``table``; a 400 when rows cannot be walked by one
    (no primary key, or a sort column that may be null)."""
    if not table.primary_key:
        raise refused(f"table {table.key!r} has no primary key, so it has no keyset "
                      "pagination; page with page= instead")
    columns: list[tuple[str, bool]] = []
    for name, descending, _ in sort:
        column = table.existing_column(name)
        if column.nullable and name not in table.primary_key:
            raise refused(f"sort column {name!r} may be null, so rows cannot be walked by "
                          "it; sort by non-nullable columns or page with page= instead")
        columns.append((name, descending))
    used = {name for name, _ in columns}
    columns += [(name, False) for name in table.primary_key if name not in used]
    return Keyset(table.key, tuple(columns))


def encode_cursor(keyset: Keyset, row: Mapping[str, Any]) -> str:
    """The cursor for the rows after ``row`` (a row as the API answers it)."""
    text = orjson.dumps({"f": keyset.fingerprint, "v": [row[name] for name in keyset.names]})
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


def decode_cursor(keyset: Keyset, table: Table, text: str,
                  encode: Callable[[str, Any], Any]) -> list[Any]:
    """The cursor's values, checked against their columns and encoded for the driver."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise refused("not a cursor from this API (pass back next_after as it was "
                      "given)") from None
    if not isinstance(cursor, dict) or not isinstance(cursor.get("v"), list):
        raise refused("not a cursor from this API (pass back next_after as it was given)")
    if cursor.get("f") != keyset.fingerprint:
        raise refused("the cursor belongs to another table or sort; keep the sort of the "
                      "request that gave it")
    values = cursor["v"]
    if len(values) != len(keyset.columns):
        raise refused("the cursor does not match this sort")
    encoded = []
    for name, value in zip(keyset.names, values, strict=True):
        column = table.existing_column(name)
        if value is None:
            raise refused(f"the cursor's value for {name!r} is null")
        try:
            parsed = codec.parse_value(column, value, PARAMETER)
        except ApiError:
            raise refused(f"the cursor's value for {name!r} is not a valid "
                          f"{column.kind}") from None
        encoded.append(encode(column.kind, parsed))
    return encoded


def after_predicate(keyset: Keyset, catalog: Catalog, table: Table, values: Sequence[Any],
                    comparable: Comparable) -> Predicate:
    """The rows strictly after ``values`` in the keyset's order; both sides in the form
    the dialect compares a column's kind in (keyset pages are ordered by it too)."""
    sa_table = catalog.sa_table(table)
    params = {f"_after{i}": value for i, value in enumerate(values)}

    def build() -> sa.ColumnElement[bool]:
        kinds = [table.existing_column(name).kind for name in keyset.names]
        columns = [comparable(sa_table.c[name], kind)
                   for name, kind in zip(keyset.names, kinds, strict=True)]
        binds = [comparable(sa.bindparam(f"_after{i}"), kind) for i, kind in enumerate(kinds)]
        directions = {descending for _, descending in keyset.columns}
        if len(directions) == 1:  # one direction: a row comparison says it
            descending = directions.pop()
            if len(columns) == 1:
                return columns[0] < binds[0] if descending else columns[0] > binds[0]
            left, right = sa.tuple_(*columns), sa.tuple_(*binds)
            return left < right if descending else left > right
        # mixed directions: equal on the columns before, past the value on this one
        terms = []
        for i, (column, bind) in enumerate(zip(columns, binds, strict=True)):
            past = column < bind if keyset.columns[i][1] else column > bind
            terms.append(sa.and_(*[c == b for c, b in zip(columns[:i], binds[:i],
                                                          strict=True)], past))
        return sa.or_(*terms)

    clause = catalog.clause(("after", keyset.table, keyset.columns), build)
    return Predicate(("after", keyset.columns), clause, params)
