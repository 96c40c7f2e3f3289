"""Tenant isolation: every scoped table confined to the caller's tenant (``docs/tenancy.md``).

Inert unless ``[rls] enabled = true``.  The tenant is the identity's
``tenant`` (the auth plugins fill it from the user row: the user's own id when
``tenant_table`` is the user table, else the ``tenant_field`` column of the
user row).

* Reads, counts, updates and deletes on a scoped table get
  ``<tenant column> = :_rls_tenant`` ANDed in by core's gateway (a
  :class:`~swain.core.RowPolicy`), on every path that reaches rows: by id,
  lists, filters, relationship filters and includes, aggregations, bulk,
  upsert and mass operations; the SQL preview shows the predicate.
* Inserts are stamped with the caller's tenant; a different value from the
  client is a 422 naming the column.  Updates cannot change the column.
* The tenant table itself is confined to the caller's own row (by its key).
* A request without an identity gets 401 on a scoped table; an identity
  without a tenant gets 403.  Both fail closed.
* A scoped table that lacks its tenant column is refused (403) until it is
  mapped (``[rls] tables``), excluded, or migrated (``swain tenancy plan`` /
  ``apply``, see :mod:`.migrate`).
* On PostgreSQL, ``native_policies`` runs every connection checkout as one
  transaction opening with ``SET LOCAL swain.tenant``, for the policies
  ``swain tenancy policies`` installs.
"""

from __future__ import annotations

import asyncio
import contextvars
import difflib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import click
import sqlalchemy as sa
from aiohttp import web

from swain.core import (
    IDENTITY,
    Action,
    Config,
    ConfigError,
    Forbidden,
    Identity,
    Predicate,
    Runtime,
    Schema,
    Setting,
    Table,
    Unauthorized,
    hookimpl,
    invalid,
)
from swain.core.cli import with_catalog

log = logging.getLogger("swain.rls")

#: the one parameter name every tenant predicate binds (one value per request)
PARAM = "_rls_tenant"

#: what the native policies read: ``*`` (no request, or one without an
#: identity: the API's own work, e.g. login), else the caller's tenant as text
#: ("" for an identity without a tenant, which matches no row)
NATIVE_TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("swain_rls_tenant",
                                                                    default="*")
SETTING = "swain.tenant"


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TenantScope:
    """Which column confines each table, read from ``[rls]``."""

    def __init__(self, config: Config) -> None:
        section = config.section("rls")
        self.enabled = bool(section.get("enabled"))
        self.tenant_table: str | None = section.get("tenant_table") or None
        self.tenant_field: str = section.get("tenant_field") or "tenant_id"
        self.exclude = set(section.get("exclude_tables") or ())
        self.tables: dict[str, str] = dict(section.get("tables") or {})

    def is_tenant_table(self, table: Table) -> bool:
        return self.tenant_table is not None and self.tenant_table in (table.key, table.name)

    def column_name(self, table: Table) -> str | None:
        """The column that confines ``table``, or ``None`` when it is not scoped."""
        if not self.enabled or table.key in self.exclude or table.name in self.exclude:
            return None
        if self.is_tenant_table(table):
            return table.primary_key[0] if len(table.primary_key) == 1 else ""
        return self.tables.get(table.key) or self.tables.get(table.name) or self.tenant_field

    def column(self, table: Table) -> str | None:
        """Like :meth:`column_name`, but refuses a scoped table lacking the column."""
        name = self.column_name(table)
        if name is None:
            return None
        if not name or table.column(name) is None:
            raise Forbidden(f"{table.key!r} is tenant-scoped but has no tenant column "
                            f"{name or '(single-column key)'!r}; map it in [rls] tables, "
                            "exclude it, or add the column (swain tenancy plan)")
        return name

    @staticmethod
    def tenant(identity: Identity | None, table: Table) -> Any:
        if identity is None:
            raise Unauthorized(f"sign in to reach {table.key!r}")
        if identity.tenant is None:
            raise Forbidden(f"your account has no tenant, so {table.key!r} is out of reach")
        return identity.tenant

    def problems(self, schema: Schema) -> list[str]:
        """Mapping errors against the live schema, each with a suggestion."""
        found: list[str] = []
        names = {t.key for t in schema.tables.values()} | {t.name for t in schema.tables.values()}
        if self.tenant_table is not None and self.tenant_table not in names:
            found.append(f"[rls] tenant_table: no table {self.tenant_table!r}"
                         + _did_you_mean(self.tenant_table, names))
        for name in sorted(self.exclude):
            if name not in names:
                found.append(f"[rls] exclude_tables: no table {name!r}"
                             + _did_you_mean(name, names))
        for name, column in sorted(self.tables.items()):
            table = schema.table(name) or next(
                (t for t in schema.tables.values() if t.name == name), None)
            if table is None:
                found.append(f"[rls] tables: no table {name!r}" + _did_you_mean(name, names))
            elif not isinstance(column, str) or table.column(column) is None:
                columns = [c.name for c in table.columns]
                found.append(f"[rls] tables.{name}: no column {column!r} in {table.key!r}"
                             + _did_you_mean(str(column), columns))
        return found

    def lacking(self, schema: Schema) -> list[Table]:
        """Scoped tables without their tenant column (refused until fixed)."""
        out = []
        for table in schema.tables.values():
            name = self.column_name(table)
            if name is not None and (not name or table.column(name) is None):
                out.append(table)
        return out


