"""The mapping plugin: the operator's tables and columns for the nine cards
(:mod:`.cards`), used by the auth plugins and RBAC alike, with one store for
reading and writing them (:mod:`.store`).

The plugin declares ``[mapping]`` (one sub-table per card, each validated by
:func:`.cards.parse`).  At every schema load the cards are checked against the
live schema (a missing table or column refuses to start, naming it with a
did-you-mean suggestion), and the secret columns (password hash, reset token,
refresh token, API key) are marked so the table API never reads, writes,
filters or sorts them.  The auth layer's own bookkeeping tables (sessions, API
keys, reset tokens) are hidden from the table API altogether unless ``[auth]
expose_auth_tables`` is set: through it, any caller could otherwise end other
users' sessions or clear a key's ``revokedat``.

Commands: ``swain mapping check`` and ``swain mapping scaffold``.
"""

from __future__ import annotations

from typing import Any

import click

from swain.core import Config, ConfigError, Runtime, Schema, Setting, hookimpl
from swain.core.cli import with_catalog
from swain.core.config import known_dialects
from swain.core.plugins import create_plugin_manager, load_dialect

from .cards import BOOKKEEPING, CARDS, Card, MappedCard, parse, require
from .check import problems, scaffold_ddl, type_warnings
from .store import Condition, Store, utcnow

__all__ = ["BOOKKEEPING", "CARDS", "Card", "Condition", "MappedCard", "Store", "parse",
           "problems", "require", "scaffold_ddl", "type_warnings", "utcnow"]


# -- hooks ----------------------------------------------------------------------------


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"mapping": {name: Setting("table", None, doc=f"[mapping.{name}]: {card.purpose}")
                        for name, card in CARDS.items()},
            "auth": {"expose_auth_tables": Setting(
                "bool", False, doc="serve the session, API key and reset token tables through "
                                   "the table API (secret columns stay hidden)")}}


@hookimpl
def swain_prepare_schema(schema: Schema, config: Config) -> None:
    mapped = parse(config)
    if not mapped:
        return
    found = problems(mapped, schema)
    if found:
        raise ConfigError(found[0] + (f" (and {len(found) - 1} more; run `swain mapping check`)"
                                      if len(found) > 1 else ""))
    expose = bool(config.auth.get("expose_auth_tables"))
    for name, card in mapped.items():
        table = schema.tables[card.table]
        if name in BOOKKEEPING and not expose:
            table.hidden = True
        for role in card.card.secret:
            if card.has(role):
                column = table.column(card.column(role))
                assert column is not None
                column.secret = True


def _load(ctx: click.Context) -> tuple[Config, Any]:
    try:
        return ctx.obj.load()  # type: ignore[no-any-return]
    except AttributeError:
        from swain.core import load_config

        return load_config()


def _live_schema(config: Config, pm: Any) -> Schema:
    """The stage's schema as introspected, before any plugin prepares it."""

    async def schema(runtime: Runtime) -> Schema:
        return runtime.schema

    return with_catalog(config, pm, schema, prepare=False)


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    @cli.group("mapping")
    def mapping_group() -> None:
        """Check or scaffold the auth mapping cards ([mapping.*])."""

    @mapping_group.command("check")
    @click.pass_context
    def check(ctx: click.Context) -> None:
        """Validate every mapped card against the live schema and count the formats of
        a sample of the stored password hashes (exit 1 on problems)."""
        config, pm = _load(ctx)
        try:
            mapped = parse(config)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

        async def inspect(runtime: Runtime) -> tuple[Schema, list[str] | str | None]:
            schema = runtime.schema
            user_ok = "user" in mapped and not any(
                line.startswith("mapping.user.") for line in problems(mapped, schema))
            if not user_ok or not runtime.pm.has_plugin("passwords"):
                return schema, None
            from swain.plugins.auth.census import from_runtime

            try:
                return schema, await from_runtime(runtime, mapped)
            except ConfigError as exc:
                return schema, str(exc)

        schema, census = with_catalog(config, pm, inspect, prepare=False)
        if not mapped:
            click.echo("no cards mapped: add [mapping.user] (and others) to the project file")
            return
        found = problems(mapped, schema)
        for name, card in mapped.items():
            bad = any(line.startswith(f"mapping.{name}.") for line in found)
            click.echo(f"{'FAIL' if bad else 'ok  '} {name} -> {card.table}")
        for line in found:
            click.echo(f"  {line}")
        for line in type_warnings(mapped, schema):
            click.echo(f"  warning: {line}")
        if isinstance(census, str):
            found.append(census)
            click.echo(f"  {census}")
        elif census:
            click.echo(f"password hashes in {census[0]}")
            for line in census[1:]:
                click.echo(f"  {line}")
        if found:
            raise SystemExit(1)

    @mapping_group.command("scaffold")
    @click.option("--dialect", "dialect_name", required=True,
                  type=click.Choice(known_dialects()))
    @click.option("--card", "cards", multiple=True, type=click.Choice(sorted(CARDS)),
                  help="Only these cards (default: all nine, or the mapped ones).")
    @click.option("--missing-only", is_flag=True,
                  help="Skip tables that already exist in the live database.")
    @click.pass_context
    def scaffold(ctx: click.Context, dialect_name: str, cards: tuple[str, ...],
                 missing_only: bool) -> None:
        """Print CREATE TABLE statements for the cards' tables in a dialect."""
        mapped: dict[str, MappedCard] = {}
        config = pm = None
        try:
            config, pm = _load(ctx)
            mapped = parse(config)
        except (ConfigError, click.ClickException) as exc:
            if missing_only:
                raise click.ClickException(str(exc)) from None
        chosen = list(cards) or list(CARDS)
        if missing_only and config is not None:
            schema = _live_schema(config, pm)
            chosen = [c for c in chosen if (mapped[c].table if c in mapped
                                            else CARDS[c].default_table) not in schema.tables]
        if not chosen:
            click.echo("-- every chosen card's table exists already")
            return
        try:
            backend = load_dialect(pm or create_plugin_manager(), dialect_name)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(scaffold_ddl(mapped, chosen, backend.compiler()), nl=False)
