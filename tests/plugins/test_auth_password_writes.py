"""The user card's password column through the table API and bulk, on every database.

Plain text in (create, update, bulk create, bulk update, upsert, mass update),
checked against the password policy (a 422 naming the row and field), stored as an
argon2id hash, never returned, filtered, sorted or grouped; ``writeOnly`` in the
OpenAPI document.  New accounts made this way log in.  The other secret columns (the
session card's refresh token here) stay unwritable.  A password changed so ends the
account's sessions.  The column is called
``password``, as in the product document's bulk example.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from swain.contrib.testing.auth import FAST_ARGON2, SQL_TYPES, bearer, signup

SECRET = "a jwt secret long enough for HS256, and then some more bytes"
ADMIN_PASSWORD = "admin-password-1"

_DDL = """
CREATE TABLE users (id {serial}, email VARCHAR(255) NOT NULL UNIQUE,
  password VARCHAR(255) NOT NULL, active {boolean} NOT NULL DEFAULT {true}, status VARCHAR(20),
  first_name VARCHAR(50));
CREATE TABLE sessions (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  token_hash VARCHAR(128) NOT NULL, expires_at {ts} NOT NULL)
"""
DDL = {name: _DDL.format(**types) for name, types in SQL_TYPES.items()}

SWAIN_CONFIG = {
    "auth": {"enabled": True, "jwt_secret": SECRET, "identity_cache": "0s",
             "basic_cache": "1h", "expose_auth_tables": True, "signup_answer": "tokens",
             **FAST_ARGON2},
    "mapping": {
        "user": {"table": "users", "id": "id", "email": "email", "password": "password",
                 "isactive": "active", "firstname": "first_name"},
        "session": {"table": "sessions", "id": "id", "userid": "user_id",
                    "refreshtoken": "token_hash", "expiresat": "expires_at"},
    },
}


@pytest.fixture(scope="module")
def admin(client: httpx.Client) -> httpx.Client:
    r = signup(client, "admin@example.com", ADMIN_PASSWORD)
    assert r.status_code == 201, r.text
    client.headers.update(bearer(r.json()["access_token"]))
    return client


def _logs_in(client: httpx.Client, email: str, password: str) -> bool:
    r = client.post("/auth/login", json={"email": email, "password": password},
                    headers={"Authorization": ""})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def _stored(database: Any, email: str) -> str:
    rows = database.query("SELECT password FROM users WHERE email = :e", {"e": email})
    return str(rows[0][0])


def _clean(response: httpx.Response, *plain: str) -> None:
    """Neither a hash nor the plain text ever leaves, nor a "password" member."""
    for text in ("$argon2", '"password":', *plain):
        assert text not in response.text, response.text


def test_bulk_create_as_documented_and_the_accounts_log_in(admin: httpx.Client,
                                                           database: Any) -> None:
    bulk_body = [
        {"email": "new-1@example.com", "password": "Secret123!"},
        {"email": "new-2@example.com", "password": "Secret123!"}
    ]
    r = admin.post("/users/bulk", json=bulk_body)
    assert r.status_code == 200, r.text
    _clean(r, "Secret123!")
    assert [s["data"]["email"] for s in r.json()["succeeded"]] == [b["email"] for b in bulk_body]
    first, second = (_stored(database, b["email"]) for b in bulk_body)
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert first != second  # each its own salt
    assert _logs_in(admin, "new-1@example.com", "Secret123!")
    assert _logs_in(admin, "new-2@example.com", "Secret123!")
    assert not _logs_in(admin, "new-2@example.com", "Secret123?")


def test_each_bulk_row_is_checked_against_the_policy(admin: httpx.Client, database: Any) -> None:
    r = admin.post("/users/bulk", json=[
        {"email": "good@example.com", "password": "long-enough-1"},
        {"email": "short@example.com", "password": "short"},
        {"email": "number@example.com", "password": 12345678},
        {"email": "huge@example.com", "password": "x" * 300},
        {"email": "none@example.com"}])
    assert r.status_code == 207, r.text
    _clean(r, "long-enough-1", '"short"', "12345678")
    failed = {f["index"]: f["error"] for f in r.json()["failed"]}
    assert sorted(failed) == [1, 2, 3, 4]
    assert all(e["code"] == "validation_error" for e in failed.values())
    assert failed[1]["details"] == [{"path": "[1].password", "message": "at least 8 characters"}]
    assert failed[2]["details"][0]["path"] == "[2].password"
    assert failed[3]["details"] == [{"path": "[3].password", "message": "at most 256 bytes"}]
    assert failed[4]["details"] == [{"path": "[4].password", "message": "required"}]
    emails = {row[0] for row in database.query("SELECT email FROM users")}
    assert "good@example.com" in emails and "short@example.com" not in emails
    assert _logs_in(admin, "good@example.com", "long-enough-1")
    # atomic: one bad password and nothing is written
    r = admin.post("/users/bulk?atomic=true", json=[
        {"email": "atomic-1@example.com", "password": "long-enough-1"},
        {"email": "atomic-2@example.com", "password": "tiny"}])
    assert r.status_code == 422, r.text
    assert not database.query("SELECT id FROM users WHERE email LIKE 'atomic%'")


def test_create_and_update_one_row(admin: httpx.Client, database: Any) -> None:
    r = admin.post("/users", json={"email": "one@example.com", "password": "first-password",
                                   "first_name": "One"})
    assert r.status_code == 201, r.text
    _clean(r, "first-password")
    user_id = r.json()["id"]
    assert _logs_in(admin, "one@example.com", "first-password")
    r = admin.post("/users", json={"email": "nopass@example.com"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "password"
    before = _stored(database, "one@example.com")
    r = admin.put(f"/users/{user_id}", json={"password": "tiny"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"] == [{"path": "password",
                                             "message": "at least 8 characters"}]
    assert _stored(database, "one@example.com") == before
    r = admin.put(f"/users/{user_id}", json={"password": "second-password"})
    assert r.status_code == 200, r.text
    _clean(r, "second-password")
    assert r.json()["first_name"] == "One"
    assert not _logs_in(admin, "one@example.com", "first-password")
    assert _logs_in(admin, "one@example.com", "second-password")
    r = admin.patch(f"/users/{user_id}", json={"password": "third-password", "status": "x"})
    assert r.status_code == 200 and r.json()["status"] == "x"
    assert _logs_in(admin, "one@example.com", "third-password")
    r = admin.put(f"/users/{user_id}", json={"password": None})
    assert r.status_code == 422, r.text  # the column is NOT NULL
    assert _logs_in(admin, "one@example.com", "third-password")


def test_a_changed_password_ends_the_cached_basic_pair(admin: httpx.Client) -> None:
    r = admin.post("/users", json={"email": "basic@example.com", "password": "basic-pass-1"})
    assert r.status_code == 201
    old = httpx.BasicAuth("basic@example.com", "basic-pass-1")
    plain = {"Authorization": ""}
    assert admin.get("/users?count=none", auth=old, headers=plain).status_code == 200
    admin.put(f"/users/{r.json()['id']}", json={"password": "basic-pass-2"})
    assert admin.get("/users?count=none", auth=old, headers=plain).status_code == 401
    new = httpx.BasicAuth("basic@example.com", "basic-pass-2")
    assert admin.get("/users?count=none", auth=new, headers=plain).status_code == 200


def _session(client: httpx.Client, email: str, password: str) -> str:
    r = client.post("/auth/login", json={"email": email, "password": password},
                    headers={"Authorization": ""})
    assert r.status_code == 200, r.text
    return str(r.json()["refresh_token"])


def _refreshed(client: httpx.Client, refresh_token: str) -> str | None:
    """The session's next refresh token, or ``None`` when the session has ended."""
    r = client.post("/auth/refresh", json={"refresh_token": refresh_token},
                    headers={"Authorization": ""})
    assert r.status_code in (200, 401), r.text
    return str(r.json()["refresh_token"]) if r.status_code == 200 else None


