"""The error contract over real HTTP.

Every error is ``{"error": {"code", "message", "details"?, "request_id"}}``
with the right status; constraint violations are 409/422 naming the
constraint or field; bad input is never a 500; no SQL, driver text or
traceback reaches the client; and a failed write leaves the data as it was.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swain.contrib.testing import FreshDatabase

MAX_BODY = 4096
SWAIN_CONFIG = {"api": {"max_body_size": MAX_BODY}}

DDL = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, email VARCHAR(60) NOT NULL, code VARCHAR(5),
                     CONSTRAINT uq_parent_email UNIQUE (email));
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL,
                    label VARCHAR(20) NOT NULL DEFAULT 'x', qty INTEGER NOT NULL DEFAULT 1,
                    price FLOAT, amount DECIMAL(8,2), born DATE, seen TIMESTAMP NULL,
                    CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id),
                    CONSTRAINT uq_child_label UNIQUE (parent_id, label),
                    CONSTRAINT ck_child_qty CHECK (qty > 0));
INSERT INTO parent (id, email, code) VALUES (1, 'a@example.com', 'A'), (2, 'b@example.com', 'B'),
                                            (3, 'lonely@example.com', NULL);
INSERT INTO child (id, parent_id, label, qty, price) VALUES (10, 1, 'first', 2, 1.5),
                                                            (11, 1, 'second', 1, NULL),
                                                            (12, 2, 'first', 5, 3.25)
"""

#: Text that would betray SQL, a driver or a stack trace in a response body.
LEAKS = ("SELECT", "INSERT", "UPDATE ", "DELETE FROM", "VALUES (", "psycopg", "pymysql",
         "aiomysql", "sqlite3", "Traceback", "IntegrityError", "OperationalError", "sqlalchemy",
         'File "', "%(", ":_v0", "_pk0")


def assert_no_leak(response: httpx.Response) -> None:
    for needle in LEAKS:
        assert needle not in response.text, (needle, response.text)
    assert "psycopg" not in response.text.lower() and "mysql" not in response.text.lower()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the §14 envelope with ``status`` and the request's id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    for detail in error.get("details", []):
        assert set(detail) == {"path", "message"}
    if code is not None:
        assert error["code"] == code
    assert_no_leak(response)
    return error  # type: ignore[no-any-return]


def snapshot(database: FreshDatabase) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (database.query("SELECT id, email, code FROM parent ORDER BY id"),
            database.query("SELECT id, parent_id, label, qty, price, amount, born, seen "
                           "FROM child ORDER BY id"))


@pytest.fixture
def unchanged(database: FreshDatabase) -> Iterator[None]:
    """The test's failed writes must leave both tables exactly as they were."""
    before = snapshot(database)
    yield
    assert snapshot(database) == before


# -- constraint violations ------------------------------------------------------------


def test_unique_violation_is_409_naming_the_constraint(client: httpx.Client, dialect: str,
                                                       unchanged: None) -> None:
    error = assert_error(client.post("/parent", json={"id": 9, "email": "a@example.com"}),
                         409, "conflict")
    if dialect == "sqlite":  # SQLite names the columns, not the constraint
        assert [d["path"] for d in error["details"]] == ["email"]
    else:
        assert "uq_parent_email" in error["message"]
    error = assert_error(client.patch("/parent/2", json={"email": "a@example.com"}), 409)
    assert "uq_parent_email" in error["message"] or error["details"][0]["path"] == "email"
    error = assert_error(client.post("/child", json={"id": 20, "parent_id": 1, "label": "first"}),
                         409)
    if dialect == "sqlite":
        assert sorted(d["path"] for d in error["details"]) == ["label", "parent_id"]
    else:
        assert "uq_child_label" in error["message"]
    assert_error(client.post("/parent", json={"id": 1, "email": "new@example.com"}), 409)
    assert_error(client.patch("/parent/2", json={"id": 1}), 409)


def test_foreign_key_violations_are_409(client: httpx.Client, dialect: str,
                                        unchanged: None) -> None:
    error = assert_error(client.post("/child", json={"id": 21, "parent_id": 999}), 409, "conflict")
    if dialect != "sqlite":  # SQLite does not say which key failed
        assert "fk_child_parent" in error["message"]
    assert "not exist" in error["message"] or "referenc" in error["message"]
    assert_error(client.patch("/child/10", json={"parent_id": 999}), 409)
    error = assert_error(client.delete("/parent/1"), 409, "conflict")
    if dialect != "sqlite":
        assert "fk_child_parent" in error["message"]
    assert_error(client.patch("/parent/1", json={"id": 100}), 409)


def test_check_constraint_is_422(client: httpx.Client, unchanged: None) -> None:
    error = assert_error(client.post("/child", json={"id": 22, "parent_id": 2, "qty": 0}),
                         422, "validation_error")
    assert "ck_child_qty" in error["message"]
    assert_error(client.patch("/child/12", json={"qty": -3}), 422)


