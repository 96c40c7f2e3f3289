"""The ``swain`` command line (click).  Plugins add commands through
``swain_cli_commands``."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import pluggy
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy.engine import make_url

from . import config as config_module
from .app import load_config
from .config import Config
from .errors import ConfigError
from .plugins import create_plugin_manager, describe, load_dialect
from .runtime import Runtime, open_runtime
from .schema import Schema, diff

T = TypeVar("T")

# soft_wrap: messages stay on one line when piped, so scripts can grep them.
console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

STARTER = '''# swain project file; every setting is described in docs/configuration.md.
# Values may use ${ENV_VAR} or ${ENV_VAR:-default} ($$ is a literal $), and any
# key can be overridden by an environment variable SWAIN_<SECTION>_<KEY>
# (e.g. SWAIN_API_MAX_PAGE_SIZE=100, SWAIN_CONNECTIONS_PRODUCTION_PASSWORD=...).
# Unknown keys are errors, so a typo cannot go unnoticed.

[project]
name = __NAME__
description = __DESCRIPTION__

# One connection per stage (development, staging, production…); pick one with
# `swain --stage production ...` or SWAIN_STAGE.  Give a URL, or the fields.
# A relative SQLite path is relative to this file's folder.
[connections.development]
url = "sqlite:///__FILE__.db"

# [connections.production]
# dialect = "postgresql"        # postgresql | mysql | mariadb | sqlite
# host = "db.internal"
# port = 5432
# database = "shop"
# username = "api"
# password = "${DB_PASSWORD}"   # keep secrets in the environment
# schemas = ["public"]          # which schemas to expose
# pool_size = 10
# connect_timeout = "5s"
# query_timeout = "10s"         # past it (the wait for a connection included): 503
# statement_timeout = "9s"      # server-side; at most query_timeout
# prepared_statements = true    # turn off behind PgBouncer

[api]
# public_url = "https://api.example.com"   # the API's own origin
# exclude_tables = ["schema_migrations"]
default_page_size = 25
max_page_size = 1000
# max_body_size = "1mb"
# allow_explicit_keys = false   # clients writing keys a PostgreSQL sequence generates
sql_preview = ["development"]   # stages where /filter/query returns its SQL

[auth]
# Authentication is on unless switched off, and needs an auth plugin.  Off is
# only for a private development database: anyone who reaches the server can
# read and write every exposed table.
enabled = false
# public_routes = ["/auth/login", "GET /products"]

[server]
host = "127.0.0.1"
port = 8000
workers = 1
# shutdown_timeout = "30s"

[logging]
level = "info"
format = "auto"   # json in staging/production, text in development

# [plugins]
# disable = []    # built-in or installed plugins to leave out (`swain plugins` lists them)
'''

_STAGE = re.compile(r"[a-z][a-z0-9_-]*")
_URL_KEYS = ("url", "dialect", "host", "port", "database", "username", "password")


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(text, ensure_ascii=False)


class Context:
    def __init__(self, config_path: str | None, stage: str | None) -> None:
        self.config_path = config_path
        self.stage = stage

    @property
    def path(self) -> Path:
        return Path(self.config_path or "swain.toml")

    def load(self) -> tuple[Config, pluggy.PluginManager]:
        try:
            return load_config(self.path, self.stage)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def _reason(exc: BaseException, secrets: tuple[str | None, ...] = ()) -> str:
    """A driver error as one line, with any secret it might echo blanked out."""
    text = " ".join(str(exc).split()) or "no details"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"


class SwainGroup(click.Group):
    """Lets plugins add sub-commands, gathered per invocation from the plugins of the
    project file it names (kept in the click context, not on this shared group)."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        found: dict[str, click.Command] | None = ctx.meta.get("swain.plugin_commands")
        if found is not None:
            return found
        found = ctx.meta["swain.plugin_commands"] = {}
        path = Path(ctx.params.get("config_path") or "swain.toml")
        try:
            # Only [plugins] matters here; the command itself reports other problems.
            raw = config_module.read_raw(path).get("plugins", {})
            pm = create_plugin_manager(disable=list(raw.get("disable", [])),
                                       modules=list(raw.get("modules", [])))
        except (ConfigError, AttributeError, TypeError):
            return found
        group = click.Group()
        pm.hook.swain_cli_commands(cli=group)
        found.update(group.commands)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)