def test_a_password_changed_through_the_table_api_ends_the_sessions(
        admin: httpx.Client) -> None:
    """However the password changes (one row, bulk, mass update), the account's sessions
    end with it, as after a reset; other changes leave them be."""
    r = admin.post("/users/bulk", json=[{"email": f"sess-{i}@example.com",
                                         "password": f"session-pass-{i}"} for i in range(3)])
    ids = [row["id"] for row in r.json()["succeeded"]]
    sessions = [_session(admin, f"sess-{i}@example.com", f"session-pass-{i}") for i in range(3)]
    twice = _session(admin, "sess-0@example.com", "session-pass-0")
    assert admin.put(f"/users/{ids[0]}", json={"first_name": "Kept"}).status_code == 200
    kept = _refreshed(admin, sessions[0])
    assert kept is not None
    assert admin.put(f"/users/{ids[0]}", json={"password": "session-pass-new"}).status_code == 200
    assert _refreshed(admin, kept) is None and _refreshed(admin, twice) is None
    fresh = _session(admin, "sess-0@example.com", "session-pass-new")
    assert _refreshed(admin, fresh) is not None
    r = admin.put("/users/bulk", json=[{"id": ids[1], "password": "bulk-pass-new"}])
    assert r.status_code == 200, r.text
    assert _refreshed(admin, sessions[1]) is None
    r = admin.put("/users/filter", json={
        "expressions": [{"field": "email", "operator": "eq", "value": "sess-2@example.com"}],
        "updateData": {"password": "mass-pass-new"}})
    assert r.json() == {"updated": 1}
    assert _refreshed(admin, sessions[2]) is None