def test_not_null_is_422_naming_the_field(client: httpx.Client, dialect: str,
                                          unchanged: None) -> None:
    error = assert_error(client.post("/parent", json={"id": 30, "email": None}), 422)
    assert [d["path"] for d in error["details"]] == ["email"]
    error = assert_error(client.patch("/child/10", json={"label": None, "qty": None}), 422)
    assert sorted(d["path"] for d in error["details"]) == ["label", "qty"]
    error = assert_error(client.post("/child", json={"label": "no parent"}), 422)
    # SQLite's INTEGER PRIMARY KEY is the rowid, filled in when omitted.
    missing = ["parent_id"] if dialect == "sqlite" else ["id", "parent_id"]
    assert sorted(d["path"] for d in error["details"]) == missing


def test_value_that_does_not_fit_is_422(client: httpx.Client, unchanged: None) -> None:
    error = assert_error(client.patch("/parent/1", json={"code": "toolong"}), 422)
    assert error["details"][0]["path"] == "code"
    assert_error(client.post("/child", json={"id": 2**70, "parent_id": 1}), 422)
    assert_error(client.post("/child", json={"id": 23, "parent_id": 1, "qty": "many"}), 422)
    assert_error(client.post("/child", json={"id": 23, "parent_id": 1, "price": "cheap"}), 422)
    assert_error(client.patch("/child/10", json={"price": True}), 422)
    assert_error(client.get("/child", params={"id": str(2**70)}), 422)


def test_a_successful_write_after_failures_still_works(client: httpx.Client,
                                                        database: FreshDatabase) -> None:
    r = client.post("/child", json={"id": 24, "parent_id": 3, "label": "ok", "price": 2.5})
    assert r.status_code == 201, r.text
    assert database.query("SELECT parent_id, label, qty FROM child WHERE id = 24") == [(3, "ok", 1)]
    r = client.delete("/child/24")
    assert r.status_code == 200 and r.json()["label"] == "ok"


# -- malformed requests -------------------------------------------------------------------


@pytest.mark.parametrize("body, status", [
    (b"{", 400),
    (b'{"id": 40, "email": "x@y"', 400),
    (b'{"id": NaN, "email": "x@y"}', 400),
    (b'{"id": 40, "email": "x@y", "code": Infinity}', 400),
    (b'{"id": -Infinity}', 400),
    (b'{"id": 40, "email": "x@y", "id": 41}', 400),
    (b'{"id": 40, "email": "\\ud800"}', 400),
    (b'{"id": 40, "email": "x@y"} trailing', 400),
    (b"\xff\xfe{}", 400),
    (b"hello", 400),
    (b"'single quotes'", 400),
    (b"[]", 422),
    (b'[{"id": 40, "email": "x@y"}]', 422),
    (b'"a string"', 422),
    (b"42", 422),
    (b"null", 422),
])
def test_malformed_bodies(client: httpx.Client, body: bytes, status: int, unchanged: None) -> None:
    for method, path in (("POST", "/parent"), ("PUT", "/parent/1"), ("PATCH", "/parent/1")):
        response = client.request(method, path, content=body,
                                  headers={"Content-Type": "application/json"})
        assert_error(response, status)


