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
import math
import re
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .errors import BadRequest, invalid
from .schema import Column

JSON_SCALARS = (str, int, float, bool, type(None))


def format_temporal(value: dt.date | dt.time) -> str:
    """ISO-8601 as PostgreSQL writes it in JSON: the fraction without trailing
    zeros (``09:30:00.5``), none when it is zero, so a value reads the same
    whether the row was serialised by the database or here."""
    text = value.isoformat()
    if getattr(value, "microsecond", 0):
        head, _, tail = text.partition(".")
        text = f"{head}.{tail[:6].rstrip('0')}{tail[6:]}"
    return text


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # never an exponent: 0E-10 is "0.0000000000"
    if isinstance(value, dt.date | dt.time):
        return format_temporal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return format_interval(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _stdlib_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    return _default(value)


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        # Only an integer beyond 64 bits (inside a JSON document) gets here;
        # the standard library writes it exactly.
        return json.dumps(value, default=_stdlib_default, ensure_ascii=False,
                          separators=(",", ":")).encode()


def json_text(value: Any) -> str:
    """A JSON document as text for a database that stores JSON as text.

    orjson refuses integers beyond 64 bits, which a client may legally send
    inside a document; the standard library writes them exactly.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_LONG_DIGITS = re.compile(r"\d{20}")


def strict_json(text: str | bytes | None) -> Any:
    """JSON text, exactly (``None`` for SQL's NULL); ``ValueError`` when it is not JSON.

    orjson turns integers beyond 64 bits into floats, so text holding a run
    of 20+ digits goes through the standard library.
    """
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if _LONG_DIGITS.search(text):
        return json.loads(text)
    return orjson.loads(text)


def json_from_text(text: str | bytes) -> Any:
    """A stored JSON document, exactly (:func:`strict_json`).  Text that is not JSON
    (an SQLite column only declared JSON) comes back as the string it is."""
    try:
        return strict_json(text)
    except ValueError:
        return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


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


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"the number {text[:40]} is too large")
    return number


def _no_lone_surrogates(value: Any) -> None:
    """Raise ``UnicodeEncodeError`` for a ``\\ud800``-style escape that is not half of a pair:
    no database driver can encode it (and neither can the error message)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads(body: bytes | str) -> Any:
    """Strict JSON for request bodies (400 otherwise).

    Refuses ``NaN``/``Infinity`` (also as an overflowing ``1e400``), lone
    surrogate escapes and duplicate keys (where "the last one wins" would let
    a second ``"tenant_id"`` slip past a check on the first), and keeps big
    integers exact, which orjson would turn into floats.
    """
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                           parse_float=_finite_float)
        # Only a \u escape can produce a surrogate; skip the walk without one.
        escaped = b"\\u" in body if isinstance(body, bytes) else "\\u" in body
        if escaped:
            try:
                _no_lone_surrogates(value)
            except UnicodeEncodeError:
                raise BadRequest("request body contains an unpaired UTF-16 surrogate "
                                 "escape") from None
        return value
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


#: a decimal written plainly: sign, digits, an optional fraction
_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")

#: digits before and after the point of the widest SQL decimal (PostgreSQL's numeric)
_DECIMAL_DIGITS = (131072, 16383)

#: the widest SQL integers: BIGINT and MySQL's BIGINT UNSIGNED
_INTEGER_RANGE = (-(2**63), 2**64 - 1)


def _integer(column: Column, value: Any, path: str, from_text: bool) -> int:
    if from_text and isinstance(value, str):
        value = int(value.strip())
    elif isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError
        value = int(value)
    low = _INTEGER_RANGE[0] if column.minimum is None else column.minimum
    high = _INTEGER_RANGE[1] if column.maximum is None else column.maximum
    if not low <= value <= high:
        raise invalid(path, f"out of range for {column.sql_type or 'an integer column'} "
                            f"({low} to {high})")
    return int(value)


def _number(column: Column, value: Any, path: str, from_text: bool) -> float:
    if from_text and isinstance(value, str):
        number = float(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError
    else:
        number = float(value)
    if not math.isfinite(number):  # "nan", "inf" or "1e999" in a query string
        raise ValueError
    return number


def _decimal(column: Column, value: Any, path: str, from_text: bool) -> Decimal:
    if isinstance(value, str) and column.precision is not None and _PLAIN_DECIMAL.fullmatch(value):
        # the usual "1234.50": digits counted from the text, no tuple analysis
        integral, _, fraction = value.lstrip("+-").partition(".")
        scale = column.scale or 0
        if len(fraction) <= scale and len(integral.lstrip("0")) <= column.precision - scale:
            return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError
    _, digits, exponent = number.as_tuple()
    if number.is_zero() and int(exponent) > 0:
        number, digits, exponent = Decimal(0), (0,), 0  # 0E+999999 is just 0
    # Digits before the point.  A huge exponent ("1e999999999") must fail here:
    # drivers that render decimals as text would spend minutes writing it out.
    whole = len(digits) + int(exponent)
    if whole > _DECIMAL_DIGITS[0] or -int(exponent) > _DECIMAL_DIGITS[1]:
        raise invalid(path, "out of range for a decimal column")
    if column.precision is not None:
        scale = column.scale or 0
        decimals = max(0, -int(exponent))
        if decimals > scale:
            raise invalid(path, f"at most {scale} decimal places (numeric({column.precision},{scale}))")
        if whole > column.precision - scale:
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
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    parsed.astimezone(dt.UTC)  # OverflowError (a 422) if the instant is outside years 1-9999 in UTC
    return parsed


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
    item = Column(name=column.name, sql_type="", kind=column.item_kind or "string",
                  max_length=column.max_length, minimum=column.minimum, maximum=column.maximum)
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
