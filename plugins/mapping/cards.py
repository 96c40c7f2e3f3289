"""The nine mapping cards: which of the operator's tables and columns play the
roles the auth layer and RBAC need.

``[mapping.<card>]`` holds ``table = "<the operator's table>"`` and one key per
role naming the operator's column.  This module defines the cards and parses
them from the configuration; every error names its key path
(``mapping.user.email``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swain.core import Config, ConfigError, Setting
from swain.core.config import validate_section


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
        """Every role, ``id`` first (the order scaffolded tables have)."""
        return tuple(sorted(self.required + self.optional, key=lambda role: role != "id"))


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
    # A link table may have a composite key instead of an id column.
    Card("role_permission", ("roleid", "permissionid"), ("id",), (), "role_permissions", "RBAC"),
    Card("user_role", ("userid", "roleid"), ("id",), (), "user_roles", "RBAC"),
)}

#: Cards whose tables only the auth layer should write.
BOOKKEEPING = ("session", "api_key", "password_reset_token")



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


def require(mapped: dict[str, MappedCard], cards: Iterable[str], feature: str) -> None:
    """Refuse to start unless every one of ``cards`` is mapped (``feature`` needs them)."""
    for name in cards:
        if name not in mapped:
            raise ConfigError(f"mapping.{name}: required by {feature} (the table holding "
                              f"{name.replace('_', ' ')}s)")
