"""The nine mapping cards of SPEC §8.1: which of the operator's tables and
columns play the roles the auth layer needs.

``[mapping.<card>]`` holds ``table = "<the operator's table>"`` and one key per
role naming the operator's column.  Core config sections are flat, so this
plugin declares one section ``mapping`` whose keys are the card names (each a
TOML table) and validates every card's inner keys itself, with key paths like
``mapping.user.email``.

At every schema load the cards are checked against the live schema (a missing
table or column refuses to start, naming it with a did-you-mean suggestion),
and the secret columns (password hash, reset token, refresh token, API key)
are marked so the table API never reads, writes, filters or sorts them.  The
auth layer's own bookkeeping tables (sessions, API keys, reset tokens) are
hidden from the table API altogether unless ``[auth] expose_auth_tables`` is
set: through it, any caller could otherwise end other users' sessions or
clear a key's ``revokedat``.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa

from swain.core import Config, ConfigError, Schema, Setting, Table, hookimpl
from swain.core.config import validate_section

if TYPE_CHECKING:
    from swain.core.schema import Column


@dataclass(frozen=True)
class Card:
    """One card: its roles (required and optional), which are secret, and the
    table and column types ``scaffold`` creates for it."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    default_table: str = ""
    purpose: str = ""

    @property
    def roles(self) -> tuple[str, ...]:
        return self.required + self.optional


CARDS: dict[str, Card] = {card.name: card for card in (
    Card("user", ("id", "email", "password"), ("firstname", "isactive", "username"),
         ("password",), "users", "all auth"),
    Card("password_reset_token", ("id", "userid", "token", "expiresat", "usedat"), ("createdat",),
         ("token",), "password_reset_tokens", "the password reset flow"),
    Card("session", ("id", "userid", "refreshtoken", "expiresat"), ("lastused",),
         ("refreshtoken",), "sessions", "server-side refresh tokens"),
    Card("api_key", ("id", "key", "revokedat"), ("userid", "accountid", "createdat", "name"),
         ("key",), "api_keys", "API keys"),
    Card("social_profile", ("id", "userid", "provider", "provideruserid", "email", "createdat"),
         (), (), "social_profiles", "social login"),
    Card("role", ("id", "name"), ("description",), (), "roles", "RBAC"),
    Card("permission", ("id", "name"), ("description",), (), "permissions", "RBAC"),
    Card("role_permission", ("id", "roleid", "permissionid"), (), (), "role_permissions", "RBAC"),
    Card("user_role", ("id", "userid", "roleid"), (), (), "user_roles", "RBAC"),
)}

#: Columns ``scaffold`` writes, by role: (SQLAlchemy type, nullable).
_SCAFFOLD_TYPES: dict[str, tuple[Any, bool]] = {
    "id": (sa.Integer(), False), "email": (sa.String(255), False),
    "firstname": (sa.String(100), True), "password": (sa.String(255), False),
    "username": (sa.String(150), True),
    "isactive": (sa.Boolean(), False), "userid": (sa.Integer(), False),
    "accountid": (sa.Integer(), True), "token": (sa.String(255), False),
    "refreshtoken": (sa.String(255), False), "key": (sa.String(255), False),
    "expiresat": (sa.DateTime(timezone=True), False),
    "usedat": (sa.DateTime(timezone=True), True),
    "createdat": (sa.DateTime(timezone=True), False),
    "lastused": (sa.DateTime(timezone=True), True),
    "revokedat": (sa.DateTime(timezone=True), True), "name": (sa.String(100), True),
    "provider": (sa.String(50), False), "provideruserid": (sa.String(255), False),
    "description": (sa.String(255), True), "roleid": (sa.Integer(), False),
    "permissionid": (sa.Integer(), False),
}

#: Cards whose tables only the auth layer should write.
BOOKKEEPING = ("session", "api_key", "password_reset_token")

#: Roles that reference another card's id, for scaffolded foreign keys.
_REFERENCES = {"userid": "user", "roleid": "role", "permissionid": "permission"}


