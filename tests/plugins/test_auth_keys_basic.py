"""API keys and HTTP Basic, and stateless refresh tokens (no session card).

Users live in "Members" again, keys in "AccessKeys" with a text key id."""

from __future__ import annotations

import logging
import time

from auth_members import MEMBERS_USER

from swain.contrib.testing.auth import FAST_ARGON2, bearer, login, signup

SECRET = "another secret that is plenty long for HS256 signing, 64 bytes+ ok"
PASSWORD = "basic-password-1"

DDL = {
    "sqlite": """
CREATE TABLE "Members" ("MemberNo" INTEGER PRIMARY KEY, "EmailAddr" VARCHAR(255) NOT NULL UNIQUE,
  "pw_hash" VARCHAR(255) NOT NULL, "Enabled" BOOLEAN NOT NULL DEFAULT 1);
CREATE TABLE "AccessKeys" ("KeyId" VARCHAR(40) PRIMARY KEY,
  "Holder" INTEGER NOT NULL REFERENCES "Members"("MemberNo"), "Digest" VARCHAR(64) NOT NULL,
  "Label" VARCHAR(50), "Made" TIMESTAMP NOT NULL, "Killed" TIMESTAMP);
CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50));
INSERT INTO notes (id, body) VALUES (1, 'hello')
""",
    "postgresql": """
CREATE TABLE "Members" ("MemberNo" SERIAL PRIMARY KEY, "EmailAddr" VARCHAR(255) NOT NULL UNIQUE,
  "pw_hash" VARCHAR(255) NOT NULL, "Enabled" BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE "AccessKeys" ("KeyId" VARCHAR(40) PRIMARY KEY,
  "Holder" INTEGER NOT NULL REFERENCES "Members"("MemberNo"), "Digest" VARCHAR(64) NOT NULL,
  "Label" VARCHAR(50), "Made" TIMESTAMPTZ NOT NULL, "Killed" TIMESTAMPTZ);
CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50));
INSERT INTO notes (id, body) VALUES (1, 'hello')
""",
    "mysql": """
CREATE TABLE `Members` (`MemberNo` INTEGER AUTO_INCREMENT PRIMARY KEY,
  `EmailAddr` VARCHAR(255) NOT NULL UNIQUE, `pw_hash` VARCHAR(255) NOT NULL,
  `Enabled` TINYINT(1) NOT NULL DEFAULT 1);
CREATE TABLE `AccessKeys` (`KeyId` VARCHAR(40) PRIMARY KEY, `Holder` INTEGER NOT NULL,
  `Digest` VARCHAR(64) NOT NULL, `Label` VARCHAR(50), `Made` DATETIME NOT NULL, `Killed` DATETIME,
  FOREIGN KEY (`Holder`) REFERENCES `Members`(`MemberNo`));
CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50));
INSERT INTO notes (id, body) VALUES (1, 'hello')
""",
}

SWAIN_CONFIG = {
    "auth": {
        "enabled": True,
        "jwt_secret": SECRET,
        "identity_cache": "0s",
        "expose_auth_tables": True,
        "signup_answer": "tokens",  # accounts made by signup, used at once
        "basic_cache": "30s",
        **FAST_ARGON2,
    },
    "audit": {"enabled": True},
    "mapping": {
        "user": MEMBERS_USER,
        "api_key": {
            "table": "AccessKeys",
            "id": "KeyId",
            "userid": "Holder",
            "key": "Digest",
            "name": "Label",
            "createdat": "Made",
            "revokedat": "Killed",
        },
    },
}


