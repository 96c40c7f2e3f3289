"""The benchmark harness: swain, a raw handler and Platformatic DB, in one run.

``python -m swain.contrib.bench`` loads the reference data set (``schema.sql``:
10,000 users, 100,000 orders) into a fresh PostgreSQL database and serves it
with ``swain serve``, with the least Python that answers the same requests
(:mod:`.raw`) and with Platformatic DB (:mod:`.platformatic`, installed from npm
on first use), at 1 and then 2 processes each.  Per scenario the servers take
turns (A B C A B C, three rounds) under ``wrk -t1 -c32 -d10s`` (or a Python load
generator), and it prints, as markdown tables, req/s, p50, p99 and the
server's CPU time per request, with the ratios swain/raw and
swain/Platformatic.  Scenarios: GET by primary key, a 25-row filtered page
without a count, with a bounded one (swain's default) and with an exact one,
a filter with an include and per-parent aggregations, a grouped aggregation,
and a 10,000-row bulk insert against ``COPY``.  The database is dropped after.

Modules: :mod:`.dataset` (the databases), :mod:`.raw` (the raw handler),
:mod:`.platformatic` (the Node peer), :mod:`.load` (load generators),
:mod:`.bulk` (the bulk-insert timing), :mod:`.run` (the whole run and its
tables); :mod:`.scale` and :mod:`.faults` measure other things.
"""

from __future__ import annotations

from .run import BenchOptions, Outcome, run

__all__ = ["BenchOptions", "Outcome", "run"]
