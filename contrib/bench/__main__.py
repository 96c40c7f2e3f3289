"""``python -m swain.contrib.bench``: run the benchmark and print its tables."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys

from .bulk import BATCH_ROWS
from .run import DEFAULT_POSTGRES_URL, BenchOptions, run


def _machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} cores{', ' + model if model else ''}, {platform.system()} " \
           f"{platform.release()}, Python {platform.python_version()}"


#: what ``--quick`` changes: a smoke run, not figures to quote
QUICK = BenchOptions(duration=1.0, warmup=0.0, rounds=1, processes=(1,), bulk_rows=1000)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    base = QUICK if "--quick" in args_in else BenchOptions()
    parser = argparse.ArgumentParser(
        prog="python -m swain.contrib.bench",
        description="swain side by side with a raw aiohttp + psycopg handler and Platformatic "
                    "DB on PostgreSQL, servers taking turns, at 1 and 2 processes.")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 s per measurement, no warm-up, one round, "
                             "1 process, 1,000-row bulk batches")
    parser.add_argument("--duration", type=float, default=base.duration,
                        help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=base.warmup,
                        help="warm-up seconds per server and scenario (default 2)")
    parser.add_argument("--rounds", type=int, default=base.rounds,
                        help="turns each server takes per scenario (default 3)")
    parser.add_argument("--processes", type=int, nargs="+", default=list(base.processes),
                        help="server processes, each count measured in turn (default 1 2)")
    parser.add_argument("--connections", type=int, default=base.connections,
                        help="concurrent connections (default 32)")
    parser.add_argument("--threads", type=int, default=base.threads, help="wrk threads")
    parser.add_argument("--pool-size", type=int, default=base.pool_size,
                        help="database connections per process, swain and raw handler alike")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("SWAIN_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help="a PostgreSQL server where a database may be created and dropped")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (auto: wrk when installed, "
                             "else a slower Python one)")
    parser.add_argument("--no-platformatic", action="store_true",
                        help="leave Platformatic DB out (no npm install)")
    parser.add_argument("--bulk-rows", type=int, default=base.bulk_rows,
                        help=f"rows per bulk-insert request (default {BATCH_ROWS}; 0 skips it)")
    args = parser.parse_args(argv)
    options = BenchOptions(
        duration=args.duration, warmup=args.warmup, rounds=args.rounds,
        processes=tuple(args.processes), connections=args.connections, threads=args.threads,
        pool_size=args.pool_size, postgres_url=args.postgres_url, load=args.load,
        platformatic=not args.no_platformatic, bulk_rows=args.bulk_rows)
    started = dt.datetime.now(dt.UTC)
    outcome = run(options, progress=lambda text: print(f"… {text}", file=sys.stderr, flush=True))
    print(f"swain benchmark, {started:%Y-%m-%d %H:%M} UTC, {_machine()}")
    print(f"PostgreSQL on loopback, reference data set (10,000 users, 100,000 orders); "
          f"load: {outcome.load_generator}; {options.rounds} round(s) per scenario, servers "
          f"taking turns; {options.warmup:g}s warm-up; pool {options.pool_size} per process; "
          "medians over the rounds, CPU from /proc of the server processes")
    for note in outcome.notes:
        print(f"note: {note}")
    print()
    print(outcome.markdown())
    if outcome.errors:
        print(f"warning: {outcome.errors} requests failed or were not 2xx")
    if outcome.mismatches:
        print(f"warning: swain and the raw handler answered differently on "
              f"{', '.join(outcome.mismatches)}")
    return 1 if outcome.errors or outcome.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