@click.group(cls=SwainGroup)
@click.option("--config", "config_path", envvar="SWAIN_CONFIG", default=None,
              help="Project file (default: swain.toml).")
@click.option("--stage", envvar="SWAIN_STAGE", default=None,
              help="development | staging | production (default: development).")
@click.version_option(package_name="swain")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, stage: str | None) -> None:
    """swain: a REST API over the SQL database you already have."""
    ctx.obj = Context(config_path, stage)


@cli.command()
@click.option("--name", default=None, help="Project name (default: the folder's name).")
@click.option("--description", default="", help="One line about the API.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init(obj: Context, name: str | None, description: str, force: bool) -> None:
    """Write a commented starter swain.toml."""
    path = obj.path
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    name = name or path.resolve().parent.name or "swain"
    file_stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "swain"
    text = (STARTER.replace("__NAME__", _toml_string(name))
            .replace("__DESCRIPTION__", _toml_string(description))
            .replace("__FILE__", file_stem))
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote {path}; next: `swain connection add --stage development --url ...`, "
                  "`swain connection test`, `swain schema sync`")


# -- config ---------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Inspect the project file."""


@config_group.command("show")
@click.pass_obj
def config_show(obj: Context) -> None:
    """Print the effective configuration (file, environment overrides and defaults)
    with every secret masked."""
    config, _ = obj.load()
    console.print(json.dumps(config_module.masked(config), indent=2, default=str), markup=False)


# -- plugins --------------------------------------------------------------------


@cli.command("plugins")
@click.pass_obj
def plugins_list(obj: Context) -> None:
    """List the enabled plugins in registration order, with their hooks."""
    _, pm = obj.load()
    table = RichTable(title="plugins (registration order)")
    for heading in ("name", "from", "hooks"):
        table.add_column(heading)
    for info in describe(pm):
        table.add_row(info.name, info.origin, ", ".join(info.hooks) or "—")
    console.print(table)


# -- connections ----------------------------------------------------------------


@cli.group("connection")
def connection_group() -> None:
    """Manage and test database connections."""


@connection_group.command("test")
@click.option("--stage", "target_stage", default=None,
              help="Stage to test (default: the global --stage).")
@click.pass_obj
def connection_test(obj: Context, target_stage: str | None) -> None:
    """Connect to a stage's database and report its server version, or the exact failure."""
    config, pm = obj.load()
    try:
        connection = config.connection(target_stage)
        dialect = load_dialect(pm, connection.dialect)(connection)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    timeout = connection.connect_timeout + 2
    where = f"{connection.safe_url} (stage {connection.stage})"

    async def probe() -> str:
        return await asyncio.wait_for(dialect.probe(), timeout=timeout)

    try:
        version = asyncio.run(probe())
    except TimeoutError:
        raise click.ClickException(f"cannot connect to {where}: no answer within "
                                   f"{timeout:g}s") from None
    except Exception as exc:
        raise click.ClickException(
            f"cannot connect to {where}: {_reason(exc, (connection.url.password,))}") from None
    console.print(f"connected to {where}: {connection.dialect} {version}", markup=False)


def _stage_bounds(lines: list[str], stage: str) -> tuple[int, int] | None:
    header = re.compile(rf'^\s*\[\s*connections\s*\.\s*"?{re.escape(stage)}"?\s*\]\s*(#.*)?$')
    for start, line in enumerate(lines):
        if header.match(line):
            end = next((i for i in range(start + 1, len(lines))
                        if lines[i].lstrip().startswith("[")), len(lines))
            return start, end
    return None


@connection_group.command("add")
@click.option("--stage", "target_stage", required=True,
              help="development | staging | production (or any lower-case name).")
@click.option("--url", required=True,
              help="e.g. postgresql://api@db/shop (keep the password in ${ENV})")
