"""Work on the operator's own database: test a connection, sync its schema,
plan and apply tenant columns, read and write roles and permissions.

Everything goes through swain's own pieces: the stage's runtime
(``open_runtime``: the dialect, introspection, the plugins'
``swain_prepare_schema``), the tenancy planner of the ``rls`` plugin and the
RBAC statements of the ``rbac`` plugin over the mapping store.  Nothing here
writes SQL of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from swain.core import ConfigError, Dialect, EmailMessage, Runtime, Schema, open_runtime
from swain.core.plugins import load_dialect
from swain.core.schema import diff
from swain.plugins.auth.smtp import SmtpTransport
from swain.plugins.mapping import Store
from swain.plugins.rbac import Grants, changed, command_event, rbac_cards
from swain.plugins.rls import TenantScope, migrate

from . import projects
from .context import Console
from .projects import Built
from .settings import FieldError, field_error
from .store import ConnectionRow, Project, Snapshot

T = TypeVar("T")


def dialect_for(built: Built) -> Dialect:
    connection = built.config.connection()
    try:
        return load_dialect(built.pm, connection.dialect)(connection)
    except ConfigError as exc:
        raise field_error(exc, "dialect") from None


def _clean(text: str, secrets: tuple[str | None, ...]) -> str:
    text = " ".join(text.split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def explain(exc: BaseException, row: ConnectionRow, password: str | None,
            timeout: float) -> tuple[str, str]:
    """The form field a connection failure concerns and what the user can do about it."""
    text = _clean(str(exc), (password,))
    lower = text.lower()
    where = f"{row.host}:{row.port}"
    if isinstance(exc, TimeoutError):
        return "host", (f"no answer from {where} within {timeout:g}s: check the host and port, "
                        "and that a firewall lets this machine in")
    if isinstance(exc, FileNotFoundError):
        return "database", f"there is no SQLite file at {row.database}"
    if any(s in lower for s in ("could not translate host name", "name or service not known",
                                "nodename nor servname", "unknown mysql server host",
                                "temporary failure in name resolution", "getaddrinfo")):
        return "host", f"the host name {row.host!r} cannot be resolved: check its spelling"
    if any(s in lower for s in ("password authentication failed", "access denied",
                                "authentication failed", "no password supplied")):
        return "password", (f"the server refused user {row.username!r} with this password: "
                            "check the user name and password")
    if ("database" in lower and "does not exist" in lower) or "unknown database" in lower:
        return "database", f"the server has no database {row.database!r}: check its name"
    if "role" in lower and "does not exist" in lower:
        return "username", f"the server has no user {row.username!r}"
    if any(s in lower for s in ("connection refused", "can't connect", "could not connect",
                                "connect call failed", "errno 111", "is the server running")):
        return "host", (f"nothing answers at {where} (connection refused): check that the "
                        "server runs and the port is right")
    if "unable to open database file" in lower:
        return "database", f"the SQLite file {row.database} cannot be opened"
    return "host", f"cannot connect: {type(exc).__name__}: {text}"[:400]


@dataclass
class TestResult:
    ok: bool
    message: str
    field: str | None = None
    version: str | None = None


async def test_connection(c: Console, found: Project, row: ConnectionRow) -> TestResult:
    built = await projects.build(c, found, row)
    dialect = dialect_for(built)
    timeout = built.config.connection().connect_timeout + 2
    try:
        version = await asyncio.wait_for(dialect.probe(), timeout=timeout)
    except Exception as exc:  # every failure is reported in words, never raised
        _, password = projects.connection_input(c, row)
        field, message = explain(exc, row, password, timeout)
        return TestResult(False, message, field)
    return TestResult(True, f"connected: {row.dialect} {version}", version=version)


async def introspect(built: Built) -> Schema:
    """The live schema, through the stage's runtime (the driver's own reason for a
    failure first)."""
    try:
        async with open_runtime(built.config, built.pm, prepare=False, probe=True) as runtime:
            return runtime.schema
    except ConfigError as exc:
        raise field_error(exc, "dialect") from None


def prepare(built: Built, schema: Schema) -> Schema:
    """What the API would serve: excluded tables hidden, every plugin's
    ``swain_prepare_schema`` run (mapping and tenancy checks included)."""
    try:
        return Runtime.create(built.config, built.pm).prepare(schema).schema
    except ConfigError as exc:
        raise field_error(exc) from None


@dataclass
class SyncResult:
    snapshot: Snapshot
    changes: list[str] | None  # None on the first sync


async def sync(c: Console, found: Project, row: ConnectionRow) -> SyncResult:
    built = await projects.build(c, found, row)
    try:
        schema = await introspect(built)
    except FieldError:
        raise
    except Exception as exc:
        _, password = projects.connection_input(c, row)
        field, message = explain(exc, row, password, built.config.connection().connect_timeout)
        raise FieldError({field: message}, 503) from None
    previous = await c.store.snapshots(row.id, 1)
    snapshot = await c.store.add_snapshot(row.id, schema.to_json())
    changes = diff(Schema.from_json(previous[0].schema), schema) if previous else None
    return SyncResult(snapshot, changes)


async def latest(c: Console, found: Project, row: ConnectionRow | None = None
                 ) -> tuple[ConnectionRow, Snapshot] | None:
    """The newest snapshot of ``row``, else of any connection of the project."""
    rows = [row] if row is not None else await c.store.connections(found.id)
    best: tuple[ConnectionRow, Snapshot] | None = None
    for candidate in rows:
        found_snapshots = await c.store.snapshots(candidate.id, 1)
        if found_snapshots and (best is None or found_snapshots[0].taken_at > best[1].taken_at):
            best = (candidate, found_snapshots[0])
    return best


# -- tenancy ---------------------------------------------------------------------------------


@dataclass
class TenancyPlan:
    sql: str
    digest: str
    tables: list[str]
    key_kind: str


async def _scoped(c: Console, found: Project, row: ConnectionRow) -> tuple[Built, Schema]:
    # The plan is shown before tenant isolation is switched on, so it is
    # computed as if it were on.
    built = await projects.build(c, found, row, {"rls.enabled": True})
    scope = TenantScope(built.config)
    if not scope.tenant_table:
        raise FieldError({"rls.tenant_table": "choose the tenant table first"})
    schema = await introspect(built)
    found_problems = scope.problems(schema)
    if found_problems:
        raise field_error(ConfigError(found_problems[0]), "rls.tenant_table")
    schema = prepare(built, schema)
    for table in [t for t in schema.tables.values() if t.hidden]:
        del schema.tables[table.key]
    return built, schema


async def tenancy_plan(c: Console, found: Project, row: ConnectionRow) -> TenancyPlan:
    built, schema = await _scoped(c, found, row)
    try:
        plan = migrate.make_plan(TenantScope(built.config), schema, row.dialect)
    except ConfigError as exc:
        raise field_error(exc, "rls.tenant_table") from None
    key = plan.tenant.column(plan.tenant_key)
    return TenancyPlan(migrate.render(plan), plan.digest, [s.table.key for s in plan.steps],
                       key.kind if key is not None else "string")


async def tenancy_apply(c: Console, found: Project, row: ConnectionRow, digest: str,
                        backfill: str) -> int:
    built, schema = await _scoped(c, found, row)
    plan = migrate.make_plan(TenantScope(built.config), schema, row.dialect)
    if plan.digest != digest:
        raise FieldError({"plan": f"the plan changed since it was shown (now {plan.digest}); "
                                  "review it again"}, 409)
    key = plan.tenant.column(plan.tenant_key)
    value: Any = backfill
    if key is not None and key.kind == "integer":
        try:
            value = int(backfill)
        except ValueError:
            raise FieldError({"backfill": "expected the integer key of a tenant row"}) from None
    if plan.steps and not backfill:
        raise FieldError({"backfill": "required: the tenant that existing rows belong to"})
    dialect = dialect_for(built)
    try:
        changed = await migrate.apply(plan, dialect, value)
    except ConfigError as exc:
        message = str(exc)
        raise FieldError({"backfill" if "backfill" in message else "plan": message}) from None
    await sync(c, found, row)
    return changed


# -- roles and permissions ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def rbac_store(c: Console, found: Project, row: ConnectionRow
                     ) -> AsyncIterator[tuple[Grants, Runtime]]:
    """The ``rbac`` plugin's statements on the stage's database and mapped tables."""
    built = await projects.build(c, found, row)
    try:
        cards = rbac_cards(built.config)
    except ConfigError as exc:
        raise FieldError({"mapping": f"{exc}; map the four RBAC cards in step 5 first"}) from None
    try:
        async with open_runtime(built.config, built.pm, prepare=False, probe=True) as runtime:
            yield Grants(Store(runtime, cards)), runtime
    except ConfigError as exc:
        raise field_error(exc, "dialect") from None


async def with_rbac(c: Console, found: Project, row: ConnectionRow,
                    work: Callable[[Grants], Awaitable[T]], action: str | None = None) -> T:
    """Run ``work`` on the roles and permissions; with an ``action``, record it in the
    project's audit sinks once done (an administrative change made in the console)."""
    async with rbac_store(c, found, row) as (store, runtime):
        try:
            result = await work(store)
        except (ConfigError, ValueError) as exc:
            raise FieldError({"rbac": str(exc)}) from None
        if action is not None:
            event = command_event(f"rbac.{action}", {"project": found.name, "stage": row.stage})
            await changed(runtime, dataclasses.replace(event, actor="console",
                                                       provider="console"))
        return result


# -- email -------------------------------------------------------------------------------------------


async def send_test_email(c: Console, found: Project, to: str) -> str:
    if "@" not in to or len(to) > 254:
        raise FieldError({"to": "give the address to send the test email to"})
    built = await projects.build(c, found)
    smtp = built.config.smtp
    if not smtp.host:
        raise FieldError({"smtp.host": "set the SMTP host first"})
    message = EmailMessage(to=to, subject=f"{found.name}: test email from the swain console",
                           text="This is a test email sent from the swain console. If it "
                                "arrived, password reset emails will too.")
    try:
        await SmtpTransport(built.config).send(message)
    except Exception as exc:
        secret = smtp.password
        raise FieldError({"smtp.host": f"sending failed: {type(exc).__name__}: "
                                       f"{_clean(str(exc), (secret,))}"[:400]}) from None
    return f"sent a test email to {to} through {smtp.host}:{smtp.port or ''}".rstrip(":")
