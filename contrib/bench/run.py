"""One benchmark run: the database, the three servers, every scenario, the tables.

swain is started as an operator starts it (``swain serve --workers N`` from a
``swain.toml``, ``logging.access_log = false`` since the others write no log),
next to the raw handler (:mod:`.raw`) and Platformatic DB (:mod:`.platformatic`),
each with N processes.  Per scenario the servers take turns, A B C A B C, for
``rounds`` rounds after one warm-up each, so a machine that gets busier or
quieter during the run weighs on all of them alike.  Every figure is the median
over the rounds; the CPU time per request is what the server's processes
(read from ``/proc``) spent over all rounds divided by the requests served.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import psycopg

from swain.contrib.testing import free_port, to_toml

from . import bulk, dataset, platformatic
from .load import BODY_SLOT, Measurement, Scenario, run_python, run_wrk, wrk_path

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: request body limit for swain, room for the bulk scenario's batches
MAX_BODY = 64 * 1024 * 1024
SERVERS = ("swain", "raw", "platformatic")
LABELS = {"swain": "swain", "raw": "raw handler", "platformatic": "Platformatic DB"}
#: how swain is asked for a bounded count (exact up to a limit, else the estimate;
#: swain's default)
BOUNDED = "bounded"


@dataclass
class BenchOptions:
    duration: float = 10.0
    warmup: float = 2.0
    rounds: int = 3
    connections: int = 32
    threads: int = 1
    #: server processes: each figure is measured with each of these
    processes: tuple[int, ...] = (1, 2)
    pool_size: int = 8
    postgres_url: str = DEFAULT_POSTGRES_URL
    #: ``auto`` (wrk when installed, else Python), ``wrk`` or ``python``
    load: str = "auto"
    platformatic: bool = True
    bulk_rows: int = bulk.BATCH_ROWS


@dataclass(frozen=True)
class Case:
    """A scenario: the request each server gets (a server without one has no such
    feature and is left out)."""

    name: str
    requests: Mapping[str, Scenario]


@dataclass
class Figures:
    """One server's rounds of one scenario."""

    rounds: list[Measurement] = field(default_factory=list)
    cpu_seconds: float | None = 0.0

    def _median(self, value: Callable[[Measurement], float]) -> float:
        return statistics.median(value(m) for m in self.rounds) if self.rounds else 0.0

    @property
    def rps(self) -> float:
        return self._median(lambda m: m.rps)

    @property
    def p50_ms(self) -> float:
        return self._median(lambda m: m.p50_ms)

    @property
    def p99_ms(self) -> float:
        return self._median(lambda m: m.p99_ms)

    @property
    def errors(self) -> int:
        return sum(m.errors for m in self.rounds)

    @property
    def cpu_us(self) -> float | None:
        requests = sum(m.requests for m in self.rounds)
        if self.cpu_seconds is None or not requests:
            return None
        return self.cpu_seconds / requests * 1e6


