"""Database backends: PostgreSQL, MySQL/MariaDB and SQLite.

Each is registered in the ``swain.dialects`` entry-point group and imported
only when a connection URL asks for it.
"""
