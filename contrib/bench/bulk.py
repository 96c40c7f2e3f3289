"""The bulk-insert measurement: ``POST /orders/bulk`` with large batches, timed.

A batch is too large for a requests-per-second load generator to say anything
useful, so each server gets one batch per round, over one connection, and the
result is rows per second and seconds per batch (the median batch).  Every
batch must be answered 200 with one success per row, or it counts as an error.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

_JSON = {"Content-Type": "application/json"}
#: how many rows one bulk request carries
BATCH_ROWS = 10_000
STATUSES = ("new", "paid", "shipped", "cancelled")


@dataclass
class BulkMeasurement:
    rows: int
    #: seconds per batch, in the order they ran
    batches: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def seconds_per_batch(self) -> float:
        return statistics.median(self.batches) if self.batches else 0.0

    @property
    def rows_per_second(self) -> float:
        median = self.seconds_per_batch
        return self.rows / median if median else 0.0


def batch(rows: int, users: int, seed: int) -> list[dict[str, Any]]:
    """``rows`` new orders of existing users; ``seed`` varies the values."""
    return [{"user_id": 1 + (seed * 7 + i * 7919) % users,
             "status": STATUSES[(seed + i) % len(STATUSES)],
             "amount": f"{((seed + i) * 3163) % 100000 / 100:.2f}",
             "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:15:00+00:00"}
            for i in range(rows)]


async def _post(url: str, body: list[dict[str, Any]]) -> tuple[float, bool]:
    import aiohttp

    data = json.dumps(body).encode()  # encoded before the clock starts
    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=300)) as session:
        started = time.perf_counter()
        async with session.post("/orders/bulk", data=data, headers=_JSON) as response:
            answer = await response.json(content_type=None) if response.status == 200 else None
        elapsed = time.perf_counter() - started
    good = answer is not None and len(answer.get("succeeded", ())) == len(body) \
        and not answer.get("failed")
    return elapsed, good


def post(url: str, body: list[dict[str, Any]], into: BulkMeasurement) -> None:
    """Send one batch to the server at ``url`` and add its time to ``into``."""
    elapsed, good = asyncio.run(_post(url, body))
    into.batches.append(elapsed)
    into.errors += not good
