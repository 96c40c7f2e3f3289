"""Existing users of other frameworks log in: a Django-like ``auth_user`` table
holding hashes made by Django and Werkzeug and the published vectors of
ASP.NET Identity and Spring Security (see ``password_hashes``), on every
database, over HTTP.

Each user logs in with the right password and not with a wrong one, and is
then upgraded to argon2id (or left alone with ``rehash_legacy = false``); weak
formats verify only when named; malformed values are a prompt 401; login by
username; ``swain mapping check`` and the start-up log count the formats; the
format plugin of the documentation adds a verifier."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import statistics
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from password_hashes import (
    DJANGO_USER,
    KEPT,
    LEGACY,
    MALFORMED,
    NAMED,
    PASSWORD,
    REFUSED,
    TIMED,
    WEAK,
    Stored,
    user_table,
)

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.contrib.testing.auth import FAST_ARGON2, bearer, signup
from swain.core import ConfigError, HashInfo, create_app, hookimpl, load_config
from swain.core.cli import cli

SECRET = "password formats: a signing secret comfortably over thirty-two bytes"
ROWS = [*LEGACY, *KEPT, *WEAK, *TIMED, NAMED, *MALFORMED, *REFUSED]
DDL = {dialect: user_table(dialect, ROWS) for dialect in ("sqlite", "postgresql", "mysql")}
DEFAULT_FORMATS = ["bcrypt", "django", "werkzeug", "aspnet", "spring"]
AUTH = {"enabled": True, "jwt_secret": SECRET, "identity_cache": "0s", **FAST_ARGON2,
        "password_formats": [*DEFAULT_FORMATS, "aspnet_v2", "spring_sha256"],
        "signup_answer": "tokens"}  # an account made by signup, used at once
SWAIN_CONFIG = {"auth": AUTH, "mapping": {"user": DJANGO_USER},
                "rate_limit": {"enabled": False}}


def _login(client: httpx.Client, user: Stored, password: str | None = None) -> httpx.Response:
    return client.post("/auth/login", json={"email": user.email,
                                            "password": user.password if password is None
                                            else password})


def _stored(database: FreshDatabase, username: str) -> str:
    return str(database.query("SELECT password FROM auth_user WHERE username = :u",
                              {"u": username})[0][0])


@contextlib.contextmanager
def _server(database: FreshDatabase, tmp_path: Path, plugins: tuple[Any, ...] = (),
            user: dict[str, str] | None = None, disable: tuple[str, ...] = (),
            **auth: Any) -> Iterator[httpx.Client]:
    """Another app over the module's database, with other ``[auth]`` settings."""
    path = write_config(tmp_path, database.swain_url, auth={**AUTH, **auth},
                        mapping={"user": user or DJANGO_USER}, rate_limit={"enabled": False},
                        plugins={"disable": list(disable)})
    config, pm = load_config(path, "development", environ={}, plugins=plugins)
    with LiveServer(create_app(config, pm)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def _check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(path), "mapping", "check"])
    return result.exit_code, result.output


