"""``python -m swain.contrib.bench``: run the benchmark and print its table."""

from __future__ import annotations

import argparse
import os
import sys

from .bulk import BATCH_ROWS
from .run import DEFAULT_POSTGRES_URL, BenchOptions, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swain.contrib.bench",
        description="Benchmark swain against a raw aiohttp + psycopg handler on PostgreSQL.")
    parser.add_argument("--rows", type=int, default=100_000,
                        help="orders to generate (default 100000)")
    parser.add_argument("--duration", type=float, default=10,
                        help="seconds per scenario and server")
    parser.add_argument("--warmup", type=float, default=2,
                        help="warm-up seconds before each measurement")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server processes, for both servers")
    parser.add_argument("--pool-size", type=int, default=10, help="database pool size per process")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("SWAIN_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help="a PostgreSQL server where a database may be created and dropped")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (auto: wrk when installed)")
    parser.add_argument("--bulk-rows", type=int, default=BATCH_ROWS,
                        help=f"rows per bulk-insert request (default {BATCH_ROWS})")
    parser.add_argument("--bulk-repeats", type=int, default=5,
                        help="bulk-insert requests timed per server (0 skips the scenario)")
    args = parser.parse_args(argv)
    options = BenchOptions(rows=args.rows, duration=args.duration, warmup=args.warmup,
                           connections=args.connections, threads=args.threads, workers=args.workers,
                           pool_size=args.pool_size, postgres_url=args.postgres_url, load=args.load,
                           bulk_rows=args.bulk_rows, bulk_repeats=args.bulk_repeats)
    outcome = run(options, progress=lambda text: print(f"… {text}", file=sys.stderr, flush=True))
    print(f"swain benchmark: {options.rows:,} orders on PostgreSQL, {options.workers} processes "
          f"per server, pool {options.pool_size} per process, {options.connections} connections, "
          f"{options.duration:g}s per scenario after {options.warmup:g}s warm-up")
    print(f"load generator: {outcome.load_generator}")
    print("swain runs with logging.access_log = false (the raw handler writes no log either)")
    print()
    print(outcome.table())
    if outcome.bulk is not None:
        print()
        print(outcome.bulk_table())
    cpu = outcome.cpu_table()
    if cpu:
        print()
        print(cpu)
    if outcome.errors:
        print(f"\nwarning: {outcome.errors} requests failed or were not 2xx")
    if outcome.mismatches:
        print(f"\nwarning: swain and the raw handler answered differently on "
              f"{', '.join(outcome.mismatches)}")
    return 1 if outcome.errors or outcome.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
