"""PostgreSQL's bulk path copies rows the database cannot write back as the API's
JSON (intervals), answering with them all the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bulk_twins
import httpx
from bulk_twins import TWINS, USED, without_keys

from swain.contrib.testing.fixtures import only_dialect

dialect = only_dialect("postgresql")

# the twin tables, the app's settings and the fixture that arranges the paths
DDL, SWAIN_CONFIG, slow_path = bulk_twins.DDL, bulk_twins.SWAIN_CONFIG, bulk_twins.slow_path


def test_rows_the_database_cannot_write_as_json_are_copied_too(
        client: httpx.Client, database: Any, slow_path: Callable[[], None]) -> None:
    rows = [{"span": f"P{i}DT{i % 24}H{i % 60}M", "n": i % 5} for i in range(1, 40)]
    fast, slow = (client.post(f"/{t}_spans/bulk", json=rows) for t in TWINS)
    assert fast.status_code == 207 and [f["index"] for f in fast.json()["failed"]] == \
        [i - 1 for i in range(1, 40) if i % 5 == 0]
    assert without_keys(fast, "fast") == without_keys(slow, "slow")
    assert USED["copy"] == 1 and not USED["rows as JSON"], USED
    assert database.query("SELECT span, n FROM fast_spans ORDER BY id") == \
        database.query("SELECT span, n FROM slow_spans ORDER BY id")