@dataclass(frozen=True)
class MappedCard:
    """A card as the operator mapped it: the table and role → column."""

    card: Card
    table: str
    columns: dict[str, str]

    def column(self, role: str) -> str:
        return self.columns[role]

    def has(self, role: str) -> bool:
        return role in self.columns


def _card_settings(card: Card) -> dict[str, Setting]:
    settings = {"table": Setting("str", None, doc="the table playing this card")}
    settings.update({role: Setting("str", None) for role in card.roles})
    return settings


def parse(config: Config) -> dict[str, MappedCard]:
    """The mapped cards of a configuration; every error names its key path."""
    section = config.section("mapping")
    mapped: dict[str, MappedCard] = {}
    for name, raw in section.items():
        if raw is None:
            continue
        card = CARDS[name]
        values = validate_section(f"mapping.{name}", raw, _card_settings(card))
        if not values["table"]:
            raise ConfigError(f"mapping.{name}.table: required (the table that holds "
                              f"{card.purpose})")
        for role in card.required:
            if not values[role]:
                raise ConfigError(f"mapping.{name}.{role}: required (the column of "
                                  f"{values['table']!r} holding the {role})")
        if name == "api_key" and not (values["userid"] or values["accountid"]):
            raise ConfigError("mapping.api_key.userid: required (or accountid): the column "
                              "naming who owns the key")
        columns = {role: values[role] for role in card.roles if values[role]}
        mapped[name] = MappedCard(card, values["table"], columns)
    return mapped


def auth_active(config: Config) -> bool:
    """Auth plugins act only when auth is on and the user card is mapped."""
    return bool(config.auth.enabled) and config.section("mapping").get("user") is not None


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f'; did you mean "{close[0]}"?' if close else ""


def find_table(schema: Schema, name: str) -> Table | None:
    return schema.tables.get(name)


def problems(mapped: MappingABC[str, MappedCard], schema: Schema) -> list[str]:
    """Everything missing from the schema, one line per table or column."""
    found: list[str] = []
    tables = sorted(schema.tables)
    for name, card in mapped.items():
        table = find_table(schema, card.table)
        if table is None:
            found.append(f'mapping.{name}.table: table "{card.table}" not in schema'
                         f"{_suggest(card.table, tables)}")
            continue
        names = [c.name for c in table.columns]
        for role, column in card.columns.items():
            if table.column(column) is None:
                found.append(f'mapping.{name}.{role}: column "{column}" not in table '
                             f'"{card.table}"{_suggest(column, names)}')
    return found


def type_warnings(mapped: MappingABC[str, MappedCard], schema: Schema) -> list[str]:
    """Columns whose type looks wrong for their role (not fatal: databases differ)."""
    expected = {"email": {"string"}, "username": {"string"}, "password": {"string"},
                "token": {"string"},
                "refreshtoken": {"string"}, "key": {"string"},
                "isactive": {"boolean", "integer"},
                "expiresat": {"datetime", "datetime_tz", "string", "integer"},
                "usedat": {"datetime", "datetime_tz", "string", "integer"},
                "revokedat": {"datetime", "datetime_tz", "string", "integer"}}
    found = []
    for name, card in mapped.items():
        table = find_table(schema, card.table)
        if table is None:
            continue
        for role, column_name in card.columns.items():
            column: Column | None = table.column(column_name)
            if column is not None and role in expected and column.kind not in expected[role]:
                found.append(f"mapping.{name}.{role}: column {column_name!r} is {column.sql_type}"
                             f"; expected {' or '.join(sorted(expected[role]))}")
        user = mapped.get("user")
        if user is not None and name != "user" and card.has("userid"):
            fk_ok = any(fk.columns == [card.column("userid")] and fk.target == user.table
                        for fk in table.foreign_keys)
            if not fk_ok:
                found.append(f"mapping.{name}.userid: no foreign key from {card.table}."
                             f"{card.column('userid')} to {user.table} (recommended)")
    return found


# -- scaffold -------------------------------------------------------------------


