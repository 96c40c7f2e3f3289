"""Bulk inserts without RETURNING (MySQL; forced here on MariaDB and SQLite): one
multi-row INSERT, the rows read back by key, answering as the row-by-row path does.
Not on PostgreSQL: psycopg reports no lastrowid, and PostgreSQL always has RETURNING."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bulk_twins
import httpx
from bulk_twins import USED, compare, owners

from swain.contrib.testing.fixtures import only_dialect

dialect = only_dialect("mysql", "sqlite")

# the twin tables, the app's settings and the fixture that arranges the paths
DDL, SWAIN_CONFIG, slow_path = bulk_twins.DDL, bulk_twins.SWAIN_CONFIG, bulk_twins.slow_path


def test_without_returning_rows_go_in_together_and_come_back(
        client: httpx.Client, database: Any, dialect: str,
        slow_path: Callable[[], None]) -> None:
    """MySQL's path: one multi-row INSERT where the keys it generates are known to be
    consecutive (InnoDB's lock modes 0 and 1), each row read back by its key."""
    owners(database)
    slow_path()
    answer = compare(client, database, dialect)
    assert answer.status_code == 207 and len(answer.json()["succeeded"]) == 55
    generated_in_order = dialect == "mysql"  # SQLite's lastrowid is the last row's
    assert ({"read back fast": 2} if generated_in_order else {}) == USED, USED
    compare(client, database, dialect, "?atomic=true")