@click.pass_obj
def connection_add(obj: Context, target_stage: str, url: str) -> None:
    """Set the connection of a stage in the project file (replacing its URL or fields;
    other keys such as pool_size and comments are kept)."""
    if not _STAGE.fullmatch(target_stage):
        raise click.ClickException(f"--stage {target_stage!r}: stage names are lower-case "
                                   "identifiers (development, staging, production…)")
    try:
        parsed = make_url(url)
    except Exception:
        raise click.ClickException("--url: not a database URL; expected e.g. "
                                   "postgresql://user@host:5432/db or sqlite:///file.db") from None
    path = obj.path
    if not path.exists():
        raise click.ClickException(f"{path} does not exist; run `swain init` first")
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines()
    entry = f"url = {_toml_string(url)}"
    bounds = _stage_bounds(lines, target_stage)
    if bounds is not None:
        start, end = bounds
        key = re.compile(rf"^\s*({'|'.join(_URL_KEYS)})\s*=")
        body = [line for line in lines[start + 1:end] if not key.match(line)]
        lines[start:end] = [lines[start], entry, *body]
    else:
        try:
            existing = tomllib.loads(original).get("connections", {})
        except tomllib.TOMLDecodeError as exc:
            raise click.ClickException(f"{path}: not valid TOML: {exc}") from None
        if target_stage in existing:
            raise click.ClickException(f"connections.{target_stage} is written in a form this "
                                       f"command does not edit; change it in {path} by hand")
        lines += ["", f"[connections.{target_stage}]", entry]
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    try:
        config, _ = load_config(path, target_stage)
        config.connection()
    except ConfigError as exc:
        path.write_text(original, encoding="utf-8")
        raise click.ClickException(f"{exc} ({path} left unchanged)") from None
    console.print(f"{path}: [connections.{target_stage}] url = "
                  f"{parsed.render_as_string(hide_password=True)}", markup=False)
    if parsed.password and "${" not in url:
        err_console.print("note: the password is now stored in the file; consider "
                          'password = "${DB_PASSWORD}" beside the URL instead', markup=False)


# -- schema -----------------------------------------------------------------------


def with_catalog(config: Config, pm: pluggy.PluginManager,
                 work: Callable[[Runtime], Awaitable[T]], *, prepare: bool = True,
                 probe: bool = False) -> T:
    """Run ``work`` for a command on a runtime holding the stage's live catalog
    (:func:`~swain.core.runtime.open_runtime`).  A configuration problem, or a
    database that cannot be reached or read, becomes a one-line command error;
    what ``work`` raises is its own."""
    try:
        connection = config.connection()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    opened = False

    async def main() -> T:
        nonlocal opened
        async with open_runtime(config, pm, prepare=prepare, probe=probe) as runtime:
            opened = True
            return await work(runtime)

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        if opened:
            raise
        raise click.ClickException(f"cannot introspect {connection.safe_url}: "
                                   f"{_reason(exc, (connection.url.password,))}") from None


def _introspect(obj: Context) -> tuple[Config, Schema]:
    config, pm = obj.load()

    async def schema(runtime: Runtime) -> Schema:
        return runtime.schema

    return config, with_catalog(config, pm, schema, prepare=False, probe=True)


def print_summary(schema: Schema) -> None:
    """The snapshot as a table: one row per table or view, with its keys and relationships."""
    tables = list(schema.tables.values())
    views = sum(1 for t in tables if t.kind == "view")
    columns = sum(len(t.columns) for t in tables)
    foreign_keys = sum(len(t.foreign_keys) for t in tables)
    relationships = sum(len(t.relationships) for t in tables)
    table = RichTable(title=f"{schema.dialect} {schema.server_version}".strip())
    for heading in ("table", "kind", "columns", "primary key", "unique", "foreign keys",
                    "relationships"):
        table.add_column(heading, overflow="fold")
    for t in tables:
        kind = t.kind + ("" if t.writable and t.has_key else " (read-only)")
        unique_keys = [tuple(u.get("column_names") or []) for u in t.unique_constraints]
        unique_keys += [tuple(i.get("column_names") or []) for i in t.indexes if i.get("unique")]
        unique = "; ".join(", ".join(k) for k in dict.fromkeys(unique_keys) if k)
        fks = "; ".join(f"{', '.join(fk.columns)} → {fk.target}({', '.join(fk.target_columns)})"
                        for fk in t.foreign_keys)
        rels = ", ".join(f"{r.name}{'[]' if r.kind == 'one_to_many' else ''} → {r.target}"
                         for r in t.relationships)
        table.add_row(t.key, kind, str(len(t.columns)), ", ".join(t.primary_key) or "—",
                      unique or "—", fks or "—", rels or "—")
    # Piped output is not folded to 80 columns, so each table stays on one line.
    wide = console if console.is_terminal else Console(file=sys.stdout, width=240,
                                                        highlight=False)
    wide.print(table)
    console.print(f"{len(tables) - views} tables, {views} views, {columns} columns, "
                  f"{foreign_keys} foreign keys, {relationships} relationships", markup=False)


