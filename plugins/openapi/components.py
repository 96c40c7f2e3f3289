"""Small pieces every part of the document uses."""

from __future__ import annotations

from urllib.parse import quote

from swain.core import Table
from swain.core.catalog import RESERVED_NAMES


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def table_path(table: Table) -> str:
    """The path a table is served at: ``/{t}``, or ``/tables/{t}`` for reserved names."""
    encoded = quote(table.key, safe="")
    if table.key.lower() in RESERVED_NAMES:
        return f"/tables/{encoded}"
    return f"/{encoded}"
