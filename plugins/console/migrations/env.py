"""Alembic environment: migrations always run on the connection the console hands over."""

from __future__ import annotations

from alembic import context

from swain.plugins.console.migrations import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the console's migrations run from the console (swain console), "
                       "which passes its store's connection")
context.configure(connection=connection, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
