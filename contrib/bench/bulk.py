"""The bulk-insert measurement: ``POST /orders/bulk`` with large batches, timed.

A batch is too large for a requests-per-second load generator to say anything
useful, so each server gets a warm-up batch and then ``repeats`` batches, one
after the other over one connection; the result is rows per second and
seconds per batch (the median batch).  Every batch must be answered 200 with
one success per row, or it counts as an error.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from . import dataset

_JSON = {"Content-Type": "application/json"}
#: how many rows one bulk request carries
BATCH_ROWS = 10_000


@dataclass
class BulkMeasurement:
    rows: int
    #: seconds per batch, in the order they ran
    batches: list[float]
    errors: int

    @property
    def seconds_per_batch(self) -> float:
        return statistics.median(self.batches) if self.batches else 0.0

    @property
    def rows_per_second(self) -> float:
        total = sum(self.batches)
        return self.rows * len(self.batches) / total if total else 0.0


def batch(rows: int, customers: int, seed: int) -> list[dict[str, Any]]:
    """``rows`` new orders for existing customers; ``seed`` varies the values."""
    return [{"customer_id": 1 + (seed * 7 + i * 7919) % customers,
             "status": dataset.STATUSES[(seed + i) % len(dataset.STATUSES)],
             "total": f"{((seed + i) * 3163) % 100000 / 100:.2f}",
             "items": 1 + (seed + i) % 9,
             "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:15:00+00:00",
             "note": None if i % 4 else "gift wrap"} for i in range(rows)]


async def _measure(url: str, rows: int, customers: int, repeats: int) -> BulkMeasurement:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(url, timeout=timeout) as session:

        async def post(body: list[dict[str, Any]]) -> tuple[float, bool]:
            data = json.dumps(body).encode()  # encoded before the clock starts
            started = time.perf_counter()
            async with session.post("/orders/bulk", data=data, headers=_JSON) as response:
                answer = await response.json(content_type=None) \
                    if response.status == 200 else None
            elapsed = time.perf_counter() - started
            good = answer is not None and len(answer.get("succeeded", ())) == len(body) \
                and not answer.get("failed")
            return elapsed, good

        await post(batch(min(rows, 1000), customers, seed=0))
        bodies = [batch(rows, customers, seed=n) for n in range(1, repeats + 1)]
        times, errors = [], 0
        for body in bodies:
            elapsed, good = await post(body)
            times.append(elapsed)
            errors += not good
    return BulkMeasurement(rows, times, errors)


def measure(url: str, rows: int, customers: int, repeats: int) -> BulkMeasurement:
    """Time ``repeats`` bulk inserts of ``rows`` rows against the server at ``url``."""
    return asyncio.run(_measure(url, rows, customers, repeats))