def _q(dialect: str, name: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def test_api_keys_are_shown_once_stored_hashed_and_revocable(client, database, dialect, caplog):
    caplog.set_level(logging.INFO, logger="swain.audit")
    assert signup(client, "keys@example.com", PASSWORD).status_code == 201
    owner = bearer(login(client, "keys@example.com", PASSWORD)["access_token"])
    created = client.post("/auth/api_keys", json={"name": "ci"}, headers=owner)
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    assert key.startswith("swk_") and len(key) > 40
    digests = [
        r[0]
        for r in database.query(f"SELECT {_q(dialect, 'Digest')} FROM {_q(dialect, 'AccessKeys')}")
    ]
    assert digests and key not in digests
    listed = client.get("/auth/api_keys", headers=owner).json()["data"]
    assert [k["id"] for k in listed] == [key_id] and listed[0]["name"] == "ci"
    assert "key" not in listed[0] and key not in str(listed)
    # The table API never shows the digest.
    rows = client.get("/AccessKeys", headers={"X-API-Key": key}).json()["data"]
    assert rows and all("Digest" not in row for row in rows)
    me = client.get("/auth/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json()["user"]["EmailAddr"] == "keys@example.com"
    assert me.json()["provider"] == "api_key"
    assert client.get("/notes", headers={"X-API-Key": key}).status_code == 200
    # A key cannot mint keys.
    assert client.post("/auth/api_keys", json={}, headers={"X-API-Key": key}).status_code == 403
    assert client.get("/notes", headers={"X-API-Key": key + "x"}).status_code == 401
    assert client.get("/notes", headers={"X-API-Key": "nonsense"}).status_code == 401
    # Someone else cannot revoke it.
    signup(client, "other@example.com", PASSWORD)
    other = bearer(login(client, "other@example.com", PASSWORD)["access_token"])
    assert client.delete(f"/auth/api_keys/{key_id}", headers=other).status_code == 404
    assert client.get("/auth/api_keys", headers=other).json()["data"] == []
    assert client.get("/notes", headers={"X-API-Key": key}).status_code == 200
    revoked = client.delete(f"/auth/api_keys/{key_id}", headers=owner)
    assert revoked.status_code == 200, revoked.text
    assert client.get("/notes", headers={"X-API-Key": key}).status_code == 401
    assert client.get("/auth/api_keys", headers=owner).json()["data"][0]["revoked_at"] is not None
    # Creating and revoking a key are audited actions, by the owner.
    audited = [r.fields for r in caplog.records if r.name == "swain.audit"]
    assert [(f["action"], f["table"], f["target"]) for f in audited] == [
        ("api_key.create", "AccessKeys", {"id": key_id}),
        ("api_key.revoke", "AccessKeys", {"id": key_id})]
    assert audited[0]["actor"] == me.json()["user"]["MemberNo"]


def test_keys_of_inactive_users_are_refused(client, database, dialect):
    signup(client, "gone@example.com", PASSWORD)
    owner = bearer(login(client, "gone@example.com", PASSWORD)["access_token"])
    key = client.post("/auth/api_keys", json={}, headers=owner).json()["key"]
    assert client.get("/notes", headers={"X-API-Key": key}).status_code == 200
    with database.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE {_q(dialect, 'Members')} SET {_q(dialect, 'Enabled')} = "
            f"{'FALSE' if dialect == 'postgresql' else '0'} WHERE "
            f"{_q(dialect, 'EmailAddr')} = 'gone@example.com'"
        )
    assert client.get("/notes", headers={"X-API-Key": key}).status_code == 401
    basic = client.get("/notes", auth=("gone@example.com", PASSWORD))
    assert basic.status_code == 401


def test_basic_auth_verifies_and_caches(client):
    signup(client, "basic@example.com", PASSWORD)
    r = client.get("/auth/me", auth=("basic@example.com", PASSWORD))
    assert r.status_code == 200, r.text
    assert r.json()["provider"] == "basic"
    started = time.perf_counter()
    for _ in range(20):
        assert client.get("/notes", auth=("basic@example.com", PASSWORD)).status_code == 200
    cached = (time.perf_counter() - started) / 20
    assert cached < 0.5
    wrong = client.get("/notes", auth=("basic@example.com", "wrong-password"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    unknown = client.get("/notes", auth=("nobody@example.com", "wrong-password"))
    assert unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    bad = client.get("/notes", headers={"Authorization": "Basic !!!"})
    assert bad.status_code == 401


def test_stateless_refresh_tokens_are_signed_and_typed(client):
    signup(client, "stateless@example.com", PASSWORD)
    pair = login(client, "stateless@example.com", PASSWORD)
    assert pair["refresh_token"].count(".") == 2  # a JWT, not an opaque session token
    again = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200, again.text
    assert (
        client.get(
            "/auth/me", headers={"Authorization": f"Bearer {again.json()['access_token']}"}
        ).status_code
        == 200
    )
    # A refresh token is not an access token, nor the other way round.
    assert (
        client.get(
            "/auth/me", headers={"Authorization": f"Bearer {pair['refresh_token']}"}
        ).status_code
        == 401
    )
    assert (
        client.post("/auth/refresh", json={"refresh_token": pair["access_token"]}).status_code
        == 401
    )
    # Logout without sessions is client-side, but the token is still checked.
    assert (
        client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code
        == 204
    )
    assert client.post("/auth/logout", json={"refresh_token": "forged"}).status_code == 401


def test_openapi_documents_auth_endpoints_and_four_security_schemes(client):
    from openapi_spec_validator import validate

    r = client.get("/openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    validate(doc)
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {"bearerAuth", "apiKeyAuth", "basicAuth", "oauth2Password"}
    assert schemes["apiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    token_url = schemes["oauth2Password"]["flows"]["password"]["tokenUrl"]
    assert token_url == "/auth/token"
    assert {next(iter(s)) for s in doc["security"]} == set(schemes)
    ops = {
        op["operationId"]: (path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }
    for name in (
        "authSignup",
        "authRegister",
        "authLogin",
        "authToken",
        "authRefresh",
        "authLogout",
        "authMe",
        "createApiKey",
        "listApiKeys",
        "revokeApiKey",
    ):
        assert name in ops, name
    assert ops["authLogin"][1]["security"] == []
    assert "security" not in ops["authMe"][1]
    assert "requestPasswordReset" not in ops  # not mapped in this module
    assert "pw_hash" not in doc["components"]["schemas"]["AuthUser"]["properties"]
    # What Swagger UI's Authorize does: the password flow on tokenUrl, then bearer.
    signup(client, "swagger@example.com", PASSWORD)
    token = client.post(
        token_url,
        data={"grant_type": "password", "username": "swagger@example.com", "password": PASSWORD},
    )
    assert token.status_code == 200, token.text
    listed = client.get(
        "/notes", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert listed.status_code == 200
