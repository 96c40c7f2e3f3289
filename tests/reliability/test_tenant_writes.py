"""Writes cannot reach into another tenant through foreign keys or generated keys.

A foreign key may only name a row its writer can read under the referenced
table's row policies: another tenant's row is refused exactly as a missing one
(the same 409, body for body), on every write path (create, update, bulk,
atomic bulk, upsert, mass update), so it is neither an existence oracle nor a
way to pin another tenant's rows.  On PostgreSQL, whose sequences do not move
past a written value, a client may not choose a generated key, so another
tenant's plain inserts never collide with it; SQLite and MySQL move their
counters past written keys themselves.
"""

from __future__ import annotations

from typing import Any

import bcrypt
import httpx
import pytest

PASSWORD = "tenant-password"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()

_ROWS = f"""
INSERT INTO orgs (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO countries (code) VALUES ('FR'), ('DE');
INSERT INTO users (id, email, password, org_id) VALUES (1, 'a@a.example', '{HASH}', 1),
  (2, 'b@b.example', '{HASH}', 2), (3, 'carol@b.example', '{HASH}', 2);
INSERT INTO orders (org_id, user_id, country, ref) VALUES (1, 1, 'FR', 'a-1'), (2, 2, 'DE', 'b-1')
"""
_TABLES = """
CREATE TABLE orgs (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL);
CREATE TABLE countries (code VARCHAR(2) PRIMARY KEY);
CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE,
  password VARCHAR(100) NOT NULL, org_id INTEGER NOT NULL REFERENCES orgs(id));
CREATE TABLE orders (id {serial}, org_id INTEGER NOT NULL REFERENCES orgs(id),
  user_id INTEGER REFERENCES users(id), country VARCHAR(2) REFERENCES countries(code),
  ref VARCHAR(20) UNIQUE, note VARCHAR(50));
"""
DDL = {
    "sqlite": _TABLES.format(serial="INTEGER PRIMARY KEY") + _ROWS,
    "postgresql": _TABLES.format(serial="SERIAL PRIMARY KEY") + _ROWS,
    "mysql": _TABLES.format(serial="INTEGER AUTO_INCREMENT PRIMARY KEY") + _ROWS,
}
SWAIN_CONFIG = {
    "auth": {"enabled": True, "identity_cache": "0s",
             "jwt_secret": "tenant write tests need a secret of thirty-two bytes or more"},
    "mapping": {"user": {"table": "users", "id": "id", "email": "email",
                         "password": "password"}},
    "rls": {"enabled": True, "tenant_table": "orgs", "tenant_field": "org_id",
            "exclude_tables": ["countries"]},
}
B_USER, MISSING_USER = 2, 987_654


