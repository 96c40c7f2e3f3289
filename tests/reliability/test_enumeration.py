"""Password reset and signup tell nobody but the address's owner whether it has an account.

Both answer with the same status and body for a known and an unknown address,
and do their work after answering, so the answer's timing does not depend on
the address either (measured here over 40 interleaved tries each, compared by
their trimmed means: the slowest and fastest tenth are dropped, so one
scheduling hiccup of a shared machine does not decide).  The email, which only
the owner reads, says what happened.
"""

from __future__ import annotations

import email
import email.policy
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.contrib.testing.auth import FAST_ARGON2
from swain.contrib.testing.process import wait_for
from swain.core import create_app, load_config

PASSWORD = "enumeration-password"
DDL = {
    "default": """
CREATE TABLE users (id {serial}, email VARCHAR(100) NOT NULL UNIQUE, password VARCHAR(200),
  nickname VARCHAR(10), CONSTRAINT no_root CHECK (nickname <> 'root'));
CREATE TABLE reset_tokens (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  token_hash VARCHAR(64) NOT NULL, expires_at TIMESTAMP NOT NULL, used_at TIMESTAMP)
""",
}
_SERIAL = {"sqlite": "INTEGER PRIMARY KEY", "postgresql": "SERIAL PRIMARY KEY",
           "mysql": "INTEGER AUTO_INCREMENT PRIMARY KEY"}
TRIES = 40


@pytest.fixture(scope="module")
def database(dialect: str) -> Any:
    with FreshDatabase(dialect) as db:
        db.run_script(DDL["default"].format(serial=_SERIAL[dialect]))
        yield db


@pytest.fixture(scope="module")
def mailbox(dialect: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"mail-{dialect}") / "sent.eml"


@pytest.fixture(scope="module")
def live(database: FreshDatabase, mailbox: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = write_config(
        tmp_path_factory.mktemp("config"), database.swain_url,
        auth={"enabled": True, "jwt_secret": "enumeration tests use a secret of 32+ bytes",
              **FAST_ARGON2},
        mapping={"user": {"table": "users", "id": "id", "email": "email",
                          "password": "password"},
                 "password_reset_token": {"table": "reset_tokens", "id": "id",
                                          "userid": "user_id", "token": "token_hash",
                                          "expiresat": "expires_at", "usedat": "used_at"}},
        smtp={"transport": "file", "file_path": str(mailbox),
              "base_url": "https://app.example"},
        rate_limit={"reset_per_client": "1000/1h", "reset_per_account": "1000/1h",
                    "signup_per_client": "1000/1h", "signup_per_account": "1000/1h"})
    config, pm = load_config(path, "development", environ={})
    with LiveServer(create_app(config, pm)) as server:
        yield server


def _mail(mailbox: Path, to: str) -> list[str]:
    """The bodies of the messages to ``to`` the file transport wrote (each message
    starts with its From header)."""
    if not mailbox.exists():
        return []
    found = []
    for part in ("\n" + mailbox.read_text(encoding="utf-8")).split("\nFrom: ")[1:]:
        message = email.message_from_string("From: " + part, policy=email.policy.default)
        if message["To"] == to:
            found.append(message.get_content())
    return found


def test_signup_answers_the_same_and_the_email_tells(live: Any, mailbox: Path,
                                                     database: FreshDatabase) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        new = http.post("/auth/signup", json={"email": "new@example.com", "password": PASSWORD})
        assert new.status_code == 202, new.text
        assert wait_for(lambda: _mail(mailbox, "new@example.com"), 10)
        taken = http.post("/auth/signup", json={"email": "new@example.com",
                                                "password": "another-password"})
        assert (taken.status_code, taken.json()) == (new.status_code, new.json())
        assert wait_for(lambda: len(_mail(mailbox, "new@example.com")) == 2, 10)
        welcome, attempt = _mail(mailbox, "new@example.com")
        assert "is ready" in welcome and "already has an account" in attempt
        # the account is the first signup's: its password works, the second's does not
        assert http.post("/auth/login", json={"email": "new@example.com",
                                              "password": PASSWORD}).status_code == 200
        assert http.post("/auth/login", json={"email": "new@example.com",
                                              "password": "another-password"}).status_code == 401
        # a signup the database refuses is answered the same, and told by email
        refused = http.post("/auth/signup", json={"email": "root@example.com",
                                                  "password": PASSWORD,
                                                  "additional_data": {"nickname": "root"}})
        assert (refused.status_code, refused.json()) == (new.status_code, new.json())
        assert wait_for(lambda: _mail(mailbox, "root@example.com"), 10)
        assert "could not create" in _mail(mailbox, "root@example.com")[0]
    assert database.query("SELECT count(*) FROM users WHERE email = 'new@example.com'") == [(1,)]
    assert database.query("SELECT count(*) FROM users WHERE email = 'root@example.com'") == [(0,)]


def test_reset_answers_the_same_in_the_same_time(live: Any, mailbox: Path) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.post("/auth/signup", json={"email": "known@example.com",
                                               "password": PASSWORD}).status_code == 202
        assert wait_for(lambda: _mail(mailbox, "known@example.com"), 10)
        for _ in range(5):  # warm up both paths
            for address in ("known@example.com", "unknown@example.com"):
                http.post("/auth/password_reset", json={"email": address})
        timings: dict[str, list[float]] = {"known@example.com": [], "unknown@example.com": []}
        answers = set()
        for round_ in range(TRIES):
            # alternate who goes first, and let each request's mail go out before the
            # next is timed: what is compared is the answer, not the work left behind
            for address in sorted(timings, reverse=bool(round_ % 2)):
                sent = len(_mail(mailbox, address))
                started = time.perf_counter()
                r = http.post("/auth/password_reset", json={"email": address})
                timings[address].append(time.perf_counter() - started)
                answers.add((r.status_code, r.text))
                assert wait_for(lambda to=address, n=sent: len(_mail(mailbox, to)) > n, 10)
    assert len(answers) == 1 and next(iter(answers))[0] == 202, answers
    # each round's two requests ran back to back under the same load: compare them
    # pairwise, so a busy machine slowing one stretch of the run does not count
    known, unknown = timings.values()
    ratio = statistics.median(k / u for k, u in zip(known, unknown, strict=True))
    assert 0.8 < ratio < 1.25, (f"known/unknown {ratio:.2f}: medians "
                                f"{statistics.median(known) * 1000:.2f} ms and "
                                f"{statistics.median(unknown) * 1000:.2f} ms")
    assert wait_for(lambda: len(_mail(mailbox, "unknown@example.com")) >= TRIES, 30)
    assert "no active account" in _mail(mailbox, "unknown@example.com")[0]
    assert "https://app.example" in _mail(mailbox, "known@example.com")[-1]
