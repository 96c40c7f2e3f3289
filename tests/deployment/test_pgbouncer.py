"""swain behind PgBouncer in transaction mode (PostgreSQL).

Two instances, each with a pool of 10, share 2 server connections through
PgBouncer (``pool_mode = transaction``): every request is one or more
transactions on whichever server connection is free.  What that takes:
``prepared_statements = false`` (PgBouncer before 1.21 cannot carry them from
one server connection to the next), ``ignore_startup_parameters = options``
(PgBouncer before 1.20 refuses the startup options swain sends: the time zone
is then set by swain itself, a setting PgBouncer keeps per client, and
``statement_timeout`` belongs on the role), and a ``listen_url`` past PgBouncer
for the invalidation listener (a listener needs a session of its own).
Native tenant policies work: their ``SET LOCAL`` lives and dies with each
transaction, so no setting reaches another client of the same server connection.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import httpx
import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fleet_helpers import REDIS

from swain.contrib.testing import FreshDatabase, LiveServer, serving, write_config
from swain.contrib.testing.auth import FAST_ARGON2, auth_mapping, auth_tables, bearer
from swain.contrib.testing.fixtures import only_dialect
from swain.contrib.testing.infra import PgBouncer
from swain.contrib.testing.process import within
from swain.core.cli import cli

dialect = only_dialect("postgresql")
PASSWORD = "bouncer-password-1"
_HASH = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)

DDL = "CREATE TABLE orgs (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);" + auth_tables(
    "postgresql", "org_id INTEGER NOT NULL REFERENCES orgs(id)") + f""";
CREATE TABLE orders (id SERIAL PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs(id),
  note VARCHAR(50) NOT NULL, placed_at TIMESTAMPTZ NOT NULL DEFAULT '2024-05-01 12:00:00+00');
INSERT INTO orgs (id, name) VALUES (1, 'acme'), (2, 'globex');
INSERT INTO users (email, password_hash, org_id) VALUES ('a@acme.test', '{_HASH}', 1),
  ('b@globex.test', '{_HASH}', 2);
