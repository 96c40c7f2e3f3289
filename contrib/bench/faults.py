"""``python -m swain.contrib.bench.faults``: soak and outage figures.

Serves a fresh database with ``swain serve`` (a real subprocess, through the
testing kit's TCP proxy on PostgreSQL and MariaDB) and prints what the
reliability suite only bounds generously:

* memory over a soak of distinct heavy filter shapes (RSS before and after);
* ``/health`` latency while two clients send heavy filters;
* a silent database (the proxy blackholes the link) and a refused one (the
  proxy cuts it): how fast requests are answered 503 while it lasts, how
  long the service takes to recover after, and whether any write that was
  acknowledged is missing afterwards;
* password-reset answer times for a known and an unknown address.

Nothing is asserted here: the figures depend on the machine.  The database is
dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import httpx

from swain.contrib.testing import FreshDatabase, write_config
from swain.contrib.testing.process import ServeProcess, latencies_during, rss_mb
from swain.contrib.testing.proxy import TcpProxy

PASSWORD = "fault-figures-password"
_SERIAL = {"sqlite": "INTEGER PRIMARY KEY", "postgresql": "SERIAL PRIMARY KEY",
           "mysql": "INTEGER AUTO_INCREMENT PRIMARY KEY"}
DDL = """
CREATE TABLE items (id {serial}, n INTEGER NOT NULL, label VARCHAR(40));
CREATE TABLE users (id {serial}, email VARCHAR(100) NOT NULL UNIQUE, password VARCHAR(200));
CREATE TABLE reset_tokens (id {serial}, user_id INTEGER NOT NULL REFERENCES users(id),
  token_hash VARCHAR(64) NOT NULL, expires_at TIMESTAMP NOT NULL, used_at TIMESTAMP);
