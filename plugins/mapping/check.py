"""Checks of the mapped cards against a schema, and DDL for cards whose tables
do not exist yet (``swain mapping check`` / ``swain mapping scaffold``)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping as MappingABC
from typing import Any

import sqlalchemy as sa

from swain.core import Schema, Table
from swain.core.schema import Column

from .cards import CARDS, MappedCard

#: Roles that reference another card's id, for scaffolded foreign keys.
_REFERENCES = {"userid": "user", "roleid": "role", "permissionid": "permission"}

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


def scaffold_ddl(mapped: MappingABC[str, MappedCard], cards: list[str], sa_dialect: Any) -> str:
    """``CREATE TABLE`` statements for ``cards`` in a SQLAlchemy dialect's syntax."""
    from sqlalchemy.schema import CreateTable

    statements = [str(CreateTable(t).compile(dialect=sa_dialect)).strip() + ";"
                  for t in scaffold_tables(mapped, cards)]
    return "\n\n".join(statements) + "\n"
