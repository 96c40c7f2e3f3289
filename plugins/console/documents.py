"""The OpenAPI document of a project's stage, built by swain's own builder from
the stage's synced schema (no server needs to run): what
``/api/dynamic_swagger`` answers and what the SDKs are generated from."""

from __future__ import annotations

from typing import Any

from swain.core import ConfigError, Runtime, Schema
from swain.plugins.openapi import build_document

from . import database, projects
from .context import Console
from .settings import FieldError, field_error
from .store import ConnectionRow, Project

METHODS = ("get", "post", "put", "patch", "delete")


async def document(c: Console, found: Project, row: ConnectionRow,
                   public_url: str | None = None) -> dict[str, Any]:
    latest = await database.latest(c, found, row)
    if latest is None:
        raise FieldError({"connection": f"connection #{row.id} ({row.stage}) has no synced "
                                        "schema yet; sync it first (step 3)"}, 409)
    overrides = {"api.public_url": public_url} if public_url else None
    built = await projects.build(c, found, row, overrides)
    try:
        runtime = Runtime.build(built.config, built.pm)
        runtime.catalog = runtime.prepare(Schema.from_json(latest[1].schema))
        return build_document(runtime, served=False)
    except ConfigError as exc:
        raise field_error(exc, "settings") from None


def routes(document: dict[str, Any]) -> list[str]:
    """``METHOD /path`` of every operation, in the document's order."""
    found = []
    for path, operations in document.get("paths", {}).items():
        for method in METHODS:
            if method in operations:
                found.append(f"{method.upper()} {path}")
    return found
