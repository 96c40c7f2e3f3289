"""Values across the JSON boundary, in both directions, per column kind.

Input: :func:`parse_value` checks a JSON (or query-string) value against a
column and returns the Python value to bind, or raises a 422 naming the field.
Output: drivers mostly return the right Python types already; a dialect fixes
the rest in :meth:`Dialect.decode`, and :func:`dumps` serialises with orjson
(decimals as strings so no client float-rounds them, binary as base64).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .errors import BadRequest, invalid
from .schema import Column

JSON_SCALARS = (str, int, float, bool, type(None))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return format_interval(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(body: bytes | str) -> Any:
    """Strict JSON for request bodies (400 otherwise).

    Refuses ``NaN``/``Infinity`` and duplicate keys (where "the last one wins"
    would let a second ``"tenant_id"`` slip past a check on the first), and
    keeps big integers exact, which orjson would turn into floats.
    """
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise BadRequest(f"request body repeats the key {exc.args[0]!r}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def format_interval(value: dt.timedelta) -> str:
    """ISO-8601 duration, e.g. ``P1DT2H3M4.5S``."""
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P{int(days)}DT{int(hours)}H{int(minutes)}M{seconds:g}S"
    return text


def _parse_datetime(text: str) -> dt.datetime:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def parse_value(column: Column, value: Any, path: str, *, from_text: bool = False) -> Any:
    """The Python value for ``column`` from a JSON value (or query-string text)."""
    if value is None:
        if not column.nullable and not from_text:
            raise invalid(path, "may not be null")
        return None
    try:
        return _PARSERS[column.kind](column, value, path, from_text)
    except (ValueError, TypeError, InvalidOperation, binascii.Error, OverflowError):
        raise invalid(path, f"expected {_EXPECTED[column.kind]}") from None


def _integer(column: Column, value: Any, path: str, from_text: bool) -> int:
    if from_text and isinstance(value, str):
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError
    return value


def _number(column: Column, value: Any, path: str, from_text: bool) -> float:
    if from_text and isinstance(value, str):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError
    return float(value)


def _decimal(column: Column, value: Any, path: str, from_text: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError
    if column.precision is not None:
        scale = column.scale or 0
        sign, digits, exponent = number.as_tuple()
        decimals = max(0, -int(exponent))
        if decimals > scale:
            raise invalid(path, f"at most {scale} decimal places (numeric({column.precision},{scale}))")
        if len(digits) - decimals > column.precision - scale:
            raise invalid(path, f"out of range for numeric({column.precision},{scale})")
    return number


def _string(column: Column, value: Any, path: str, from_text: bool) -> str:
    if not isinstance(value, str):
        raise ValueError
    if column.max_length is not None and len(value) > column.max_length:
        raise invalid(path, f"at most {column.max_length} characters")
    if column.enum_values is not None and value not in column.enum_values:
        raise invalid(path, f"one of {', '.join(column.enum_values)}")
    if "\x00" in value:
        raise invalid(path, "NUL characters are not allowed")
    return value


def _boolean(column: Column, value: Any, path: str, from_text: bool) -> bool:
    if from_text and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "t", "yes"):
            return True
        if lowered in ("false", "0", "f", "no"):
            return False
        raise ValueError
    if not isinstance(value, bool):
        raise ValueError
    return value


def _date(column: Column, value: Any, path: str, from_text: bool) -> dt.date:
    if not isinstance(value, str):
        raise ValueError
    return dt.date.fromisoformat(value)


def _datetime(column: Column, value: Any, path: str, from_text: bool) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError
    parsed = _parse_datetime(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _datetime_tz(column: Column, value: Any, path: str, from_text: bool) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError
    parsed = _parse_datetime(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _time(column: Column, value: Any, path: str, from_text: bool) -> dt.time:
    if not isinstance(value, str):
        raise ValueError
    return dt.time.fromisoformat(value)


def _uuid(column: Column, value: Any, path: str, from_text: bool) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError
    return uuid.UUID(value)


def _json(column: Column, value: Any, path: str, from_text: bool) -> Any:
    if from_text and isinstance(value, str):
        return orjson.loads(value)
    return value


def _binary(column: Column, value: Any, path: str, from_text: bool) -> bytes:
    if not isinstance(value, str):
        raise ValueError
    data = base64.b64decode(value, validate=True)
    if column.max_length is not None and len(data) > column.max_length:
        raise invalid(path, f"at most {column.max_length} bytes")
    return data


def _array(column: Column, value: Any, path: str, from_text: bool) -> list[Any]:
    if from_text and isinstance(value, str):
        value = orjson.loads(value)
    if not isinstance(value, list):
        raise ValueError
    item = Column(name=column.name, sql_type="", kind=column.item_kind or "string")
    return [parse_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]


def _interval(column: Column, value: Any, path: str, from_text: bool) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


_PARSERS: dict[str, Callable[[Column, Any, str, bool], Any]] = {
    "integer": _integer, "number": _number, "decimal": _decimal, "string": _string,
    "boolean": _boolean, "date": _date, "datetime": _datetime, "datetime_tz": _datetime_tz,
    "time": _time, "uuid": _uuid, "json": _json, "binary": _binary, "array": _array,
    "interval": _interval,
}

_EXPECTED = {
    "integer": "an integer", "number": "a number", "decimal": "a decimal number (string or number)",
    "string": "a string", "boolean": "true or false", "date": "an ISO-8601 date (YYYY-MM-DD)",
    "datetime": "an ISO-8601 timestamp", "datetime_tz": "an ISO-8601 timestamp with a time zone",
    "time": "an ISO-8601 time (HH:MM:SS)", "uuid": "a UUID", "json": "a JSON value",
    "binary": "base64-encoded bytes", "array": "an array", "interval": "an interval",
}
