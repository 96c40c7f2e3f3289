"""An example third-party dialect: SQLite under its own URL scheme.

A real third-party dialect would subclass :class:`swain.core.Dialect` and
implement the I/O; subclassing a built-in one is the shortest way to show
the registration (entry point group ``swain.dialects``, name = URL scheme).
"""

from __future__ import annotations

from swain.dialects.sqlite import SQLiteDialect


class ExampleSQLiteDialect(SQLiteDialect):
    """SQLite, reached as ``examplesqlite:///path/to/file.db``."""

    name = "examplesqlite"
