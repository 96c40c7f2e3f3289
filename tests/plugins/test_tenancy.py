"""Tenant isolation matrix: two tenants with canary values; each
user tries every endpoint type (table, query, bulk and mass) against the other tenant's rows.

Nothing of the other tenant may appear in any response body, and none of its
rows may change (checked straight in the database).  A property test throws
random filter trees (OR/NOT escapes included) at the filter endpoint.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swain.contrib.testing import FreshDatabase, LiveServer, write_config
from swain.core import RUNTIME, create_app, load_config
from swain.core.cli import cli
from swain.plugins.rls import NATIVE_TENANT

PASSWORD = "tenant-password"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()

_ROWS = f"""
INSERT INTO orgs (name) VALUES ('Org A canary-a-org');
INSERT INTO orgs (name) VALUES ('Org B canary-b-org');
INSERT INTO countries (code, name) VALUES ('FR', 'France');
INSERT INTO users (email, firstname, password, isactive, org_id)
  VALUES ('alice@a.example', 'canary-a-alice', '{HASH}', {{true}}, 1);
INSERT INTO users (email, firstname, password, isactive, org_id)
  VALUES ('bob@b.example', 'canary-b-bob', '{HASH}', {{true}}, 2);
INSERT INTO projects (org_id, name, code) VALUES (1, 'canary-a-project', 'A1');
INSERT INTO projects (org_id, name, code) VALUES (2, 'canary-b-project', 'B1');
INSERT INTO tasks (org_id, project_id, title, points) VALUES (1, 1, 'canary-a-task', 3);
INSERT INTO tasks (org_id, project_id, title, points) VALUES (2, 2, 'canary-b-task', 5);
INSERT INTO tasks (org_id, project_id, title, points) VALUES (2, 1, 'canary-b-cross', 7);
INSERT INTO tasks (org_id, project_id, title, points) VALUES (1, 2, 'canary-a-cross', 11)
"""

_TABLES = """
CREATE TABLE orgs (id {pk}, name VARCHAR(100) NOT NULL);
CREATE TABLE countries (code VARCHAR(2) PRIMARY KEY, name VARCHAR(50));
CREATE TABLE users (id {pk}, email VARCHAR(255) NOT NULL UNIQUE, firstname VARCHAR(100),
  password VARCHAR(255) NOT NULL, isactive {bool} NOT NULL,
  org_id INTEGER NOT NULL REFERENCES orgs(id));
CREATE TABLE projects (id {pk}, org_id INTEGER NOT NULL REFERENCES orgs(id),
  name VARCHAR(100) NOT NULL, code VARCHAR(10) NOT NULL UNIQUE);
CREATE TABLE tasks (id {pk}, org_id INTEGER NOT NULL REFERENCES orgs(id),
  project_id INTEGER REFERENCES projects(id), title VARCHAR(100) NOT NULL, points INTEGER);
"""

_MYSQL_TABLES = """
CREATE TABLE orgs (id INTEGER AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL);
CREATE TABLE countries (code VARCHAR(2) PRIMARY KEY, name VARCHAR(50));
CREATE TABLE users (id INTEGER AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE,
  firstname VARCHAR(100), password VARCHAR(255) NOT NULL, isactive TINYINT(1) NOT NULL,
  org_id INTEGER NOT NULL, FOREIGN KEY (org_id) REFERENCES orgs(id));
CREATE TABLE projects (id INTEGER AUTO_INCREMENT PRIMARY KEY, org_id INTEGER NOT NULL,
  name VARCHAR(100) NOT NULL, code VARCHAR(10) NOT NULL UNIQUE,
  FOREIGN KEY (org_id) REFERENCES orgs(id));
CREATE TABLE tasks (id INTEGER AUTO_INCREMENT PRIMARY KEY, org_id INTEGER NOT NULL,
  project_id INTEGER, title VARCHAR(100) NOT NULL, points INTEGER,
  FOREIGN KEY (org_id) REFERENCES orgs(id), FOREIGN KEY (project_id) REFERENCES projects(id));