INSERT INTO users (email, password) VALUES ('known@example.com', '{hash}')
"""
#: in lists per heavy filter, of 1,000 values each (19,000 of the default 20,000)
LISTS = 19


@dataclass
class Options:
    dialect: str = "postgresql"
    shapes: int = 120
    heavy: int = 6
    outage: float = 10.0
    query_timeout: float = 10.0
    tries: int = 40


@dataclass
class Outage:
    kind: str
    seconds: float
    answers: dict[str, int] = field(default_factory=dict)
    slowest: float = 0.0
    first_503: float | None = None
    recovered_after: float | None = None
    acknowledged: int = 0
    lost: int = 0


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _shape(number: int) -> dict[str, Any]:
    """A heavy filter whose shape differs with ``number`` (in/nin pattern, extras)."""
    base = number * LISTS * 1000
    lists = [{"field": "n", "operator": "in" if (number >> bit) & 1 else "nin",
              "value": list(range(base + bit * 1000, base + bit * 1000 + 1000))}
             for bit in range(LISTS)]
    extra = [{"field": "id", "operator": "gte", "value": k} for k in range(number % 7)]
    return {"expressions": [{"operator": "OR", "expressions": lists}, *extra]}


@contextmanager
def _served(database: FreshDatabase, url: str, folder: Path,
            options: Options) -> Iterator[ServeProcess]:
    connection = {"url": url, "connect_timeout": "2s",
                  "query_timeout": f"{options.query_timeout:g}s", "pool_size": 4}
    path = write_config(
        folder, url, connections={"development": connection},
        auth={"enabled": True, "jwt_secret": "fault figures use a secret of 32 bytes or more",
              "public_routes": ["/items", "/items/filter", "POST /items"],
              "argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
        mapping={"user": {"table": "users", "id": "id", "email": "email",
                          "password": "password"},
                 "password_reset_token": {"table": "reset_tokens", "id": "id",
                                          "userid": "user_id", "token": "token_hash",
                                          "expiresat": "expires_at", "usedat": "used_at"}},
        smtp={"transport": "file", "file_path": str(folder / "mail.eml"),
              "base_url": "https://app.example"},
        rate_limit={"reset_per_client": "100000/1h", "reset_per_account": "100000/1h"})
    with ServeProcess(path) as served:
        yield served


def soak(served: ServeProcess, options: Options) -> tuple[float, float, float]:
    """(RSS before, RSS after, median request seconds) over ``options.shapes`` shapes."""
    timings = []
    with httpx.Client(base_url=served.url, timeout=120) as http:
        for number in range(10):  # warm-up: code paths, pools, allocator arenas
            http.post("/items/filter", json=_shape(number))
        before = rss_mb(served.pid)
        for number in range(10, 10 + options.shapes):
            started = time.perf_counter()
            r = http.post("/items/filter", json=_shape(number))
            timings.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise RuntimeError(f"heavy filter answered {r.status_code}: {r.text[:200]}")
        return before, rss_mb(served.pid), statistics.median(timings)


def health_under_load(served: ServeProcess, options: Options) -> list[float]:
    """/health latencies while two clients each send ``options.heavy`` heavy filters."""

    def heavy(offset: int) -> None:
        with httpx.Client(base_url=served.url, timeout=120) as http:
            for number in range(options.heavy):
                http.post("/items/filter", json=_shape(1000 + offset * 100 + number))

    return latencies_during(served.url + "/health", [lambda: heavy(0), lambda: heavy(1)])


def outage(served: ServeProcess, proxy: TcpProxy, database: FreshDatabase, kind: str,
           options: Options) -> Outage:
    """Writes and reads go on while the proxy is silent (``blackhole``) or refuses
    (``cut``) for ``options.outage`` seconds, then until the service recovers."""
    result = Outage(kind, options.outage)
    acknowledged: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()
    began: list[float] = []

    def record(status: int, elapsed: float) -> None:
        with lock:
            key = str(status)
            result.answers[key] = result.answers.get(key, 0) + 1
            if began and time.monotonic() >= began[0]:
                result.slowest = max(result.slowest, elapsed)
                if status == 503 and result.first_503 is None:
                    result.first_503 = time.monotonic() - began[0]

    def writer() -> None:
        with httpx.Client(base_url=served.url, timeout=120) as http:
            n = 0
            while not stop.is_set():
                n += 1
                started = time.monotonic()
                r = http.post("/items", json={"n": -n, "label": f"{kind}-{n}"})
                record(r.status_code, time.monotonic() - started)
                if r.status_code == 201:
                    with lock:
                        acknowledged.append(int(r.json()["id"]))

    def reader() -> None:
        with httpx.Client(base_url=served.url, timeout=120) as http:
            while not stop.is_set():
                started = time.monotonic()
                r = http.get("/items?page_size=5")
                record(r.status_code, time.monotonic() - started)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    began.append(time.monotonic())
    (proxy.blackhole if kind == "silent" else proxy.cut)()
    time.sleep(options.outage)
    proxy.restore()
    restored = time.monotonic()
    with httpx.Client(base_url=served.url, timeout=120) as http:
        while time.monotonic() - restored < 120:
            if http.get("/items?page_size=1").status_code == 200 and \
                    http.post("/items", json={"n": 0, "label": "probe"}).status_code == 201:
                result.recovered_after = time.monotonic() - restored
                break
            time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    stored = {row[0] for row in database.query("SELECT id FROM items")}
    result.acknowledged = len(acknowledged)
    result.lost = len(set(acknowledged) - stored)
    return result


def reset_timings(served: ServeProcess, options: Options) -> dict[str, list[float]]:
    """Answer times of ``POST /auth/password_reset`` per address, interleaved."""
    samples: dict[str, list[float]] = {"known@example.com": [], "unknown@example.com": []}
    with httpx.Client(base_url=served.url, timeout=60) as http:
        for _ in range(options.tries):
            for address, found in samples.items():
                started = time.perf_counter()
                http.post("/auth/password_reset", json={"email": address})
                found.append(time.perf_counter() - started)
    return samples


def _trimmed_mean(samples: list[float]) -> float:
    """The mean of the middle 80%: one scheduling hiccup does not decide."""
    cut = len(samples) // 10
    return statistics.mean(sorted(samples)[cut:len(samples) - cut])


def run(options: Options, progress: Callable[[str], None]) -> list[str]:
    """Every measurement, as the lines to print."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    lines = []
    with FreshDatabase(options.dialect) as database, \
            tempfile.TemporaryDirectory(prefix="swain-faults-") as folder:
        database.run_script(DDL.format(serial=_SERIAL[options.dialect], hash=hashed))
        database.run_script("INSERT INTO items (n, label) VALUES " + ", ".join(
            f"({n}, 'item {n}')" for n in range(0, 20_000, 7)))
        network = options.dialect != "sqlite"
        proxy = TcpProxy(database.url.host or "127.0.0.1", database.url.port or 0) \
            if network else None
        if proxy is not None:
            proxy.start()
            url = database.url.set(port=proxy.port)
            served_url = url.set(drivername=url.get_backend_name()).render_as_string(False)
        else:
            served_url = database.swain_url
        try:
            with _served(database, served_url, Path(folder), options) as served:
                progress(f"soak: {options.shapes} heavy filter shapes")
                before, after, median = soak(served, options)
                lines.append(f"memory soak      {options.shapes} shapes of {LISTS} in lists "
                             f"x 1,000 values: RSS {before:.1f} -> {after:.1f} MB "
                             f"({after - before:+.1f} MB); request p50 {_ms(median)}")
                progress("/health during heavy filters")
                latencies = health_under_load(served, options)
                lines.append(f"heavy filters    /health during 2 x {options.heavy} heavy "
                             f"filters: p50 {_ms(_percentile(latencies, 0.5))}, p99 "
                             f"{_ms(_percentile(latencies, 0.99))}, max "
                             f"{_ms(max(latencies))} ({len(latencies)} probes)")
                progress(f"password reset timing, {options.tries} tries each")
                timings = reset_timings(served, options)
                known, unknown = (_trimmed_mean(timings[f"{who}@example.com"])
                                  for who in ("known", "unknown"))
                medians = [statistics.median(timings[f"{who}@example.com"])
                           for who in ("known", "unknown")]
                lines.append(f"password reset   {options.tries} tries each, trimmed mean: known "
                             f"address {_ms(known)}, unknown {_ms(unknown)} "
                             f"({abs(known - unknown) / min(known, unknown):.0%} apart); "
                             f"medians {_ms(medians[0])} and {_ms(medians[1])}")
                if proxy is not None:
                    for kind in ("silent", "refused"):
                        progress(f"{kind} database for {options.outage:g}s")
                        found = outage(served, proxy, database, kind, options)
                        answers = ", ".join(f"{n} x {status}"
                                            for status, n in sorted(found.answers.items()))
                        first = "-" if found.first_503 is None else f"{found.first_503:.2f}s"
                        back = "never" if found.recovered_after is None else \
                            f"{found.recovered_after:.2f}s"
                        lines.append(f"{kind + ' database':<17}{found.seconds:g}s outage "
                                     f"(query_timeout {options.query_timeout:g}s): first 503 "
                                     f"after {first}, slowest answer {found.slowest:.2f}s, "
                                     f"recovered {back} after; answers {answers}; "
                                     f"{found.acknowledged} writes acknowledged, "
                                     f"{found.lost} lost")
                else:
                    lines.append("outages          n/a on SQLite (no network link to cut)")
        finally:
            if proxy is not None:
                proxy.stop()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swain.contrib.bench.faults",
                                     description="Print swain's soak and outage figures.")
    parser.add_argument("--dialect", choices=sorted(_SERIAL), default="postgresql")
    parser.add_argument("--shapes", type=int, default=120, help="heavy filter shapes to soak")
    parser.add_argument("--heavy", type=int, default=6,
                        help="heavy filters per client while /health is probed")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds each outage lasts")
    parser.add_argument("--query-timeout", type=float, default=10.0,
                        help="[connections] query_timeout of the served stage")
    parser.add_argument("--tries", type=int, default=40, help="password resets per address")
    args = parser.parse_args(argv)
    options = Options(dialect=args.dialect, shapes=args.shapes, heavy=args.heavy,
                      outage=args.outage, query_timeout=args.query_timeout, tries=args.tries)
    lines = run(options, lambda text: print(f"… {text}", file=sys.stderr, flush=True))
    print(f"swain fault figures on {options.dialect}")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
