"""pytest fixtures for swain and plugin test suites.

Load with ``pytest_plugins = ["swain.contrib.testing.fixtures"]``.  A test
module sets ``DDL`` (a script, or a dict of dialect → script) and gets, once
per module and per dialect, a fresh database holding it (``database``) and a
live server over it (``server``, with ``server.url``).  Modules can set
``SWAIN_CONFIG`` (a dict of sections) to configure the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import DIALECTS, FreshDatabase, LiveServer, selected_dialects, serving, write_config


def _module_ddl(request: pytest.FixtureRequest, dialect: str) -> str:
    ddl: Any = getattr(request.module, "DDL", "")
    if isinstance(ddl, dict):
        return str(ddl.get(dialect, ddl.get("default", "")))
    return str(ddl)


@pytest.fixture(scope="module", params=selected_dialects())
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def only_dialect(*names: str) -> Any:
    """A ``dialect`` fixture for a module whose tests concern some databases only;
    assign it in the module: ``dialect = only_dialect("mysql")``.  It still
    follows ``SWAIN_TEST_DIALECTS``: left out there, the module has no tests to run."""
    for name in names:
        if name not in DIALECTS:
            raise ValueError(f"unknown dialect {name!r}")

    @pytest.fixture(scope="module", name="dialect",
                    params=[d for d in selected_dialects() if d in names])
    def chosen_dialect(request: pytest.FixtureRequest) -> str:
        return str(request.param)

    return chosen_dialect


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest, dialect: str) -> Iterator[FreshDatabase]:
    db = FreshDatabase(dialect)
    try:
        script = _module_ddl(request, dialect)
        if script:
            db.run_script(script)
        yield db
    finally:
        db.drop()


@pytest.fixture(scope="module")
def config_path(request: pytest.FixtureRequest, database: FreshDatabase,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    sections = getattr(request.module, "SWAIN_CONFIG", {})
    return write_config(tmp_path_factory.mktemp("config"), database.swain_url, **sections)


@pytest.fixture(scope="module")
def server(config_path: Path) -> Iterator[LiveServer]:
    with serving(config_path) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http
