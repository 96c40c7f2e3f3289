"""The document tells the truth: schemathesis drives the live API from
its own OpenAPI document, for the demo shop and for a database with unusual
names, and finds no server error, no undocumented status code and no response
that contradicts its schema.  Bounded in examples and time for CI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from swain.contrib.demo import DEMO_EMAIL, DEMO_PASSWORD, prepare
from swain.contrib.testing import LiveServer
from swain.core import create_app, load_config

pytestmark = pytest.mark.slow

_DDL = """
CREATE TABLE "Odd Names" (
    "Row ID" INTEGER PRIMARY KEY,
    "Class" VARCHAR(40) NOT NULL,
    "select" INTEGER,
    "mixedCase" VARCHAR(20)
);
"""
DDL = {"default": _DDL, "mysql": _DDL.replace('"', "`")}
SWAIN_CONFIG: dict[str, Any] = {}

CHECKS = (not_a_server_error, status_code_conformance, response_schema_conformance)
BOUNDS = settings(max_examples=8, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
#: The demo operations exercised: three tables (reads, writes, filters) stay within budget.
DEMO_PATHS = r"^/(products|orders|categories)(/|$)"


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, dict[str, str]]]:
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="swain-st-"))
    config, pm = load_config(prepare(folder), "development", environ={})
    with LiveServer(create_app(config, pm)) as server:
        login = httpx.post(server.url + "/auth/login", timeout=30,
                           json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        yield server.url, {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture(scope="module")
def demo_schema(demo: tuple[str, dict[str, str]]) -> Any:
    url, headers = demo
    loaded = schemathesis.openapi.from_url(url + "/openapi.json", headers=headers)
    loaded.config.base_url = url
    return loaded.include(path_regex=DEMO_PATHS)


@pytest.fixture(scope="module")
def odd_schema(server: Any) -> Any:
    loaded = schemathesis.openapi.from_url(server.url + "/openapi.json")
    loaded.config.base_url = server.url
    return loaded.include(path_regex=r"^/Odd%20Names(/|$)")


def drive(schema: Any, base_url: str, headers: dict[str, str] | None = None) -> int:
    """Run every operation of ``schema`` within BOUNDS; raise on the first contradiction."""
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1

        @given(case=operation.as_strategy())
        @BOUNDS
        def check(case: Any) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # every operation runs; failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
    return count


def test_demo_document_tells_the_truth(demo_schema: Any,
                                       demo: tuple[str, dict[str, str]]) -> None:
    assert drive(demo_schema, demo[0], demo[1]) >= 10


def test_unusual_names_document_tells_the_truth(odd_schema: Any, server: Any) -> None:
    assert drive(odd_schema, server.url) >= 10
