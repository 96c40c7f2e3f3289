"""Shared pieces of the console tests: the operator's sample database, a signed-in
HTTP client for the console's JSON API, and a local SMTP inbox."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from swain.contrib.testing.console import ConsoleProcess
from swain.contrib.testing.mail import Inbox, smtp_server
from swain.plugins.auth.passwords import Argon2Hasher

ADMIN_EMAIL = "founder@acme.test"
ADMIN_PASSWORD = "console admin password"
ALICE, BOB = "alice@acme.test", "bob@globex.test"
USER_PASSWORD = "alice-and-bob-pass"


def shop_ddl(dialect: str) -> str:
    """accounts (tenants), their users and orders, shared products, notes without a tenant
    column, and every auth table but sessions, all under names of the operator's own."""
    pk = {"postgresql": "SERIAL PRIMARY KEY", "mysql": "INTEGER AUTO_INCREMENT PRIMARY KEY",
          "sqlite": "INTEGER PRIMARY KEY"}[dialect]
    ts = {"postgresql": "TIMESTAMPTZ", "mysql": "DATETIME", "sqlite": "TIMESTAMP"}[dialect]
    boolean = "TINYINT(1)" if dialect == "mysql" else "BOOLEAN"
    true = "TRUE" if dialect == "postgresql" else "1"
    password = Argon2Hasher(time_cost=1, memory_kib=1024, parallelism=1).hash(USER_PASSWORD)
    return f"""
CREATE TABLE accounts (id {pk}, name VARCHAR(100) NOT NULL);
CREATE TABLE app_users (id {pk}, email_address VARCHAR(255) NOT NULL UNIQUE,
  first_name VARCHAR(100), password_hash VARCHAR(255) NOT NULL,
  active {boolean} NOT NULL DEFAULT {true}, account_id INTEGER REFERENCES accounts(id));
CREATE TABLE password_resets (id {pk}, user_id INTEGER NOT NULL REFERENCES app_users(id),
  token VARCHAR(255) NOT NULL UNIQUE, expires_at {ts} NOT NULL, used_at {ts} NULL,
  created_at {ts} NULL);
CREATE TABLE api_keys (id {pk}, user_id INTEGER REFERENCES app_users(id),
  key_hash VARCHAR(255) NOT NULL UNIQUE, name VARCHAR(100), created_at {ts} NULL,
  revoked_at {ts} NULL);
CREATE TABLE social_profiles (id {pk}, user_id INTEGER NOT NULL REFERENCES app_users(id),
  provider VARCHAR(50) NOT NULL, provider_user_id VARCHAR(255) NOT NULL, email VARCHAR(255),
  created_at {ts} NULL);
CREATE TABLE roles (id {pk}, name VARCHAR(100) NOT NULL UNIQUE, description VARCHAR(255));
CREATE TABLE permissions (id {pk}, name VARCHAR(100) NOT NULL UNIQUE, description VARCHAR(255));
CREATE TABLE role_permissions (id {pk}, role_id INTEGER NOT NULL REFERENCES roles(id),
  permission_id INTEGER NOT NULL REFERENCES permissions(id));
CREATE TABLE user_roles (id {pk}, user_id INTEGER NOT NULL REFERENCES app_users(id),
  role_id INTEGER NOT NULL REFERENCES roles(id));
CREATE TABLE products (id {pk}, name VARCHAR(100) NOT NULL, price NUMERIC(10,2) NOT NULL);
CREATE TABLE orders (id {pk}, account_id INTEGER NOT NULL REFERENCES accounts(id),
  status VARCHAR(20) NOT NULL, total NUMERIC(10,2) NOT NULL);
CREATE TABLE notes (id {pk}, body VARCHAR(200) NOT NULL);
INSERT INTO accounts (name) VALUES ('Acme');
INSERT INTO accounts (name) VALUES ('Globex');
INSERT INTO app_users (email_address, first_name, password_hash, account_id)
  VALUES ('{ALICE}', 'Alice', '{password}', 1);
INSERT INTO app_users (email_address, first_name, password_hash, account_id)
  VALUES ('{BOB}', 'Bob', '{password}', 2);
INSERT INTO products (name, price) VALUES ('Widget', 9.50);
INSERT INTO orders (account_id, status, total) VALUES (1, 'paid', 10.00);
INSERT INTO orders (account_id, status, total) VALUES (1, 'open', 20.00);
INSERT INTO orders (account_id, status, total) VALUES (1, 'paid', 30.00);
INSERT INTO orders (account_id, status, total) VALUES (2, 'paid', 40.00);
INSERT INTO notes (body) VALUES ('first note')
"""


@pytest.fixture(scope="module")
def smtp_inbox() -> Iterator[tuple[int, Inbox]]:
    with smtp_server() as served:
        yield served


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """A running console whose first admin is made (ADMIN_EMAIL / ADMIN_PASSWORD)."""
    with ConsoleProcess(tmp_path_factory.mktemp("console")) as running:
        assert running.setup_link, running.log()
        create_admin(running.url, running.setup_link)
        yield running


def api_client(url: str, email_address: str = ADMIN_EMAIL,
               password: str = ADMIN_PASSWORD) -> httpx.Client:
    """An httpx client signed in to the console's API with a bearer token."""
    login = httpx.post(url + "/api/login", json={"email": email_address, "password": password},
                       timeout=30)
    assert login.status_code == 200, login.text
    return httpx.Client(base_url=url, timeout=120,
                        headers={"Authorization": f"Bearer {login.json()['access_token']}"})


def create_admin(console_url: str, setup_link: str) -> None:
    """The first admin, through the setup page's form (CSRF cookie and token included)."""
    with httpx.Client(timeout=30) as http:
        page = http.get(setup_link)
        assert page.status_code == 200, page.text
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        done = http.post(console_url + "/setup", data={
            "csrf_token": token, "token": setup_link.rsplit("=", 1)[1], "email": ADMIN_EMAIL,
            "new_password": ADMIN_PASSWORD, "repeat_password": ADMIN_PASSWORD})
        assert done.status_code == 303, done.text