def test_price_overflowing_to_infinity_is_rejected(client: httpx.Client, unchanged: None) -> None:
    r = client.patch("/child/10", content=b'{"price": 1e400}',
                     headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_missing_or_empty_body(client: httpx.Client, unchanged: None) -> None:
    assert_error(client.post("/parent"), 400)
    assert_error(client.post("/parent", content=b"", headers={"Content-Type": "application/json"}),
                 400)
    assert_error(client.patch("/parent/1", json={}), 422)


def test_oversized_body_is_413(client: httpx.Client, unchanged: None) -> None:
    big = {"id": 50, "email": "x" * (MAX_BODY * 2)}
    assert_error(client.post("/parent", json=big), 413, "payload_too_large")
    assert_error(client.put("/parent/1", json={"email": "y" * (MAX_BODY * 2)}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"id": 51, "email": "'
        for _ in range(10):
            yield b"z" * 1024
        yield b'"}'

    assert_error(client.post("/parent", content=chunks(),
                             headers={"Content-Type": "application/json"}), 413)


def test_unknown_table_route_and_method(client: httpx.Client) -> None:
    error = assert_error(client.get("/no_such_table"), 404, "not_found")
    assert "no_such_table" in error["message"]
    assert_error(client.get("/tables/no_such_table/1"), 404)
    assert_error(client.post("/no_such_table", json={"a": 1}), 404)
    assert_error(client.get("/parent/1/extra/segments"), 404)
    r = client.patch("/parent", json={"id": 1})
    assert_error(r, 405, "method_not_allowed")
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["Allow"].split(",")}
    assert_error(client.post("/parent/1", json={"id": 1}), 405)
    # /parent/count is a path of its own, not the row with key "count"
    for method in ("PUT", "PATCH", "DELETE"):
        r = client.request(method, "/parent/count", json={"id": 1})
        assert_error(r, 405, "method_not_allowed")
        assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"GET", "POST"}


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    r = client.get("/parent/999", headers={"X-Request-ID": "trace-abc.123"})
    assert assert_error(r, 404)["request_id"] == "trace-abc.123"
    r = client.get("/parent/999", headers={"X-Request-ID": "bad id <script>"})
    generated = assert_error(r, 404)["request_id"]
    assert generated != "bad id <script>" and generated.isalnum()


@pytest.mark.parametrize("method, url, body, status", [
    ("GET", "/child?amount=1e999999999", None, 422),
    ("GET", "/child?amount=NaN", None, 422),
    ("GET", "/child?amount=123456789", None, 422),
    ("GET", "/child?price=nan", None, 422),
    ("GET", "/child?price=inf", None, 422),
    ("GET", "/child?price=1e999", None, 422),
    ("GET", "/child?born=2020-02-30", None, 422),
    ("GET", "/child?seen=0001-01-01T00:00:00%2B14:00", None, 422),
    ("GET", "/child?seen=9999-12-31T23:59:59-14:00", None, 422),
    ("GET", "/child?label=%00", None, 422),
    ("GET", "/child?fields=%00", None, 422),
    ("GET", "/child?sort=%ED%A0%80", None, 422),
    ("GET", "/child?%ED%A0%80=1", None, 422),
    ("GET", "/child/%ED%A0%80", None, 422),
    ("GET", "/child/%00", None, 422),
    ("GET", "/child/1,", None, 422),
    ("GET", "/child/%20", None, 422),
    ("GET", "/%ED%A0%80", None, 404),
    ("GET", "/%00", None, 404),
    ("GET", "/child//", None, 404),
    ("POST", "/child", b'{"id": 60, "parent_id": 1, "amount": "1e999999999"}', 422),
    ("POST", "/child", b'{"id": 60, "parent_id": 1, "amount": "NaN"}', 422),
    ("POST", "/child", b'{"id": 60, "parent_id": 1, "amount": "0.001"}', 422),
    ("POST", "/child", b'{"id": 60, "parent_id": 1, "seen": "0001-01-01T00:00:00+14:00"}', 422),
    ("POST", "/child", b'{"id": 60, "parent_id": 1, "born": "0000-01-01"}', 422),
    ("POST", "/child", b'{"id": 60, "parent_id": 1, "label": "\\u0000"}', 422),
    ("POST", "/child", b'{"id": 60, "parent_id": 1, "label": "' + b"x" * 500 + b'"}', 422),
    ("POST", "/child", b"[" * 1500 + b"]" * 1500, 400),
    ("POST", "/child", b'{"id": 60.5, "parent_id": 1}', 422),
    ("PATCH", "/child/10", b'{"qty": 18446744073709551616}', 422),
    ("PATCH", "/child/10", b'{"qty": 9223372036854775808}', 422),
])
def test_junk_values_are_4xx(client: httpx.Client, method: str, url: str, body: bytes | None,
                             status: int, unchanged: None) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    assert_error(client.request(method, url, content=body, headers=headers), status)


# -- fuzz ---------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)
_bodies = (
    st.binary(max_size=200)
    | _json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.sampled_from(["id", "email", "code", "parent_id", "label", "qty",
                                       "price", "nope"]), _json_values, max_size=5)
    .map(lambda v: json.dumps(v).encode())
)
_segment = st.text(alphabet=string.printable + "é☃\x00%,/", max_size=12)
_paths = st.one_of(
    st.builds(lambda t, k: f"/{t}/{k}", st.sampled_from(["parent", "child", "tables/parent"]),
              _segment),
    st.builds(lambda a, b: f"/{a}/{b}", _segment, _segment),
    _segment.map(lambda s: "/" + s),
).map(lambda p: "/" + p.lstrip("/"))  # "//x" would name another host
_queries = st.dictionaries(
    st.sampled_from(["page", "page_size", "sort", "fields", "count", "id", "email", "qty",
                     "price", "bogus", "filter", "after"]),
    st.text(max_size=12), max_size=4)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]), path=_paths,
       query=_queries, body=_bodies)
def test_fuzz_never_500(client: httpx.Client, method: str, path: str, query: dict[str, str],
                        body: bytes) -> None:
    try:
        request = client.build_request(method, path, params=query, content=body,
                                       headers={"Content-Type": "application/json"})
    except (httpx.InvalidURL, UnicodeError):
        return  # not a request a client can even send
    assert request.url.port == client.base_url.port
    response = client.send(request)
    assert response.status_code < 500, (method, path, query, body, response.text)
    if response.status_code >= 400:
        assert_error(response, response.status_code)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(query=_queries)
def test_fuzz_list_queries(client: httpx.Client, query: dict[str, str]) -> None:
    response = client.get("/child", params=query)
    assert response.status_code in (200, 400, 422), (query, response.text)
    if response.status_code == 422:
        assert_error(response, 422, "validation_error")
    elif response.status_code == 400:  # a cursor that is none, or one with page > 1
        assert "after" in query
        assert assert_error(response, 400, "bad_request")["details"][0]["path"] == "after"
    else:
        keyset = {"next_after"} if "after" in query else set()
        assert set(response.json()) == {"data", "total", "page", "page_size", "total_pages",
                                        "total_is_estimate", *keyset}
