"""The mapping cards and startup checks: `swain mapping scaffold` DDL runs on
each database, `swain mapping check` accepts it and names what is missing,
bad cards and weak secrets refuse to start, auth off keeps the plugins inert,
and RS256/ES256 keys with the JWKS endpoint."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from swain.contrib.testing import LiveServer, write_config
from swain.core import RUNTIME, ConfigError, create_app, load_config
from swain.core.cli import cli
from swain.plugins.mapping import CARDS, parse

SECRET = "mapping tests: a secret comfortably longer than thirty-two bytes"
FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
DDL = ""  # the scaffold test fills the database


def _all_cards() -> dict[str, dict[str, str]]:
    """Every card mapped onto the scaffold's default names."""
    mapped = {}
    for name, card in CARDS.items():
        roles = {
            role: role for role in card.roles if not (name == "api_key" and role == "accountid")
        }
        mapped[name] = {"table": card.default_table, **roles}
    return mapped


def _cli(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args])
    return result.exit_code, result.output


def test_scaffold_ddl_runs_and_check_accepts_it(database, dialect, tmp_path):
    path = write_config(tmp_path, database.swain_url, mapping=_all_cards())
    code, ddl = _cli(path, "mapping", "scaffold", "--dialect", dialect)
    assert code == 0, ddl
    assert ddl.count("CREATE TABLE") == 9
    code, before = _cli(path, "mapping", "check")
    assert code == 1 and 'mapping.user.table: table "users" not in schema' in before
    database.run_script(ddl)
    code, output = _cli(path, "mapping", "check")
    assert code == 0, output
    assert "ok   user -> users" in output and "FAIL" not in output
    code, rest = _cli(path, "mapping", "scaffold", "--dialect", dialect, "--missing-only")
    assert code == 0 and "CREATE TABLE" not in rest


def test_check_names_missing_tables_and_columns_with_suggestions(database, tmp_path):
    cards = _all_cards()
    cards["user"] = {**cards["user"], "email": "emial", "table": "users"}
    cards["session"] = {**cards["session"], "table": "sesions"}
    path = write_config(tmp_path, database.swain_url, mapping=cards)
    code, output = _cli(path, "mapping", "check")
    assert code == 1
    assert (
        'mapping.user.email: column "emial" not in table "users"; did you mean "email"?' in output
    )
    assert (
        'mapping.session.table: table "sesions" not in schema; did you mean "sessions"?' in output
    )
    assert "FAIL user" in output and "ok   role" in output


def _app(tmp_path: Path, url: str, **sections: object) -> tuple:
    path = write_config(tmp_path, url, **sections)
    config, pm = load_config(path, "development", environ={})
    return config, pm


def test_role_and_permission_descriptions_are_optional(database, dialect, tmp_path):
    cards = _all_cards()
    for name in ("role", "permission"):
        del cards[name]["description"]
    path = write_config(tmp_path, database.swain_url, mapping=cards)
    config, _ = load_config(path, "development", environ={})
    mapped = parse(config)
    assert not mapped["role"].has("description") and mapped["role"].column("name") == "name"
    assert not mapped["permission"].has("description")
    # scaffold still offers the column to operators starting fresh
    code, ddl = _cli(path, "mapping", "scaffold", "--dialect", dialect, "--card", "role")
    assert code == 0 and "description" in ddl, ddl
    # the name stays required, and unknown keys stay errors
    del cards["permission"]["name"]
    path = write_config(tmp_path, database.swain_url, mapping=cards)
    config, _ = load_config(path, "development", environ={})
    with pytest.raises(ConfigError, match=re.escape("mapping.permission.name: required")):
        parse(config)
    cards["permission"] = {**cards["role"], "descripton": "d"}
    path = write_config(tmp_path, database.swain_url, mapping=cards)
    with pytest.raises(ConfigError, match=re.escape('mapping.permission.descripton: unknown key')):
        parse(load_config(path, "development", environ={})[0])