INSERT INTO orders (org_id, note) VALUES (1, 'acme-1'), (1, 'acme-2'), (2, 'canary-globex')
"""


def _sections(url: str, listen_url: str, channel: str, **rls: Any) -> dict[str, Any]:
    return {
        "connections": {"development": {"url": url, "prepared_statements": False}},
        "auth": {"enabled": True, "jwt_secret": "a pgbouncer test secret long enough for HS256",
                 "identity_cache": "1h", **FAST_ARGON2},
        "rbac": {"enabled": True, "permission_cache": "1h"},
        "rls": {"enabled": True, "tenant_table": "orgs", "tenant_field": "org_id",
                "exclude_tables": ["roles", "permissions", "role_permissions", "user_roles",
                                   "sessions", "api_keys"],
                **rls},
        "rate_limit": {"redis_url": REDIS, "key_prefix": f"swain:t:{channel}:"},
        "invalidation": {"channel": channel, "listen_url": listen_url},
        "mapping": auth_mapping("user", "role", "permission", "role_permission", "user_role"),
    }


def _cli(path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output


@dataclass
class Bounced:
    database: FreshDatabase
    bouncer: PgBouncer
    role: str
    servers: list[LiveServer]
    clients: list[httpx.Client]
    config_path: Path

    def tokens(self) -> dict[str, dict[str, str]]:
        found = {}
        for org, email in (("acme", "a@acme.test"), ("globex", "b@globex.test")):
            r = self.clients[0].post("/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            found[org] = bearer(r.json()["access_token"])
        return found

    def stats(self) -> dict[str, Any]:
        return next(row for row in self.bouncer.admin("SHOW STATS")
                    if row["database"] == self.database.name)

    def pool(self) -> dict[str, Any]:
        return next(row for row in self.bouncer.admin("SHOW POOLS")
                    if row["database"] == self.database.name and row["user"] == self.role)


@pytest.fixture(scope="module")
def bounced(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Bounced]:
    role = f"swain_pgb_{uuid.uuid4().hex[:10]}"
    channel = f"swain_t_{uuid.uuid4().hex[:12]}"
    server = database.url
    database.run_script(
        f"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA public TO {role}; "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; "
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}; "
        # the server's connections start in another zone: timestamps must still leave in UTC
        f'ALTER DATABASE "{database.name}" SET timezone = \'Asia/Kolkata\'')
    servers: list[LiveServer] = []
    clients: list[httpx.Client] = []
    try:
        direct = server.set(username=role).render_as_string(False).replace(
            "postgresql+psycopg", "postgresql")
        admin = write_config(tmp_path_factory.mktemp("admin"), database.swain_url,
                             **_sections(database.swain_url, database.swain_url, channel))
        _cli(admin, "tenancy", "policies", "--apply")
        _cli(admin, "rbac", "role", "create", "clerk")
        _cli(admin, "rbac", "grant", "clerk", "orders.read", "orders.create")
        for email in ("a@acme.test", "b@globex.test"):
            _cli(admin, "rbac", "assign", email, "clerk")
        with PgBouncer(server.host or "127.0.0.1", server.port or 5432,
                       users=["postgres", role], pool_size=2,
                       settings={"ignore_startup_parameters": "extra_float_digits, options"}
                       ) as bouncer:
            url = bouncer.url(database.name, role)
            path = write_config(tmp_path_factory.mktemp("bounced"), url,
                                **_sections(url, direct, channel, native_policies=True))
            for _ in range(2):
                servers.append(serving(path).start())
                clients.append(httpx.Client(base_url=servers[-1].url, timeout=30))
            # the operator's commands, through PgBouncer as well (as a role the
            # policies let through)
            operator_url = bouncer.url(database.name)
            operator = write_config(tmp_path_factory.mktemp("operator"), operator_url,
                                    **_sections(operator_url, database.swain_url, channel))
            yield Bounced(database, bouncer, role, servers, clients, operator)
    finally:
        for client in clients:
            client.close()
        for live in servers:
            live.stop()
        database.run_script(f"DROP OWNED BY {role}")
        with sa.create_engine(server.set(database="postgres"),
                              isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


def test_requests_run_through_pgbouncer_on_two_server_connections(bounced: Bounced) -> None:
    tokens = bounced.tokens()
    before = int(bounced.stats()["total_xact_count"])

    def read(i: int) -> tuple[str, list[str]]:
        org = ("acme", "globex")[i % 2]
        client = bounced.clients[i % 2]
        r = client.get("/orders?count=exact", headers=tokens[org])
        assert r.status_code == 200, r.text
        return org, [row["note"] for row in r.json()["data"]]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(read, range(120)))
    for org, notes in answers:
        assert notes == (["acme-1", "acme-2"] if org == "acme" else ["canary-globex"])
    assert int(bounced.stats()["total_xact_count"]) - before >= 120
    pool_row = bounced.pool()
    assert int(pool_row["sv_active"]) + int(pool_row["sv_idle"]) + \
        int(pool_row["sv_used"]) <= 2  # the two instances' 20 client connections shared 2
    assert int(pool_row["cl_active"]) + int(pool_row["cl_waiting"]) >= 2


def test_writes_and_timestamps_through_pgbouncer(bounced: Bounced) -> None:
    tokens = bounced.tokens()
    created = bounced.clients[1].post("/orders", headers=tokens["globex"],
                                      json={"note": "bounced"})
    assert created.status_code == 201, created.text
    assert created.json()["org_id"] == 2
    assert created.json()["placed_at"] == "2024-05-01T12:00:00+00:00"  # not +05:30
    row = bounced.clients[0].get(f"/orders/{created.json()['id']}", headers=tokens["globex"])
    assert row.status_code == 200 and row.json()["placed_at"].endswith("+00:00")
    assert bounced.clients[0].get(f"/orders/{created.json()['id']}",
                                  headers=tokens["acme"]).status_code == 404
    bulk = bounced.clients[0].post("/orders/bulk", headers=tokens["acme"],
                                   json=[{"note": "bulk-ok"}, {"note": None}])
    assert bulk.status_code == 207, bulk.text
    assert bounced.database.query("SELECT org_id FROM orders WHERE note = 'bulk-ok'") == [(1,)]


def test_no_tenant_setting_outlives_its_transaction(bounced: Bounced) -> None:
    tokens = bounced.tokens()
    for _ in range(10):
        assert bounced.clients[0].get("/orders", headers=tokens["acme"]).status_code == 200
    # another client of PgBouncer, on the same two server connections, sees no tenant:
    # the policies then hide every row from the API's role
    with psycopg.connect(bounced.bouncer.url(bounced.database.name, bounced.role),
                         autocommit=True, prepare_threshold=None) as conn:
        for _ in range(6):
            setting, visible = conn.execute(
                "SELECT current_setting('swain.tenant', true), (SELECT count(*) FROM orders)"
            ).fetchone()  # type: ignore[misc]
            assert setting in (None, "") and visible == 0


def test_a_role_revoked_behind_pgbouncer_reaches_the_other_instance(bounced: Bounced) -> None:
    tokens = bounced.tokens()
    first, second = bounced.clients
    assert second.get("/orders", headers=tokens["acme"]).status_code == 200  # cached for 1h
    result = CliRunner().invoke(cli, ["--config", str(bounced.config_path), "rbac", "unassign",
                                      "a@acme.test", "clerk"])
    assert result.exit_code == 0, result.output
    # the command's NOTIFY went through PgBouncer; the listeners listen past it
    within(lambda: second.get("/orders", headers=tokens["acme"]).status_code == 403)
    assert first.get("/orders", headers=tokens["acme"]).status_code == 403
    result = CliRunner().invoke(cli, ["--config", str(bounced.config_path), "rbac", "assign",
                                      "a@acme.test", "clerk"])
    assert result.exit_code == 0, result.output
    within(lambda: second.get("/orders", headers=tokens["acme"]).status_code == 200)