@pytest.fixture(scope="module")
def heads(client: httpx.Client) -> dict[str, dict[str, str]]:
    out = {}
    for name, email in (("a", "a@a.example"), ("b", "b@b.example")):
        r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        out[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return out


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    error.pop("request_id", None)
    return error


def _orders(database: Any) -> list[tuple[Any, ...]]:
    return database.query("SELECT id, org_id, user_id, ref, note FROM orders ORDER BY id")


def test_a_foreign_row_is_refused_exactly_as_a_missing_one(client: httpx.Client, database: Any,
                                                           heads: dict[str, dict[str, str]]
                                                           ) -> None:
    a = heads["a"]
    before = _orders(database)

    def both(send: Any, status: int = 409) -> dict[str, Any]:
        foreign = _error(send(B_USER), status)
        missing = _error(send(MISSING_USER), status)
        assert foreign == missing
        return foreign

    error = both(lambda user: client.post("/orders", headers=a, json={"user_id": user}))
    assert error["code"] == "conflict" and "references a row that does not exist" in \
        error["message"]
    assert error["details"] == [{"path": "user_id",
                                 "message": "references a row that does not exist"}]
    own = client.get("/orders", headers=a).json()["data"][0]["id"]
    both(lambda user: client.put(f"/orders/{own}", headers=a, json={"user_id": user}))
    both(lambda user: client.patch(f"/orders/{own}", headers=a, json={"user_id": user}))
    both(lambda user: client.put("/orders/filter", headers=a, json={
        "expressions": [{"field": "id", "operator": "eq", "value": own}],
        "updateData": {"user_id": user}}))
    atomic = [client.post("/orders/bulk?atomic=true", headers=a,
                          json=[{"note": "fine"}, {"user_id": user}]) for user in (B_USER,
                                                                                  MISSING_USER)]
    assert [r.status_code for r in atomic] == [409, 409]
    assert atomic[0].json() == atomic[1].json()
    assert atomic[0].json() == {"succeeded": [], "failed": [{"index": 1, "error": error}]}

    def bulk_failure(path: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        r = client.post(path, headers=a, json=rows)
        database.run_script("DELETE FROM orders WHERE ref = 'a-new'")
        assert r.status_code == 207, r.text
        failed = r.json()["failed"]
        assert [f["index"] for f in failed] == [1]
        return dict(failed[0]["error"])

    for path in ("/orders/bulk", "/orders/bulk?on_conflict=update&conflict_columns=ref",
                 "/orders/bulk?on_conflict=ignore&conflict_columns=ref"):
        rows = [{"ref": "a-new", "note": "mine"}]
        foreign = bulk_failure(path, [*rows, {"ref": "a-2", "user_id": B_USER}])
        missing = bulk_failure(path, [*rows, {"ref": "a-2", "user_id": MISSING_USER}])
        assert foreign == missing == error
    assert _orders(database) == before


def test_own_rows_and_shared_tables_are_referenced_as_before(
        client: httpx.Client, database: Any, heads: dict[str, dict[str, str]]) -> None:
    r = client.post("/orders", headers=heads["a"], json={"user_id": 1, "country": "DE"})
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == 1 and r.json()["org_id"] == 1
    # countries are shared (excluded from tenancy): any of them may be named
    r = client.post("/orders", headers=heads["b"], json={"user_id": B_USER, "country": "FR"})
    assert r.status_code == 201, r.text
    r = client.post("/orders", headers=heads["b"], json={"country": "XX"})
    assert r.status_code == 409  # missing, as the database itself says


def test_another_tenant_keeps_deleting_its_own_rows(client: httpx.Client, database: Any,
                                                    heads: dict[str, dict[str, str]]) -> None:
    client.post("/orders", headers=heads["a"], json={"user_id": 3})  # refused: carol is B's
    assert database.query("SELECT count(*) FROM orders WHERE user_id = 3") == [(0,)]
    r = client.delete("/users/3", headers=heads["b"])
    assert r.status_code == 200, r.text


def test_generated_keys_never_collide_with_a_written_one(client: httpx.Client, database: Any,
                                                         dialect: str,
                                                         heads: dict[str, dict[str, str]]
                                                         ) -> None:
    chosen = 65_411
    r = client.post("/orders", headers=heads["a"], json={"id": chosen, "note": "chosen"})
    if dialect == "postgresql":
        error = _error(r, 422)
        assert error["details"][0]["path"] == "id"
        assert "api.allow_explicit_keys" in error["message"]
        bulk = client.post("/orders/bulk", headers=heads["a"], json=[{"id": chosen + 1}])
        assert bulk.status_code == 207 and bulk.json()["failed"][0]["error"]["code"] == \
            "validation_error"
    else:  # the database's own counter moves past the written key
        assert r.status_code == 201, r.text
    created = [client.post("/orders", headers=heads["b"], json={"note": f"plain {i}"})
               for i in range(3)]
    assert [c.status_code for c in created] == [201, 201, 201], [c.text for c in created]
    ids = [c.json()["id"] for c in created]
    assert len(set(ids)) == 3 and chosen not in ids