def test_mapping_check_counts_the_formats_of_a_mixed_table(dialect, tmp_path):
    with FreshDatabase(dialect) as fresh:
        fresh.run_script(DDL[dialect])
        path = write_config(tmp_path, fresh.swain_url, mapping={"user": DJANGO_USER},
                            auth={"enabled": True, "jwt_secret": SECRET,
                                  "password_formats": ["bcrypt", "werkzeug", "aspnet"]})
        code, output = _check(path)
        assert code == 0, output
        total = len(ROWS)
        assert f"password hashes in auth_user.password: {total} sampled rows" in output
        assert (f"3 of {total} look like Django pbkdf2_sha256: enable `django` in "
                "[auth] password_formats") in output
        assert f"1 of {total} looks like Django scrypt: enable `django`" in output
        assert f"2 of {total} look like Spring {{bcrypt}}: enable `spring`" in output
        assert f"2 of {total} look like ASP.NET Identity v2: enable `aspnet_v2`" in output
        assert f"2 of {total} look like Spring {{sha256}}: enable `spring_sha256`" in output
        assert f"6 of {total} are ASP.NET Core Identity v3 (`aspnet`, enabled)" in output
        assert f"2 of {total} are Werkzeug scrypt (`werkzeug`, enabled)" in output
        assert f"1 of {total} is bcrypt (`bcrypt`, enabled)" in output
        assert ("look like Django pbkdf2_sha256 but can never verify (1000000000000 "
                "iterations: over the cap of 4000000)") in output
        assert "look like ASP.NET Core Identity v3 but can never verify" in output
        assert "looks like Django unusable password but can never verify (no password set" \
               in output
        assert f"1 of {total} is in no format swain knows" in output
        for row in ROWS:  # counts and names only, never a stored value
            assert row.encoded not in output
        path = write_config(tmp_path, fresh.swain_url, mapping={"user": DJANGO_USER},
                            auth={"enabled": True, "jwt_secret": SECRET,
                                  "password_formats": ["djang"]})
        code, output = _check(path)
        assert code == 1
        assert ("auth.password_formats[0]: unknown format 'djang'; did you mean \"django\"?"
                in output)


@pytest.mark.parametrize("user", LEGACY, ids=[u.username for u in LEGACY])
def test_each_format_logs_in_and_is_upgraded_to_argon2id(client, database, user):
    before = _stored(database, user.username)
    assert before == user.encoded
    wrong = _login(client, user, user.password + "!")
    assert wrong.status_code == 401, wrong.text
    assert wrong.json()["error"]["message"] == "invalid email or password"
    assert _stored(database, user.username) == before  # a failed login changes nothing
    first = _login(client, user)
    assert first.status_code == 200, first.text
    upgraded = _stored(database, user.username)
    assert upgraded.startswith("$argon2id$") and user.password not in upgraded
    again = _login(client, user)
    assert again.status_code == 200, again.text
    assert _stored(database, user.username) == upgraded
    assert _login(client, user, user.password + "!").status_code == 401
    me = client.get("/auth/me", headers=bearer(again.json()["access_token"]))
    assert me.status_code == 200 and me.json()["user"]["username"] == user.username


def test_rehash_legacy_off_leaves_the_stored_hash_alone(database, tmp_path):
    with _server(database, tmp_path, rehash_legacy=False) as client:
        for user in KEPT:
            for _ in range(2):
                r = _login(client, user)
                assert r.status_code == 200, (user.username, r.text)
            assert _login(client, user, "not " + user.password).status_code == 401
            assert _stored(database, user.username) == user.encoded, user.username


def test_weak_formats_verify_only_when_named(database, tmp_path):
    with _server(database, tmp_path, password_formats=DEFAULT_FORMATS) as client:
        for user in WEAK:
            r = _login(client, user)
            assert r.status_code == 401, (user.username, r.text)
            assert _stored(database, user.username) == user.encoded
    with _server(database, tmp_path, password_formats=["aspnet_v2", "spring_sha256"],
                 rehash_legacy=False) as client:
        for user in WEAK:
            r = _login(client, user)
            assert r.status_code == 200, (user.username, r.text)
        # not named, so not verified: Django's format
        assert _login(client, KEPT[0]).status_code == 401


