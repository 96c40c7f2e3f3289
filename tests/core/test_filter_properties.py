"""Property: for random filter trees, the API returns exactly the rows that a
Python evaluation of the same tree (with SQL's three-valued logic) selects.

Runs on every database with a bounded number of examples; the data holds
NULLs in every column, case variants, unicode, and ``%``/``_`` in text.
"""

from __future__ import annotations

import random
import re
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TEXTS = ["abc", "ABC", "aBc", "a%c", "a_c", "x", "", "Zoë", "zoë", "日本", "ab", None]
INTS = [-5, 0, 1, 2, 3, 10, 2**40, None]
DECIMALS = ["0.00", "1.50", "-2.25", "1000000.01", None]
BOOLS = [True, False, None]


def _make_rows() -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [{"id": i, "s": rng.choice(TEXTS), "n": rng.choice(INTS),
             "d": rng.choice(DECIMALS), "b": rng.choice(BOOLS)} for i in range(1, 41)]


ROWS = _make_rows()


def _literal(value: Any, dialect: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        if dialect == "postgresql":
            return "true" if value else "false"
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    text = "'" + str(value).replace("'", "''") + "'"
    return text if dialect == "sqlite" else text.replace("%", "%%")


def _ddl(dialect: str) -> str:
    names = ("id", "s", "n", "d", "b")
    values = ", ".join("(" + ", ".join(_literal(row[k], dialect) for k in names) + ")"
                       for row in ROWS)
    return f"""
CREATE TABLE t (id INTEGER PRIMARY KEY, s VARCHAR(20), n BIGINT, d DECIMAL(12,2), b BOOLEAN);
INSERT INTO t (id, s, n, d, b) VALUES {values}
"""


DDL = {name: _ddl(name) for name in ("sqlite", "postgresql", "mysql")}

# -- generating trees --------------------------------------------------------------

PATTERNS = ["a%", "%c", "a_c", "%\\%%", "%\\_%", "_", "%", "%B%", "zo%", "日%"]
FRAGMENTS = ["a", "b", "B", "c", "%", "_", "", "ë", "Zo", "本", "abc"]

_ints = st.sampled_from([v for v in INTS if v is not None] + [4, -100])
_decimals = st.sampled_from([v for v in DECIMALS if v is not None] + ["1.5", "2"])
_texts = st.sampled_from([v for v in TEXTS if v is not None] + ["AbC", "q"])


def _ordered(field: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    single = st.tuples(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), values)
    many = st.tuples(st.sampled_from(["in", "nin"]), st.lists(values, min_size=1, max_size=4))
    between = st.tuples(st.just("between"), st.lists(values, min_size=2, max_size=2))
    null = st.tuples(st.just("isnull"), st.booleans())
    return st.one_of(single, many, between, null).map(
        lambda pair: {"field": field, "operator": pair[0], "value": pair[1]})


def _text_conditions() -> st.SearchStrategy[dict[str, Any]]:
    equal = st.tuples(st.sampled_from(["eq", "ne"]), _texts)
    many = st.tuples(st.sampled_from(["in", "nin"]), st.lists(_texts, min_size=1, max_size=4))
    like = st.tuples(st.sampled_from(["like", "ilike"]), st.sampled_from(PATTERNS))
    parts = st.tuples(st.sampled_from(["contains", "icontains", "startswith", "istartswith",
                                       "endswith", "iendswith"]), st.sampled_from(FRAGMENTS))
    null = st.tuples(st.just("isnull"), st.booleans())
    return st.one_of(equal, many, like, parts, null).map(
        lambda pair: {"field": "s", "operator": pair[0], "value": pair[1]})


_bool_conditions = st.one_of(
    st.tuples(st.sampled_from(["eq", "ne"]), st.booleans()),
    st.tuples(st.just("isnull"), st.booleans()),
).map(lambda pair: {"field": "b", "operator": pair[0], "value": pair[1]})

conditions = st.one_of(_ordered("n", _ints), _ordered("d", _decimals), _text_conditions(),
                       _bool_conditions)

trees = st.recursive(
    conditions,
    lambda children: st.builds(lambda op, items: {"operator": op, "expressions": items},
                               st.sampled_from(["AND", "OR", "NOT", "and", "Or"]),
                               st.lists(children, min_size=1, max_size=3)),
    max_leaves=8,
)

# -- evaluating them in Python -----------------------------------------------------------


def _like(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


def _typed(field: str, value: Any) -> Any:
    return Decimal(str(value)) if field == "d" and value is not None else value


def evaluate(node: dict[str, Any], row: dict[str, Any]) -> bool | None:
    """SQL's three-valued logic: ``None`` is unknown."""
    if "field" not in node:
        results = [evaluate(child, row) for child in node["expressions"]]
        op = node["operator"].upper()
        if op == "OR":
            return True if True in results else (None if None in results else False)
        conj = False if False in results else (None if None in results else True)
        if op == "NOT":
            return None if conj is None else not conj
        return conj
    field, op, value = node["field"], node["operator"], node["value"]
    actual = _typed(field, row[field])
    if op == "isnull":
        return (actual is None) == value
    if actual is None:
        return None
    if op in ("in", "nin"):
        found = actual in [_typed(field, v) for v in value]
        return found if op == "in" else not found
    if op == "between":
        low, high = (_typed(field, v) for v in value)
        return low <= actual <= high
    if op in ("like", "ilike"):
        return _like(value, op == "like").fullmatch(actual) is not None
    if op in ("contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"):
        text, needle = (actual, value) if not op.startswith("i") else (actual.lower(),
                                                                        value.lower())
        base = op.lstrip("i") if op.startswith("i") else op
        return {"contains": needle in text, "startswith": text.startswith(needle),
                "endswith": text.endswith(needle)}[base]
    other = _typed(field, value)
    return {"eq": actual == other, "ne": actual != other, "gt": actual > other,
            "gte": actual >= other, "lt": actual < other, "lte": actual <= other}[op]


@settings(max_examples=50, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(trees, min_size=0, max_size=3))
def test_api_agrees_with_python(client: Any, expressions: list[dict[str, Any]]) -> None:
    r = client.post("/t/filter?page_size=100", json={"expressions": expressions})
    assert r.status_code == 200, r.text
    got = [row["id"] for row in r.json()["data"]]
    expected = [row["id"] for row in ROWS
                if evaluate({"operator": "AND", "expressions": expressions}, row) is True]
    assert got == expected
    count = client.post("/t/count", json={"expressions": expressions}).json()["count"]
    assert count == len(expected)