@dataclass
class Outcome:
    options: BenchOptions
    load_generator: str
    #: (processes, scenario name) -> server -> figures
    figures: dict[tuple[int, str], dict[str, Figures]] = field(default_factory=dict)
    #: processes -> server -> bulk timings
    bulk: dict[int, dict[str, bulk.BulkMeasurement]] = field(default_factory=dict)
    #: why a server or scenario was left out
    notes: list[str] = field(default_factory=list)
    #: scenarios on which swain and the raw handler answered differently
    mismatches: list[str] = field(default_factory=list)
    #: processes -> server -> resident MB of its largest process after the request
    #: scenarios (before the bulk insert)
    rss: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(f.errors for by in self.figures.values() for f in by.values()) + \
            sum(m.errors for by in self.bulk.values() for m in by.values())

    def markdown(self) -> str:
        """Every figure as the README's tables."""
        out = []
        for processes in self.options.processes:
            word = "process" if processes == 1 else "processes"
            out.append(f"| {processes} {word} | server | req/s | p50 ms | p99 ms | "
                       "CPU µs/req | swain/raw | swain/Platformatic |")
            out.append("|---|---|---:|---:|---:|---:|---:|---:|")
            for (n, name), by in self.figures.items():
                if n != processes:
                    continue
                first = True
                for server in SERVERS:
                    if server not in by:
                        continue
                    f = by[server]
                    cpu = "" if f.cpu_us is None else f"{f.cpu_us:,.0f}"
                    ratios = ["", ""]
                    if server == "swain":
                        ratios = [_ratio(f.rps, by[peer].rps) if peer in by else "n/a"
                                  for peer in ("raw", "platformatic")]
                    out.append(f"| {name if first else ''} | {LABELS[server]} | {f.rps:,.0f} | "
                               f"{f.p50_ms:.2f} | {f.p99_ms:.2f} | {cpu} | "
                               f"{' | '.join(ratios)} |")
                    first = False
            timings = self.bulk.get(processes)
            if timings:
                out.append("")
                out.append(f"| {processes} {word}: bulk insert | server | rows/s | s/batch | "
                           "swain/raw |")
                out.append("|---|---|---:|---:|---:|")
                swain, raw = timings.get("swain"), timings.get("raw")
                for server, m in timings.items():
                    label = LABELS[server] + (" (COPY)" if server == "raw" else "")
                    ratio = _ratio(m.rows_per_second, raw.rows_per_second) \
                        if server == "swain" and swain and raw else ""
                    out.append(f"| {m.rows:,} rows | {label} | {m.rows_per_second:,.0f} | "
                               f"{m.seconds_per_batch:.3f} | {ratio} |")
            memory = self.rss.get(processes)
            if memory:
                out.append("")
                out.append(f"| {processes} {word}: memory | " + " | ".join(
                    LABELS[server] for server in memory) + " |")
                out.append("|---|" + "---:|" * len(memory))
                out.append("| RSS of the largest process, MB | " + " | ".join(
                    f"{mb:.1f}" for mb in memory.values()) + " |")
            out.append("")
        return "\n".join(out).rstrip() + "\n"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "n/a"


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


# -- scenarios ---------------------------------------------------------------------

#: users of one country, with their orders that are not cancelled and per user the
#: count and sum of those orders
INCLUDE_BODY = json.dumps({"expressions": [
    {"field": "country", "operator": "eq", "value": BODY_SLOT},
    {"relationship": "orders", "scope": "filterRelated", "include": True,
     "expressions": [{"field": "status", "operator": "ne", "value": "cancelled"}],
     "fields": ["id", "status", "amount"], "sort": [{"field": "id"}],
     "aggregations": {"functions": [{"type": "COUNT", "alias": "n"},
                                    {"type": "SUM", "field": "amount", "alias": "revenue"}]}}],
    "sort": [{"field": "id"}]})
#: the orders of the first N users (the slot, unquoted: a number), grouped by status
GROUPED_BODY = json.dumps({
    "expressions": [{"field": "user_id", "operator": "lte", "value": 0}],
    "aggregations": {"group_by": ["status"], "functions": [
        {"type": "COUNT", "alias": "n"}, {"type": "SUM", "field": "amount", "alias": "revenue"},
        {"type": "MIN", "field": "amount", "alias": "smallest"},
        {"type": "MAX", "field": "amount", "alias": "largest"}]}}).replace(
    '"value": 0', f'"value": {BODY_SLOT}')
COUNTRIES = ("US", "DE", "FR", "JP", "BR")


def cases() -> list[Case]:
    """The scenarios."""
    users = (1, dataset.REFERENCE_USERS)
    page = "/orders?status={}&page_size=25&count="
    paid = ("paid",)

    def get(template: str, choices: Any) -> Scenario:
        return Scenario("", template, choices)

    found = [
        Case("GET by PK", {"swain": get("/users/{}", users), "raw": get("/users/{}", users),
                           "platformatic": get("/users/{}", users)}),
        Case("page of 25, status=paid, no count", {
            "swain": get(page + "none", paid), "raw": get(page + "none", paid),
            "platformatic": get("/orders?where.status.eq={}&limit=25&orderby.id=asc", paid)}),
    ]
    found += [
        Case("page of 25, bounded count", {
            "swain": get(page + BOUNDED, paid), "raw": get(page + BOUNDED, paid)}),
        Case("page of 25, exact count", {
            "swain": get(page + "exact", paid), "raw": get(page + "exact", paid),
            "platformatic": get("/orders?where.status.eq={}&limit=25&orderby.id=asc"
                                "&totalCount=true", paid)}),
        Case("filter + include + per-parent aggregation (25)", {
            server: Scenario("", "/users/filter?page_size=25&count=none", COUNTRIES, "POST",
                             INCLUDE_BODY) for server in ("swain", "raw")}),
        Case("grouped aggregation", {
            server: Scenario("", "/orders/filter?count=none", (100, 1000), "POST", GROUPED_BODY)
            for server in ("swain", "raw")}),
    ]
    return found


