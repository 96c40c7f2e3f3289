"""The ``swain`` command line (click).  Plugins add commands through
``swain_cli_commands``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table as RichTable

from . import config as config_module
from .app import load_config
from .errors import ConfigError
from .plugins import create_plugin_manager, load_dialect
from .schema import Schema, diff

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

STARTER = '''# swain project file: https://swain.dev/docs/configuration
# Values may use ${ENV_VAR} or ${ENV_VAR:-default}; any key can be overridden
# by an environment variable SWAIN_<SECTION>_<KEY> (e.g. SWAIN_API_MAX_PAGE_SIZE).

[project]
name = "{name}"
description = "{description}"

# One connection per stage: development, staging, production.
[connections.development]
url = "sqlite:///{name}.db"
# dialect = "postgresql"      # postgresql | mysql | mariadb | sqlite
# host = "127.0.0.1"
# port = 5432
# database = "{name}"
# username = "api"
# password = "${{DB_PASSWORD}}"
# schemas = ["public"]
# pool_size = 10

[api]
# public_url = "https://api.example.com"
# exclude_tables = ["schema_migrations"]
default_page_size = 25
max_page_size = 1000
sql_preview = ["development"]

[auth]
# Authentication is on by default and needs an auth plugin; switch it off
# only for a private development database.
enabled = false
# public_routes = ["/auth/login", "GET /products"]

[server]
host = "127.0.0.1"
port = 8000
workers = 1

[logging]
level = "info"
format = "auto"   # json in staging/production, text in development
'''


class Context:
    def __init__(self, config_path: str | None, stage: str | None) -> None:
        self.config_path = config_path
        self.stage = stage

    def load(self) -> Any:
        try:
            return load_config(self.config_path, self.stage)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


class SwainGroup(click.Group):
    """Lets plugins add sub-commands, gathered when the command line starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            pm = create_plugin_manager()
        except ConfigError:
            return
        pm.hook.swain_cli_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._load_plugins()
        return super().get_command(ctx, name)


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
    path = Path(obj.config_path or "swain.toml")
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    name = name or Path.cwd().name.replace(" ", "_") or "swain"
    path.write_text(STARTER.format(name=name, description=description), encoding="utf-8")
    console.print(f"wrote {path}")


# -- config ---------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Inspect the project file."""


@config_group.command("show")
@click.pass_obj
def config_show(obj: Context) -> None:
    """Print the effective configuration with secrets masked."""
    config, _ = obj.load()
    console.print_json(json.dumps(config_module.masked(config), default=str))


# -- connections ----------------------------------------------------------------


@cli.group("connection")
def connection_group() -> None:
    """Manage and test database connections."""


@connection_group.command("test")
@click.pass_obj
def connection_test(obj: Context) -> None:
    """Connect to the stage's database and report its server version."""
    config, pm = obj.load()

    async def run() -> str:
        connection = config.connection()
        dialect = load_dialect(pm, connection.dialect)(connection)
        await dialect.open()
        try:
            return await asyncio.wait_for(dialect.ping(), timeout=connection.connect_timeout + 1)
        finally:
            await dialect.close()

    try:
        version = asyncio.run(run())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        connection = config.connection()
        safe_url = connection.url.render_as_string(hide_password=True)
        raise click.ClickException(f"cannot connect to {safe_url}: {type(exc).__name__}: {exc}") from None
    console.print(f"connected ({config.stage}): {version}")


@connection_group.command("add")
@click.option("--stage", "target_stage", required=True)
@click.option("--url", required=True, help="e.g. postgresql://api@db/shop")
@click.pass_obj
def connection_add(obj: Context, target_stage: str, url: str) -> None:
    """Add (or replace) the connection of a stage in the project file."""
    path = Path(obj.config_path or "swain.toml")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    header = f"[connections.{target_stage}]"
    lines = text.splitlines()
    if header in lines:
        start = lines.index(header)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        lines[start:end] = [header, f"url = {json.dumps(url)}", ""]
    else:
        lines += ["", header, f"url = {json.dumps(url)}"]
    path.write_text("\n".join(lines).strip() + "\n", encoding="utf-8")
    console.print(f"{path}: {header} set")


