"""The ``swain`` command line against real databases: init, config show,
connection test/add, schema sync/diff.  Commands run in-process through
click's runner, exactly as the console script calls them."""

from __future__ import annotations

import json
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from swain.contrib.testing import FreshDatabase, free_port, write_config
from swain.core import load_config
from swain.core.cli import cli

DDL = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
                     reviewer_id INTEGER, total DECIMAL(10,2),
                     FOREIGN KEY (customer_id) REFERENCES customers (id),
                     FOREIGN KEY (reviewer_id) REFERENCES customers (id));
CREATE TABLE tags (id INTEGER PRIMARY KEY, label VARCHAR(10));
CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100
"""

#: drift: a view and a column removed, a column added, one changed, a table added
DRIFT = {
    "default": """
DROP VIEW big_orders;
ALTER TABLE orders DROP COLUMN total;
ALTER TABLE customers ADD COLUMN nickname VARCHAR(30);
CREATE TABLE coupons (code VARCHAR(20) PRIMARY KEY);
""",
    "postgresql": "ALTER TABLE tags ALTER COLUMN label TYPE VARCHAR(40)",
    "mysql": "ALTER TABLE tags MODIFY label VARCHAR(40)",
    # SQLite cannot change a column's type: rebuild the table.
    "sqlite": """
