"""The user card's password column, written through the table API and bulk.

The column stays secret (never returned, filtered or sorted); the ``jwt`` plugin
makes it *write-only* (:attr:`swain.core.Column.write_only`), so creates, updates,
bulk rows and upserts may carry a plain-text password.  :class:`PasswordColumn`,
a write preparer, checks it against the password policy (a 422 naming the value,
``[3].password`` in a bulk row) and stores its hash from the configured hasher
(argon2id), computed off the event loop once per value.
"""

from __future__ import annotations

from typing import Any

from swain.core import Action, Identity, Runtime, Schema, Table, WriteOnlyValue
from swain.plugins.mapping import MappedCard

from .service import AUTH


def mark_write_only(schema: Schema, user: MappedCard) -> None:
    """Make the mapped password column write-only (it is already secret)."""
    table = schema.tables.get(user.table)
    column = table.column(user.column("password")) if table is not None else None
    if column is not None:
        column.write_only = True


class PasswordColumn:
    """Plain text in, the hasher's hash stored."""

    def __init__(self, runtime: Runtime, user: MappedCard) -> None:
        self.runtime = runtime
        self.table = user.table
        self.column = user.column("password")

    async def prepare(self, identity: Identity | None, table: Table, values: dict[str, Any],
                      action: Action) -> dict[str, Any]:
        value = values.get(self.column) if table.key == self.table else None
        if not isinstance(value, WriteOnlyValue):
            return values
        if value.stored is None:
            passwords = self.runtime.services.get(AUTH).passwords
            passwords.check_policy(value.text, value.path)
            hashed = await passwords.hash(value.text)
            binary = table.existing_column(self.column).kind == "binary"
            value.stored = hashed.encode() if binary else hashed
        return {**values, self.column: value.stored}