def test_bulk_update_upsert_and_mass_update(admin: httpx.Client, database: Any) -> None:
    r = admin.post("/users/bulk", json=[{"email": f"up-{i}@example.com",
                                         "password": f"up-password-{i}"} for i in range(3)])
    ids = [s["id"] for s in r.json()["succeeded"]]
    r = admin.put("/users/bulk", json=[{"id": ids[0], "password": "changed-by-bulk"},
                                       {"id": ids[1], "password": "nope"}])
    assert r.status_code == 207, r.text
    assert r.json()["failed"][0]["error"]["details"][0]["path"] == "[1].password"
    _clean(r, "changed-by-bulk")
    assert _logs_in(admin, "up-0@example.com", "changed-by-bulk")
    assert _logs_in(admin, "up-1@example.com", "up-password-1")
    r = admin.post("/users/bulk?on_conflict=update&conflict_columns=email", json=[
        {"email": "up-2@example.com", "password": "upserted-password"},
        {"email": "up-new@example.com", "password": "upserted-new-one"}])
    assert r.status_code == 200, r.text
    _clean(r, "upserted-password")
    assert _logs_in(admin, "up-2@example.com", "upserted-password")
    assert _logs_in(admin, "up-new@example.com", "upserted-new-one")
    r = admin.post("/users/bulk?on_conflict=ignore&conflict_columns=email", json=[
        {"email": "up-2@example.com", "password": "ignored-password"}])
    assert r.status_code == 200 and r.json()["succeeded"][0]["ignored"] is True
    assert _logs_in(admin, "up-2@example.com", "upserted-password")
    r = admin.post("/users/bulk?on_conflict=update&conflict_columns=password", json=[
        {"email": "up-2@example.com", "password": "whatever-it-is"}])
    assert r.status_code == 422 and "conflict_columns" in r.text
    r = admin.put("/users/filter", json={
        "expressions": [{"field": "email", "operator": "startswith", "value": "up-"}],
        "updateData": {"password": "short"}})
    assert r.status_code == 422, r.text
    r = admin.put("/users/filter", json={
        "expressions": [{"field": "email", "operator": "startswith", "value": "up-"}],
        "updateData": {"password": "everyone-the-same"}})
    assert r.status_code == 200 and r.json() == {"updated": 4}
    assert all(_logs_in(admin, f"up-{i}@example.com", "everyone-the-same") for i in range(3))


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", "/users?password=x", None),
    ("get", "/users?sort=password", None),
    ("get", "/users?fields=id,password", None),
    ("get", "/users?filter=" + json.dumps(
        {"expressions": [{"field": "password", "operator": "startswith", "value": "$"}]}), None),
    ("get", "/users/count?password=x", None),
    ("post", "/users/filter", {"expressions": [
        {"field": "password", "operator": "startswith", "value": "$argon2"}]}),
    ("post", "/users/filter", {"sort": [{"field": "password"}]}),
    ("post", "/users/filter", {"fields": ["password"]}),
    ("post", "/users/count", {"expressions": [
        {"field": "password", "operator": "isnull", "value": False}]}),
    ("post", "/users/filter", {"aggregations": {"functions": [{"type": "MIN",
                                                               "field": "password"}]}}),
    ("post", "/users/filter", {"aggregations": {"functions": [{"type": "COUNT"}],
                                                "group_by": ["password"]}}),
    ("post", "/sessions/filter", {"expressions": [{"relationship": "users", "expressions": [
        {"field": "password", "operator": "eq", "value": "x"}]}]}),
    ("post", "/sessions/filter", {"expressions": [{"relationship": "users", "include": True,
                                                   "fields": ["password"]}]}),
    ("delete", "/users/filter", {"expressions": [
        {"field": "password", "operator": "ne", "value": "x"}]}),
])
def test_the_password_cannot_be_read_filtered_sorted_or_grouped(
        admin: httpx.Client, method: str, path: str, body: Any) -> None:
    r = admin.request(method.upper(), path, json=body)
    assert r.status_code == 422, r.text
    assert "$argon2" not in r.text
    allowed = r.json()["error"]["message"].partition("allowed:")[2]
    assert "password" not in allowed


