"""The rls plugin's own rules: the user table as tenant table, per-table column
mapping, tables lacking the column, excluded tables, anonymous callers, and
validation of ``[rls]`` against the schema with suggestions."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from swain.contrib.testing import FreshDatabase, write_config
from swain.core import RUNTIME, ConfigError, create_app, load_config
from swain.core.cli import cli
from swain.plugins.rls.migrate import literal

DDL = {
    "default": """
CREATE TABLE users (id {pk}, email VARCHAR(255) NOT NULL UNIQUE, firstname VARCHAR(100),
  password VARCHAR(255) NOT NULL, isactive {bool} NOT NULL DEFAULT {true});
CREATE TABLE notes (id {pk}, owner INTEGER NOT NULL, body VARCHAR(200),
  FOREIGN KEY (owner) REFERENCES users(id));
CREATE TABLE docs (id {pk}, user_id INTEGER NOT NULL, title VARCHAR(200),
  FOREIGN KEY (user_id) REFERENCES users(id));
CREATE TABLE legacy (id {pk}, label VARCHAR(50) NOT NULL UNIQUE);
CREATE TABLE legacy_child (id {pk}, legacy_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
  FOREIGN KEY (legacy_id) REFERENCES legacy(id), FOREIGN KEY (user_id) REFERENCES users(id));
