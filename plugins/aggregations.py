"""Aggregate functions for the filter grammar's ``aggregations``.

``COUNT``, ``COUNT_DISTINCT``, ``SUM``, ``AVG``, ``MIN`` and ``MAX``, offered
through ``swain_aggregate_functions``.  Core's query engine groups, filters
with HAVING on aliases, sorts and pages; inside a relationship it computes
them per parent row.  Disabling this plugin (``[plugins] disable =
["aggregations"]``) turns every ``aggregations`` payload into a 422.

Results are the same on every database: counts are integers, ``AVG`` is a
JSON number, ``SUM`` keeps its column's kind (a decimal sum is an exact decimal
string at the column's scale), ``MIN``/``MAX`` are values of the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from swain.core import Column, Config, hookimpl

_NUMERIC = ("integer", "number", "decimal")
_ORDERED = (*_NUMERIC, "string", "date", "datetime", "datetime_tz", "time")


@dataclass(frozen=True)
class Count:
    """``COUNT(*)``, or the non-null values of a field."""

    needs_field = False
    kinds = None

    def build(self, column: sa.ColumnElement[Any] | None) -> sa.ColumnElement[Any]:
        return sa.func.count() if column is None else sa.func.count(column)

    def result_kind(self, column: Column | None) -> str:
        return "integer"


@dataclass(frozen=True)
class CountDistinct:
    needs_field = True
    kinds = None

    def build(self, column: sa.ColumnElement[Any] | None) -> sa.ColumnElement[Any]:
        assert column is not None
        return sa.func.count(sa.distinct(column))

    def result_kind(self, column: Column | None) -> str:
        return "integer"


@dataclass(frozen=True)
class Sum:
    needs_field = True
    kinds = _NUMERIC

    def build(self, column: sa.ColumnElement[Any] | None) -> sa.ColumnElement[Any]:
        return sa.func.sum(column)

    def result_kind(self, column: Column | None) -> str:
        return column.kind if column is not None else "number"


@dataclass(frozen=True)
class Avg:
    needs_field = True
    kinds = _NUMERIC

    def build(self, column: sa.ColumnElement[Any] | None) -> sa.ColumnElement[Any]:
        return sa.func.avg(column)

    def result_kind(self, column: Column | None) -> str:
        return "number"


@dataclass(frozen=True)
class Extreme:
    """``MIN`` or ``MAX`` of an ordered column, in the column's own kind."""

    function: str
    needs_field = True
    kinds = _ORDERED

    def build(self, column: sa.ColumnElement[Any] | None) -> sa.ColumnElement[Any]:
        return getattr(sa.func, self.function)(column)  # type: ignore[no-any-return]

    def result_kind(self, column: Column | None) -> str:
        return column.kind if column is not None else "number"


@hookimpl
def swain_aggregate_functions(config: Config) -> Mapping[str, Any]:
    return {"COUNT": Count(), "COUNT_DISTINCT": CountDistinct(), "SUM": Sum(), "AVG": Avg(),
            "MIN": Extreme("min"), "MAX": Extreme("max")}