"""

DDL = {
    "sqlite": _TABLES.format(pk="INTEGER PRIMARY KEY", bool="BOOLEAN") + _ROWS.format(true="1"),
    "postgresql": _TABLES.format(pk="SERIAL PRIMARY KEY", bool="BOOLEAN")
    + _ROWS.format(true="TRUE"),
    "mysql": _MYSQL_TABLES + _ROWS.format(true="1"),
}

SWAIN_CONFIG = {
    "auth": {"enabled": True, "identity_cache": "0s", "public_routes": ["GET /countries"],
             "jwt_secret": "tenant isolation secret, long enough for HS256 signatures",
             "argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
    "mapping": {"user": {"table": "users", "id": "id", "email": "email",
                         "firstname": "firstname", "password": "password",
                         "isactive": "isactive"}},
    "rls": {"enabled": True, "tenant_table": "orgs", "tenant_field": "org_id",
            "exclude_tables": ["countries"]},
    # the attacks below name other tenants' keys explicitly, also on PostgreSQL
    "api": {"allow_explicit_keys": True},
}

#: per tenant: org id, user email, canary, project id, task ids, user id
TENANTS: dict[str, dict[str, Any]] = {
    "a": {"org": 1, "email": "alice@a.example", "canary": "canary-a", "project": 1,
          "code": "A1", "tasks": [1, 4], "user": 1},
    "b": {"org": 2, "email": "bob@b.example", "canary": "canary-b", "project": 2,
          "code": "B1", "tasks": [2, 3], "user": 2},
}


@pytest.fixture(scope="module")
def tokens(client: httpx.Client) -> dict[str, dict[str, str]]:
    out = {}
    for name, tenant in TENANTS.items():
        r = client.post("/auth/login", json={"email": tenant["email"], "password": PASSWORD})
        assert r.status_code == 200, r.text
        out[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return out


def _snapshot(database: Any, org: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of one tenant, straight from the database."""
    return {
        "orgs": database.query(f"SELECT id, name FROM orgs WHERE id = {org}"),
        "users": database.query(f"SELECT id, email, firstname, org_id FROM users "
                                f"WHERE org_id = {org} ORDER BY id"),
        "projects": database.query(f"SELECT id, org_id, name, code FROM projects "
                                   f"WHERE org_id = {org} ORDER BY id"),
        "tasks": database.query(f"SELECT id, org_id, project_id, title, points FROM tasks "
                                f"WHERE org_id = {org} ORDER BY id"),
    }


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": "eq", "value": value}