def test_login_by_username(client, database):
    r = signup(client, "ada@example.com", PASSWORD, additional_data={"username": "ada"})
    assert r.status_code == 201, r.text
    by_name = client.post("/auth/login", json={"username": "ada", "password": PASSWORD})
    assert by_name.status_code == 200, by_name.text
    by_email = client.post("/auth/login", json={"email": "ADA@example.com",
                                                "password": PASSWORD})
    assert by_email.status_code == 200, by_email.text
    token = client.post("/auth/token", data={"username": "ada", "password": PASSWORD})
    assert token.status_code == 200, token.text
    token = client.post("/auth/token", data={"username": "ada@example.com",
                                             "password": PASSWORD})
    assert token.status_code == 200, token.text
    basic = base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
    me = client.get("/auth/me", headers={"Authorization": f"Basic {basic}"})
    assert me.status_code == 200 and me.json()["user"]["username"] == "ada", me.text
    # a Django user by username: verified in Django's format, then upgraded
    assert _stored(database, NAMED.username) == NAMED.encoded
    legacy = client.post("/auth/login", json={"username": NAMED.username,
                                              "password": NAMED.password})
    assert legacy.status_code == 200, legacy.text
    assert _stored(database, NAMED.username).startswith("$argon2id$")
    for body in ({"username": "Ada", "password": PASSWORD},
                 {"username": "ada", "password": "wrong password"},
                 {"username": "nobody", "password": PASSWORD}):
        r = client.post("/auth/login", json=body)
        assert r.status_code == 401, (body, r.text)
        assert r.json()["error"]["message"] == "invalid username or password"
    both = client.post("/auth/login", json={"email": "ada@example.com", "username": "ada",
                                            "password": PASSWORD})
    assert both.status_code == 422
    assert both.json()["error"]["details"][0]["path"] == "username"
    spec = client.get("/openapi.json").json()["components"]["schemas"]["LoginRequest"]
    assert spec["required"] == ["password"] and "username" in spec["properties"]


def test_login_by_username_needs_the_mapping(database, tmp_path):
    user = {k: v for k, v in DJANGO_USER.items() if k != "username"}
    with _server(database, tmp_path, user=user, rehash_legacy=False) as client:
        r = client.post("/auth/login", json={"username": KEPT[0].username,
                                             "password": KEPT[0].password})
        assert r.status_code == 422, r.text
        assert "[mapping.user] username" in r.json()["error"]["details"][0]["message"]
        # the form's username is then the email
        r = client.post("/auth/token", data={"username": KEPT[0].username,
                                             "password": KEPT[0].password})
        assert r.status_code == 401, r.text
        r = client.post("/auth/token", data={"username": KEPT[0].email,
                                             "password": KEPT[0].password})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("user", MALFORMED + REFUSED,
                         ids=[u.username for u in MALFORMED + REFUSED])
def test_malformed_and_unusable_values_are_a_prompt_401(client, database, user):
    started = time.monotonic()
    r = _login(client, user)
    elapsed = time.monotonic() - started
    assert r.status_code == 401, r.text
    assert r.json()["error"]["message"] == "invalid email or password"
    assert elapsed < 1.0, f"{user.username}: {elapsed:.2f}s"
    assert _stored(database, user.username) == user.encoded
    for body in ({"username": user.username, "password": user.password},):
        assert client.post("/auth/login", json=body).status_code == 401
    assert client.get("/health").status_code == 200


def _median_login_seconds(client: httpx.Client, email: str, times: int = 3) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        r = client.post("/auth/login", json={"email": email, "password": "a wrong password"})
        spent.append(time.perf_counter() - started)
        assert r.status_code == 401
    return statistics.median(spent)


def test_login_time_does_not_tell_the_format(client):
    """The unknown address and the cheapest format (250 rounds of SHA-1) answer no
    sooner than the costliest format in the table (Werkzeug's default scrypt)."""
    slow = _median_login_seconds(client, TIMED[0].email)
    assert slow > 0.02  # scrypt N=32768 is real work: the comparison below means something
    for email in ("nobody@example.com", TIMED[1].email):
        assert _median_login_seconds(client, email) > 0.6 * slow, email