CREATE INDEX ix_legacy_child_legacy ON legacy_child (legacy_id);
CREATE TABLE old_log (id {pk}, entry VARCHAR(50) NOT NULL);
CREATE INDEX ix_old_log_user_id ON old_log (entry);
INSERT INTO old_log (entry) VALUES ('first');
INSERT INTO old_log (entry) VALUES ('second');
CREATE TABLE tags (id {pk}, name VARCHAR(50));
INSERT INTO legacy (label) VALUES ('old');
INSERT INTO legacy (label) VALUES ('older');
INSERT INTO legacy (label) VALUES ('oldest');
INSERT INTO tags (name) VALUES ('shared-tag')
""",
}
DDL["sqlite"] = DDL["default"].format(pk="INTEGER PRIMARY KEY", bool="BOOLEAN", true="1")
DDL["postgresql"] = DDL["default"].format(pk="SERIAL PRIMARY KEY", bool="BOOLEAN", true="TRUE")
DDL["mysql"] = DDL["default"].format(pk="INTEGER AUTO_INCREMENT PRIMARY KEY",
                                     bool="TINYINT(1)", true="1")

SECRET = "row level security test secret, long enough for HS256"
USER = {"table": "users", "id": "id", "email": "email", "firstname": "firstname",
        "password": "password", "isactive": "isactive"}
AUTH = {"enabled": True, "jwt_secret": SECRET, "identity_cache": "0s", "signup_answer": "tokens",
        "public_routes": ["GET /tags"], "argon2_time_cost": 1, "argon2_memory_kib": 1024,
        "argon2_parallelism": 1}
RLS = {"enabled": True, "tenant_table": "users", "tenant_field": "user_id",
       "exclude_tables": ["tags"], "tables": {"notes": "owner"}}
SWAIN_CONFIG = {"auth": AUTH, "mapping": {"user": USER}, "rls": RLS}


def _signup(client: httpx.Client, email: str) -> tuple[int, dict[str, str]]:
    r = client.post("/auth/signup", json={"email": email, "password": "long enough pw"})
    assert r.status_code == 201, r.text
    body = r.json()
    token = body.get("access_token") or body["tokens"]["access_token"]
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    return me["tenant"], {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def users(client: httpx.Client) -> dict[str, tuple[int, dict[str, str]]]:
    return {"x": _signup(client, "x@example.com"), "y": _signup(client, "y@example.com")}


def test_the_user_table_as_tenant_table(client: httpx.Client, database: Any,
                                        users: dict[str, Any]) -> None:
    (x_id, x), (y_id, y) = users["x"], users["y"]
    assert x_id != y_id and x_id is not None
    # the tenant table is confined to the caller's own row
    assert [u["id"] for u in client.get("/users", headers=x).json()["data"]] == [x_id]
    assert client.get(f"/users/{y_id}", headers=x).status_code == 404
    assert client.post("/users", headers=x, json={"email": "z@example.com",
                                                  "password": "pw"}).status_code in (403, 422)
    # per-table mapping: notes.owner; tenant_field: docs.user_id
    note = client.post("/notes", headers=x, json={"body": "x's note"})
    assert note.status_code == 201, note.text
    assert note.json()["owner"] == x_id
    doc = client.post("/docs", headers=y, json={"title": "y's doc"})
    assert doc.status_code == 201 and doc.json()["user_id"] == y_id
    assert client.get(f"/notes/{note.json()['id']}", headers=y).status_code == 404
    assert client.get("/notes", headers=y).json()["data"] == []
    assert client.get("/docs", headers=x).json()["data"] == []
    refused = client.post("/notes", headers=y, json={"body": "planted", "owner": x_id})
    assert refused.status_code == 422 and "owner" in refused.text
    assert database.query("SELECT count(*) FROM notes") == [(1,)]


def test_a_table_lacking_the_tenant_column_is_refused(client: httpx.Client,
                                                      users: dict[str, Any]) -> None:
    _, x = users["x"]
    r = client.get("/legacy", headers=x)
    assert r.status_code == 403
    assert "user_id" in r.json()["error"]["message"]
    assert "old" not in r.text
    assert client.post("/legacy", headers=x, json={"label": "new"}).status_code == 403
    # the excluded table is shared, even anonymously (public route)
    assert client.get("/tags").json()["data"][0]["name"] == "shared-tag"


def test_anonymous_callers_get_401_on_scoped_tables(client: httpx.Client) -> None:
    for path in ("/notes", "/docs", "/users", "/legacy"):
        assert client.get(path).status_code == 401, path


def _load(tmp_path: Path, url: str, rls: dict[str, Any]) -> None:
    path = write_config(tmp_path, url, auth=AUTH, mapping={"user": USER}, rls=rls)
    config, pm = load_config(path, "development", environ={})
    runtime = create_app(config, pm)[RUNTIME]

    async def load() -> None:
        await runtime.dialect.open()
        try:
            await runtime.load_schema()
        finally:
            await runtime.dialect.close()

    asyncio.run(load())


@pytest.mark.parametrize("override,message", [
    ({"tenant_table": "user"}, "tenant_table: no table 'user' (did you mean 'users'?)"),
    ({"tables": {"nots": "owner"}}, "tables: no table 'nots' (did you mean 'notes'?)"),
    ({"tables": {"notes": "ownr"}}, "no column 'ownr' in 'notes' (did you mean 'owner'?)"),
    ({"exclude_tables": ["tag"]}, "exclude_tables: no table 'tag' (did you mean 'tags'?)"),
])
def test_the_mapping_is_checked_against_the_schema(database: Any, tmp_path: Path,
                                                   override: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, database.swain_url, {**RLS, **override})
    assert message in str(caught.value)


def test_disabled_rls_is_inert(database: Any, tmp_path: Path) -> None:
    # a wrong mapping is not even looked at while the plugin is off
    _load(tmp_path, database.swain_url, {**RLS, "enabled": False, "tables": {"nots": "x"}})


def _swain(config_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config_path), "tenancy", *args])


def _refused(database: Any, sql: str) -> bool:
    """Whether the database refuses ``sql`` (foreign keys on, as the API runs)."""
    try:
        with database.engine.begin() as conn:
            if database.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.exec_driver_sql(sql)
    except sa.exc.DBAPIError:
        return True
    return False


def _structure(database: Any, tables: list[str]) -> dict[str, Any]:
    """Columns, keys, indexes and rows of ``tables``, read afresh from the database."""
    inspector = sa.inspect(database.engine)
    out: dict[str, Any] = {}
    for name in tables:
        out[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in inspector.get_columns(name)],
            "primary": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign": sorted((fk["name"] or "", tuple(fk["constrained_columns"]),
                               fk["referred_table"]) for fk in inspector.get_foreign_keys(name)),
            "indexes": sorted((ix["name"] or "", tuple(ix["column_names"]))
                              for ix in inspector.get_indexes(name)),
            "unique": sorted(tuple(u["column_names"])
                             for u in inspector.get_unique_constraints(name)),
            "rows": database.query(f"SELECT * FROM {name} ORDER BY id"),
        }
    return out


def test_tenancy_plan_and_apply(database: Any, config_path: Path, dialect: str,
                                users: dict[str, Any]) -> None:
    # runs last in this module: it migrates "legacy" (3 rows, a unique column
    # and a child table pointing at it) and "old_log" (2 rows) to carry user_id
    owner = users["x"][0]
    before = database.query("SELECT id, label FROM legacy ORDER BY id")
    children = [1, 3]
    for legacy_id in children:
        database.run_script(f"INSERT INTO legacy_child (legacy_id, user_id) "
                            f"VALUES ({legacy_id}, {owner})")
    shown = _swain(config_path, "plan")
    assert shown.exit_code == 0, shown.output
    assert "ADD COLUMN" in shown.output and "legacy" in shown.output
    assert "-- old_log" in shown.output
    assert "notes" not in shown.output and "legacy_child" not in shown.output
    digest = shown.output.split("plan hash ")[1].split()[0]
    other = _swain(config_path, "plan", "--dialect",
                   "mysql" if dialect != "mysql" else "postgresql")
    assert other.exit_code == 0 and "plan hash" in other.output
    mysql_plan = shown if dialect == "mysql" else other
    # MySQL: one atomic ALTER per table, then the default goes; the undo is shown
    ddl = [re.sub(r"INTEGER\(\d+\)", "INTEGER", line)
           for line in mysql_plan.output.splitlines() if line.startswith("ALTER TABLE")]
    assert ddl == [
        "ALTER TABLE legacy ADD COLUMN user_id INTEGER NOT NULL DEFAULT :backfill, "
        "ADD CONSTRAINT fk_legacy_user_id FOREIGN KEY (user_id) REFERENCES users (id), "
        "ADD INDEX ix_legacy_user_id (user_id);",
        "ALTER TABLE legacy ALTER COLUMN user_id DROP DEFAULT;",
        "ALTER TABLE old_log ADD COLUMN user_id INTEGER NOT NULL DEFAULT :backfill, "
        "ADD CONSTRAINT fk_old_log_user_id FOREIGN KEY (user_id) REFERENCES users (id), "
        "ADD INDEX ix_old_log_user_id (user_id);",
        "ALTER TABLE old_log ALTER COLUMN user_id DROP DEFAULT;"]
    assert "-- undo: ALTER TABLE legacy DROP FOREIGN KEY fk_legacy_user_id, DROP INDEX " \
        "ix_legacy_user_id, DROP COLUMN user_id;" in mysql_plan.output
    assert "UPDATE" not in mysql_plan.output and "not one transaction" not in mysql_plan.output

    stale = _swain(config_path, "apply", "--backfill", str(owner), "--plan-hash", "0" * 16)
    assert stale.exit_code != 0 and "plan changed" in stale.output
    missing = _swain(config_path, "apply", "--backfill", "987654", "--plan-hash", digest)
    assert missing.exit_code != 0 and "987654" in missing.output
    assert database.query("SELECT id, label FROM legacy ORDER BY id") == before

    # old_log, the second table, already has an index named like the one the plan
    # adds: its step fails after legacy's succeeded, and nothing may stay changed
    tables = ["legacy", "old_log", "legacy_child"]
    untouched = _structure(database, tables)
    assert "user_id" not in [c[0] for c in untouched["legacy"]["columns"]]
    failed = _swain(config_path, "apply", "--backfill", str(owner), "--plan-hash", digest)
    assert failed.exit_code == 1, failed.output
    assert isinstance(failed.exception, SystemExit)  # a message, not a traceback
    assert failed.output.startswith("Error: tenancy apply failed on 'old_log': ")
    assert "ix_old_log_user_id" in failed.output
    if dialect == "mysql":
        assert "the tables already changed ('legacy') were changed back: every table is as " \
            "it was" in failed.output
    else:
        assert "nothing was changed (the plan ran in one transaction)" in failed.output
    assert _structure(database, tables) == untouched
    assert _refused(database, "INSERT INTO legacy (label, user_id) VALUES ('x', 1)")

    database.run_script("DROP INDEX ix_old_log_user_id" + (" ON old_log" if dialect == "mysql"
                                                           else ""))
    done = _swain(config_path, "apply", "--backfill", str(owner), "--plan-hash", digest)
    assert done.exit_code == 0, done.output
    assert "added the tenant column to 2 table(s)" in done.output
    after = database.query("SELECT id, label, user_id FROM legacy ORDER BY id")
    assert after == [(i, label, owner) for i, label in before]
    assert database.query("SELECT entry, user_id FROM old_log ORDER BY id") == \
        [("first", owner), ("second", owner)]
    column = next(c for c in sa.inspect(database.engine).get_columns("old_log")
                  if c["name"] == "user_id")
    assert column["nullable"] is False and column.get("default") is None
    assert database.query("SELECT count(*) FROM legacy_child c JOIN legacy l "
                          "ON l.id = c.legacy_id") == [(len(children),)]
    # constraints intact: NOT NULL, the new foreign key, the old unique column,
    # and the child's foreign key to the rebuilt table
    assert _refused(database, "INSERT INTO legacy (label) VALUES ('no tenant')")
    assert _refused(database, "INSERT INTO legacy (label, user_id) VALUES ('bad', 987654)")
    assert _refused(database, f"INSERT INTO legacy (label, user_id) VALUES ('old', {owner})")
    assert _refused(database, f"INSERT INTO legacy_child (legacy_id, user_id) "
                              f"VALUES (987654, {owner})")
    assert not _refused(database, f"INSERT INTO legacy (label, user_id) "
                                  f"VALUES ('new', {owner})")
    again = _swain(config_path, "plan")
    assert "nothing to do" in again.output


#: a tenant key that breaks any SQL pasted together by hand
NASTY_KEY = "o'brien \\ 50%s %(x)s :x \\' ; --"


def test_the_backfill_literal_is_rendered_by_sqlalchemy(database: Any) -> None:
    # MySQL's DDL takes no parameters: the value must survive as a literal
    with database.engine.connect() as conn:
        for value in (NASTY_KEY, 12, "plain"):
            rendered = literal(conn.dialect, value)
            assert conn.exec_driver_sql(f"SELECT {rendered}").scalar() == value
    assert literal(sa.create_engine("sqlite://").dialect, 7) == "7"


def test_apply_with_a_text_tenant_key(dialect: str, tmp_path: Path) -> None:
    with FreshDatabase(dialect) as db:
        db.run_script(
            "CREATE TABLE teams (code VARCHAR(40) PRIMARY KEY, name VARCHAR(50));\n"
            "CREATE TABLE memos (id INTEGER PRIMARY KEY, body VARCHAR(50));\n"
            "INSERT INTO memos (id, body) VALUES (1, 'one');\n"
            "INSERT INTO memos (id, body) VALUES (2, 'two')")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO teams (code, name) VALUES (:c, 'nasty')"),
                         {"c": NASTY_KEY})
        path = write_config(tmp_path, db.swain_url,
                            rls={"enabled": True, "tenant_table": "teams",
                                 "tenant_field": "team_code"})
        shown = _swain(path, "plan")
        assert shown.exit_code == 0, shown.output
        digest = shown.output.split("plan hash ")[1].split()[0]
        done = _swain(path, "apply", "--backfill", NASTY_KEY, "--plan-hash", digest)
        assert done.exit_code == 0, done.output
        assert db.query("SELECT id, team_code FROM memos ORDER BY id") == \
            [(1, NASTY_KEY), (2, NASTY_KEY)]
        assert db.query("SELECT count(*) FROM teams") == [(1,)]