def _attacks(own: dict[str, Any], other: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(method, path, json body) of every endpoint type, aimed at ``other``'s rows."""
    task, project, org = other["tasks"][0], other["project"], other["org"]
    escape_or = {"expressions": [{"operator": "OR", "expressions": [
        _eq("org_id", org), {"field": "id", "operator": "gt", "value": 0}]}]}
    escape_not = {"expressions": [{"operator": "NOT", "expressions": [_eq("org_id", own["org"])]}]}
    include_tasks = {"expressions": [{"relationship": "tasks", "include": True,
                                      "scope": "filterRelated", "expressions": []}]}
    include_project = {"expressions": [{"relationship": "projects", "include": True,
                                        "expressions": []}]}
    through = {"expressions": [{"relationship": "tasks", "expressions": [
        {"field": "title", "operator": "startswith", "value": other["canary"]}]}]}
    nested = {"expressions": [{"relationship": "projects", "include": True, "expressions": [
        {"relationship": "tasks", "include": True, "scope": "filterRelated",
         "expressions": []}]}]}
    aggregate = {"aggregations": {"functions": [
        {"type": "SUM", "field": "points", "alias": "s"}, {"type": "COUNT", "alias": "n"},
        {"type": "MAX", "field": "title", "alias": "m"}], "group_by": ["org_id"]}}
    per_parent = {"expressions": [{"relationship": "tasks", "scope": "filterRelated",
                                   "aggregations": {"functions": [
                                       {"type": "MAX", "field": "title", "alias": "m"},
                                       {"type": "COUNT", "alias": "n"}]},
                                   "expressions": []}]}
    filter_json = json.dumps(escape_or)
    hacked = {"title": "hacked", "points": 999}
    return [
        ("GET", "/tasks", None), ("GET", "/projects", None), ("GET", "/users", None),
        ("GET", "/orgs", None),
        ("GET", f"/tasks/{task}", None), ("GET", f"/projects/{project}", None),
        ("GET", f"/users/{other['user']}", None), ("GET", f"/orgs/{org}", None),
        ("GET", f"/tables/tasks/{task}", None),
        ("GET", f"/tasks?org_id={org}", None), ("GET", f"/tasks?filter={filter_json}", None),
        ("GET", "/tasks?count=estimated", None),
        ("GET", "/tasks/count", None), ("POST", "/tasks/count", escape_or),
        ("POST", "/tasks/filter", escape_or), ("POST", "/tasks/filter", escape_not),
        ("POST", "/projects/filter", include_tasks), ("POST", "/tasks/filter", include_project),
        ("POST", "/projects/filter", through), ("POST", "/tasks/filter", nested),
        ("POST", "/orgs/filter", {"expressions": [{"relationship": "projects", "include": True,
                                                    "scope": "filterRelated",
                                                    "expressions": []}]}),
        ("POST", "/tasks/filter", aggregate), ("POST", "/projects/filter", per_parent),
        ("POST", "/tasks/filter/query", escape_or),
        ("PUT", f"/tasks/{task}", hacked), ("PATCH", f"/tasks/{task}", hacked),
        ("PUT", f"/orgs/{org}", {"name": "hacked"}),
        ("DELETE", f"/tasks/{task}", None), ("DELETE", f"/projects/{project}", None),
        ("POST", "/tasks", {"org_id": org, "title": "planted", "project_id": project}),
        ("PUT", f"/tasks/{own['tasks'][0]}", {"org_id": org}),
        ("POST", "/tasks/bulk", [{"org_id": org, "title": "planted"}]),
        ("POST", "/tasks/bulk?on_conflict=update", [{"id": task, "title": "hacked"}]),
        ("POST", "/tasks/bulk?on_conflict=ignore", [{"id": task, "title": "hacked"}]),
        ("POST", "/projects/bulk?on_conflict=update&conflict_columns=code",
         [{"code": other["code"], "name": "hacked"}]),
        ("POST", "/projects/bulk?on_conflict=update",
         [{"id": 900 + org, "code": other["code"], "name": "hacked"}]),
        ("PUT", "/tasks/bulk", [{"id": task, "title": "hacked"}]),
        ("PUT", "/tasks/filter", {**escape_or, "updateData": hacked}),
        ("PUT", "/tasks/filter", {"all": True, "updateData": {"points": 1}}),
        ("PUT", "/tasks/filter?dry_run=true", {"all": True, "updateData": {"points": 2}}),
        ("DELETE", "/tasks/filter", {"expressions": [_eq("id", task)]}),
        ("DELETE", "/tasks/filter?dry_run=true", {"all": True}),
        ("DELETE", "/projects/filter", escape_not),
    ]


@pytest.mark.parametrize("attacker,victim", [("a", "b"), ("b", "a")])
def test_no_endpoint_reaches_the_other_tenant(client: httpx.Client, database: Any,
                                              tokens: dict[str, dict[str, str]],
                                              attacker: str, victim: str) -> None:
    own, other = TENANTS[attacker], TENANTS[victim]
    before = _snapshot(database, other["org"])
    assert before["tasks"], "the victim's rows must exist for the test to mean anything"
    leaks = []
    for method, path, body in _attacks(own, other):
        r = client.request(method, path, json=body, headers=tokens[attacker])
        assert r.status_code < 500, (method, path, r.text)
        if other["canary"] in r.text.lower():
            leaks.append((method, path, r.status_code, r.text[:300]))
    assert leaks == []
    assert _snapshot(database, other["org"]) == before


@pytest.mark.parametrize("atomic", [False, True])
@pytest.mark.parametrize("attacker,victim", [("a", "b"), ("b", "a")])
def test_an_ignored_upsert_on_a_foreign_row_fails_as_a_plain_insert(
        client: httpx.Client, database: Any, tokens: dict[str, dict[str, str]],
        attacker: str, victim: str, atomic: bool) -> None:
    """``on_conflict=ignore`` with a key another tenant's row holds is no success
    (nothing was written, and the caller cannot read that row): it fails exactly
    as a plain insert of the same row does, and shows nothing of the other row."""
    own, other = TENANTS[attacker], TENANTS[victim]
    heads = tokens[attacker]
    flag = "&atomic=true" if atomic else ""
    before = _snapshot(database, other["org"])
    mine = _snapshot(database, own["org"])
    foreign = [
        ("/tasks/bulk", "on_conflict=ignore", {"id": other["tasks"][0], "title": "hacked"}),
        ("/projects/bulk", "on_conflict=ignore&conflict_columns=code",
         {"code": other["code"], "name": "hacked"}),
        # a new key, but the other tenant's code: MySQL's ON DUPLICATE KEY fires on it
        ("/projects/bulk", "on_conflict=ignore", {"id": 950 + own["org"], "code": other["code"],
                                                  "name": "hacked"})]
    for path, query, row in foreign:
        ignored = client.post(f"{path}?{query}{flag}", headers=heads, json=[row])
        plain = client.post(f"{path}?atomic={str(atomic).lower()}", headers=heads, json=[row])
        assert ignored.status_code == (409 if atomic else 207), (path, query, ignored.text)
        assert ignored.json() == plain.json(), (path, query)
        assert ignored.json()["succeeded"] == []
        assert ignored.json()["failed"][0]["error"]["code"] == "conflict"
        assert other["canary"] not in ignored.text.lower()

    # one batch: the caller's own row is skipped (and says so), a new key is
    # written, the foreign key fails; atomic writes none of them
    new_id = 700 + own["org"]
    batch = [{"id": own["tasks"][0], "title": "not applied"},
             {"id": new_id, "title": f"ignore-new-{attacker}"},
             {"id": other["tasks"][0], "title": "hacked"}]
    r = client.post(f"/tasks/bulk?on_conflict=ignore{flag}", headers=heads, json=batch)
    assert other["canary"] not in r.text.lower()
    assert [f["index"] for f in r.json()["failed"]] == [2]
    if atomic:
        assert r.status_code == 409 and r.json()["succeeded"] == []
        assert _snapshot(database, own["org"]) == mine
    else:
        assert r.status_code == 207, r.text
        skipped, written = r.json()["succeeded"]
        assert skipped["index"] == 0 and skipped["ignored"] is True
        stored = database.query(f"SELECT title FROM tasks WHERE id = {own['tasks'][0]}")
        assert skipped["data"]["title"] == stored[0][0] != "not applied"
        assert written["index"] == 1 and "ignored" not in written
        assert database.query(f"SELECT org_id, title FROM tasks WHERE id = {new_id}") == \
            [(own["org"], f"ignore-new-{attacker}")]
        database.run_script(f"DELETE FROM tasks WHERE id = {new_id}")
    assert _snapshot(database, other["org"]) == before


def test_reads_see_exactly_the_own_tenant(client: httpx.Client,
                                          tokens: dict[str, dict[str, str]]) -> None:
    for name, tenant in TENANTS.items():
        rows = client.get("/tasks", headers=tokens[name]).json()["data"]
        assert rows and {row["org_id"] for row in rows} == {tenant["org"]}
        assert client.get("/tasks/count", headers=tokens[name]).json()["count"] == len(rows)
        orgs = client.get("/orgs", headers=tokens[name]).json()["data"]
        assert [o["id"] for o in orgs] == [tenant["org"]]
        # the shared table stays shared
        assert client.get("/countries", headers=tokens[name]).json()["data"][0]["code"] == "FR"


def test_cross_tenant_includes_are_cut(client: httpx.Client,
                                       tokens: dict[str, dict[str, str]]) -> None:
    # task 4 is alice's but points at bob's project 2: the include must be empty
    r = client.post("/tasks/filter", headers=tokens["a"], json={"expressions": [
        _eq("id", 4), {"relationship": "projects", "include": True, "expressions": []}]})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [] or r.json()["data"][0]["projects"] is None
    r = client.post("/projects/filter", headers=tokens["a"], json={"expressions": [
        _eq("id", 1), {"relationship": "tasks", "include": True, "scope": "filterRelated",
                       "expressions": []}]})
    # task 3 (bob's) points at alice's project 1: only alice's task 1 is included
    assert [t["id"] for t in r.json()["data"][0]["tasks"]] == [1]


def test_writes_are_stamped_and_cannot_move(client: httpx.Client, database: Any,
                                            tokens: dict[str, dict[str, str]]) -> None:
    r = client.post("/tasks", headers=tokens["a"], json={"title": "stamped", "points": 1})
    assert r.status_code == 201, r.text
    assert r.json()["org_id"] == 1
    refused = client.post("/tasks", headers=tokens["a"], json={"title": "x", "org_id": 2})
    assert refused.status_code == 422
    assert "org_id" in refused.text
    moved = client.put(f"/tasks/{r.json()['id']}", headers=tokens["a"], json={"org_id": 2})
    assert moved.status_code == 422 and "org_id" in moved.text
    same = client.put(f"/tasks/{r.json()['id']}", headers=tokens["a"], json={"org_id": 1})
    assert same.status_code == 200
    bulk = client.post("/tasks/bulk", headers=tokens["b"],
                       json=[{"title": "bulk-b"}, {"title": "bad", "org_id": 1}])
    assert bulk.status_code == 207
    assert [f["index"] for f in bulk.json()["failed"]] == [1]
    assert database.query("SELECT org_id FROM tasks WHERE title = 'bulk-b'") == [(2,)]
    assert database.query("SELECT count(*) FROM tasks WHERE title = 'bad'") == [(0,)]
    # an upsert of one's own row still works
    upsert = client.post("/projects/bulk?on_conflict=update&conflict_columns=code",
                         headers=tokens["a"], json=[{"code": "A1", "name": "renamed-a"}])
    assert upsert.status_code == 200, upsert.text
    assert database.query("SELECT org_id, name FROM projects WHERE code = 'A1'") == \
        [(1, "renamed-a")]


def test_sql_preview_shows_the_tenant_predicate(client: httpx.Client,
                                                tokens: dict[str, dict[str, str]]) -> None:
    r = client.post("/tasks/filter/query", headers=tokens["a"], json={"expressions": []})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "org_id" in body["sql"]
    assert 1 in body["params"].values()


def test_anonymous_requests_never_read_scoped_tables(client: httpx.Client) -> None:
    for method, path in [("GET", "/tasks"), ("GET", "/tasks/1"), ("POST", "/tasks/filter"),
                         ("GET", "/tasks/count")]:
        r = client.request(method, path, json={} if method == "POST" else None)
        assert r.status_code == 401, (path, r.text)
        assert "canary" not in r.text
    assert client.get("/countries").status_code == 200


_FIELDS = {"id": st.integers(0, 12), "points": st.integers(0, 12),
           "org_id": st.integers(0, 3), "project_id": st.integers(0, 3),
           "title": st.sampled_from(["canary-a-task", "canary-b-task", "canary-b-cross", "x"])}


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    def build(field: str) -> st.SearchStrategy[dict[str, Any]]:
        values = _FIELDS[field]
        return st.one_of(
            st.builds(lambda op, v: {"field": field, "operator": op, "value": v},
                      st.sampled_from(["eq", "ne", "gt", "lte"]), values),
            st.builds(lambda v: {"field": field, "operator": "in", "value": v},
                      st.lists(values, min_size=1, max_size=3)),
            st.builds(lambda v: {"field": field, "operator": "isnull", "value": v},
                      st.booleans()))
    return st.sampled_from(sorted(_FIELDS)).flatmap(build)


_TREES = st.recursive(_leaf(), lambda inner: st.builds(
    lambda op, children: {"operator": op, "expressions": children},
    st.sampled_from(["AND", "OR", "NOT"]), st.lists(inner, min_size=1, max_size=3)),
    max_leaves=8)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_TREES)
