"""Obvious matches between the nine mapping cards and the operator's schema.

A table is suggested for a card when its name says so (``app_users`` for
``user``, ``user_roles`` for ``user_role``) and it has a column for every
required role; a column is suggested when its name, stripped of case and
punctuation, is the role's name or a common synonym (``email_address`` for
``email``, ``password_hash`` for ``password``).  Suggestions only pre-select
the pickers: nothing is mapped until the operator saves.
"""

from __future__ import annotations

import re

from swain.core import Schema, Table
from swain.plugins.mapping import CARDS

SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("emailaddress", "mail", "useremail", "login"),
    "firstname": ("givenname", "fname", "name", "displayname"),
    "password": ("passwordhash", "hashedpassword", "passhash", "passwd", "pwdhash", "pwhash"),
    "isactive": ("active", "enabled", "isenabled"),
    "userid": ("owner", "ownerid", "accountuserid", "memberid"),
    "token": ("tokenhash", "code"),
    "expiresat": ("expires", "expiry", "expireson", "validuntil"),
    "usedat": ("used", "consumedat"),
    "createdat": ("created", "createdon", "insertedat"),
    "refreshtoken": ("refreshtokenhash", "tokenhash", "token"),
    "lastused": ("lastusedat", "lastseen", "lastseenat"),
    "key": ("keyhash", "apikey", "apikeyhash", "token"),
    "revokedat": ("revoked", "revokedon"),
    "accountid": ("tenantid", "orgid", "organizationid"),
    "provideruserid": ("externalid", "subject", "sub", "provideruid", "provideraccountid"),
    "roleid": ("role",),
    "permissionid": ("permission",),
}
#: words a table's name contains when it plays the card (checked without punctuation)
TABLE_WORDS: dict[str, tuple[str, ...]] = {
    "user": ("user", "member", "customer", "person", "people", "login"),
    "password_reset_token": ("reset",),
    "session": ("session", "refresh"),
    "api_key": ("apikey", "key"),
    "social_profile": ("social", "oauth", "identit", "provider"),
    "role": ("role",),
    "permission": ("permission", "privilege"),
    "role_permission": ("rolepermission", "roleprivilege", "grant"),
    "user_role": ("userrole", "memberrole", "roleassignment", "assignment"),
}


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def column_for(role: str, table: Table, taken: set[str] | None = None) -> str | None:
    """The column of ``table`` that obviously plays ``role``, if any."""
    by_norm = {norm(c.name): c.name for c in table.columns if c.name not in (taken or set())}
    if role == "id" and len(table.primary_key) == 1:
        return table.primary_key[0]
    for candidate in (role, *SYNONYMS.get(role, ())):
        if candidate in by_norm:
            return by_norm[candidate]
    return None


def columns_for(card_name: str, table: Table) -> dict[str, str]:
    card = CARDS[card_name]
    found: dict[str, str] = {}
    for role in card.roles:
        column = column_for(role, table, set(found.values()))
        if column is not None:
            found[role] = column
    return found


def _score(card_name: str, table: Table) -> int:
    card = CARDS[card_name]
    columns = columns_for(card_name, table)
    if not all(role in columns for role in card.required):
        return 0
    name = norm(table.name)
    words = TABLE_WORDS[card_name]
    named = any(word in name for word in words) or name.rstrip("s") == norm(card_name)
    # a join table names both sides; a plain one must not look like a join table
    if card_name in ("role", "permission") and any(
            word in name for word in (*TABLE_WORDS["role_permission"], *TABLE_WORDS["user_role"])):
        return 0
    return (100 if named else 0) + len(columns)


def suggestions(schema: Schema) -> dict[str, dict[str, str]]:
    """card → {"table": …, role: column} for every card with an obvious table."""
    out: dict[str, dict[str, str]] = {}
    used: set[str] = set()
    for card_name in CARDS:
        ranked = sorted(((t for t in schema.tables.values() if t.kind == "table"
                          and t.key not in used)),
                        key=lambda t: (-_score(card_name, t), t.key))
        if ranked and _score(card_name, ranked[0]) >= 100:
            table = ranked[0]
            used.add(table.key)
            out[card_name] = {"table": table.key, **columns_for(card_name, table)}
    return out
