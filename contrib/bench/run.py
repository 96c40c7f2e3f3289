"""One benchmark run: database, both servers, every scenario, the table.

swain is started exactly as an operator starts it (``swain serve --workers
N`` in a subprocess, from a ``swain.toml``), with ``logging.access_log =
false`` because the raw handler writes no log either.  Both servers get the
same pool size and the same number of processes, and are measured one after
the other per scenario, after a warm-up that also lets PostgreSQL's prepared
statements kick in on every pooled connection.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from swain.contrib.testing import free_port, to_toml

from . import bulk, dataset
from .load import BODY_SLOT, Measurement, Scenario, run_python, run_wrk, wrk_path

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: list pages are drawn from the first pages: deep OFFSETs would measure the
#: database's row skipping, the same for both servers, not the request path
LIST_PAGES = 200
#: request body limit for both servers, room for the bulk scenario's batches
MAX_BODY = 64 * 1024 * 1024


@dataclass
class BenchOptions:
    rows: int = 100_000
    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 64
    threads: int = 1
    workers: int = 2
    pool_size: int = 10
    postgres_url: str = DEFAULT_POSTGRES_URL
    #: ``auto`` (wrk when installed, else Python), ``wrk`` or ``python``
    load: str = "auto"
    #: rows per bulk-insert request, and how many such requests are timed
    bulk_rows: int = bulk.BATCH_ROWS
    bulk_repeats: int = 5


@dataclass
class Row:
    scenario: Scenario
    swain: Measurement
    raw: Measurement
    #: server processes' CPU time per request (µs), or ``None`` without /proc
    swain_cpu_us: float | None = None
    raw_cpu_us: float | None = None

    @property
    def ratio(self) -> float:
        return self.swain.rps / self.raw.rps if self.raw.rps else 0.0


@dataclass
class BulkRow:
    swain: bulk.BulkMeasurement
    raw: bulk.BulkMeasurement

    @property
    def ratio(self) -> float:
        """swain's rows/s over the raw handler's."""
        return self.swain.rows_per_second / self.raw.rows_per_second \
            if self.raw.rows_per_second else 0.0


@dataclass
class Outcome:
    options: BenchOptions
    load_generator: str
    rows: list[Row] = field(default_factory=list)
    #: paths on which swain and the raw handler answered differently
    mismatches: list[str] = field(default_factory=list)
    bulk: BulkRow | None = None

    def table(self) -> str:
        head = ("scenario", "swain req/s", "p50 ms", "p99 ms", "raw req/s", "p50 ms", "p99 ms",
                "swain/raw")
        lines = [head]
        for row in self.rows:
            s, r = row.swain, row.raw
            lines.append((row.scenario.name, f"{s.rps:,.0f}", f"{s.p50_ms:.2f}", f"{s.p99_ms:.2f}",
                          f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                          f"{row.ratio:.2f}"))
        return _aligned(lines)

    def bulk_table(self) -> str:
        """Rows/s and median seconds per batch of the bulk insert, or "" when not run."""
        if self.bulk is None:
            return ""
        s, r = self.bulk.swain, self.bulk.raw
        lines = [("scenario", "swain rows/s", "s/batch", "raw rows/s", "s/batch", "swain/raw"),
                 (f"bulk insert ({s.rows:,} rows x {len(s.batches)})", f"{s.rows_per_second:,.0f}",
                  f"{s.seconds_per_batch:.3f}", f"{r.rows_per_second:,.0f}",
                  f"{r.seconds_per_batch:.3f}", f"{self.bulk.ratio:.2f}")]
        return _aligned(lines)

    def cpu_table(self) -> str:
        """CPU time the server processes spent per request (steadier than req/s on a
        busy machine)."""
        lines = ["server CPU per request (µs): scenario, swain, raw"]
        for row in self.rows:
            if row.swain_cpu_us is None or row.raw_cpu_us is None:
                return ""
            lines.append(f"  {row.scenario.name}: {row.swain_cpu_us:,.0f}, {row.raw_cpu_us:,.0f}")
        return "\n".join(lines)

    @property
    def errors(self) -> int:
        bulk_errors = self.bulk.swain.errors + self.bulk.raw.errors if self.bulk else 0
        return sum(row.swain.errors + row.raw.errors for row in self.rows) + bulk_errors


def _aligned(lines: Sequence[Sequence[str]]) -> str:
    """Rows of cells as a text table: the first column left-aligned, a rule under the head."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:],
                                                                       strict=True)]
        out.append("  ".join(cells))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


#: customers of one country with their orders of five items or more included, and
#: per customer the count and sum of those orders
INCLUDE_BODY = json.dumps({"expressions": [
    {"field": "country", "operator": "eq", "value": BODY_SLOT},
    {"relationship": "orders", "scope": "filterRelated", "include": True,
     "expressions": [{"field": "items", "operator": "gte", "value": 5}],
     "fields": ["id", "status", "total"], "sort": [{"field": "id"}],
     "aggregations": {"functions": [{"type": "COUNT", "alias": "n"},
                                    {"type": "SUM", "field": "total", "alias": "revenue"}]}}],
    "sort": [{"field": "id"}]})
#: orders with a given item count (the slot, unquoted: a number), grouped by status
GROUPED_BODY = json.dumps({
    "expressions": [{"field": "items", "operator": "eq", "value": 0}],
    "aggregations": {"group_by": ["status"], "functions": [
        {"type": "COUNT", "alias": "n"}, {"type": "SUM", "field": "total", "alias": "revenue"},
        {"type": "MIN", "field": "total", "alias": "smallest"},
        {"type": "MAX", "field": "total", "alias": "largest"}]}}).replace(
    '"value": 0', f'"value": {BODY_SLOT}')


