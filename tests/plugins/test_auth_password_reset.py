"""Password reset over a real SMTP server (aiosmtpd on a free port, with
login): the test follows the link in the captured email.  Tables under
unusual names: "Members" and "ResetCodes"."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from auth_members import MEMBERS_USER

from swain.contrib.testing import LiveServer, free_port, mail, write_config
from swain.contrib.testing.auth import FAST_ARGON2, signup
from swain.core import ConfigError, create_app, load_config

PASSWORD = "first-password"
SMTP_PORT = free_port()  # aiosmtpd cannot bind port 0 itself
SECRET = "a reset-test secret that is comfortably longer than thirty-two bytes"

DDL = {
    "default": """
CREATE TABLE "Members" ("MemberNo" INTEGER PRIMARY KEY, "EmailAddr" VARCHAR(255) NOT NULL UNIQUE,
  "pw_hash" VARCHAR(255) NOT NULL, "Enabled" BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE "ResetCodes" ("CodeNo" INTEGER PRIMARY KEY,
  "Member" INTEGER NOT NULL REFERENCES "Members"("MemberNo"), "CodeHash" VARCHAR(64) NOT NULL,
  "ValidUntil" TIMESTAMP NOT NULL, "Consumed" TIMESTAMP, "Issued" TIMESTAMP);
CREATE TABLE "Sessions" ("Sid" INTEGER PRIMARY KEY, "Uid" INTEGER NOT NULL,
  "Digest" VARCHAR(64) NOT NULL, "Expires" TIMESTAMP NOT NULL)
""",
    "postgresql": """
CREATE TABLE "Members" ("MemberNo" SERIAL PRIMARY KEY, "EmailAddr" VARCHAR(255) NOT NULL UNIQUE,
  "pw_hash" VARCHAR(255) NOT NULL, "Enabled" BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE "ResetCodes" ("CodeNo" SERIAL PRIMARY KEY,
  "Member" INTEGER NOT NULL REFERENCES "Members"("MemberNo"), "CodeHash" VARCHAR(64) NOT NULL,
  "ValidUntil" TIMESTAMPTZ NOT NULL, "Consumed" TIMESTAMPTZ, "Issued" TIMESTAMPTZ);
CREATE TABLE "Sessions" ("Sid" SERIAL PRIMARY KEY, "Uid" INTEGER NOT NULL,
  "Digest" VARCHAR(64) NOT NULL, "Expires" TIMESTAMPTZ NOT NULL)
""",
    "mysql": """
CREATE TABLE `Members` (`MemberNo` INTEGER AUTO_INCREMENT PRIMARY KEY,
  `EmailAddr` VARCHAR(255) NOT NULL UNIQUE, `pw_hash` VARCHAR(255) NOT NULL,
  `Enabled` TINYINT(1) NOT NULL DEFAULT 1);
CREATE TABLE `ResetCodes` (`CodeNo` INTEGER AUTO_INCREMENT PRIMARY KEY, `Member` INTEGER NOT NULL,
  `CodeHash` VARCHAR(64) NOT NULL, `ValidUntil` DATETIME NOT NULL, `Consumed` DATETIME,
  `Issued` DATETIME, FOREIGN KEY (`Member`) REFERENCES `Members`(`MemberNo`));
CREATE TABLE `Sessions` (`Sid` INTEGER AUTO_INCREMENT PRIMARY KEY, `Uid` INTEGER NOT NULL,
  `Digest` VARCHAR(64) NOT NULL, `Expires` DATETIME NOT NULL)
""",
}

MAPPING = {
    "user": MEMBERS_USER,
    "password_reset_token": {
        "table": "ResetCodes",
        "id": "CodeNo",
        "userid": "Member",
        "token": "CodeHash",
        "expiresat": "ValidUntil",
        "usedat": "Consumed",
        "createdat": "Issued",
    },
    "session": {
        "table": "Sessions",
        "id": "Sid",
        "userid": "Uid",
        "refreshtoken": "Digest",
        "expiresat": "Expires",
    },
}
AUTH = {
    "enabled": True,
    "jwt_secret": SECRET,
    "identity_cache": "0s",
    "signup_answer": "tokens",  # accounts made by signup, used at once
    "password_token_expiry": "1h",
    **FAST_ARGON2,
}

SWAIN_CONFIG = {
    "auth": AUTH,
    "mapping": MAPPING,
    "smtp": {
        "host": "127.0.0.1",
        "port": SMTP_PORT,
        "security": "none",
        "username": "mailer",
        "password": "mail-pass",
        "from_address": "no-reply@shop.example",
        "from_name": "Shop",
        "base_url": "https://app.shop.example",
        "password_reset_path": "/reset?token=%s",
        "retries": 1,
        "retry_backoff": "0.05s",
    },
}


class Inbox(mail.Inbox):
    async def handle_DATA(self, server, session, envelope):
        assert session.authenticated, "the transport must log in"
        return await super().handle_DATA(server, session, envelope)


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"mailer"
        and auth_data.password == b"mail-pass"
    )
    return AuthResult(success=ok)


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with mail.smtp_server(SMTP_PORT, Inbox(), authenticator=_authenticator,
                          auth_require_tls=False) as (_, box):
        assert isinstance(box, Inbox)
        yield box


@pytest.fixture(autouse=True)
def _empty_inbox(request: pytest.FixtureRequest) -> None:
    # One SMTP server serves every dialect's run; each test starts with an empty inbox.
    if "inbox" in request.fixturenames:
        request.getfixturevalue("inbox").messages.clear()


def _link_token(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_content()
    link = re.search(r"https?://\S+", text).group(0)
    return link, parse_qs(urlsplit(link).query)["token"][0]


def _signup(client: httpx.Client, address: str) -> dict:
    r = signup(client, address, PASSWORD)
    assert r.status_code == 201, r.text
    return r.json()


def test_reset_link_arrives_by_smtp_and_works_once(client, inbox, database):
    pair = _signup(client, "reset@example.com")
    r = client.post(
        "/auth/password_reset",
        json={"email": "reset@example.com"},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert r.status_code == 202, r.text
    [message] = inbox.wait_for("reset@example.com")
    assert message["From"] == "Shop <no-reply@shop.example>"
    link, token = _link_token(message)
    assert link.startswith("https://app.shop.example/reset?token=")
    assert "evil" not in message.get_content()
    stored = [
        row[0]
        for row in database.query(
            'SELECT "CodeHash" FROM "ResetCodes"'.replace(
                '"', "`" if database.dialect == "mysql" else '"'
            )
        )
    ]
    assert stored and token not in stored
    confirm = client.post(
        "/auth/password_reset/confirm", json={"token": token, "new_password": "second-password"}
    )
    assert confirm.status_code == 200, confirm.text
    assert (
        client.post(
            "/auth/login", json={"email": "reset@example.com", "password": PASSWORD}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/auth/login", json={"email": "reset@example.com", "password": "second-password"}
        ).status_code
        == 200
    )
    # Single use, and the reset ended the sessions that existed before it.
    again = client.post("/auth/confirm-reset", json={"token": token, "new_password": "third-pass"})
    assert again.status_code == 400
    assert (
        client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
        == 401
    )


def test_reset_answer_does_not_reveal_the_address(client, inbox):
    _signup(client, "known@example.com")
    known = client.post("/auth/request-reset", json={"email": "known@example.com"})
    unknown = client.post("/auth/request-reset", json={"email": "unknown@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    link, _ = _link_token(inbox.wait_for("known@example.com")[0])
    assert link.startswith("https://app.shop.example/reset?token=")
    # the owner of an unknown address learns what happened from the email, and
    # nothing in it lets anyone reset anything
    told = inbox.wait_for("unknown@example.com")[0].get_content()
    assert "no active account" in told and "http" not in told


def test_concurrent_confirms_exactly_one_succeeds_and_other_tokens_die(client, inbox, server):
    _signup(client, "race@example.com")
    for _ in range(2):
        assert (
            client.post("/auth/password_reset", json={"email": "race@example.com"}).status_code
            == 202
        )
    first, second = inbox.wait_for("race@example.com", count=2)
    token, other = _link_token(first)[1], _link_token(second)[1]

    def confirm(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as own:
            return own.post(
                "/auth/password_reset/confirm",
                json={"token": token, "new_password": f"racing-password-{i}"},
            ).status_code

    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(confirm, range(5)))
    assert statuses.count(200) == 1 and statuses.count(400) == 4, statuses
    # The other outstanding token was used up by the successful reset.
    late = client.post(
        "/auth/password_reset/confirm", json={"token": other, "new_password": "another-password"}
    )
    assert late.status_code == 400


def test_bad_tokens_and_passwords(client, inbox, database):
    _signup(client, "expiry@example.com")
    client.post("/auth/password_reset", json={"email": "expiry@example.com"})
    [message] = inbox.wait_for("expiry@example.com")
    token = _link_token(message)[1]
    short = client.post("/auth/password_reset/confirm", json={"token": token, "new_password": "x"})
    assert short.status_code == 422
    huge = client.post(
        "/auth/password_reset/confirm", json={"token": token, "new_password": "y" * 100_000}
    )
    assert huge.status_code == 422
    q = "`" if database.dialect == "mysql" else '"'
    with database.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE {q}ResetCodes{q} SET {q}ValidUntil{q} = '2000-01-01 00:00:00'"
        )
    expired = client.post(
        "/auth/password_reset/confirm", json={"token": token, "new_password": "long-enough-1"}
    )
    assert expired.status_code == 400
    forged = client.post(
        "/auth/password_reset/confirm",
        json={"token": "forged-token", "new_password": "long-enough-1"},
    )
    assert forged.status_code == 400
    # A reset token is not a bearer token.
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_failed_delivery_is_logged_and_does_not_change_the_answer(
    database, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    closed = free_port()
    smtp = {**SWAIN_CONFIG["smtp"], "port": closed, "retries": 2, "retry_backoff": "0.01s"}
    path = write_config(tmp_path, database.swain_url, auth=AUTH, mapping=MAPPING, smtp=smtp)
    config, pm = load_config(path, "development", environ={})
    with (
        caplog.at_level(logging.WARNING, logger="swain.email"),
        LiveServer(create_app(config, pm)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        http.post("/auth/signup", json={"email": "undeliverable@example.com", "password": PASSWORD})
        r = http.post("/auth/password_reset", json={"email": "undeliverable@example.com"})
        assert r.status_code == 202
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            rec.levelno == logging.ERROR for rec in caplog.records
        ):
            time.sleep(0.05)
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert errors and "undeliverable@example.com" in errors[0].getMessage()
    assert "3 attempts" in errors[0].getMessage()
    assert len([rec for rec in caplog.records if rec.levelno == logging.WARNING]) == 2


@pytest.mark.parametrize("path", ["/reset", "/reset?token=%s&again=%s", "/r?t=%d%s"])
def test_reset_path_must_hold_one_placeholder(database, tmp_path: Path, path: str):
    smtp = {**SWAIN_CONFIG["smtp"], "password_reset_path": path}
    config_path = write_config(tmp_path, database.swain_url, auth=AUTH, mapping=MAPPING, smtp=smtp)
    config, pm = load_config(config_path, "development", environ={})
    with pytest.raises(ConfigError, match=re.escape("smtp.password_reset_path")):
        create_app(config, pm)


def test_openapi_lists_the_reset_endpoints(client):
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").json()
    validate(doc)
    for path in (
        "/auth/password_reset",
        "/auth/request-reset",
        "/auth/password_reset/confirm",
        "/auth/confirm-reset",
    ):
        assert doc["paths"][path]["post"]["security"] == []
    assert "apiKeyAuth" not in doc["components"]["securitySchemes"]
