"""Accounts and bearer tokens over tables with deliberately unusual names:
users live in "Members" (EmailAddr, pw_hash, Enabled), sessions in
"LoginSessions" (Who, TokenDigest, Until).  Server-side refresh sessions."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import httpx
import jwt as pyjwt
from auth_members import MEMBERS_USER

from swain.contrib.testing.auth import FAST_ARGON2, bearer, login, signup

SECRET = "correct horse battery staple, long enough for HS256 and for HS512 as well"
BCRYPT_HASH = bcrypt.hashpw(b"legacy-password", bcrypt.gensalt(rounds=4)).decode()

_COMMON_ROWS = f"""
INSERT INTO widgets (id, label) VALUES (1, 'first');
INSERT INTO {{q}}Members{{q}} ({{q}}EmailAddr{{q}}, {{q}}pw_hash{{q}}, {{q}}Enabled{{q}}, {{q}}GivenName{{q}})
  VALUES ('legacy@example.com', '{BCRYPT_HASH}', {{true}}, 'Legacy')
"""

DDL = {
    "sqlite": """
CREATE TABLE widgets (id INTEGER PRIMARY KEY, label VARCHAR(50));
CREATE TABLE "Members" ("MemberNo" INTEGER PRIMARY KEY, "EmailAddr" VARCHAR(255) NOT NULL UNIQUE,
  "GivenName" VARCHAR(100), "pw_hash" VARCHAR(255) NOT NULL, "Enabled" BOOLEAN NOT NULL DEFAULT 1,
  "Nickname" VARCHAR(50), "role" VARCHAR(20) DEFAULT 'member');
CREATE TABLE "LoginSessions" ("SessKey" INTEGER PRIMARY KEY,
  "Who" INTEGER NOT NULL REFERENCES "Members"("MemberNo"), "TokenDigest" VARCHAR(128) NOT NULL,
  "Until" TIMESTAMP NOT NULL, "Touched" TIMESTAMP);
"""
    + _COMMON_ROWS.format(q='"', true="1"),
    "postgresql": """
CREATE TABLE widgets (id INTEGER PRIMARY KEY, label VARCHAR(50));
CREATE TABLE "Members" ("MemberNo" SERIAL PRIMARY KEY, "EmailAddr" VARCHAR(255) NOT NULL UNIQUE,
  "GivenName" VARCHAR(100), "pw_hash" VARCHAR(255) NOT NULL, "Enabled" BOOLEAN NOT NULL DEFAULT TRUE,
  "Nickname" VARCHAR(50), "role" VARCHAR(20) DEFAULT 'member');
CREATE TABLE "LoginSessions" ("SessKey" SERIAL PRIMARY KEY,
  "Who" INTEGER NOT NULL REFERENCES "Members"("MemberNo"), "TokenDigest" VARCHAR(128) NOT NULL,
  "Until" TIMESTAMPTZ NOT NULL, "Touched" TIMESTAMPTZ);
"""
    + _COMMON_ROWS.format(q='"', true="TRUE"),
    "mysql": """
CREATE TABLE widgets (id INTEGER PRIMARY KEY, label VARCHAR(50));
CREATE TABLE `Members` (`MemberNo` INTEGER AUTO_INCREMENT PRIMARY KEY,
  `EmailAddr` VARCHAR(255) NOT NULL UNIQUE, `GivenName` VARCHAR(100),
  `pw_hash` VARCHAR(255) NOT NULL, `Enabled` TINYINT(1) NOT NULL DEFAULT 1,
  `Nickname` VARCHAR(50), `role` VARCHAR(20) DEFAULT 'member');
CREATE TABLE `LoginSessions` (`SessKey` INTEGER AUTO_INCREMENT PRIMARY KEY,
  `Who` INTEGER NOT NULL, `TokenDigest` VARCHAR(128) NOT NULL,
  `Until` DATETIME NOT NULL, `Touched` DATETIME,
  FOREIGN KEY (`Who`) REFERENCES `Members`(`MemberNo`));