def scenarios(rows: int) -> list[Scenario]:
    pages = max(1, min(LIST_PAGES, -(-rows // 25)))
    return [
        Scenario("GET by id", "/orders/{}", (1, rows)),
        Scenario("list page (25 rows)", "/orders?page_size=25&page={}", (1, pages)),
        Scenario("filtered list (status=)", "/orders?status={}&page_size=25", dataset.STATUSES),
        Scenario("filter+include+aggs (25)", "/customers/filter?page_size=25",
                 ("DE", "FR", "US", "GB", "JP"), "POST", INCLUDE_BODY),
        Scenario("grouped aggregation", "/orders/filter", (1, 9), "POST", GROUPED_BODY),
    ]


class Server:
    """A server subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], port: int, log_path: Path) -> None:
        self.name, self.port, self.log_path = name, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self._log: TextIO = log_path.open("w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, path: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout:.0f}s:\n"
                           f"{self.log()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server and every process under it (Linux)."""
        try:
            stats = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        text = (entry / "stat").read_text()
                    except OSError:
                        continue
                    fields = text.rsplit(")", 1)[1].split()
                    stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        except OSError:
            return None
        tree, total = {self.process.pid}, 0
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _) in stats.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        for pid in tree:
            total += stats.get(pid, (0, 0))[1]
        return total / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


def _fetch_json(url: str, body: str | None = None) -> Any:
    request = urllib.request.Request(url, data=None if body is None else body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@contextmanager
def _servers(options: BenchOptions, database: dataset.BenchDatabase,
             directory: Path) -> Iterator[tuple[Server, Server]]:
    config = directory / "swain.toml"
    config.write_text(to_toml({
        "connections": {"development": {"url": database.url, "pool_size": options.pool_size}},
        "auth": {"enabled": False},
        # a 10,000-row bulk body is about 1.5 MB, over the 1 MB default
        "api": {"max_body_size": MAX_BODY},
        "logging": {"access_log": False, "level": "warning"},
    }), encoding="utf-8")
    started: list[Server] = []
    try:
        swain_port = raw_port = free_port()
        while raw_port == swain_port:
            raw_port = free_port()
        started.append(Server("swain", [
            sys.executable, "-c", "from swain.core.cli import main; main()",
            "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(swain_port),
            "--workers", str(options.workers)], swain_port, directory / "swain.log"))
        started.append(Server("raw", [
            sys.executable, "-m", "swain.contrib.bench.raw", "--dsn", database.dsn,
            "--host", "127.0.0.1", "--port", str(raw_port), "--workers", str(options.workers),
            "--pool-size", str(options.pool_size), "--max-body", str(MAX_BODY)], raw_port,
            directory / "raw.log"))
        for server in started:
            server.wait_ready("/orders/1")
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def run(options: BenchOptions, progress: Callable[[str], None] = lambda _: None) -> Outcome:
    """Run every scenario against swain and the raw handler; the database is dropped after."""
    if options.load not in ("auto", "wrk", "python"):
        raise ValueError("load: expected auto, wrk or python")
    use_wrk = options.load == "wrk" or (options.load == "auto" and wrk_path() is not None)
    if options.load == "wrk" and wrk_path() is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk), or use --load python")
    if use_wrk:
        generator = "wrk"
    else:
        why = "chosen with --load python" if options.load == "python" else "wrk not found"
        generator = f"Python load generator ({why}; figures are lower bounds)"
    outcome = Outcome(options, generator)

    def drive(url: str, scenario: Scenario, seconds: float) -> Measurement:
        if use_wrk:
            return run_wrk(url, scenario, seconds, options.connections, options.threads)
        return run_python(url, scenario, seconds, options.connections)

    progress(f"creating a database with {options.rows:,} orders")
    database = dataset.create(options.postgres_url, options.rows)
    try:
        with tempfile.TemporaryDirectory(prefix="swain-bench-") as tmp, \
                _servers(options, database, Path(tmp)) as (swain, raw):
            progress(f"swain on {swain.url}, raw handler on {raw.url}")
            for path in ("/orders/1", "/orders?page_size=25&page=2",
                         f"/orders?status={dataset.STATUSES[1]}&page_size=25"):
                if _fetch_json(swain.url + path) != _fetch_json(raw.url + path):
                    outcome.mismatches.append(path)
            for scenario in scenarios(options.rows):
                if scenario.body is not None:
                    body = scenario.body.replace(BODY_SLOT, str(scenario.choices[0]))
                    if _fetch_json(swain.url + scenario.template, body) != \
                            _fetch_json(raw.url + scenario.template, body):
                        outcome.mismatches.append(f"POST {scenario.template}")
            for scenario in scenarios(options.rows):
                measured, cpu = {}, {}
                for server in (swain, raw):
                    progress(f"{scenario.name}: {server.name}")
                    if options.warmup > 0:
                        drive(server.url, scenario, options.warmup)
                    before = server.cpu_seconds()
                    measured[server.name] = drive(server.url, scenario, options.duration)
                    after = server.cpu_seconds()
                    requests = measured[server.name].requests
                    cpu[server.name] = (None if before is None or after is None or not requests
                                        else (after - before) / requests * 1e6)
                outcome.rows.append(Row(scenario, measured["swain"], measured["raw"],
                                        cpu["swain"], cpu["raw"]))
            # last: the inserted rows would change what the other scenarios read
            if options.bulk_repeats > 0:
                customers = max(1, options.rows // 10)
                timed = {}
                for server in (swain, raw):
                    progress(f"bulk insert of {options.bulk_rows:,} rows: {server.name}")
                    timed[server.name] = bulk.measure(server.url, options.bulk_rows, customers,
                                                      options.bulk_repeats)
                outcome.bulk = BulkRow(timed["swain"], timed["raw"])
    finally:
        database.drop()
    return outcome