# -- servers -----------------------------------------------------------------------


class Server:
    """A server subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], port: int, log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name, self.port, self.log_path = name, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self._log: TextIO = log_path.open("w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        env=None if env is None else dict(env), cwd=cwd)

    def wait_ready(self, path: str, timeout: float = 120) -> None:
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

    def _processes(self) -> dict[int, tuple[int, int]] | None:
        """``pid -> (CPU clock ticks, resident pages)`` of the server and every process
        under it (Linux), or ``None`` without ``/proc``."""
        try:
            stats = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        text = (entry / "stat").read_text()
                    except OSError:
                        continue
                    fields = text.rsplit(")", 1)[1].split()  # from the 3rd field, state
                    stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]),
                                              int(fields[21]))
        except OSError:
            return None
        tree = {self.process.pid}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _, _) in stats.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        return {pid: stats[pid][1:] for pid in tree if pid in stats}

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server and every process under it."""
        found = self._processes()
        if found is None:
            return None
        return sum(ticks for ticks, _ in found.values()) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float | None:
        """The resident memory of the server's largest process, in MB."""
        found = self._processes()
        if not found:
            return None
        return max(pages for _, pages in found.values()) * os.sysconf("SC_PAGE_SIZE") / 1e6

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


def _swain(options: BenchOptions, database: dataset.BenchDatabase, folder: Path,
           processes: int) -> Server:
    config = folder / "swain.toml"
    config.write_text(to_toml({
        "connections": {"development": {"url": database.url, "pool_size": options.pool_size}},
        "auth": {"enabled": False},
        # a 10,000-row bulk body is about 1 MB, the default limit
        "api": {"max_body_size": MAX_BODY},
        "logging": {"access_log": False, "level": "warning"},
    }), encoding="utf-8")
    port = free_port()
    return Server("swain", [sys.executable, "-c", "from swain.core.cli import main; main()",
                            "--config", str(config), "serve", "--host", "127.0.0.1", "--port",
                            str(port), "--workers", str(processes)], port, folder / "swain.log")


def _raw(options: BenchOptions, database: dataset.BenchDatabase, folder: Path,
         processes: int) -> Server:
    port = free_port()
    return Server("raw", [sys.executable, "-m", "swain.contrib.bench.raw", "--dsn", database.dsn,
                          "--port", str(port), "--workers", str(processes), "--pool-size",
                          str(options.pool_size)], port, folder / "raw.log")


def _platformatic(peer: platformatic.Platformatic, database: dataset.BenchDatabase,
                  folder: Path, processes: int) -> Server:
    port = free_port()
    return Server("platformatic", peer.command(), port, folder / "platformatic.log",
                  env=peer.environment(database.url, port, processes), cwd=peer.folder)


@contextmanager
def _started(servers: Sequence[Callable[[], Server]]) -> Iterator[dict[str, Server]]:
    with ExitStack() as stack:
        running: dict[str, Server] = {}
        for start in servers:
            server = start()
            stack.callback(server.stop)
            running[server.name] = server
        for server in running.values():
            server.wait_ready("/users/1")
        yield running


