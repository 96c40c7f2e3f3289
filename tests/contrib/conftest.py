"""Shared fixtures of the SDK tooling tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from swain.contrib.demo import DEMO_EMAIL, DEMO_PASSWORD, prepare
from swain.contrib.swain_cli import cli
from swain.contrib.testing import LiveServer
from swain.core import create_app, load_config

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


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The demo app on a live server, once per module: its URL and an access
    token of the demo account (the login is checked)."""
    folder = tmp_path_factory.mktemp("demo")
    config, pm = load_config(prepare(folder), "development", environ={})
    with LiveServer(create_app(config, pm)) as server:
        login = httpx.post(server.url + "/auth/login", timeout=30,
                           json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        yield server.url, login.json()["access_token"]


@pytest.fixture
def generate_sdk(tmp_path: Path) -> Callable[..., Path]:
    """``generate_sdk(url, language, *options)``: ``swain_cli gen`` from the live
    document at ``url`` into ``tmp_path/sdks``, checked to succeed; returns the
    folder of that language's SDK."""

    def generate(url: str, language: str, *options: str) -> Path:
        result = CliRunner().invoke(cli, ["gen", "--swain-base", url, "-l", language,
                                          "-o", str(tmp_path / "sdks"), *options])
        assert result.exit_code == 0, result.output
        return tmp_path / "sdks" / language

    return generate
