"""The fast bulk-insert paths answer exactly as the row-by-row and array paths did.

PostgreSQL loads bulk rows with ``COPY`` into a staging table and one ``INSERT …
SELECT … RETURNING``; a database without RETURNING (MySQL; forced here on
MariaDB) takes one multi-row INSERT and reads the rows back.  Each is run
next to the path it replaces, on twin tables, with good rows of every type,
rows the validation refuses, and rows the database refuses (unique, check,
foreign key): the same statuses, the same per-row results and errors, the same
stored rows.  The read-back path on its own: test_bulk_read_back.py; rows
PostgreSQL cannot write as JSON: test_bulk_copy_intervals.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bulk_twins
import httpx
from bulk_twins import TWINS, USED, compare, good_and_bad_rows, keys_match, owners, stored, without_keys

# the twin tables, the app's settings and the fixture that arranges the paths
DDL, SWAIN_CONFIG, slow_path = bulk_twins.DDL, bulk_twins.SWAIN_CONFIG, bulk_twins.slow_path


def test_fast_path_answers_as_the_path_it_replaces(
        client: httpx.Client, database: Any, dialect: str,
        slow_path: Callable[[], None]) -> None:
    owners(database)
    answer = compare(client, database, dialect)
    assert answer.status_code == 207
    failed = {item["index"]: item["error"]["code"] for item in answer.json()["failed"]}
    assert failed == {3: "validation_error", 5: "conflict", 8: "validation_error",
                      11: "conflict", 59: "conflict"}, failed
    assert len(answer.json()["succeeded"]) == 55
    # two column sets: two batches (the failing ones replayed row by row), their rows
    # written as JSON by the database
    assert USED["copy"] == (2 if dialect == "postgresql" else 0)
    assert USED["rows as JSON"] == (2 if dialect == "postgresql" else 0)
    atomic = compare(client, database, dialect, "?atomic=true")
    assert atomic.status_code == 422 and atomic.json()["succeeded"] == []
    # more rows than one batch holds, all good
    good = good_and_bad_rows(dialect, 4000)
    for i, row in enumerate(good):
        row.update(code=f"c{i}", n=1, owner_id=1)
    fast, slow = (client.post(f"/{t}/bulk", json=good, timeout=120) for t in TWINS)
    assert fast.status_code == slow.status_code == 200, fast.text[:300]
    assert without_keys(fast, "fast") == without_keys(slow, "slow")
    assert stored(database, "fast") == stored(database, "slow")
    keys_match(fast, database, "fast")