def test_startup_warns_once_about_hashes_it_cannot_verify(database, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="swain")
    with _server(database, tmp_path, password_formats=["werkzeug"]) as client:
        assert client.get("/health").status_code == 200
    warnings = [r for r in caplog.records if "password hashes in auth_user.password" in
                r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    message = warnings[0].getMessage()
    assert "like Django pbkdf2_sha256: enable `django`" in message
    assert "like Spring {sha256}: enable `spring_sha256`" in message
    assert "in no format swain knows" in message
    assert "(`werkzeug`, enabled)" not in message  # only what needs attention
    for row in ROWS:
        assert row.encoded not in caplog.text


def test_an_unknown_format_name_stops_the_start(database, tmp_path):
    path = write_config(tmp_path, database.swain_url, mapping={"user": DJANGO_USER},
                        auth={**AUTH, "password_formats": ["django", "spring_sha265"]})
    config, pm = load_config(path, "development", environ={})
    # refused while the app is built (the account service is made at swain_startup)
    with pytest.raises(ConfigError, match=r"auth\.password_formats\[1\]: unknown format "
                                          r"'spring_sha265'; did you mean \"spring_sha256\"\?"):
        create_app(config, pm)


def test_disabling_the_hash_formats_plugin_turns_its_formats_off(database, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="swain")
    with _server(database, tmp_path, disable=("hash_formats",),
                 password_formats=DEFAULT_FORMATS) as client:
        assert _login(client, KEPT[0]).status_code == 401  # Django's: no verifier now
    assert "auth.password_formats: 'django' stays off, its plugin is disabled" in caplog.text


class BrokenFormat:
    """A format plugin with a bug: its verify raises."""

    name = "broken"

    def inspect(self, encoded: str) -> HashInfo | None:
        return HashInfo("broken") if encoded.startswith("broken$") else None

    def verify(self, encoded: str, password: str) -> bool:
        raise RuntimeError("a bug in a plugin")


class BrokenPlugin:
    @hookimpl
    def swain_password_hashers(self) -> list[Any]:
        return [BrokenFormat()]


def _documented_plugin() -> types.ModuleType:
    """The format plugin docs/authentication.md shows, as written there."""
    text = (Path(__file__).parents[2] / "docs" / "authentication.md").read_text()
    section = text[text.index("### Adding a format as a plugin"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    module = types.ModuleType("documented_format_plugin")
    exec(compile(code[:code.index("```")], "docs/authentication.md", "exec"), module.__dict__)
    return module


def test_the_documented_format_plugin_works(database, tmp_path):
    salt = b"8 bytes!"
    ssha = "{SSHA512}" + base64.b64encode(
        hashlib.sha512(PASSWORD.encode() + salt).digest() + salt).decode()
    true = "TRUE" if database.dialect == "postgresql" else "1"
    database.run_script(f"""
INSERT INTO auth_user (username, email, password, is_active) VALUES
  ('ldap_user', 'ldap_user@example.com', '{ssha}', {true}),
  ('ldap_bad', 'ldap_bad@example.com', '{{SSHA512}}not base64', {true}),
  ('broken', 'broken@example.com', 'broken$x', {true})""")
    ldap_user = Stored("ldap_user", ssha, PASSWORD, "LDAP {SSHA512}")
    plugins = (_documented_plugin(), BrokenPlugin())
    with _server(database, tmp_path, plugins, password_formats=["ssha512", "broken"],
                 rehash_legacy=False) as client:
        assert _login(client, ldap_user).status_code == 200
        assert _login(client, ldap_user, "wrong password").status_code == 401
        assert _login(client, Stored("ldap_bad", "", PASSWORD, "")).status_code == 401
        r = _login(client, Stored("broken", "", PASSWORD, ""))
        assert r.status_code == 401, r.text  # the plugin's exception is a failed login
    with _server(database, tmp_path, plugins, password_formats=DEFAULT_FORMATS) as client:
        assert _login(client, ldap_user).status_code == 401  # registered, not enabled
    with _server(database, tmp_path, plugins, password_formats=["ssha512"]) as client:
        assert _login(client, ldap_user).status_code == 200
        assert _stored(database, "ldap_user").startswith("$argon2id$")
