"""Structured logging: JSON lines in production, readable text in development.

Every record may carry ``extra={"fields": {...}}``; the JSON formatter puts
those fields at the top level of the line, the text formatter appends the
ones the message does not already say.  The access log (logger
``swain.access``) writes one record per request with ``request_id``,
``user_id``, ``route``, ``status`` and ``duration_ms``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson

ACCESS = logging.getLogger("swain.access")
#: the status logged for a request its client abandoned
CLIENT_CLOSED = 499

#: access-log fields the text line already shows in its message
_IN_ACCESS_MESSAGE = frozenset({"method", "path", "status", "duration_ms", "remote"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's ``fields`` at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            # several workers write to one stream; the pid tells their lines apart
            "pid": record.process or os.getpid(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL message key=value…`` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        if record.name == ACCESS.name:
            fields = {k: v for k, v in fields.items() if k not in _IN_ACCESS_MESSAGE}
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        extras = " ".join(f"{k}={'-' if v is None else v}" for k, v in fields.items())
        if extras:
            line += " " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def use_json(fmt: str, stage: str) -> bool:
    """``logging.format`` ``auto`` means JSON everywhere except in development."""
    return fmt == "json" or (fmt == "auto" and stage != "development")


def configure(level: str = "info", fmt: str = "auto", stage: str = "development") -> None:
    """Install one handler on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json(fmt, stage) else TextFormatter())
    handler.set_name("swain")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "swain"]
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters (row values) at debug
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))


def access(fields: dict[str, Any]) -> None:
    """Log one finished request (``fields`` as built by the request middleware); a
    request its client abandoned (499) is routine, so it is logged at debug."""
    level = logging.DEBUG if fields["status"] == CLIENT_CLOSED else logging.INFO
    ACCESS.log(level, "%s %s %s %.1fms", fields["method"], fields["path"], fields["status"],
               fields["duration_ms"], extra={"fields": fields})


def redacted(exc: BaseException, describe: Callable[[BaseException], str | None]) -> str:
    """An exception and its causes with their stacks, each message replaced by
    ``describe(exc)`` where that gives one (database errors, whose messages hold row
    values), so nothing a client sent or stored reaches the log."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        description = describe(current)
        message = description if description is not None else str(current)
        parts.append("".join(traceback.format_tb(current.__traceback__))
                     + f"{type(current).__module__}.{type(current).__qualname__}: {message}")
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return "\n\nwhile handling, or caused by:\n".join(parts)