def test_rows_never_carry_the_password(admin: httpx.Client) -> None:
    for r in (admin.get("/users?page_size=100"),
              admin.post("/users/filter", json={"expressions": []}),
              admin.post("/sessions/filter", json={"expressions": [
                  {"relationship": "users", "scope": "filterRelated", "include": True}]})):
        assert r.status_code == 200, r.text
        _clean(r)
    one = admin.get("/users?page_size=1").json()["data"][0]["id"]
    _clean(admin.get(f"/users/{one}"))
    gone = admin.post("/users", json={"email": "gone@example.com", "password": "gone-password"})
    _clean(gone, "gone-password")
    _clean(admin.delete(f"/users/{gone.json()['id']}"), "gone-password")


def test_other_secret_columns_stay_unwritable(admin: httpx.Client) -> None:
    one = admin.get("/users?page_size=1").json()["data"][0]["id"]
    r = admin.post("/sessions", json={"user_id": one, "token_hash": "forged",
                                      "expires_at": "2030-01-01T00:00:00Z"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["path"] == "token_hash"
    assert "token_hash" not in r.json()["error"]["message"].partition("allowed:")[2]


def test_the_document_marks_the_password_write_only(admin: httpx.Client) -> None:
    schemas = admin.get("/openapi.json").json()["components"]["schemas"]
    create, update = schemas["UsersCreate"], schemas["UsersUpdate"]
    for model in (create, update):
        assert model["properties"]["password"]["writeOnly"] is True
        assert model["properties"]["password"]["type"] == "string"
    assert "password" in create["required"]
    assert "password" not in schemas["Users"]["properties"]
    assert "token_hash" not in schemas["SessionsCreate"]["properties"]
    assert "token_hash" not in schemas["Sessions"]["properties"]
