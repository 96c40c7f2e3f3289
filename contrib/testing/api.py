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
