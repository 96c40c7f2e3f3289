"""The product document's SDK examples run as written.

Every Python and TypeScript snippet and every JSON payload of the sections "Using
the Generated SDKs", "Advanced Filtering & Querying", "Counts & Aggregations",
"Bulk Operations & Mass Updates" and "Authentication Endpoints Usage" is read from
the document (:mod:`seed_snippets`) and run against a users/orders schema with
auth on, on SQLite and PostgreSQL:

* the SDKs come from ``swain_cli gen -l python -l typescript -o sdks`` against the
  live server, once for the module, and are installed with the document's own
  ``pip install ./sdks/python`` and ``npm install ./sdks/typescript
  --legacy-peer-deps``;
* the Python snippets run one after the other in one interpreter, each on its own
  (a failing one does not hide the next);
* each TypeScript snippet, after the first one that sets up ``usersApi``, is a
  program of its own, type-checked with ``tsc --strict`` and run by node;
* the JSON payloads are sent to their endpoints as they are.

Only the host and the credentials change, ``create_users`` replaces
``create_user`` and ``listUsers(1, 25)`` replaces ``listUsers({ page: 1, pageSize:
25 })`` (:data:`seed_snippets.RENAMES`); the Python snippets get back the
indentation the document's text lost (:data:`seed_snippets.PYTHON`).  The
document's accounts exist in each database (``user@example.com`` with
``super-secret`` for the SDK snippets, with ``securePassword123`` for the
authentication payloads), so these keep their credentials; the signup payload
signs up another address, and the reset confirmation carries the emailed token.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from seed_snippets import (
    HOST,
    RENAMES,
    SECTIONS,
    Snippet,
    all_snippets,
    json_text,
    snippets,
)

from swain.contrib.testing import FreshDatabase, selected_dialects, serving, write_config
from swain.contrib.testing.auth import FAST_ARGON2, SQL_TYPES
from swain.contrib.testing.mail import Inbox, smtp_server
from swain.plugins.auth.passwords import Argon2Hasher

pytestmark = pytest.mark.slow

#: the databases the document's examples run on
DIALECTS = [d for d in selected_dialects() if d in ("sqlite", "postgresql")]

USING, FILTERING, COUNTS, BULK, AUTH = SECTIONS
#: the account the SDK snippets sign in with: the document's own
SDK_USER, SDK_PASSWORD = "user@example.com", "super-secret"
#: the account the authentication payloads sign in with: the document's own
AUTH_USER, AUTH_PASSWORD = "user@example.com", "securePassword123"
#: the signup payload's address, taken by AUTH_USER in that database
SIGNUP_USER = "john@example.com"
SECRET = "the seed document's JWT secret, comfortably longer than 32 bytes"


def ddl(dialect: str, password: str) -> str:
    """users and their orders (the document's columns: status, role, createdAt; total,
    user_id), the reset token card's table, six users and five orders, and the
    account ``user@example.com`` with ``password``."""
    pk, true = SQL_TYPES[dialect]["serial"], SQL_TYPES[dialect]["true"]
    hashed = Argon2Hasher(time_cost=1, memory_kib=1024, parallelism=1).hash(password)
    users = [("ada", "active", "admin", "2024-03-01"), ("bob", "active", "member", "2024-04-01"),
             ("cy", "active", "manager", "2023-06-01"), ("max", "active", "manager", "2024-05-01"),
             ("dee", "trial", "member", "2024-02-01"), ("eve", "churned", "member", "2024-02-02")]
    orders = [(1, "completed", "300.00"), (1, "completed", "250.50"), (1, "pending", "999.00"),
              (2, "completed", "40.00"), (4, "pending", "10.00")]
    return "\n".join([
        f"""CREATE TABLE users (id {pk}, email VARCHAR(255) NOT NULL UNIQUE,
  password VARCHAR(255), first_name VARCHAR(100), last_name VARCHAR(100),
  is_active BOOLEAN NOT NULL DEFAULT {true}, status VARCHAR(20) NOT NULL DEFAULT 'active',
  role VARCHAR(20) NOT NULL DEFAULT 'member',
  "createdAt" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);""",
        f"""CREATE TABLE orders (id {pk}, user_id INTEGER NOT NULL REFERENCES users(id),
  status VARCHAR(20) NOT NULL, total NUMERIC(10,2) NOT NULL);""",
        f"""CREATE TABLE password_reset_tokens (id {pk},
  userid INTEGER NOT NULL REFERENCES users(id), token VARCHAR(64) NOT NULL,
  "expiresAt" TIMESTAMP NOT NULL, "usedAt" TIMESTAMP, "createdAt" TIMESTAMP);""",
        *(f"""INSERT INTO users (email, status, role, "createdAt")
  VALUES ('{name}@example.com', '{status}', '{role}', '{day} 10:00:00');"""
          for name, status, role, day in users),
        *(f"INSERT INTO orders (user_id, status, total) VALUES ({user}, '{status}', {total});"
          for user, status, total in orders),
        f"""INSERT INTO users (email, password, "createdAt")
  VALUES ('user@example.com', '{hashed}', '2023-01-01 10:00:00');""",
    ])


SWAIN_CONFIG: dict[str, Any] = {
    "auth": {"enabled": True, "jwt_secret": SECRET, "identity_cache": "0s",
             "signup_answer": "tokens", **FAST_ARGON2},
    "mapping": {
        "user": {"table": "users", "id": "id", "email": "email", "password": "password",
                 "isactive": "is_active", "firstname": "first_name"},
        "password_reset_token": {"table": "password_reset_tokens", "id": "id",
                                 "userid": "userid", "token": "token",
                                 "expiresat": "expiresAt", "usedat": "usedAt",
                                 "createdat": "createdAt"},
    },
    "smtp": {"host": "127.0.0.1", "security": "none",
             "from_address": "no-reply@example.com", "from_name": "Your App",
             "base_url": "https://siteclear.mobix-sites.co.uk",
             "password_reset_path": "/reset-password?token=%s"},
}


@dataclass
class Api:
    """A live server over a fresh database of the module's schema."""

    url: str
    database: FreshDatabase

    def login(self, email_address: str, password: str) -> int:
        return httpx.post(self.url + "/auth/login", timeout=30,
                          json={"email": email_address, "password": password}).status_code

    def users(self) -> dict[str, str]:
        """email → status of every user, read from the database."""
        return dict(self.database.query("SELECT email, status FROM users"))