# -- schema -----------------------------------------------------------------------


def _introspect(obj: Context) -> tuple[Any, Schema]:
    config, pm = obj.load()

    async def run() -> Schema:
        connection = config.connection()
        dialect = load_dialect(pm, connection.dialect)(connection)
        await dialect.open()
        try:
            await dialect.ping()
            return await dialect.introspect()
        finally:
            await dialect.close()

    try:
        return config, asyncio.run(run())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        raise click.ClickException(f"introspection failed: {type(exc).__name__}: {exc}") from None


def print_summary(schema: Schema) -> None:
    table = RichTable(title=f"{len(schema.tables)} tables and views ({schema.dialect} "
                            f"{schema.server_version})")
    for heading in ("table", "kind", "columns", "primary key", "relationships"):
        table.add_column(heading)
    for t in schema.tables.values():
        rels = ", ".join(f"{r.name}{'[]' if r.kind == 'one_to_many' else ''}→{r.target}"
                         for r in t.relationships)
        kind = t.kind + ("" if t.updatable else " (read-only)")
        table.add_row(t.key, kind, str(len(t.columns)), ", ".join(t.primary_key) or "—", rels or "—")
    console.print(table)


@cli.group("schema")
def schema_group() -> None:
    """Introspect the database."""


@schema_group.command("sync")
@click.option("--output", "-o", default=None, help="Snapshot file (default: schema.snapshot setting).")
@click.pass_obj
def schema_sync(obj: Context, output: str | None) -> None:
    """Introspect the database, save the snapshot and print a summary."""
    config, schema = _introspect(obj)
    path = Path(output) if output else config.base_dir / config.schema.snapshot
    path.write_text(json.dumps(schema.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
    print_summary(schema)
    console.print(f"saved {path}")


@schema_group.command("diff")
@click.option("--snapshot", default=None, help="Snapshot file (default: schema.snapshot setting).")
@click.pass_obj
def schema_diff(obj: Context, snapshot: str | None) -> None:
    """Show drift between the saved snapshot and the live database (exit 1 if any)."""
    config, live = _introspect(obj)
    path = Path(snapshot) if snapshot else config.base_dir / config.schema.snapshot
    if not path.exists():
        raise click.ClickException(f"{path}: no snapshot; run `swain schema sync` first")
    saved = Schema.from_json(json.loads(path.read_text(encoding="utf-8")))
    lines = diff(saved, live)
    if not lines:
        console.print("no drift: the snapshot matches the database")
        return
    for line in lines:
        console.print(line, markup=False)
    sys.exit(1)


# -- serving ----------------------------------------------------------------------


def _server_options(function: Any) -> Any:
    function = click.option("--host", default=None, help="Interface to bind (default: server.host).")(function)
    function = click.option("--port", type=int, default=None, help="Port (default: server.port).")(function)
    return function


@cli.command()
@_server_options
@click.option("--workers", type=int, default=None, help="Processes sharing the port.")
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API for a stage."""
    from .serve import serve as run

    try:
        run(obj.config_path, obj.stage, host, port, workers,
            on_ready=lambda url: err_console.print(f"swain serving on {url}"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@_server_options
@click.option("--directory", type=click.Path(file_okay=False), default=None,
              help="Where to create the demo database (default: a fresh temporary folder).")
def demo(host: str | None, port: int | None, directory: str | None) -> None:
    """Create a sample SQLite shop database and serve it."""
    from swain.contrib.demo import prepare

    from .serve import serve as run

    config_path = prepare(Path(directory) if directory else None)
    host = host or "127.0.0.1"
    port = 8000 if port is None else port

    def announce(url: str) -> None:
        console.print(f"[bold]swain demo[/bold] — sample shop on SQLite ({config_path.parent})")
        console.print(f"  API:     {url}/products")
        console.print(f"  Swagger: {url}/swagger/index.html")
        console.print(f"  OpenAPI: {url}/openapi.json")
        console.print("  Stop with Ctrl-C.")

    try:
        run(str(config_path), "development", host, port, 1, on_ready=announce)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def main() -> None:
    cli(prog_name="swain")
