"""The benchmark harness itself, at a tiny scale: it runs, measures and cleans up.

No timing is asserted (the figures depend on the machine); what is checked is
that every server served every scenario it has without errors, that swain and
the raw handler answered the same, and that the generated database is gone
afterwards.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psycopg
import pytest
from aiohttp import web

from swain.contrib.bench import bulk, dataset, load, raw
from swain.contrib.bench.run import DEFAULT_POSTGRES_URL, cases
from swain.contrib.testing import LiveServer, selected_dialects, to_toml
from swain.core import create_app, load_config

POSTGRES_URL = os.environ.get("SWAIN_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL).replace(
    "postgresql+psycopg://", "postgresql://")

needs_postgres = pytest.mark.skipif("postgresql" not in selected_dialects(),
                                    reason="the benchmark runs on PostgreSQL, not selected")


def _bench_databases() -> set[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'swain_bench_%'")
        return {r[0] for r in rows.fetchall()}


def _assert_dropped(progress: str) -> None:
    """The run's own database is gone (other runs may have theirs at the same time)."""
    made = re.search(r"database (swain_bench_\w+) \(dropped at the end\)", progress)
    assert made, progress
    assert made.group(1) not in _bench_databases()


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@needs_postgres
def test_quick_benchmark_gives_figures_for_every_server_and_scenario() -> None:
    """``--quick``: one short round per server and scenario; every server that could run
    (Platformatic DB only with npm, else a note says why) has a figure for every
    scenario it has, with the CPU per request and the ratios; nothing failed, swain
    and the raw handler returned the same rows, and the database is gone after."""
    result = subprocess.run(
        [sys.executable, "-m", "swain.contrib.bench", "--quick", "--postgres-url", POSTGRES_URL,
         "--connections", "8"],
        capture_output=True, text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "warning" not in out, out
    assert re.search(r"load: (wrk -t1 -c8 -d1s|Python load generator)", out), out
    platformatic = "Platformatic DB skipped" not in out
    table = [_cells(line) for line in out.splitlines() if line.startswith("| ")]
    head = table[0]
    assert head == ["1 process", "server", "req/s", "p50 ms", "p99 ms", "CPU µs/req",
                    "swain/raw", "swain/Platformatic"], out
    rows: dict[tuple[str, str], list[str]] = {}
    scenario = ""
    for cells in table[1:]:
        if cells[0] == "1 process: bulk insert":
            break
        scenario = cells[0] or scenario
        rows[(scenario, cells[1])] = cells[2:]
    expected = {"GET by PK": True, "page of 25, status=paid, no count": True,
                "page of 25, bounded count": False, "page of 25, exact count": True,
                "filter + include + per-parent aggregation (25)": False,
                "grouped aggregation": False}
    for name, with_platformatic in expected.items():
        servers = ["swain", "raw handler"] + (["Platformatic DB"]
                                              if with_platformatic and platformatic else [])
        assert {s for (n, s) in rows if n == name} == set(servers), (name, out)
        figures = {server: rows[(name, server)] for server in servers}
        for server, cells in figures.items():
            rps, p50, p99, cpu = (float(c.replace(",", "")) for c in cells[:4])
            assert rps > 0 and 0 < p50 <= p99 and cpu > 0, (name, server, cells)
        swain_rps = float(figures["swain"][0].replace(",", ""))
        raw_rps = float(figures["raw handler"][0].replace(",", ""))
        assert float(figures["swain"][4]) == pytest.approx(swain_rps / raw_rps, abs=0.01)
        if "Platformatic DB" in figures:
            peer = float(figures["Platformatic DB"][0].replace(",", ""))
            assert float(figures["swain"][5]) == pytest.approx(swain_rps / peer, abs=0.01)
        else:
            assert figures["swain"][5] == "n/a"
    bulk_rows = {cells[1]: cells for cells in table if cells[0] == "1,000 rows"}
    assert set(bulk_rows) == {"swain", "raw handler (COPY)"}, out
    for cells in bulk_rows.values():
        assert float(cells[2].replace(",", "")) > 0 and float(cells[3]) > 0, cells
    assert float(bulk_rows["swain"][4]) == pytest.approx(
        float(bulk_rows["swain"][2].replace(",", ""))
        / float(bulk_rows["raw handler (COPY)"][2].replace(",", "")), abs=0.01)
    memory = [cells for cells in table if cells[0] in ("1 process: memory",
                                                       "RSS of the largest process, MB")]
    assert [cells[0] for cells in memory] == ["1 process: memory",
                                              "RSS of the largest process, MB"], out
    assert memory[0][1:] == ["swain", "raw handler"] + (["Platformatic DB"] if platformatic
                                                        else []), out
    assert all(10 < float(mb) < 2000 for mb in memory[1][1:]), out  # a process's megabytes
    _assert_dropped(result.stderr)


@needs_postgres
def test_raw_handler_answers_like_swain() -> None:
    """The raw handler's hand-written SQL gives swain's answers, rows included, so the
    two do the same work (the harness checks the first choice of each scenario too)."""
    database = dataset.create_reference(POSTGRES_URL)
    try:
        config = {"connections": {"development": {"url": database.url}},
                  "auth": {"enabled": False}, "logging": {"access_log": False}}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "swain.toml"
            path.write_text(to_toml(config), encoding="utf-8")
            with LiveServer(create_app(*load_config(path))) as swain, \
                    LiveServer(raw.create_app(database.dsn, 2)) as baseline:
                for case in cases():
                    ours, theirs = case.requests["swain"], case.requests["raw"]
                    choices = ours.choices if isinstance(ours.choices[0], str) else (100, 7, 999)
                    for choice in choices[:3]:
                        answers = []
                        for base, scenario in ((swain, ours), (baseline, theirs)):
                            if scenario.body is None:
                                answers.append(httpx.get(base.url + scenario.template.format(
                                    choice)))
                            else:
                                answers.append(httpx.post(
                                    base.url + scenario.template,
                                    content=scenario.body.replace(load.BODY_SLOT, str(choice)),
                                    headers={"Content-Type": "application/json"}))
                        assert [a.status_code for a in answers] == [200, 200], answers[0].text
                        mine, other = (a.json() for a in answers)
                        assert mine == other, case.name
                        if "include" in case.name:
                            assert any(u["orders"] for u in mine["data"])
                            assert any(not u["orders"] for u in mine["data"])
                            assert all(u["aggregations"]["n"] == len(u["orders"])
                                       for u in mine["data"])
                rows = bulk.batch(25, 20, seed=3)
                answers = [httpx.post(base.url + "/orders/bulk", json=rows)
                           for base in (swain, baseline)]
                assert [a.status_code for a in answers] == [200, 200], answers[0].text
                stored = []
                for answer in answers:
                    body = answer.json()
                    assert body["failed"] == [] and len(body["succeeded"]) == len(rows)
                    assert [item["id"] for item in body["succeeded"]] == \
                        [item["data"]["id"] for item in body["succeeded"]]
                    stored.append([{k: v for k, v in item["data"].items() if k != "id"}
                                   for item in body["succeeded"]])
                assert stored[0] == stored[1]
                assert [{k: v for k, v in row.items() if k != "created_at"} for row in stored[0]] \
                    == [{k: v for k, v in row.items() if k != "created_at"} for row in rows]
    finally:
        database.drop()


def test_python_load_generator_counts_requests_and_errors() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        number = int(request.match_info["n"])
        return web.Response(text="ok", status=200 if number <= 8 else 404)

    app = web.Application()
    app.router.add_get("/items/{n}", handler)
    with LiveServer(app) as server:
        scenario = load.Scenario("items", "/items/{}", (1, 10))
        measured = load.run_python(server.url, scenario, duration=1, connections=2)
    assert measured.requests == len(seen) > 0
    # ids 9 and 10 answer 404: about a fifth of the requests are errors
    failed = sum(1 for path in seen if int(path.rsplit("/", 1)[1]) > 8)
    assert measured.errors == failed > 0
    assert {int(path.rsplit("/", 1)[1]) for path in seen} <= set(range(1, 11))
    assert 0 < measured.p50_ms <= measured.p99_ms
    assert measured.rps == pytest.approx(measured.requests / measured.seconds)


def test_python_load_generator_sends_post_bodies() -> None:
    bodies: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/things/filter", handler)
    with LiveServer(app) as server:
        scenario = load.Scenario("post", "/things/filter", ("x", "y"), "POST",
                                 '{"value": "' + load.BODY_SLOT + '"}')
        measured = load.run_python(server.url, scenario, duration=1, connections=2)
    assert measured.requests == len(bodies) > 0 and measured.errors == 0
    assert {b["value"] for b in bodies} <= {"x", "y"}  # type: ignore[index]


def test_scenario_paths_stay_in_range() -> None:
    rng = random.Random(7)
    by_id = load.Scenario("id", "/orders/{}", (3, 5))
    assert {by_id.path(rng) for _ in range(200)} == {"/orders/3", "/orders/4", "/orders/5"}
    named = load.Scenario("status", "/orders?status={}", ("a", "b"))
    assert {named.path(rng) for _ in range(100)} == {"/orders?status=a", "/orders?status=b"}


def test_fault_figures_print_and_lose_no_acknowledged_write() -> None:
    dialect = "postgresql" if "postgresql" in selected_dialects() else selected_dialects()[0]
    result = subprocess.run(
        [sys.executable, "-m", "swain.contrib.bench.faults", "--dialect", dialect,
         "--shapes", "5", "--heavy", "1", "--outage", "1.5", "--query-timeout", "1",
         "--tries", "4"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith(f"swain fault figures on {dialect}"), out
    assert re.search(r"memory soak +5 shapes .* RSS [\d.]+ -> [\d.]+ MB", out), out
    assert re.search(r"/health during 2 x 1 heavy filters: p50 [\d.]+ ms", out), out
    assert re.search(r"password reset +4 tries each, trimmed mean: known address [\d.]+ ms",
                     out), out
    if dialect != "sqlite":
        for kind in ("silent", "refused"):
            line = next(line for line in out.splitlines() if line.startswith(kind))
            assert "recovered never" not in line, line
            assert re.search(r"\d+ writes acknowledged, 0 lost", line), line


@needs_postgres
def test_capacity_figures_of_one_instance() -> None:
    """``python -m swain.contrib.bench.scale``: every request kind served without an
    error, each GET by id or create one database transaction (counted exactly), the
    instance's connections and nginx's share; the database dropped afterwards."""
    result = subprocess.run(
        [sys.executable, "-m", "swain.contrib.bench.scale", "--rows", "500", "--duration", "1",
         "--warmup", "0", "--connections", "4", "--postgres-url", POSTGRES_URL, "--count", "30",
         "--only", "GET by id", "--only", "create (POST)", "--only", "login (argon2id)"],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "warning" not in out, out
    rows = {line.split("  ")[0]: line for line in out.splitlines()
            if line.startswith(("GET by id", "create (POST)", "login (argon2id)"))}
    assert set(rows) == {"GET by id", "create (POST)", "login (argon2id)"}, out
    for name in ("GET by id", "create (POST)"):
        cells = rows[name][len(name):].split()
        assert float(cells[0].replace(",", "")) > 0  # req/s
        # one transaction per request (two would be 2.0); the pool's own checks and the
        # invalidation listener add a little over a one-second run on a busy machine
        assert 0.9 <= float(cells[5]) < 1.5, rows[name]
    # a login reads the user and writes a session: at least two
    assert float(rows["login (argon2id)"][len("login (argon2id)"):].split()[5]) >= 2
    held = re.search(r"connections held by the instance: (\d+) \(pool 10 \+ the invalidation", out)
    assert held and 2 <= int(held.group(1)) <= 11, out  # a pool of 10 at most, and the listener
    assert re.search(r"through nginx: GET by id [\d,]+ req/s", out), out
    _assert_dropped(result.stderr)