@contextmanager
def serve(dialect: str, folder: Path, password: str, smtp_port: int = 25) -> Iterator[Api]:
    with FreshDatabase(dialect) as database:
        database.run_script(ddl(dialect, password))
        config = write_config(folder, database.swain_url, **{
            **SWAIN_CONFIG, "smtp": {**SWAIN_CONFIG["smtp"], "port": smtp_port}})
        with serving(config) as live:
            yield Api(live.url, database)


def sh(command: str | list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command (a string goes to the shell, as typed), checked to succeed."""
    run = subprocess.run(command, cwd=cwd, shell=isinstance(command, str), text=True,
                         capture_output=True, timeout=900, env={**os.environ, **env})
    assert run.returncode == 0, f"{command}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


# -- the SDKs, once for the module -------------------------------------------------------


@dataclass
class Project:
    """An application folder: ``sdks/`` from swain_cli, a virtual environment with the
    Python SDK, node_modules with the TypeScript one, TypeScript and node's types."""

    folder: Path
    python: str
    document: dict[str, Any]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    folder = tmp_path_factory.mktemp("app")
    with serve(DIALECTS[0], tmp_path_factory.mktemp("config"), SDK_PASSWORD) as api:
        document = httpx.get(api.url + "/openapi.json", timeout=30).json()
        # The wizard's equivalent command, without -p: the package names are swain_cli's.
        result = subprocess.run([sys.executable, "-m", "swain.contrib.swain_cli", "gen",
                                 "--swain-base", api.url, "-o", "./sdks", "-l", "python",
                                 "-l", "typescript"], cwd=folder, capture_output=True,
                                text=True, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
    assert (folder / "sdks" / "typescript" / "dist" / "index.js").is_file()
    [python_using] = [s for s in snippets(USING) if s.language == "python"]
    [typescript_using] = [s for s in snippets(USING) if s.language == "typescript"]
    venv = folder / "venv"
    sh([sys.executable, "-m", "venv", str(venv)], folder)
    for command in python_using.commands:  # pip install ./sdks/python
        sh(command, folder, PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    (folder / "package.json").write_text('{"name": "seed-app", "private": true}')
    for command in typescript_using.commands:  # npm install ./sdks/typescript --legacy-peer-deps
        sh(command + " --no-audit --no-fund", folder)
    sh("npm install --no-audit --no-fund --save-dev typescript@5 @types/node@20", folder)
    return Project(folder, str(venv / "bin" / "python"), document)


# -- the runs, per database --------------------------------------------------------------


@pytest.fixture(scope="module", params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def sdk_api(project: Project, dialect: str, folder: Path) -> Iterator[Api]:
    """:func:`serve` for the SDK user, whose document has the operations and components
    the module's SDKs were made from."""
    with serve(dialect, folder, SDK_PASSWORD) as api:
        same_sdk(project, api)
        yield api


def same_sdk(project: Project, api: Api) -> None:
    document = httpx.get(api.url + "/openapi.json", timeout=30).json()
    for key in ("paths", "components"):
        assert sorted(document[key]) == sorted(project.document[key])
    assert sorted(document["components"]["schemas"]) == \
        sorted(project.document["components"]["schemas"])
    operations = {op.get("operationId") for path in document["paths"].values()
                  for op in path.values() if isinstance(op, dict)}
    assert operations == {op.get("operationId") for path in project.document["paths"].values()
                          for op in path.values() if isinstance(op, dict)}


@dataclass
class Outcome:
    """What one snippet printed, and how it ended."""

    output: str
    error: str = ""

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()


HARNESS = textwrap.dedent('''
    import json, sys, traceback
    namespace = {"__name__": "__main__"}
    for index, source in enumerate(json.load(open(sys.argv[1]))):
        print(f"=== snippet {index}", flush=True)
        try:
            exec(compile(source, f"<snippet {index}>", "exec"), namespace)
        except BaseException:
            print(f"=== failed {index}", flush=True)
            print(traceback.format_exc(), flush=True)
''')


@dataclass
class Run:
    api: Api
    outcomes: dict[str, Outcome]


@pytest.fixture(scope="module")
def python_run(project: Project, dialect: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The Python snippets, in document order, in one interpreter."""
    code = [s for s in all_snippets() if s.language == "python"]
    with sdk_api(project, dialect, tmp_path_factory.mktemp("config")) as api:
        (project.folder / "harness.py").write_text(HARNESS)
        (project.folder / "snippets.json").write_text(json.dumps(
            [s.prepared({HOST: api.url, **RENAMES}) for s in code]))
        run = subprocess.run([project.python, "harness.py", "snippets.json"],
                             cwd=project.folder, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        parts = re.split(r"^=== snippet \d+\n", run.stdout, flags=re.M)[1:]
        outcomes = {}
        for snippet, part in zip(code, parts, strict=True):
            output, _, error = part.partition("=== failed")
            outcomes[snippet.section] = Outcome(output, error)
        yield Run(api, outcomes)


def typescript_program(using: Snippet, snippet: Snippet, url: str) -> str:
    """One program: the first snippet's imports, then in an async main the first
    snippet's statements and ``snippet``'s (when it is another one)."""
    first = using.prepared({HOST: url, **RENAMES}).splitlines()
    imports = [line for line in first if line.startswith("import ")]
    body = [line for line in first if not line.startswith("import ")]
    if snippet is not using:
        body += snippet.prepared({HOST: url, **RENAMES}).splitlines()
    return "\n".join([*imports, "", "async function main(): Promise<void> {", *body, "}", "",
                      "main().catch((error: any) => {",
                      "  console.error(JSON.stringify(error?.response?.data ?? String(error)));",
                      "  process.exit(1);", "});", ""])


@pytest.fixture(scope="module")
def typescript_run(project: Project, dialect: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Each TypeScript snippet as a program, type-checked together, run in order."""
    code = [s for s in all_snippets() if s.language == "typescript"]
    with sdk_api(project, dialect, tmp_path_factory.mktemp("config")) as api:
        names = [f"snippet_{i}" for i in range(len(code))]
        for name, snippet in zip(names, code, strict=True):
            (project.folder / f"{name}.ts").write_text(
                typescript_program(code[0], snippet, api.url))
        (project.folder / "tsconfig.json").write_text(json.dumps({
            "compilerOptions": {"target": "ES2020", "module": "commonjs", "strict": True,
                                "types": ["node"]},
            "files": [f"{name}.ts" for name in names]}))
        tsc = subprocess.run(["node", "node_modules/typescript/bin/tsc", "-p", "."],
                             cwd=project.folder, capture_output=True, text=True, timeout=600)
        outcomes = {}
        for name, snippet in zip(names, code, strict=True):
            problems = [line for line in tsc.stdout.splitlines() if line.startswith(f"{name}.ts")]
            run = subprocess.run(["node", f"{name}.js"], cwd=project.folder,
                                 capture_output=True, text=True, timeout=120)
            if run.returncode or run.stderr:  # console.warn reports a failed bulk row
                problems.append(f"node exited {run.returncode}: {run.stderr}")
            outcomes[snippet.section] = Outcome(run.stdout, "\n".join(problems))
        yield Run(api, outcomes)


def succeeded(outcome: Outcome) -> Outcome:
    assert not outcome.error, f"output:\n{outcome.output}\nerror:\n{outcome.error}"
    return outcome


# -- the document --------------------------------------------------------------------------


def test_the_sections_hold_the_snippets_that_run() -> None:
    """The document's sections hold the snippets the runs below take, and what may
    change in them is there to change."""
    kinds = [(s.section, s.language) for s in all_snippets()]
    assert kinds == [(USING, "python"), (USING, "typescript"), (FILTERING, "json"),
                     (FILTERING, "python"), (FILTERING, "typescript"), (COUNTS, "json"),
                     (COUNTS, "python"), (COUNTS, "typescript"), (BULK, "python"),
                     (BULK, "typescript"), (AUTH, "json"), (AUTH, "json"), (AUTH, "json"),
                     (AUTH, "json")]
    code = "".join(s.code for s in all_snippets())
    for old in (*RENAMES, HOST, SDK_USER, SDK_PASSWORD, AUTH_PASSWORD):
        assert old in code, old
    assert all(code.count(old) == 1 for old in RENAMES)


# -- Using the Generated SDKs ------------------------------------------------------------


def test_using_python(python_run: Run) -> None:
    assert succeeded(python_run.outcomes[USING]).lines == []
    assert python_run.api.users()["new@acme.co"] == "active"


def test_using_typescript(typescript_run: Run) -> None:
    assert succeeded(typescript_run.outcomes[USING]).lines == []


# -- Advanced Filtering & Querying --------------------------------------------------------

#: active, since 2024, admin or manager; newest first
FILTERED = [("max@example.com", "2024-05-01"), ("ada@example.com", "2024-03-01")]


def test_filtering_python(python_run: Run) -> None:
    lines = succeeded(python_run.outcomes[FILTERING]).lines
    assert lines == [f"{email_address} {day} 10:00:00" for email_address, day in FILTERED]


def test_filtering_typescript(typescript_run: Run) -> None:
    lines = succeeded(typescript_run.outcomes[FILTERING]).lines
    assert lines == [f"{email_address} {day}T10:00:00" for email_address, day in FILTERED]


@pytest.fixture(scope="module")
def json_api(dialect: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with serve(dialect, tmp_path_factory.mktemp("config"), SDK_PASSWORD) as api:
        yield api


def payload(section: str, index: int = 0, **replacements: str) -> dict[str, Any]:
    """The section's ``index``-th JSON payload, parsed, with ``replacements`` made."""
    text = json_text([s for s in snippets(section) if s.language == "json"][index])
    for old, new in replacements.items():
        text = text.replace(old, new)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_filtering_json(json_api: Api) -> None:
    r = httpx.post(json_api.url + "/users/filter", json=payload(FILTERING),
                   auth=(SDK_USER, SDK_PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    # ... and with an order over 500
    assert [row["email"] for row in r.json()["data"]] == ["ada@example.com"]


# -- Counts & Aggregations ------------------------------------------------------------------


def test_counts_python(python_run: Run) -> None:
    # Active: ada, bob, cy, max, user@ and new@acme.co, made by the first snippet.
    # ada's orders: 300.00 + 250.50 + 999.00.
    assert succeeded(python_run.outcomes[COUNTS]).lines == ["Active users: 6", "1549.50"]


def test_counts_typescript(typescript_run: Run) -> None:
    lines = succeeded(typescript_run.outcomes[COUNTS]).lines
    assert lines[0] == "Active users: 5"
    # One line per user with orders (the relationship filters parents by default), by
    # id: ada, bob, max; the sum of all their orders.
    assert [line.rsplit(" ", 1)[-1] for line in lines[1:]] == ["1549.50", "40.00", "10.00"]


def test_counts_json(json_api: Api) -> None:
    r = httpx.post(json_api.url + "/users/filter", json=payload(COUNTS),
                   auth=(SDK_USER, SDK_PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    # The users with a completed order, once each, with their completed orders and
    # the sum of these: ada 300.00 + 250.50, bob 40.00.
    rows = r.json()["data"]
    assert [row["email"] for row in rows] == ["ada@example.com", "bob@example.com"]
    assert [row["aggregations"]["order_value"] for row in rows] == ["550.50", "40.00"]
    assert [[o["total"] for o in row["orders"]] for row in rows] == \
        [["300.00", "250.50"], ["40.00"]]


# -- Bulk Operations & Mass Updates ---------------------------------------------------------


def mass_updated(run: Run, made: tuple[str, ...]) -> None:
    """trial became expired, churned is gone, the bulk accounts sign in."""
    users = run.api.users()
    assert users["dee@example.com"] == "expired" and "eve@example.com" not in users
    for address in made:
        assert users[address] == "active"
        assert run.api.login(address, "Secret123!") == 200, address


def test_bulk_python(python_run: Run) -> None:
    lines = succeeded(python_run.outcomes[BULK]).lines
    assert len(lines) == 2 and all(re.fullmatch(r"created \d+", line) for line in lines), lines
    mass_updated(python_run, ("new-1@example.com", "new-2@example.com"))


def test_bulk_typescript(typescript_run: Run) -> None:
    lines = succeeded(typescript_run.outcomes[BULK]).lines
    assert len(lines) == 2 and all(re.fullmatch(r"created \d+", line) for line in lines), lines
    mass_updated(typescript_run, ("new-3@example.com", "new-4@example.com"))


# -- Authentication Endpoints Usage -----------------------------------------------------------


def reset_token(inbox: Inbox, address: str) -> str:
    """The token of the newest reset link sent to ``address``."""
    link = re.search(r"https?://\S+", inbox.wait_for(address)[-1].get_content())
    assert link is not None
    return parse_qs(urlsplit(link.group(0)).query)["token"][0]


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[int, Inbox]]:
    with smtp_server() as served:
        yield served


@pytest.fixture(scope="module")
def auth_api(dialect: str, smtp: tuple[int, Inbox],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Inbox]]:
    port, inbox = smtp
    inbox.messages.clear()  # one SMTP server for every database's run
    with serve(dialect, tmp_path_factory.mktemp("config"), AUTH_PASSWORD, smtp_port=port) as api:
        yield api, inbox


def test_auth_signup(auth_api: tuple[Api, Inbox]) -> None:
    api, _ = auth_api
    body = payload(AUTH, 0, **{AUTH_USER: SIGNUP_USER})
    r = httpx.post(api.url + "/auth/signup", json=body, timeout=30)
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    assert (user["email"], user["is_active"]) == (SIGNUP_USER, True)
    assert (user["first_name"], user["last_name"]) == ("John", "Doe")
    assert api.login(SIGNUP_USER, AUTH_PASSWORD) == 200


def test_auth_login_reset_and_confirm(auth_api: tuple[Api, Inbox]) -> None:
    api, inbox = auth_api
    login = httpx.post(api.url + "/auth/login", json=payload(AUTH, 1), timeout=30)
    assert login.status_code == 200, login.text
    assert {"access_token", "refresh_token"} <= set(login.json())
    reset = httpx.post(api.url + "/auth/password_reset", json=payload(AUTH, 2), timeout=30)
    assert reset.status_code in (200, 202), reset.text
    token = reset_token(inbox, AUTH_USER)
    confirm = httpx.post(api.url + "/auth/password_reset/confirm", timeout=30,
                         json=payload(AUTH, 3, abc123def456ghi789=token))
    assert confirm.status_code == 200, confirm.text
    assert api.login(AUTH_USER, "newSecurePassword123") == 200
    assert api.login(AUTH_USER, AUTH_PASSWORD) == 401


def test_the_generated_packages(project: Project) -> None:
    """swain_cli's package names and the npm package's files."""
    sdks = project.folder / "sdks"
    assert (sdks / "python" / "swain_api" / "api" / "users_api.py").is_file()
    package = json.loads((sdks / "typescript" / "package.json").read_text())
    assert (package["name"], package["main"]) == ("swain-api", "./dist/index.js")
    assert (sdks / "typescript" / "tsconfig.json").is_file()
    linked = project.folder / "node_modules" / "swain-api"
    assert linked.resolve() == (sdks / "typescript").resolve()