def _same(a: Any, b: Any) -> bool:
    return bool(a == b or str(a) == str(b))


class TenantPolicy:
    """Row policy: ``<tenant column> = :_rls_tenant`` on every scoped table."""

    def __init__(self, scope: TenantScope) -> None:
        self.scope = scope

    async def predicate(self, identity: Identity | None, table: Table, sa_table: sa.Table,
                        action: Action) -> Predicate | None:
        column = self.scope.column(table)
        if column is None:
            return None
        tenant = self.scope.tenant(identity, table)
        clause = sa_table.c[column] == sa.bindparam(PARAM)
        return Predicate(("rls", table.key, column), clause, {PARAM: tenant})


class TenantStamp:
    """Write preparer: inserts get the caller's tenant; no write moves a row."""

    def __init__(self, scope: TenantScope) -> None:
        self.scope = scope

    async def prepare(self, identity: Identity | None, table: Table, values: dict[str, Any],
                      action: Action) -> dict[str, Any]:
        column = self.scope.column(table)
        if column is None:
            return values
        tenant = self.scope.tenant(identity, table)
        if self.scope.is_tenant_table(table):
            if action == "create":
                raise Forbidden(f"tenants ({table.key!r}) cannot be created through the "
                                "table API while tenant isolation is on")
            if column in values and not _same(values[column], tenant):
                raise invalid(column, "the tenant's key cannot be changed")
            return values
        if column in values and not _same(values[column], tenant):
            raise invalid(column, "must be your own tenant: rows cannot be written to or "
                                  "moved to another tenant")
        if action == "create":
            return {**values, column: tenant}
        return values


@hookimpl
def swain_config_sections() -> Mapping[str, Mapping[str, Setting]]:
    return {"rls": {
        "enabled": Setting("bool", False, doc="confine every scoped table to the caller's "
                                              "tenant"),
        "tenant_table": Setting("str", None, doc="the table whose rows are the tenants (may be "
                                                 "the user table)"),
        "tenant_field": Setting("str", "tenant_id", doc="the tenant column on scoped tables "
                                                        "(and on the user row)"),
        "exclude_tables": Setting("list", [], doc="tables shared by every tenant"),
        "tables": Setting("table", {}, doc="per-table tenant column where its name differs, "
                                           "e.g. { invoices = \"org_id\" }"),
        "native_policies": Setting("bool", False, doc="PostgreSQL: SET LOCAL swain.tenant in "
                                   "every transaction, for the policies `swain tenancy "
                                   "policies` installs"),
    }}


