"""The benchmark harness: swain next to a minimal raw handler, in one run.

``python -m swain.contrib.bench`` creates a fresh PostgreSQL database with a
generated ``orders`` table, serves it with ``swain serve --workers 2`` and with
a hand-written aiohttp + psycopg 3 handler (:mod:`.raw`) doing the same
queries, drives both over loopback with ``wrk`` (or a Python load generator
when ``wrk`` is missing), prints requests/s and p50/p99 latency for each
scenario with the ratio swain/raw, and drops the database.  Besides plain reads
it measures a filtered list with a relationship include and per-parent
aggregations, a grouped aggregation, and a 10,000-row bulk insert (rows/s and
seconds per batch).

Modules: :mod:`.dataset` (the database), :mod:`.raw` (the baseline server),
:mod:`.load` (load generators), :mod:`.bulk` (the bulk-insert timing),
:mod:`.run` (the whole run and its tables).
"""

from __future__ import annotations

from .run import BenchOptions, Outcome, run

__all__ = ["BenchOptions", "Outcome", "run"]
