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
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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

CHECKS = (not_a_server_error, status_code_conformance, response_schema_conformance,
          content_type_conformance)
BOUNDS = settings(max_examples=8, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
#: The demo operations exercised: tables with composite keys, enums, a view whose computed
#: columns have no declared type, and the user table, within budget.
DEMO_PATHS = r"^/(products|orders|users|order_items|order_totals)(/|$)"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

#: Requests schemathesis once found answered against the document: a view's untyped
#: columns, and atomic bulk batches that fail (their status is the failing row's,
#: their body the per-row result).
KNOWN_CRASHES: list[tuple[str, str, dict[str, str], Any]] = [
    ("POST", "/order_totals/filter", {}, {}),
    ("POST", "/order_totals/filter/query", {}, {}),
    ("POST", "/users/bulk", {"atomic": "true"}, [{"unknown column": 1}]),
    ("POST", "/orders/bulk", {"on_conflict": "update", "atomic": "true"},
     [{"status": "shipped", "user_id": -183, "account_id": -201, "notes": "x"}]),
    ("POST", "/products/bulk", {"on_conflict": "ignore", "atomic": "true"},
     [{"sku": "x", "name": "y", "price": "not a number"}]),
    ("PUT", "/users/bulk", {"atomic": "true"}, [{"id": 987654, "first_name": "nobody"}]),
    ("PUT", "/accounts/bulk", {"atomic": "true"}, [{"plan": "enterprise"}]),
    ("PUT", "/order_items/bulk", {"atomic": "true"}, [{}, {}]),
]


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


def keeps_every_user(case: Any) -> bool:
    """False for a mass operation on every user (``"all": true`` on ``/users/filter``).

    The demo run signs in as one of them: deleting or deactivating them all is
    answered as documented, and leaves every later request of the module a 401.
    """
    return not (case.path == "/users/filter" and isinstance(case.body, dict)
                and case.body.get("all") is True)


def drive(schema: Any, base_url: str, headers: dict[str, str] | None = None) -> int:
    """Run every operation of ``schema`` within BOUNDS; raise on the first contradiction."""
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1

        @given(case=operation.as_strategy().filter(keeps_every_user))
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


@pytest.mark.parametrize(("method", "path", "query", "body"), KNOWN_CRASHES,
                         ids=[f"{m} {p} {q}" for m, p, q, _ in KNOWN_CRASHES])
def test_known_crashes_are_answered_as_documented(demo: tuple[str, dict[str, str]], method: str,
                                                  path: str, query: dict[str, str],
                                                  body: Any) -> None:
    url, headers = demo
    loaded = schemathesis.openapi.from_url(url + "/openapi.json", headers=headers)
    operation = loaded[path][method].ok() if hasattr(loaded[path][method], "ok") \
        else loaded[path][method]
    case = operation.Case(query=query, body=body, media_type="application/json")
    response = case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
    assert response.status_code != 500


def test_undeclared_methods_answer_405_naming_the_declared_ones(
        demo: tuple[str, dict[str, str]]) -> None:
    url, headers = demo
    document = httpx.get(url + "/openapi.json", headers=headers, timeout=30).json()
    checked = 0
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for template, operations in document["paths"].items():
            declared = {m.upper() for m in operations if m.upper() in HTTP_METHODS}
            if not declared or "{" in template.replace("{id}", ""):
                continue
            path = template.replace("{id}", "1")
            for method in set(HTTP_METHODS) - declared:
                r = http.request(method, path, json={})
                assert r.status_code == 405, (method, path, r.status_code, r.text)
                assert r.json()["error"]["code"] == "method_not_allowed"
                allowed = {m.strip() for m in r.headers["Allow"].split(",")}
                assert declared <= allowed, (method, path, allowed)
                checked += 1
    assert checked > 50
