"""Round trips through the table API, checked on the way."""

from __future__ import annotations

from typing import Any

import httpx


def create_and_read_back(client: httpx.Client, table: str, row: dict[str, Any]) -> dict[str, Any]:
    """``POST /<table>`` with ``row``, asserting 201, then assert that
    ``GET /<table>/<id>`` answers exactly the created row; returns it."""
    r = client.post(f"/{table}", json=row)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    assert client.get(f"/{table}/{created['id']}").json() == created
    return created


def assert_same_json(a: Any, b: Any, where: str = "") -> None:
    """Two parsed JSON values alike: the same members in the same order, the same
    types (a boolean is no number, a decimal's string no number), numbers of equal
    value (``3`` and ``3.0``); the assertion names the path where they differ."""
    if isinstance(a, bool) or isinstance(b, bool):
        assert type(a) is type(b) and a == b, (where, a, b)
    elif isinstance(a, int | float) and isinstance(b, int | float):
        assert a == b, (where, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b), (where, list(a), list(b))
        for key in a:
            assert_same_json(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_json(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)
