"""The console store's migrations (Alembic).

``upgrade`` runs inside the console's own connection (``run_sync``), so the
store's tables reach the newest revision before anything reads them, on
SQLite and PostgreSQL alike.  A new revision goes into ``versions/``
(``alembic revision`` with ``script_location`` pointing here); released
revisions are never edited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent
#: the console keeps its revision in its own table, beside any of the operator's
VERSION_TABLE = "console_alembic_version"


def alembic_config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Any) -> None:
    """Bring the store behind ``connection`` (a synchronous SQLAlchemy connection) to head."""
    command.upgrade(alembic_config(connection), "head")