def test_random_filter_trees_never_return_a_foreign_row(client: httpx.Client,
                                                        tokens: dict[str, dict[str, str]],
                                                        tree: dict[str, Any]) -> None:
    r = client.post("/tasks/filter?page_size=100", headers=tokens["a"],
                    json={"expressions": [tree]})
    assert r.status_code == 200, r.text
    assert all(row["org_id"] == 1 for row in r.json()["data"])
    assert "canary-b" not in r.text


def test_native_postgresql_policies_hide_foreign_rows_from_raw_queries(tmp_path: Path) -> None:
    """PostgreSQL only: with the policies installed and the API connected as a
    role without BYPASSRLS, even a raw query on the API's pool sees only the
    tenant the request set, and the setting never outlives its transaction."""
    role = f"swain_rls_{uuid.uuid4().hex[:10]}"
    try:
        _native_policies(tmp_path, role)
    finally:
        server = sa.make_url(_postgres_server())
        with sa.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


def _postgres_server() -> str:
    import os

    from swain.dialects.postgresql import TEST_SERVER
    return os.environ.get("SWAIN_TEST_POSTGRES_URL", TEST_SERVER)


def _native_policies(tmp_path: Path, role: str) -> None:
    with FreshDatabase("postgresql") as db:
        db.run_script(DDL["postgresql"])
        db.run_script(f"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA public TO {role}; "
                      f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                      f"TO {role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        (tmp_path / "admin").mkdir()
        (tmp_path / "app").mkdir()
        try:
            admin = write_config(tmp_path / "admin", db.swain_url, **SWAIN_CONFIG)
            shown = CliRunner().invoke(cli, ["--config", str(admin), "tenancy", "policies"])
            assert "CREATE POLICY swain_tenant ON tasks" in shown.output, shown.output
            assert "ON countries" not in shown.output
            done = CliRunner().invoke(cli, ["--config", str(admin), "tenancy", "policies",
                                            "--apply"])
            assert done.exit_code == 0, done.output
            url = sa.make_url(db.swain_url).set(username=role, password=None)
            app_config = write_config(tmp_path / "app", url.render_as_string(False),
                                      **{**SWAIN_CONFIG, "rls": {**SWAIN_CONFIG["rls"],
                                                                 "native_policies": True}})
            config, pm = load_config(app_config, "development", environ={})
            with LiveServer(create_app(config, pm)) as live, \
                    httpx.Client(base_url=live.url, timeout=30) as http:
                heads = {}
                for name, tenant in TENANTS.items():
                    r = http.post("/auth/login", json={"email": tenant["email"],
                                                       "password": PASSWORD})
                    assert r.status_code == 200, r.text
                    heads[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
                rows = http.get("/tasks", headers=heads["a"]).json()["data"]
                assert sorted(row["id"] for row in rows) == TENANTS["a"]["tasks"]
                created = http.post("/tasks", headers=heads["b"], json={"title": "native-b"})
                assert created.status_code == 201 and created.json()["org_id"] == 2
                # every endpoint type still works (savepoints, errors, read-backs)
                # inside the per-checkout transaction, and still leaks nothing
                for attacker, victim in [("a", "b"), ("b", "a")]:
                    other = TENANTS[victim]
                    before = _snapshot(db, other["org"])
                    for method, path, body in _attacks(TENANTS[attacker], other):
                        r = http.request(method, path, json=body, headers=heads[attacker])
                        assert r.status_code < 500, (method, path, r.text)
                        assert other["canary"] not in r.text.lower(), (method, path, r.text)
                    assert _snapshot(db, other["org"]) == before
                bulk = http.post("/tasks/bulk", headers=heads["a"],
                                 json=[{"title": "native-bulk"}, {"title": None}])
                assert bulk.status_code == 207, bulk.text
                assert db.query("SELECT org_id FROM tasks WHERE title = 'native-bulk'") == [(1,)]
                # the policy hides the clashing row from the API's own look-up too:
                # still a failure, as a plain insert of the row
                clash = [{"id": TENANTS["b"]["tasks"][0], "title": "hacked"}]
                ignored = http.post("/tasks/bulk?on_conflict=ignore", headers=heads["a"],
                                    json=clash)
                assert ignored.status_code == 207, ignored.text
                assert ignored.json() == http.post("/tasks/bulk", headers=heads["a"],
                                                   json=clash).json()
                assert ignored.json()["failed"][0]["error"]["code"] == "conflict"

                runtime = live.app[RUNTIME]

                async def raw(tenant: str) -> list[Any]:
                    token = NATIVE_TENANT.set(tenant)
                    try:
                        async with runtime.dialect.acquire() as conn:
                            return list(await conn.fetch_all(
                                "SELECT org_id, title FROM tasks ORDER BY id"))
                    finally:
                        NATIVE_TENANT.reset(token)

                async def left_on_session() -> list[Any]:
                    # the pool's own connections, past the API's checkout: the
                    # setting lived in the transaction only (safe behind PgBouncer)
                    async with runtime.dialect.pool.connection() as conn:
                        cursor = await conn.execute(
                            "SELECT current_setting('swain.tenant', true), "
                            "(SELECT count(*) FROM tasks)")
                        return list(await cursor.fetchall())

                seen_a = live.call(raw("1"))
                assert seen_a and {row[0] for row in seen_a} == {1}
                assert not any("canary-b" in row[1] for row in seen_a)
                assert {row[0] for row in live.call(raw("2"))} == {2}
                assert live.call(raw("")) == []
                assert live.call(left_on_session()) in ([("", 0)], [(None, 0)])
            # the same role on its own connection, without the setting: nothing
            direct = sa.create_engine(db.url.set(username=role, password=None),
                                      poolclass=sa.NullPool)
            with direct.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM tasks").scalar() == 0
                conn.exec_driver_sql("SELECT set_config('swain.tenant', '2', false)")
                titles = [r[0] for r in conn.exec_driver_sql("SELECT title FROM tasks")]
                assert titles and not any(t.startswith("canary-a") for t in titles)
            direct.dispose()
        finally:
            # the role's privileges live in this database: revoke them before it goes
            db.run_script(f"DROP OWNED BY {role}")