def _fetch(url: str, body: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=None if body is None else body.encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _compare(outcome: Outcome, running: Mapping[str, Server], found: Sequence[Case]) -> None:
    """swain and the raw handler must return the same rows, else the race is unfair."""
    for case in found:
        ours, theirs = case.requests["swain"], case.requests["raw"]
        choice = str(ours.choices[0])
        answers = []
        for server, scenario in (("swain", ours), ("raw", theirs)):
            path, body = scenario.template, None
            if scenario.body is not None:
                body = scenario.body.replace(BODY_SLOT, choice)
            else:
                path = path.format(choice)
            status, answer = _fetch(running[server].url + path, body)
            answers.append((status, answer.get("data", answer) if isinstance(answer, dict)
                            and "page_size" in answer else answer))
        if answers[0] != answers[1]:
            outcome.mismatches.append(case.name)


def run(options: BenchOptions, progress: Callable[[str], None] = lambda _: None) -> Outcome:
    """Every scenario against every server that can run it; the database is dropped after."""
    if options.load not in ("auto", "wrk", "python"):
        raise ValueError("load: expected auto, wrk or python")
    if options.rounds < 1:
        raise ValueError("rounds: at least 1")
    use_wrk = options.load == "wrk" or (options.load == "auto" and wrk_path() is not None)
    if options.load == "wrk" and wrk_path() is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk), or use --load python")
    if use_wrk:
        generator = f"wrk -t{options.threads} -c{options.connections} -d{options.duration:g}s"
    else:
        why = "chosen with --load python" if options.load == "python" else \
            "wrk not found: apt-get install -y wrk"
        generator = f"Python load generator, {options.connections} connections ({why}; " \
                    "figures are lower bounds)"
    outcome = Outcome(options, generator)

    def drive(url: str, scenario: Scenario, seconds: float) -> Measurement:
        if use_wrk:
            return run_wrk(url, scenario, seconds, options.connections, options.threads)
        return run_python(url, scenario, seconds, options.connections)

    peer: platformatic.Platformatic | None = None
    if options.platformatic:
        progress("installing or finding Platformatic DB and Node 22")
        prepared = platformatic.prepare()
        if isinstance(prepared, str):
            outcome.notes.append(prepared)
            progress(prepared)
        else:
            peer = prepared
    else:
        outcome.notes.append("Platformatic DB skipped: --no-platformatic")
    progress("creating the reference database (10,000 users, 100,000 orders)")
    database = dataset.create_reference(options.postgres_url)
    progress(f"database {database.name} (dropped at the end)")
    try:
        with tempfile.TemporaryDirectory(prefix="swain-bench-") as tmp:
            folder = Path(tmp)
            found: list[Case] = []
            for processes in options.processes:
                starters: list[Callable[[], Server]] = [
                    partial(_swain, options, database, folder, processes),
                    partial(_raw, options, database, folder, processes)]
                if peer is not None:
                    starters.append(partial(_platformatic, peer, database, folder, processes))
                progress(f"starting {len(starters)} servers with {processes} process(es) each")
                with _started(starters) as running:
                    if not found:
                        found = cases()
                        _compare(outcome, running, found)
                    for case in found:
                        _measure(case, processes, running, options, outcome, drive, progress)
                    outcome.rss[processes] = {
                        name: mb for name, server in running.items()
                        if (mb := server.rss_mb()) is not None}
                    if options.bulk_rows > 0:
                        _bulk(processes, running, options, outcome, database, progress)
    finally:
        database.drop()
    return outcome


def _measure(case: Case, processes: int, running: Mapping[str, Server], options: BenchOptions,
             outcome: Outcome, drive: Callable[[str, Scenario, float], Measurement],
             progress: Callable[[str], None]) -> None:
    servers = [name for name in SERVERS if name in running and name in case.requests]
    by = outcome.figures.setdefault((processes, case.name), {n: Figures() for n in servers})
    for name in servers:
        if options.warmup > 0:
            drive(running[name].url, case.requests[name], options.warmup)
    for round_ in range(options.rounds):
        for name in servers:
            progress(f"{processes}p {case.name}: {name}, round {round_ + 1}/{options.rounds}")
            server, figures = running[name], by[name]
            before = server.cpu_seconds()
            figures.rounds.append(drive(server.url, case.requests[name], options.duration))
            after = server.cpu_seconds()
            if before is None or after is None or figures.cpu_seconds is None:
                figures.cpu_seconds = None
            else:
                figures.cpu_seconds += after - before


def _bulk(processes: int, running: Mapping[str, Server], options: BenchOptions, outcome: Outcome,
          database: dataset.BenchDatabase, progress: Callable[[str], None]) -> None:
    """Each round, one batch per server, swain and raw taking turns; then the inserted
    rows are deleted, so later figures read the same data."""
    timings = {name: bulk.BulkMeasurement(options.bulk_rows) for name in ("swain", "raw")}
    warm = bulk.BulkMeasurement(min(options.bulk_rows, 1000))
    for name in timings:
        bulk.post(running[name].url, bulk.batch(warm.rows, dataset.REFERENCE_USERS, 0), warm)
    for round_ in range(options.rounds):
        for name, into in timings.items():
            progress(f"{processes}p bulk insert of {options.bulk_rows:,} rows: {name}, "
                     f"round {round_ + 1}/{options.rounds}")
            bulk.post(running[name].url,
                      bulk.batch(options.bulk_rows, dataset.REFERENCE_USERS, round_ + 1), into)
    outcome.bulk[processes] = timings
    timings["swain"].errors += warm.errors
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM orders WHERE id > %s", (dataset.REFERENCE_ORDERS,))
        conn.execute("VACUUM ANALYZE orders")
