"""``python -m swain.contrib.bench.scale``: the figures of the capacity model
(``docs/scaling.md``).

One ``swain serve`` process with authentication, RBAC and invalidation on, as
in production, over a generated PostgreSQL database (the orders of
:mod:`.dataset`, plus users, roles and API keys), is driven request kind by
request kind.  For each it prints what one instance delivers and what it
costs:

* requests/s reached and latency (p50, p99) with ``--connections`` clients;
* the swain process's CPU time per request, and so requests/s per core;
* what the database sees per request: transactions (every statement outside
  an explicit transaction is one) and its server processes' CPU time, so
  requests/s per database core;
* the connections the instance holds on the database, at most.

Then the same GET by id through nginx (when installed), for the balancer's
CPU per request.  With ``--pin`` (the default on two or more cores) swain
runs on the first core and the load generator elsewhere, so the figures are
one core's.  CPU times come from ``/proc`` (Linux).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import argon2
import psycopg

from swain.contrib.testing import free_port, to_toml
from swain.contrib.testing.auth import AUTH_MAPPING, auth_tables

from . import dataset
from .load import BODY_SLOT, Measurement, Scenario, run_python, run_wrk, wrk_path
from .run import DEFAULT_POSTGRES_URL, Server, _aligned

PASSWORD = "bench-password-1"
#: seconds between two reads of the database's statistics, waiting for them to settle
#: (PostgreSQL's idle backends publish theirs after ten)
SETTLE = 11.0
#: requests counted one by one for the transactions per request
COUNTED = 200
#: the request kind measured on an instance without identity and permission caches
COLD = "GET by id, caches off"
#: concurrent logins: each holds a hashing thread for a quarter of a second
LOGIN_CONNECTIONS = 4
USERS = 200
#: the passwords plugin's default argon2id cost: what a login costs in production
#: (time cost, memory in KiB, parallelism)
ARGON2 = (3, 65536, 4)

#: who may do what: every user holds ``clerk``, which reads customers and does anything
#: to orders
_ROLES = """
INSERT INTO roles (name) VALUES ('clerk');
INSERT INTO permissions (name) VALUES ('orders.*'), ('customers.read');
INSERT INTO role_permissions (role_id, permission_id) SELECT 1, id FROM permissions;
"""


@dataclass
class ScaleOptions:
    rows: int = 100_000
    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 32
    pool_size: int = 10
    postgres_url: str = DEFAULT_POSTGRES_URL
    pin: bool = (os.cpu_count() or 1) >= 2
    load: str = "auto"
    nginx: bool = True
    #: requests of each kind counted one by one for the transactions per request (0: skip)
    count: int = 200
    #: request kinds to run (by name; empty: all)
    only: tuple[str, ...] = ()


@dataclass
class Figure:
    scenario: str
    measured: Measurement
    server_cpu_us: float | None
    db_transactions: float
    db_cpu_us: float | None
    balancer_cpu_us: float | None = None

    def cells(self) -> tuple[str, ...]:
        m = self.measured
        per_core = f"{1e6 / self.server_cpu_us:,.0f}" if self.server_cpu_us else "-"
        db_core = f"{1e6 / self.db_cpu_us:,.0f}" if self.db_cpu_us else "-"
        return (self.scenario, f"{m.rps:,.0f}", f"{m.p50_ms:.1f}", f"{m.p99_ms:.1f}",
                f"{self.server_cpu_us:,.0f}" if self.server_cpu_us else "-", per_core,
                "-" if math.isnan(self.db_transactions) else f"{self.db_transactions:.2f}",
                f"{self.db_cpu_us:,.0f}" if self.db_cpu_us else "-", db_core)


@dataclass
class ScaleOutcome:
    options: ScaleOptions
    generator: str
    figures: list[Figure] = field(default_factory=list)
    connections_held: int = 0
    balancer: Figure | None = None

    def table(self) -> str:
        head = ("request", "req/s", "p50 ms", "p99 ms", "swain CPU µs", "req/s per core",
                "db xacts", "db CPU µs", "req/s per db core")
        return _aligned([head, *(f.cells() for f in self.figures)])

    @property
    def errors(self) -> int:
        return sum(f.measured.errors for f in self.figures) + \
            (self.balancer.measured.errors if self.balancer else 0)


def _cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    found = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


class DatabaseProbe:
    """The bench database's view: its transactions and its backends' CPU time.  The
    probe itself connects to another database, so its own queries are not counted."""

    def __init__(self, dsn: str, name: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.name = name

    def transactions(self) -> int:
        row = self.conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def settled_transactions(self) -> int:
        """The count once every backend has published its own: a busy backend does
        so at most once a second, an idle one ten seconds after it goes idle."""
        last = self.transactions()
        while True:
            time.sleep(SETTLE)
            now = self.transactions()
            if now == last:
                return now
            last = now

    def backend_cpu(self) -> dict[int, float]:
        pids = [int(r[0]) for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)).fetchall()]
        return _cpu_seconds(pids)

    def connections(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()


def _prepare(database: dataset.BenchDatabase) -> None:
    time_cost, memory, lanes = ARGON2
    hashed = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory, parallelism=lanes,
                                   type=argon2.Type.ID).hash(PASSWORD)
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute(auth_tables("postgresql"))
        conn.execute(_ROLES)
        conn.execute("INSERT INTO users (email, password_hash) SELECT 'user' || g || "
                     "'@bench.test', %s FROM generate_series(1, %s) AS g", (hashed, USERS))
        conn.execute("INSERT INTO user_roles (user_id, role_id) SELECT id, 1 FROM users")
        conn.execute("ANALYZE")


def _config(options: ScaleOptions, database: dataset.BenchDatabase, path: Path,
            overrides: dict[str, dict[str, Any]]) -> Path:
    sections: dict[str, dict[str, Any]] = {
        "connections": {"development": {"url": database.url, "pool_size": options.pool_size}},
        "auth": {"enabled": True, "jwt_secret": "a benchmark secret that is long enough to sign"},
        "rbac": {"enabled": True},
        "rate_limit": {"enabled": False},  # every login is one account's: no limit measured
        "mapping": AUTH_MAPPING,
        "logging": {"access_log": False, "level": "warning"},
    }
    for name, values in overrides.items():
        sections.setdefault(name, {}).update(values)
    path.write_text(to_toml(sections), encoding="utf-8")
    return path


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def scenarios(rows: int, token: str, key: str) -> list[Scenario]:
    bearer = (("Authorization", f"Bearer {token}"),)
    pages = max(1, min(200, -(-rows // 25)))
    return [
        Scenario("GET by id", "/orders/{}", (1, rows), headers=bearer),
        Scenario("GET by id, API key", "/orders/{}", (1, rows), headers=(("X-API-Key", key),)),
        Scenario("list page, count=none", "/orders?page_size=25&count=none&page={}",
                 (1, pages), headers=bearer),
        Scenario("list page, exact count", "/orders?page_size=25&page={}", (1, pages),
                 headers=bearer),
        Scenario("filtered list (status=)", "/orders?count=none&page_size=25&status={}",
                 dataset.STATUSES, headers=bearer),
        Scenario("create (POST)", "/orders", (1, max(1, rows // 10)), "POST",
                 json.dumps({"customer_id": 0, "status": "pending", "total": "9.99",
                             "items": 1, "created_at": "2024-06-01T00:00:00Z"}).replace(
                     '"customer_id": 0', f'"customer_id": {BODY_SLOT}'), headers=bearer),
        Scenario("login (argon2id)", "/auth/login", (1, USERS), "POST",
                 json.dumps({"email": f"user{BODY_SLOT}@bench.test", "password": PASSWORD})),
    ]


def run(options: ScaleOptions, progress: Callable[[str], None] = lambda _: None) -> ScaleOutcome:
    use_wrk = options.load == "wrk" or (options.load == "auto" and wrk_path() is not None)
    generator = "wrk" if use_wrk else "Python load generator (figures are lower bounds)"
    others = f"1-{(os.cpu_count() or 2) - 1}"
    outcome = ScaleOutcome(options, generator)

    def drive(url: str, scenario: Scenario, seconds: float) -> Measurement:
        connections = LOGIN_CONNECTIONS if scenario.template == "/auth/login" \
            else options.connections
        if use_wrk:
            wrk = run_wrk if not options.pin else _pinned_wrk(others)
            return wrk(url, scenario, seconds, connections, 1)
        return run_python(url, scenario, seconds, connections)

    progress(f"creating a database with {options.rows:,} orders and {USERS} users")
    database = dataset.create(options.postgres_url, options.rows)
    progress(f"database {database.name} (dropped at the end)")
    probe: DatabaseProbe | None = None
    try:
        _prepare(database)
        probe = DatabaseProbe(dataset.server_dsn(options.postgres_url), database.name)
        with tempfile.TemporaryDirectory(prefix="swain-scale-") as tmp:
            with _serving(options, database, Path(tmp), "swain") as server:
                login = _post(server.url + "/auth/login",
                              {"email": "user1@bench.test", "password": PASSWORD})
                token = login["access_token"]
                key = _post(server.url + "/auth/api_keys", {"name": "bench"},
                            {"Authorization": f"Bearer {token}"})["key"]
                chosen = [c for c in scenarios(options.rows, token, key)
                          if not options.only or c.name in options.only]
                counts = [float("nan")] * len(chosen)
                if options.count > 0:
                    progress("counting the database's transactions per request (slow: "
                             "PostgreSQL publishes its counts ten seconds after a connection "
                             "goes idle)")
                    counts = transactions_per_request(server.url, chosen, probe, options.count)
                if options.nginx:
                    outcome.balancer = _through_nginx(server, probe, options, token, drive,
                                                      float("nan"), progress)
                for scenario, transactions in zip(chosen, counts, strict=True):
                    progress(scenario.name)
                    if options.warmup > 0:
                        drive(server.url, scenario, options.warmup)
                    outcome.figures.append(_measure(server, probe, scenario, options, drive,
                                                    transactions))
                    outcome.connections_held = max(outcome.connections_held, probe.connections())
            cold = Scenario(COLD, "/orders/{}", (1, options.rows),
                            headers=(("Authorization", f"Bearer {token}"),))
            if not options.only or COLD in options.only:
                # every request reads the user and their permissions, as when each
                # user's requests land on a different worker every time
                with _serving(options, database, Path(tmp), "swain-cold",
                              {"auth": {"identity_cache": "0s"},
                               "rbac": {"permission_cache": "0s"}}) as server:
                    progress(COLD)
                    counted = transactions_per_request(server.url, [cold], probe,
                                                       options.count)[0] \
                        if options.count > 0 else float("nan")
                    if options.warmup > 0:
                        drive(server.url, cold, options.warmup)
                    outcome.figures.append(_measure(server, probe, cold, options, drive,
                                                    counted))
    finally:
        if probe is not None:
            probe.close()
        database.drop()
    return outcome


@contextmanager
def _serving(options: ScaleOptions, database: dataset.BenchDatabase, folder: Path, name: str,
             overrides: dict[str, dict[str, Any]] | None = None) -> Iterator[Server]:
    """``swain serve`` with one process (on the first core, pinned)."""
    config = _config(options, database, folder / f"{name}.toml", overrides or {})
    port = free_port()
    prefix = ["taskset", "-c", "0"] if options.pin else []
    server = Server(name, [
        *prefix, sys.executable, "-c", "from swain.core.cli import main; main()",
        "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1"], port, folder / f"{name}.log")
    try:
        server.wait_ready("/health")
        yield server
    finally:
        server.stop()


def _pinned_wrk(cpus: str) -> Callable[..., Measurement]:
    def run_pinned(url: str, scenario: Scenario, seconds: float, connections: int,
                   threads: int) -> Measurement:
        os.sched_setaffinity(0, _cpu_set(cpus))
        try:
            return run_wrk(url, scenario, seconds, connections, threads)
        finally:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))

    return run_pinned


def _cpu_set(spec: str) -> set[int]:
    low, _, high = spec.partition("-")
    return set(range(int(low), int(high or low) + 1))


def _measure(server: Server, probe: DatabaseProbe, scenario: Scenario, options: ScaleOptions,
             drive: Callable[[str, Scenario, float], Measurement], transactions: float,
             url: str | None = None) -> Figure:
    db_before = probe.backend_cpu()
    cpu_before = server.cpu_seconds()
    measured = drive(url or server.url, scenario, options.duration)
    cpu_after = server.cpu_seconds()
    db_after = probe.backend_cpu()
    requests = max(1, measured.requests)
    db_cpu = sum(seconds - db_before.get(pid, 0.0) for pid, seconds in db_after.items())
    return Figure(scenario.name, measured,
                  None if cpu_before is None or cpu_after is None
                  else (cpu_after - cpu_before) / requests * 1e6,
                  transactions, db_cpu / requests * 1e6 if db_after else None)


def _counted(count: int, scenario: Scenario) -> int:
    return max(1, count // 20) if scenario.template == "/auth/login" else count


def transactions_per_request(url: str, chosen: Sequence[Scenario], probe: DatabaseProbe,
                             count: int = 200) -> list[float]:
    """Counted exactly: ``count`` requests of each kind one after the other, between
    settled counts of the database's transactions (cache misses included, as they
    come: the identity and permission caches expire every few seconds)."""
    rng = random.Random(7)
    found = []
    before = probe.settled_transactions()
    for scenario in chosen:
        for _ in range(_counted(count, scenario)):
            path, body = scenario.request(rng)
            headers = dict(scenario.headers)
            if body is not None:
                headers["Content-Type"] = "application/json"
            request = urllib.request.Request(url + path, method=scenario.method, headers=headers,
                                             data=None if body is None else body.encode())
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
        after = probe.settled_transactions()
        found.append((after - before) / _counted(count, scenario))
        before = after
    return found


def _through_nginx(server: Server, probe: DatabaseProbe, options: ScaleOptions, token: str,
                   drive: Callable[[str, Scenario, float], Measurement], transactions: float,
                   progress: Callable[[str], None]) -> Figure | None:
    from swain.contrib.testing.infra import Nginx

    try:
        balancer = Nginx([f"127.0.0.1:{server.port}"]).start()
    except (FileNotFoundError, RuntimeError) as exc:
        progress(f"no nginx measurement: {exc}")
        return None
    try:
        assert balancer.process is not None
        scenario = scenarios(options.rows, token, "")[0]
        progress("GET by id through nginx")
        if options.warmup > 0:
            drive(balancer.url, scenario, options.warmup)
        pids = [balancer.process.pid, *_children(balancer.process.pid)]
        before = _cpu_seconds(pids)
        figure = _measure(server, probe, scenario, options, drive, transactions, balancer.url)
        after = _cpu_seconds(pids)
        figure.scenario = "GET by id, through nginx"
        figure.balancer_cpu_us = sum(after.values()) - sum(before.values())
        figure.balancer_cpu_us = figure.balancer_cpu_us / max(1, figure.measured.requests) * 1e6
        return figure
    finally:
        balancer.stop()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swain.contrib.bench.scale",
                                     description="Capacity figures of one swain instance.")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--postgres-url",
                        default=os.environ.get("SWAIN_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin swain to the first core")
    parser.add_argument("--no-nginx", dest="nginx", action="store_false")
    parser.add_argument("--count", type=int, default=200,
                        help="requests of each kind counted for the database's transactions per "
                             "request (0 skips the count, which takes 11 s per kind)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this request kind (repeatable)")
    args = parser.parse_args(argv)
    options = ScaleOptions(rows=args.rows, duration=args.duration, warmup=args.warmup,
                           connections=args.connections, pool_size=args.pool_size,
                           postgres_url=args.postgres_url, load=args.load,
                           pin=args.pin and (os.cpu_count() or 1) >= 2, nginx=args.nginx,
                           count=args.count, only=tuple(args.only))
    outcome = run(options, progress=lambda text: print(f"… {text}", file=sys.stderr, flush=True))
    print(f"one swain instance (1 process{', pinned to CPU 0' if options.pin else ''}), auth + "
          f"RBAC + invalidation on, {options.rows:,} orders on PostgreSQL, pool {options.pool_size},"
          f" {options.connections} connections, {options.duration:g}s per request kind")
    print(f"load generator: {outcome.generator}")
    print()
    print(outcome.table())
    print()
    print(f"database connections held by the instance: {outcome.connections_held} "
          f"(pool {options.pool_size} + the invalidation listener)")
    if outcome.balancer is not None:
        b = outcome.balancer
        print(f"through nginx: GET by id {b.measured.rps:,.0f} req/s, p99 "
              f"{b.measured.p99_ms:.1f} ms, nginx CPU {b.balancer_cpu_us:,.0f} µs per request")
    if outcome.errors:
        print(f"\nwarning: {outcome.errors} requests failed or were not 2xx")
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    sys.exit(main())
