"""Shared fixtures of the SDK tooling tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: the smallest document that still yields an API class and a model
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "wizard", "version": "1"},
    "paths": {"/notes": {"get": {
        "operationId": "listNotes", "tags": ["notes"],
        "responses": {"200": {"description": "The notes.", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Note"}}}}}}}}},
    "components": {"schemas": {"Note": {
        "type": "object", "required": ["id"],
        "properties": {"id": {"type": "integer"}, "text": {"type": "string"}}}}},
}


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    """:data:`SPEC` written as ``spec.json``."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    return path
