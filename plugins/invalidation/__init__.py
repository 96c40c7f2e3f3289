"""Invalidations between instances: every instance forgets a cached fact as soon as
any instance (or a command, or the database) changes it (``docs/scaling.md``).

Core's invalidation bus delivers messages inside one instance; this plugin
carries them to the others.  ``[invalidation] transport``:

* ``database``: the database's own notifications (PostgreSQL ``LISTEN/NOTIFY``),
  listening on a connection of its own to ``listen_url`` (by default the
  stage's connection; point it past a pooler in transaction mode);
* ``redis``: Redis pub/sub on ``redis_url``, for databases without
  notifications;
* ``auto`` (the default): ``redis`` when ``redis_url`` is set, else ``database``
  where the database has notifications, else none;
* ``none``: only this instance's own changes are applied at once.

Changes made through swain (the table API, ``swain rbac``, the console,
password resets, revoked keys) are published by swain.  Changes made
directly in the database are published by triggers that ``swain
invalidation plan`` shows and ``swain invalidation apply`` installs
(PostgreSQL); elsewhere they apply when the caches expire.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable

import click
from sqlalchemy.engine import make_url

from swain.core import Config, ConfigError, Runtime, Setting, Table, hookimpl
from swain.core.cli import with_catalog
from swain.core.invalidation import InvalidationTransport, Watch

from .transports import DatabaseTransport, RedisTransport

log = logging.getLogger("swain")
TRANSPORTS = ("auto", "database", "redis", "none")


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"invalidation": {
        "transport": Setting("str", "auto", choices=TRANSPORTS,
                             doc="how instances tell each other what changed: database "
                                 "notifications, redis pub/sub, auto or none"),
        "redis_url": Setting("str", None, secret=True,
                             doc="Redis for the redis transport, e.g. redis://127.0.0.1:6379/0"),
        "listen_url": Setting("str", None, secret=True,
                              doc="where the database transport listens (default: the stage's "
                                  "connection; the server itself behind PgBouncer)"),
        "channel": Setting("str", "swain_invalidate",
                           doc="the notification channel (PostgreSQL) or Redis channel"),
        "heartbeat": Setting("duration", 15.0, minimum=1,
                             doc="how often an idle listener checks its connection"),
    }}


def transport_name(config: Config, runtime: Runtime) -> str:
    """The transport ``auto`` stands for (or the one configured), checked."""
    section = config.invalidation
    chosen = section.transport
    supported = runtime.dialect.supports_notifications
    if chosen == "auto":
        chosen = "redis" if section.redis_url else "database" if supported else "none"
    if chosen == "redis" and not section.redis_url:
        raise ConfigError("invalidation.redis_url: required by transport = \"redis\"")
    if chosen == "database" and not supported:
        raise ConfigError(f"invalidation.transport: the {runtime.dialect.name} database has no "
                          "notifications; use \"redis\" with redis_url")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", section.channel):
        raise ConfigError(f"invalidation.channel: expected a lower-case identifier of at most 63 "
                          f"characters, got {section.channel!r}")
    return str(chosen)


@hookimpl
def swain_invalidation_transports(config: Config,
                                  runtime: Runtime) -> Iterable[InvalidationTransport]:
    section = config.invalidation
    chosen = transport_name(config, runtime)
    heartbeat = float(section.heartbeat)
    if chosen == "redis":
        return [RedisTransport(section.redis_url, section.channel, heartbeat)]
    if chosen == "database":
        listen = make_url(section.listen_url) if section.listen_url else None
        return [DatabaseTransport(runtime.dialect, section.channel, listen, heartbeat)]
    return []


@hookimpl
def swain_startup(runtime: Runtime) -> None:
    config = runtime.config
    if int(config.server.workers) > 1 and transport_name(config, runtime) == "none":
        log.warning("invalidation: no transport, so each of the %d workers learns of role, "
                    "account and key changes made elsewhere only when its caches expire; set "
                    "[invalidation] redis_url", config.server.workers)


# -- database triggers ----------------------------------------------------------------


def _watched(runtime: Runtime) -> list[tuple[Table, Watch]]:
    """The watched tables of the live schema, each watch narrowed to its columns there."""
    found = []
    for key, watches in sorted(runtime.invalidations.watches.items()):
        table = runtime.schema.tables.get(key)
        if table is None:
            raise ConfigError(f"invalidation: the watched table {key!r} is not in the schema")
        for watch in watches:
            present = tuple(c for c in watch.columns if table.column(c) is not None)
            keyed = watch.key if watch.key and table.column(watch.key) is not None else None
            found.append((table, Watch(table.key, watch.topic, keyed, present)))
    return found


def _plan(ctx: click.Context) -> tuple[list[str], str]:
    """The trigger DDL for the watched tables and its hash."""
    config, pm = ctx.obj.load()

    async def build(runtime: Runtime) -> list[str]:
        if not runtime.dialect.supports_notifications:
            raise ConfigError(f"the {runtime.dialect.name} database has no notifications; with "
                              "[invalidation] redis_url, changes made through swain reach every "
                              "instance, and changes made directly in the database apply when "
                              "the caches expire")
        watched = _watched(runtime)
        if not watched:
            raise ConfigError("no enabled plugin watches a table (map the user, api_key or RBAC "
                              "cards first)")
        return runtime.dialect.notification_triggers(config.invalidation.channel, watched)

    sql = with_catalog(config, pm, build)
    return sql, hashlib.sha256("\n".join(sql).encode()).hexdigest()[:16]


def _run(ctx: click.Context, sql: list[str]) -> None:
    config, pm = ctx.obj.load()

    async def work(runtime: Runtime) -> None:
        async with runtime.dialect.transaction() as conn:
            for statement in sql:
                await conn.execute(statement)

    with_catalog(config, pm, work)


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    @cli.group("invalidation")
    def invalidation() -> None:
        """Database triggers that tell every instance about changes made directly in
        the database (PostgreSQL)."""

    @invalidation.command("plan")
    @click.pass_context
    def plan_command(ctx: click.Context) -> None:
        """Print the trigger DDL for the watched tables and its plan hash."""
        sql, digest = _plan(ctx)
        click.echo(f"-- swain invalidation plan; plan hash {digest}\n"
                   "-- runs in one transaction; replaces triggers an earlier apply installed")
        click.echo("".join(f"{statement};\n" for statement in sql), nl=False)

    @invalidation.command("apply")
    @click.option("--plan-hash", "plan_hash", required=True,
                  help="The hash `swain invalidation plan` printed; apply refuses another plan.")
    @click.pass_context
    def apply_command(ctx: click.Context, plan_hash: str) -> None:
        """Install the triggers, if the plan is still the one that was shown."""
        sql, digest = _plan(ctx)
        if digest != plan_hash:
            raise click.ClickException(f"the plan changed since it was shown (hash now {digest}); "
                                       "run `swain invalidation plan` again")
        _run(ctx, sql)
        click.echo(f"installed the invalidation triggers ({sum('CREATE TRIGGER' in s for s in sql)}"
                   " triggers)")

    @invalidation.command("remove")
    @click.option("--apply", "run", is_flag=True, help="Remove them (default: print the DDL).")
    @click.pass_context
    def remove_command(ctx: click.Context, run: bool) -> None:
        """Remove the triggers (changes made in the database then apply when caches expire)."""
        config, pm = ctx.obj.load()

        async def removal(runtime: Runtime) -> list[str]:
            if not runtime.dialect.supports_notifications:
                raise ConfigError(f"the {runtime.dialect.name} database has no notifications")
            return runtime.dialect.notification_triggers_removal()

        sql = with_catalog(config, pm, removal)
        if not run:
            click.echo("".join(f"{statement};\n" for statement in sql), nl=False)
            return
        _run(ctx, sql)
        click.echo("removed the invalidation triggers")