"""
    + _COMMON_ROWS.format(q="`", true="1"),
}

SWAIN_CONFIG = {
    "auth": {
        "enabled": True,
        "jwt_secret": SECRET,
        "identity_cache": "0s",
        "public_routes": ["GET /widgets"],
        "signup_answer": "tokens",  # signup's own answer is under test here
        **FAST_ARGON2,
    },
    "mapping": {
        "user": {**MEMBERS_USER, "firstname": "GivenName"},
        "session": {
            "table": "LoginSessions",
            "id": "SessKey",
            "userid": "Who",
            "refreshtoken": "TokenDigest",
            "expiresat": "Until",
            "lastused": "Touched",
        },
    },
}

PASSWORD = "s3cret-enough"


def _q(dialect: str, name: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _error(response: httpx.Response) -> dict:
    body = response.json()
    body["error"].pop("request_id", None)
    return body


def _signup(client: httpx.Client, email: str, **extra: object) -> httpx.Response:
    return signup(client, email, PASSWORD, **extra)


def test_signup_returns_user_without_secrets_and_tokens(client, database, dialect):
    r = _signup(client, "Ada@Example.com", additional_data={"GivenName": "Ada", "Nickname": "ada"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["EmailAddr"] == "ada@example.com"
    assert body["user"]["GivenName"] == "Ada" and body["user"]["Nickname"] == "ada"
    assert "pw_hash" not in body["user"] and body["user"]["Enabled"] is True
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    stored = database.query(
        f"SELECT {_q(dialect, 'pw_hash')} FROM {_q(dialect, 'Members')} "
        f"WHERE {_q(dialect, 'EmailAddr')} = 'ada@example.com'"
    )
    assert stored[0][0].startswith("$argon2id$") and PASSWORD not in stored[0][0]
    me = client.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["MemberNo"] == body["user"]["MemberNo"]
    assert "pw_hash" not in me.json()["user"]
    assert (
        client.post(
            "/auth/register", json={"email": "reg@example.com", "password": PASSWORD}
        ).status_code
        == 201
    )


def test_signup_refuses_bad_input_and_mass_assignment(client):
    cases = [
        ({"additional_data": {"Unknown": 1}}, "additional_data.Unknown"),
        ({"additional_data": {"MemberNo": 999}}, "additional_data.MemberNo"),
        ({"additional_data": {"pw_hash": "x"}}, "additional_data.pw_hash"),
        ({"additional_data": {"Enabled": False}}, "additional_data.Enabled"),
        ({"additional_data": {"EmailAddr": "other@example.com"}}, "additional_data.EmailAddr"),
        ({"additional_data": {"role": "admin"}}, "additional_data.role"),
        ({"is_active": "yes"}, "is_active"),
        ({"roles": ["admin"]}, "roles"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 10_000}, "password"),
        ({"email": "not-an-email"}, "email"),
    ]
    for extra, path in cases:
        body = {"email": "mass@example.com", "password": PASSWORD, **extra}
        r = client.post("/auth/signup", json=body)
        assert r.status_code == 422, (extra, r.text)
        assert path in [d["path"] for d in r.json()["error"]["details"]], (extra, r.text)
    assert (
        client.post(
            "/auth/login", json={"email": "mass@example.com", "password": PASSWORD}
        ).status_code
        == 401
    )
    r = _signup(client, "dup@example.com")
    assert r.status_code == 201
    r = _signup(client, "DUP@example.com")
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


def test_login_gives_one_answer_for_unknown_address_and_wrong_password(client):
    assert _signup(client, "enum@example.com").status_code == 201
    ok = client.post("/auth/login", json={"email": "enum@example.com", "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    assert set(ok.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    wrong = client.post("/auth/login", json={"email": "enum@example.com", "password": "wrong-pass"})
    unknown = client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": "wrong-pass"}
    )
    huge = client.post("/auth/login", json={"email": "enum@example.com", "password": "x" * 100_000})
    assert wrong.status_code == unknown.status_code == huge.status_code == 401
    assert _error(wrong) == _error(unknown) == _error(huge)
    assert wrong.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")


def test_token_endpoint_is_an_oauth2_password_grant(client):
    assert _signup(client, "form@example.com").status_code == 201
    r = client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "form@example.com", "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "bearer"
    assert client.get("/auth/me", headers=bearer(r.json()["access_token"])).status_code == 200
    assert (
        client.post(
            "/auth/token", json={"username": "form@example.com", "password": PASSWORD}
        ).status_code
        == 400
    )
    bad = client.post("/auth/token", data={"username": "form@example.com", "password": "nope-nope"})
    assert bad.status_code == 401


def test_secret_columns_never_cross_the_table_api(client, database, dialect):
    token = login(client, "ada@example.com", PASSWORD)["access_token"]
    headers = bearer(token)
    rows = client.get("/Members", headers=headers)
    assert rows.status_code == 200, rows.text
    assert rows.json()["data"] and all("pw_hash" not in row for row in rows.json()["data"])
    # The session table is the auth layer's own: not served at all by default.
    assert client.get("/LoginSessions", headers=headers).status_code == 404
    assert client.get("/tables/LoginSessions", headers=headers).status_code == 404
    assert client.get("/Members?pw_hash=x", headers=headers).status_code == 422
    assert client.get("/Members?sort=pw_hash", headers=headers).status_code == 422
    assert client.get("/Members?fields=pw_hash", headers=headers).status_code == 422
    one = rows.json()["data"][0]["MemberNo"]
    assert client.put(f"/Members/{one}", json={"pw_hash": "x"}, headers=headers).status_code == 422
    created = client.post(
        "/Members", json={"EmailAddr": "direct@example.com", "pw_hash": "x"}, headers=headers
    )
    assert created.status_code == 422


def test_auth_required_except_public_routes(client):
    assert client.get("/widgets").status_code == 200
    r = client.post("/widgets", json={"id": 2, "label": "x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert client.get("/Members").status_code == 401
    assert client.get("/auth/me").status_code == 401


def test_refresh_rotates_and_a_replayed_token_revokes_the_session(client, database, dialect):
    pair = login(client, "ada@example.com", PASSWORD)
    digests = [
        r[0]
        for r in database.query(
            f"SELECT {_q(dialect, 'TokenDigest')} FROM {_q(dialect, 'LoginSessions')}"
        )
    ]
    assert pair["refresh_token"] not in digests
    assert pair["refresh_token"].split(".", 1)[1] not in digests
    second = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert second.status_code == 200, second.text
    new = second.json()
    assert new["refresh_token"] != pair["refresh_token"]
    assert client.get("/auth/me", headers=bearer(new["access_token"])).status_code == 200
    replay = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401
    # The replay ended the session: the legitimately rotated token is dead too.
    assert (
        client.post("/auth/refresh", json={"refresh_token": new["refresh_token"]}).status_code
        == 401
    )


def test_concurrent_refreshes_of_one_token_yield_one_success_and_no_500(client, server):
    pair = login(client, "ada@example.com", PASSWORD)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as own:
            return own.post(
                "/auth/refresh", json={"refresh_token": pair["refresh_token"]}
            ).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(attempt, range(6)))
    assert 500 not in statuses and 503 not in statuses, statuses
    assert statuses.count(200) == 1 and set(statuses) <= {200, 401}, statuses


def test_logout_revokes_the_session(client):
    pair = login(client, "ada@example.com", PASSWORD)
    assert (
        client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code
        == 204
    )
    assert (
        client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
        == 401
    )
    assert client.post("/auth/refresh", json={"refresh_token": "garbage"}).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": "x.y"}).status_code == 401
    assert client.post("/auth/refresh", json={}).status_code == 422


def test_bcrypt_hash_verifies_and_is_upgraded(client, database, dialect):
    r = client.post(
        "/auth/login", json={"email": "legacy@example.com", "password": "legacy-password"}
    )
    assert r.status_code == 200, r.text
    stored = database.query(
        f"SELECT {_q(dialect, 'pw_hash')} FROM {_q(dialect, 'Members')} WHERE "
        f"{_q(dialect, 'EmailAddr')} = 'legacy@example.com'"
    )[0][0]
    assert stored.startswith("$argon2id$")
    again = client.post(
        "/auth/login", json={"email": "legacy@example.com", "password": "legacy-password"}
    )
    assert again.status_code == 200


def test_inactive_users_are_refused_everywhere(client, database, dialect):
    assert _signup(client, "leaving@example.com").status_code == 201
    pair = client.post(
        "/auth/login", json={"email": "leaving@example.com", "password": PASSWORD}
    ).json()
    assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 200
    with database.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE {_q(dialect, 'Members')} SET {_q(dialect, 'Enabled')} = "
            f"{'FALSE' if dialect == 'postgresql' else '0'} WHERE "
            f"{_q(dialect, 'EmailAddr')} = 'leaving@example.com'"
        )
    login = client.post("/auth/login", json={"email": "leaving@example.com", "password": PASSWORD})
    unknown = client.post("/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert login.status_code == 401 and _error(login) == _error(unknown)
    assert client.get("/auth/me", headers=bearer(pair["access_token"])).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
        == 401
    )


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_forged_expired_none_and_wrong_type_tokens_are_refused(client):
    user = login(client, "ada@example.com", PASSWORD)
    sub = pyjwt.decode(user["access_token"], options={"verify_signature": False})["sub"]
    now = int(time.time())
    claims = {
        "sub": sub,
        "typ": "access",
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
        "iss": "swain",
    }
    real_iss = pyjwt.decode(user["access_token"], options={"verify_signature": False})["iss"]
    claims["iss"] = real_iss
    good = pyjwt.encode(claims, SECRET, algorithm="HS256")
    assert client.get("/auth/me", headers=bearer(good)).status_code == 200
    forged = pyjwt.encode(claims, "another secret that is long enough to sign", algorithm="HS256")
    expired = pyjwt.encode(
        {**claims, "iat": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256"
    )
    none = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    refresh_typed = pyjwt.encode({**claims, "typ": "refresh"}, SECRET, algorithm="HS256")
    reset_typed = pyjwt.encode({**claims, "typ": "password_reset"}, SECRET, algorithm="HS256")
    missing_jti = pyjwt.encode(
        {k: v for k, v in claims.items() if k != "jti"}, SECRET, algorithm="HS256"
    )
    hs512 = pyjwt.encode(claims, SECRET, algorithm="HS512")
    for name, token in [
        ("forged", forged),
        ("expired", expired),
        ("none", none),
        ("refresh", refresh_typed),
        ("reset", reset_typed),
        ("no jti", missing_jti),
        ("hs512", hs512),
        ("garbage", "abc.def.ghi"),
        ("refresh token", user["refresh_token"]),
    ]:
        r = client.get("/auth/me", headers=bearer(token))
        assert r.status_code == 401, (name, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
    # An access token is not a refresh token either.
    assert (
        client.post("/auth/refresh", json={"refresh_token": user["access_token"]}).status_code
        == 401
    )