@cli.group("schema")
def schema_group() -> None:
    """Introspect the database."""


@schema_group.command("sync")
@click.option("--output", "-o", default=None,
              help="Snapshot file (default: schema.snapshot setting).")
@click.pass_obj
def schema_sync(obj: Context, output: str | None) -> None:
    """Introspect the database, save the snapshot and print a summary."""
    config, schema = _introspect(obj)
    path = Path(output) if output else config.base_dir / config.schema.snapshot
    path.write_text(json.dumps(schema.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
    print_summary(schema)
    console.print(f"saved {path}", markup=False)


@schema_group.command("diff")
@click.option("--snapshot", default=None, help="Snapshot file (default: schema.snapshot setting).")
@click.pass_obj
def schema_diff(obj: Context, snapshot: str | None) -> None:
    """Show drift between the saved snapshot and the live database (exit 1 if any)."""
    config, live = _introspect(obj)
    path = Path(snapshot) if snapshot else config.base_dir / config.schema.snapshot
    if not path.exists():
        raise click.ClickException(f"{path}: no snapshot; run `swain schema sync` first")
    try:
        saved = Schema.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{path}: not a schema snapshot ({exc}); run "
                                   "`swain schema sync` again") from None
    lines = diff(saved, live)
    if not lines:
        console.print("no drift: the snapshot matches the database")
        return
    console.print(f"drift between {path} (-) and the database (+):", markup=False)
    for line in lines:
        console.print(f"  {line}", markup=False)
    console.print(f"{len(lines)} difference(s); run `swain schema sync` to accept them",
                  markup=False)
    sys.exit(1)


# -- serving ----------------------------------------------------------------------


def _server_options(function: Any) -> Any:
    function = click.option("--host", default=None,
                            help="Interface to bind (default: server.host).")(function)
    function = click.option("--port", type=int, default=None,
                            help="Port (default: server.port).")(function)
    return function


@cli.command()
@_server_options
@click.option("--workers", type=int, default=None, help="Processes sharing the port.")
@click.option("--config", "config_path", default=None,
              help="Project file (overrides `swain --config`).")
@click.option("--stage", default=None, help="Stage to serve (overrides `swain --stage`).")
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None, workers: int | None,
          config_path: str | None, stage: str | None) -> None:
    """Serve the API for a stage."""
    from .serve import serve as run

    try:
        run(config_path or obj.config_path, stage or obj.stage, host, port, workers,
            on_ready=lambda url: err_console.print(f"swain serving on {url}"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@_server_options
@click.option("--directory", type=click.Path(file_okay=False), default=None,
              help="Where to create the demo database (default: a fresh temporary folder).")
def demo(host: str | None, port: int | None, directory: str | None) -> None:
    """Create a sample SQLite shop database and serve it."""
    from swain.contrib.demo import DEMO_EMAIL, DEMO_PASSWORD, prepare

    from .serve import serve as run

    config_path = prepare(Path(directory) if directory else None)
    host = host or "127.0.0.1"
    port = 8000 if port is None else port

    def announce(url: str) -> None:
        console.print(f"[bold]swain demo[/bold] — sample shop on SQLite ({config_path.parent})")
        console.print(f"  API:     {url}/products")
        console.print(f"  Swagger: {url}/swagger/index.html")
        console.print(f"  OpenAPI: {url}/openapi.json")
        console.print(f"  Login:   {DEMO_EMAIL} / {DEMO_PASSWORD}  (POST {url}/auth/login, or "
                      "Swagger's Authorize)")
        console.print("  Stop with Ctrl-C.")

    try:
        run(str(config_path), "development", host, port, 1, on_ready=announce)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def main() -> None:
    cli(prog_name="swain")
