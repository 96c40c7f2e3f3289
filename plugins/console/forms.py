"""Reading form values the same way from an HTML form and from a JSON body.

A form is a mapping of field name (a setting's path, e.g.
``auth.access_token_expiry``) to a string or a list of strings; JSON bodies
are normalised into that shape (``true`` → ``"on"``), so every page and its
API call go through the same validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from swain.core import BadRequest, PayloadTooLarge
from swain.core.codec import loads

Form = Mapping[str, Any]
ON = ("on", "true", "1", "yes")


def text(form: Form, key: str) -> str:
    value = form.get(key)
    if isinstance(value, list):
        value = value[-1] if value else ""
    return "" if value is None else str(value).strip()


def optional(form: Form, key: str) -> str | None:
    return text(form, key) or None


def flag(form: Form, key: str) -> bool:
    return text(form, key).lower() in ON


def items(form: Form, key: str) -> list[str]:
    """Several values: repeated fields, a list, or one comma/line separated text."""
    value = form.get(key)
    values = value if isinstance(value, list) else [value] if value is not None else []
    out: list[str] = []
    for entry in values:
        for part in str(entry).replace("\n", ",").split(","):
            if part.strip() and part.strip() not in out:
                out.append(part.strip())
    return out


def _normalise(value: Any) -> Any:
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, dict):
        raise BadRequest("expected plain values (strings, numbers, booleans or lists)")
    return str(value)


def from_json(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return {str(k): _normalise(v) for k, v in body.items()}


def from_post(data: MultiDictProxy[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in set(data.keys()):
        values = [v for v in data.getall(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 else (values[0] if values else "")
    return out


async def read_json(request: web.Request) -> Any:
    """The body as strict JSON (no NaN, no duplicate keys); an oversized body is a 413."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("the request body is too large") from None
    if not raw:
        raise BadRequest("a JSON request body is required")
    return loads(raw)


async def read(request: web.Request) -> dict[str, Any]:
    """The request's fields, from a JSON body or a posted form."""
    if request.content_type == "application/json":
        return from_json(await read_json(request))
    try:
        return from_post(await request.post())
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("the form is too large") from None