def scaffold_tables(mapped: MappingABC[str, MappedCard], cards: list[str]) -> list[sa.Table]:
    """SQLAlchemy tables for ``cards``, named as mapped (or by default)."""
    metadata = sa.MetaData()

    def names(card_name: str) -> tuple[str, dict[str, str]]:
        card = CARDS[card_name]
        given = mapped.get(card_name)
        table = given.table if given else card.default_table
        columns = {role: (given.columns.get(role, role) if given else role)
                   for role in card.roles if not (card_name == "api_key" and role == "accountid")}
        return table, columns

    built = []
    for card_name in cards:
        table_name, columns = names(card_name)
        sa_columns = []
        for role, column in columns.items():
            type_, nullable = _SCAFFOLD_TYPES[role]
            args: list[Any] = []
            target = _REFERENCES.get(role)
            if target is not None and (target in cards or target in mapped):
                target_table, target_columns = names(target)
                if target not in cards and target_table not in metadata.tables:
                    # The referenced table exists already: only its key is needed
                    # to render the reference (it is not created).
                    sa.Table(target_table, metadata,
                             sa.Column(target_columns["id"], sa.Integer(), primary_key=True))
                args.append(sa.ForeignKey(f"{target_table}.{target_columns['id']}",
                                          ondelete="CASCADE"))
            unique = role in ("email", "username", "token", "refreshtoken", "key") or \
                (card_name in ("role", "permission") and role == "name")
            sa_columns.append(sa.Column(column, type_, *args, primary_key=role == "id",
                                        autoincrement=role == "id", nullable=nullable,
                                        unique=unique))
        built.append(sa.Table(table_name, metadata, *sa_columns))
    return built


def scaffold_ddl(mapped: MappingABC[str, MappedCard], cards: list[str], dialect: str) -> str:
    from sqlalchemy.dialects import mysql, postgresql, sqlite
    from sqlalchemy.schema import CreateTable

    sa_dialect: Any = {"postgresql": postgresql.dialect, "mysql": mysql.dialect,
                       "mariadb": mysql.dialect, "sqlite": sqlite.dialect}[dialect]()
    statements = [str(CreateTable(t).compile(dialect=sa_dialect)).strip() + ";"
                  for t in scaffold_tables(mapped, cards)]
    return "\n\n".join(statements) + "\n"


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


async def _introspect(config: Config, pm: Any) -> Schema:
    from swain.core.plugins import load_dialect

    connection = config.connection()
    dialect = load_dialect(pm, connection.dialect)(connection)
    await dialect.open()
    try:
        await dialect.ping()
        return await dialect.introspect()
    finally:
        await dialect.close()


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
        try:
            config, pm = _load(ctx)
            mapped = parse(config)
            schema = asyncio.run(_introspect(config, pm))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
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
        if "user" in mapped and not any(line.startswith("mapping.user.") for line in found):
            from .census import from_database

            try:
                census = asyncio.run(from_database(config, pm, schema, mapped))
            except ConfigError as exc:
                found.append(str(exc))
                click.echo(f"  {exc}")
            else:
                click.echo(f"password hashes in {census[0]}")
                for line in census[1:]:
                    click.echo(f"  {line}")
        if found:
            raise SystemExit(1)

    @mapping_group.command("scaffold")
    @click.option("--dialect", "dialect_name", required=True,
                  type=click.Choice(["postgresql", "mysql", "mariadb", "sqlite"]))
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
        except ConfigError as exc:
            if missing_only:
                raise click.ClickException(str(exc)) from None
        chosen = list(cards) or list(CARDS)
        if missing_only and config is not None:
            try:
                schema = asyncio.run(_introspect(config, pm))
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
            chosen = [c for c in chosen if (mapped[c].table if c in mapped
                                            else CARDS[c].default_table) not in schema.tables]
        if not chosen:
            click.echo("-- every chosen card's table exists already")
            return
        click.echo(scaffold_ddl(mapped, chosen, dialect_name), nl=False)