def test_startup_refuses_bad_cards_and_weak_secrets(database, tmp_path):
    user = {"table": "users", "id": "id", "email": "email", "password": "password"}
    auth = {"enabled": True, "jwt_secret": SECRET, **FAST}
    config, pm = _app(
        tmp_path,
        database.swain_url,
        auth={**auth, "jwt_secret": "too short"},
        mapping={"user": user},
    )
    with pytest.raises(ConfigError, match=re.escape("auth.jwt_secret: must be at least 32 bytes")):
        create_app(config, pm)
    config, pm = _app(
        tmp_path, database.swain_url, auth=auth, mapping={"user": {**user, "emial": "x"}}
    )
    with pytest.raises(ConfigError, match=re.escape('mapping.user.emial: unknown key; did you mean "email"')):
        create_app(config, pm)
    config, pm = _app(
        tmp_path, database.swain_url, auth=auth, mapping={"user": {"table": "users", "id": "id"}}
    )
    with pytest.raises(ConfigError, match=re.escape("mapping.user.email: required")):
        create_app(config, pm)
    with pytest.raises(ConfigError, match=re.escape('mapping.usr: unknown key; did you mean "user"')):
        _app(tmp_path, database.swain_url, auth=auth, mapping={"usr": user})
    config, pm = _app(
        tmp_path, database.swain_url, auth=auth, mapping={"user": {**user, "email": "e_mail"}}
    )
    app = create_app(config, pm)
    runtime = app[RUNTIME]

    async def load() -> None:
        await runtime.dialect.open()
        try:
            await runtime.load_schema()
        finally:
            await runtime.dialect.close()

    with pytest.raises(
        ConfigError,
        match=re.escape('mapping.user.email: column "e_mail" not in table "users"; did you mean "email"'),
    ):
        asyncio.run(load())


def test_auth_off_keeps_the_plugins_inert_but_secrets_hidden(database, tmp_path):
    config, pm = _app(
        tmp_path,
        database.swain_url,
        mapping={"user": {"table": "users", "id": "id", "email": "email", "password": "password"}},
    )
    with (
        LiveServer(create_app(config, pm)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        # /auth/login is no route here (only the generic /{table}/{id} shape matches it)
        assert http.post("/auth/login", json={"email": "a", "password": "b"}).status_code in (
            404,
            405,
        )
        database.run_script(
            "INSERT INTO users (email, password, isactive) VALUES "
            "('open@example.com', 'stored-hash', "
            f"{'TRUE' if database.dialect == 'postgresql' else '1'})"
        )
        rows = http.get("/users").json()["data"]
        assert rows and all("password" not in row for row in rows)
        assert http.get("/users?sort=password").status_code == 422
        written = http.post(
            "/users", json={"email": "x@example.com", "password": "p", "isactive": True}
        )
        assert written.status_code == 422
        assert "unknown column" in written.json()["error"]["details"][0]["message"]
        assert "securitySchemes" not in http.get("/openapi.json").json().get("components", {})


def _pem(key: object) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM,  # type: ignore[attr-defined]
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_keys_jwks_and_algorithm_confusion(database, tmp_path, algorithm):
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    private, public = _pem(key)
    (tmp_path / "jwt.pem").write_bytes(private)
    config, pm = _app(
        tmp_path,
        database.swain_url,
        auth={
            "enabled": True,
            "jwt_algorithm": algorithm,
            "jwt_private_key_file": "jwt.pem",
            "signup_answer": "tokens",
            **FAST,
        },
        mapping={
            "user": {
                "table": "users",
                "id": "id",
                "email": "email",
                "password": "password",
                "isactive": "isactive",
            }
        },
    )
    with (
        LiveServer(create_app(config, pm)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        signup = http.post(
            "/auth/signup", json={"email": f"{algorithm}@example.com", "password": "asymmetric-1"}
        )
        assert signup.status_code == 201, signup.text
        access = signup.json()["access_token"]
        assert pyjwt.get_unverified_header(access)["alg"] == algorithm
        keys = http.get("/.well-known/jwks.json").json()["keys"]
        assert len(keys) == 1 and keys[0]["alg"] == algorithm
        verifier = pyjwt.PyJWK(keys[0])
        claims = pyjwt.decode(
            access, verifier.key, algorithms=[algorithm], options={"verify_iss": False}
        )
        assert claims["typ"] == "access"
        assert (
            http.get("/auth/me", headers={"Authorization": f"Bearer {access}"}).status_code == 200
        )
        # Algorithm confusion: an HS256 token whose "secret" is the public key.
        now = int(time.time())
        forged_claims = {**claims, "iat": now, "exp": now + 600}
        import base64
        import hashlib
        import hmac
        import json

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing_input = (
            b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
            + "."
            + b64(json.dumps(forged_claims).encode())
        )
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        confused = signing_input + "." + b64(signature)
        r = http.get("/auth/me", headers={"Authorization": f"Bearer {confused}"})
        assert r.status_code == 401