@hookimpl
def swain_prepare_schema(schema: Schema, config: Config) -> None:
    scope = TenantScope(config)
    if not scope.enabled:
        return
    found = scope.problems(schema)
    if found:
        raise ConfigError(found[0] + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
    for table in schema.tables.values():
        name = scope.column_name(table)
        column = table.column(name) if name and not scope.is_tenant_table(table) else None
        if column is not None:
            column.stamped = True  # the write preparer fills it on every insert
    for table in scope.lacking(schema):
        log.warning("rls: %r has no tenant column %r; it is refused until mapped, excluded "
                    "or migrated", table.key, scope.column_name(table) or "")


def _native(config: Config) -> bool:
    return TenantScope(config).enabled and bool(config.section("rls").get("native_policies"))


def _tenant_setting_value() -> dict[str, str]:
    return {SETTING: NATIVE_TENANT.get()}


@web.middleware
async def _tenant_setting(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
    identity = request.get(IDENTITY)
    if identity is None:
        return await handler(request)
    token = NATIVE_TENANT.set("" if identity.tenant is None else str(identity.tenant))
    try:
        return await handler(request)
    finally:
        NATIVE_TENANT.reset(token)


@hookimpl
def swain_middlewares(config: Config) -> Iterable[Any]:
    return [_tenant_setting] if _native(config) else []


@hookimpl
def swain_transaction_settings(config: Config) -> Callable[[], Mapping[str, str]] | None:
    return _tenant_setting_value if _native(config) else None


@hookimpl
def swain_startup(runtime: Runtime) -> None:
    dialect = runtime.dialect
    if _native(runtime.config) and not dialect.supports_transaction_settings:
        raise ConfigError(f"[rls] native_policies: PostgreSQL only (not {dialect.name})")


@hookimpl
def swain_row_policies(config: Config) -> Iterable[Any]:
    scope = TenantScope(config)
    return [TenantPolicy(scope)] if scope.enabled else []


@hookimpl
def swain_write_preparers(config: Config) -> Iterable[Any]:
    scope = TenantScope(config)
    return [TenantStamp(scope)] if scope.enabled else []


def _scoped_schema(ctx: click.Context, purpose: str) -> tuple[TenantScope, Any, Schema]:
    """The project's tenant scope, dialect and prepared live schema for a command
    (``purpose`` completes "[rls] enabled = true is needed …")."""
    config, pm = ctx.obj.load()
    scope = TenantScope(config)
    if not scope.enabled:
        raise ConfigError(f"[rls] enabled = true is needed {purpose}")

    async def read(runtime: Runtime) -> tuple[Any, Schema]:
        return runtime.dialect, runtime.schema

    dialect, schema = with_catalog(config, pm, read)
    return scope, dialect, schema


def _plan(ctx: click.Context, dialect_name: str | None) -> tuple[Any, Any, Any]:
    from . import migrate

    try:
        scope, dialect, schema = _scoped_schema(ctx, "to plan tenant columns")
        for table in list(schema.tables.values()):
            if table.hidden:
                del schema.tables[table.key]
        plan = migrate.make_plan(scope, schema, dialect_name or dialect.name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return plan, dialect, migrate


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    @cli.group("tenancy")
    def tenancy() -> None:
        """Add the tenant column to scoped tables ([rls])."""

    @tenancy.command("plan")
    @click.option("--dialect", "dialect_name", default=None,
                  type=click.Choice(["postgresql", "mysql", "sqlite"]),
                  help="Print the DDL for this database (default: the configured one).")
    @click.pass_context
    def plan_command(ctx: click.Context, dialect_name: str | None) -> None:
        """Print the DDL (column, backfill, foreign key, index) and the plan hash."""
        plan, _, migrate = _plan(ctx, dialect_name)
        click.echo(migrate.render(plan), nl=False)

    @tenancy.command("apply")
    @click.option("--backfill", required=True, help="The tenant key existing rows are given.")
    @click.option("--plan-hash", "plan_hash", required=True,
                  help="The hash `swain tenancy plan` printed; apply refuses another plan.")
    @click.pass_context
    def apply_command(ctx: click.Context, backfill: str, plan_hash: str) -> None:
        """Run the plan, all or nothing, if it is still the one that was shown."""
        plan, dialect, migrate = _plan(ctx, None)
        if plan.digest != plan_hash:
            raise click.ClickException(f"the plan changed since it was shown (hash now "
                                       f"{plan.digest}); run `swain tenancy plan` again")
        key = plan.tenant.column(plan.tenant_key)
        value: Any = backfill
        if key is not None and key.kind == "integer":
            try:
                value = int(backfill)
            except ValueError:
                raise click.ClickException("--backfill: expected an integer key") from None
        try:
            changed = asyncio.run(migrate.apply(plan, dialect, value))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"added the tenant column to {changed} table(s)")

    @tenancy.command("policies")
    @click.option("--apply", "run", is_flag=True, help="Install them (default: print them).")
    @click.pass_context
    def policies_command(ctx: click.Context, run: bool) -> None:
        """PostgreSQL: the native row-level security policies for the scoped tables."""
        from . import migrate

        try:
            scope, dialect, schema = _scoped_schema(ctx, "for tenant policies")
            if dialect.name != "postgresql":
                raise ConfigError(f"native policies need PostgreSQL (this is {dialect.name})")
            sql = migrate.policy_statements(scope, schema)
            if not run:
                click.echo("".join(f"{line};\n" for line in sql), nl=False)
                return
            asyncio.run(migrate.apply_policies(dialect, sql))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"installed {len(sql) // 4} tenant policies; set [rls] native_policies = "
                   "true and connect the API as a role without BYPASSRLS")