CREATE TABLE tags_new (id INTEGER PRIMARY KEY, label VARCHAR(40));
INSERT INTO tags_new SELECT id, label FROM tags;
DROP TABLE tags;
ALTER TABLE tags_new RENAME TO tags
""",
}

VERSION_QUERY = {"sqlite": "SELECT sqlite_version()", "postgresql": "SHOW server_version",
                 "mysql": "SELECT VERSION()"}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def project(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("cli"), database.swain_url)


# -- init ------------------------------------------------------------------------------


def test_init_writes_a_commented_file_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "swain.toml"
    result = run("--config", str(path), "init", "--name", 'odd "shop"',
                 "--description", "Shop API \\ v1")
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.count("\n#") > 20  # commented
    config, _ = load_config(path, environ={})
    assert config.project.name == 'odd "shop"'
    assert config.project.description == "Shop API \\ v1"
    assert config.connection().url.database == str(tmp_path.resolve() / "odd_shop.db")
    assert config.stage == "development"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "swain.toml"
    path.write_text("# mine\n")
    result = CliRunner().invoke(cli, ["--config", str(path), "init"])
    assert result.exit_code == 1
    assert "exists; use --force to overwrite it" in result.output
    assert path.read_text() == "# mine\n"
    result = run("--config", str(path), "init", "--force", "--name", "shop")
    assert result.exit_code == 0
    assert load_config(path, environ={})[0].project.name == "shop"


def test_init_names_the_project_after_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-api"
    folder.mkdir()
    run("--config", str(folder / "swain.toml"), "init")
    assert load_config(folder / "swain.toml", environ={})[0].project.name == "my-api"


# -- config show -----------------------------------------------------------------------


def test_config_show_masks_every_secret(tmp_path: Path) -> None:
    path = tmp_path / "swain.toml"
    path.write_text('''
[connections.development]
url = "postgresql://api:url-pass-1@127.0.0.1/shop"

[connections.production]
dialect = "postgresql"
host = "db"
database = "shop"
username = "api"
password = "${PROD_PASSWORD}"

[example]
token = "plugin-secret-2"
''')
    env = {"PROD_PASSWORD": "field-pass-3", "SWAIN_CONNECTIONS_STAGING_URL":
           "mysql://u:env-pass-4@db/x"}
    result = run("--config", str(path), "config", "show", env=env)
    assert result.exit_code == 0, result.output
    for secret in ("url-pass-1", "field-pass-3", "plugin-secret-2", "env-pass-4"):
        assert secret not in result.output
    shown = json.loads(result.output)
    assert shown["connections"]["development"]["url"] == "postgresql://api:***@127.0.0.1/shop"
    assert shown["connections"]["production"]["password"] == "********"
    assert shown["connections"]["staging"]["url"] == "mysql://u:***@db/x"
    assert shown["example"]["token"] == "********"
    assert shown["stage"] == "development"


def test_config_show_reports_errors_with_their_key_path(tmp_path: Path) -> None:
    path = tmp_path / "swain.toml"
    path.write_text('[connections.development]\nurl = "sqlite:///x.db"\n[api]\nmax_page = 3\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert result.exit_code == 1
    assert 'api.max_page: unknown key; did you mean "max_page_size"?' in result.output
    assert "Traceback" not in result.output


# -- connection test -------------------------------------------------------------------


def test_connection_test_prints_the_server_version(project: Path, database: FreshDatabase,
                                                   dialect: str) -> None:
    [(version,)] = database.query(VERSION_QUERY[dialect])
    result = run("--config", str(project), "connection", "test")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("connected to ")
    assert result.output.rstrip().endswith(f": {dialect} {version}")


def _failure(project: Path, url: str, secret: str) -> str:
    path = project.parent / f"failing-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f'[connections.development]\nurl = "{url}"\nconnect_timeout = "3s"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "connection", "test"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert secret not in result.output
    assert result.output.startswith("Error: cannot connect to ")
    return result.output


@pytest.fixture(scope="module")
def mysql_user(dialect: str, database: FreshDatabase) -> Iterator[tuple[str, str]]:
    """A MariaDB account with a password (the servers' own users have none)."""
    if dialect != "mysql":
        yield "", ""
        return
    name, password = f"swain_{uuid.uuid4().hex[:8]}", "right-password-77"
    with database.engine.begin() as conn:
        for host in ("%", "localhost", "127.0.0.1"):
            conn.execute(sa.text(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY '{password}'"))
            conn.execute(sa.text(f"GRANT ALL ON `{database.name}`.* TO '{name}'@'{host}'"))
    yield name, password
    with database.engine.begin() as conn:
        for host in ("%", "localhost", "127.0.0.1"):
            conn.execute(sa.text(f"DROP USER '{name}'@'{host}'"))


def test_connection_test_reports_the_exact_failure(project: Path, database: FreshDatabase,
                                                   dialect: str,
                                                   mysql_user: tuple[str, str]) -> None:
    secret = "wrong-secret-91"
    if dialect == "sqlite":
        missing = project.parent / "nowhere.db"
        output = _failure(project, f"sqlite:///{missing}", secret)
        assert f"FileNotFoundError: database file {missing} does not exist" in output
        assert not missing.exists()  # the test does not create it
        output = _failure(project, f"sqlite:///{project.parent / 'no-dir' / 'x.db'}", secret)
        assert "does not exist" in output
        return
    # PostgreSQL trusts loopback here, so a password is sent but never checked;
    # MariaDB's root has none, so only the dedicated account gets a wrong one.
    url = database.url.set(drivername=dialect,
                           password=secret if dialect == "postgresql" else None)
    wrong_port = url.set(port=free_port()).render_as_string(hide_password=False)
    output = _failure(project, wrong_port, secret)
    assert "Connection refused" in output or "Can't connect" in output
    if dialect == "postgresql":
        assert ":***@" in output  # the URL is shown, its password masked
    missing_db = url.set(database="swain_no_such_db").render_as_string(hide_password=False)
    output = _failure(project, missing_db, secret)
    if dialect == "postgresql":
        assert 'database "swain_no_such_db" does not exist' in output
    else:
        assert "Unknown database 'swain_no_such_db'" in output
    if dialect == "mysql":
        name, password = mysql_user
        wrong_password = url.set(username=name, password=secret).render_as_string(
            hide_password=False)
        output = _failure(project, wrong_password, secret)
        assert f"Access denied for user '{name}'" in output
        right = url.set(username=name, password=password)
        path = project.parent / "right.toml"
        path.write_text(f'[connections.development]\n'
                        f'url = "{right.render_as_string(hide_password=False)}"\n')
        result = run("--config", str(path), "connection", "test")
        assert result.exit_code == 0, result.output
        assert password not in result.output


# -- connection add --------------------------------------------------------------------


def test_connection_add_then_test_that_stage(project: Path, database: FreshDatabase,
                                             dialect: str) -> None:
    path = project.parent / "add.toml"
    path.write_text(project.read_text() + '\n[connections.production]\n# keep me\n'
                    'dialect = "postgresql"\nhost = "old"\ndatabase = "old"\npool_size = 3\n')
    url = database.swain_url
    if dialect != "sqlite":
        url = database.url.set(drivername=dialect, password="in-url-pw").render_as_string(
            hide_password=False) if dialect == "postgresql" else url
    for _ in range(2):  # replacing is idempotent
        result = run("--config", str(path), "connection", "add", "--stage", "production",
                     "--url", url)
        assert result.exit_code == 0, result.output
        assert "in-url-pw" not in result.output
    text = path.read_text()
    assert text.count("[connections.production]") == 1
    assert "# keep me" in text and 'host = "old"' not in text
    production = tomllib.loads(text)["connections"]["production"]
    assert production == {"url": url, "pool_size": 3}
    result = run("--config", str(path), "--stage", "production", "connection", "test")
    assert result.exit_code == 0, result.output
    assert "(stage production)" in result.output and "in-url-pw" not in result.output
    result = run("--config", str(path), "connection", "add", "--stage", "staging", "--url",
                 url)
    assert result.exit_code == 0
    assert load_config(path, "staging", environ={})[0].connection().dialect == dialect


def test_connection_add_refuses_a_bad_url_and_keeps_the_file(project: Path) -> None:
    before = project.read_text()
    result = CliRunner().invoke(cli, ["--config", str(project), "connection", "add", "--stage",
                                      "production", "--url", "postgress://x@y/z"])
    assert result.exit_code == 1
    assert 'connections.production.url: no dialect \'postgress\' is installed; did you mean ' \
           '"postgresql"?' in result.output
    assert project.read_text() == before
    result = CliRunner().invoke(cli, ["--config", str(project), "connection", "add", "--stage",
                                      "Prod", "--url", "sqlite:///x.db"])
    assert result.exit_code == 1 and "lower-case" in result.output


# -- schema sync and diff --------------------------------------------------------------


def test_schema_sync_then_diff_shows_drift(project: Path, database: FreshDatabase,
                                           dialect: str) -> None:
    result = run("--config", str(project), "schema", "sync")
    assert result.exit_code == 0, result.output
    snapshot = project.parent / "swain.schema.json"
    saved = json.loads(snapshot.read_text())
    assert result.output.rstrip().endswith(f"saved {snapshot}")
    output = result.output
    for name in ("customers", "orders", "tags", "big_orders"):
        assert name in output
    assert "3 tables, 1 views, 10 columns, 2 foreign keys, 4 relationships" in output
    assert "customer_id → customers(id)" in " ".join(output.split())
    [view_row] = [line for line in output.splitlines() if " big_orders " in line]
    assert "│ view" in view_row  # PostgreSQL's simple views are updatable, others read-only
    assert saved  # a real JSON document

    result = run("--config", str(project), "schema", "diff")
    assert result.exit_code == 0, result.output
    assert "no drift" in result.output

    database.run_script(DRIFT["default"])
    database.run_script(DRIFT[dialect])
    result = CliRunner().invoke(cli, ["--config", str(project), "schema", "diff"])
    assert result.exit_code == 1, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert "+ table coupons" in lines
    assert "- table big_orders" in lines
    assert "- column orders.total" in lines
    assert any(line.startswith("+ column customers.nickname") for line in lines)
    [changed] = [line for line in lines if line.startswith("~ column tags.label")]
    assert "sql_type" in changed and "40" in changed
    assert "5 difference(s)" in result.output

    result = run("--config", str(project), "schema", "sync")
    assert result.exit_code == 0
    assert run("--config", str(project), "schema", "diff").exit_code == 0


def test_schema_diff_without_a_snapshot_says_what_to_do(database: FreshDatabase,
                                                        tmp_path: Path) -> None:
    path = write_config(tmp_path, database.swain_url)
    result = CliRunner().invoke(cli, ["--config", str(path), "schema", "diff"])
    assert result.exit_code == 1
    assert "no snapshot; run `swain schema sync` first" in result.output


def test_schema_sync_on_an_unreachable_database_fails_cleanly(tmp_path: Path,
                                                              dialect: str) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'absent.db'}"
    else:
        url = f"{dialect}://root@127.0.0.1:{free_port()}/x"
    path = tmp_path / "swain.toml"
    path.write_text(f'[connections.development]\nurl = "{url}"\nconnect_timeout = "2s"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "schema", "sync"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot introspect ")
    assert "Traceback" not in result.output
    assert not (tmp_path / "swain.schema.json").exists()


def test_plugins_lists_origin_in_registration_order(project: Path) -> None:
    result = run("--config", str(project), "plugins")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert text.index("openapi") < text.index("example")
    assert "swain_example_plugin" in text
