"""The benchmark harness itself, at a tiny scale: it runs, measures and cleans up.

No timing is asserted (the figures depend on the machine); what is checked is
that both servers served every scenario without errors, answered the same,
and that the generated database is gone afterwards.
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
from swain.contrib.bench.run import DEFAULT_POSTGRES_URL, scenarios
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


@needs_postgres
def test_benchmark_prints_its_table_and_drops_the_database() -> None:
    before = _bench_databases()
    result = subprocess.run(
        [sys.executable, "-m", "swain.contrib.bench", "--rows", "1000", "--duration", "1",
         "--warmup", "0", "--connections", "4", "--workers", "1", "--postgres-url", POSTGRES_URL,
         "--bulk-rows", "300", "--bulk-repeats", "2"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "logging.access_log = false" in out
    assert re.search(r"load generator: (wrk|Python load generator)", out), out
    assert "warning" not in out, out
    header = next(line for line in out.splitlines() if line.startswith("scenario"))
    assert header.split() == ["scenario", "swain", "req/s", "p50", "ms", "p99", "ms", "raw",
                              "req/s", "p50", "ms", "p99", "ms", "swain/raw"]
    for name in ("GET by id", "list page (25 rows)", "filtered list (status=)",
                 "filter+include+aggs (25)", "grouped aggregation"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        numbers = [float(n.replace(",", "")) for n in line[len(name):].split()]
        assert len(numbers) == 7, line
        swain_rps, raw_rps, ratio = numbers[0], numbers[3], numbers[6]
        assert swain_rps > 0 and raw_rps > 0, line
        assert ratio == pytest.approx(swain_rps / raw_rps, abs=0.02, rel=0.02), line
    bulk_head = next(line for line in out.splitlines()
                     if line.startswith("scenario") and "rows/s" in line)
    assert bulk_head.split() == ["scenario", "swain", "rows/s", "s/batch", "raw", "rows/s",
                                 "s/batch", "swain/raw"]
    name = "bulk insert (300 rows x 2)"
    line = next(line for line in out.splitlines() if line.startswith(name))
    numbers = [float(n.replace(",", "")) for n in line[len(name):].split()]
    assert len(numbers) == 5, line
    swain_rows, swain_batch, raw_rows, raw_batch, ratio = numbers
    assert swain_rows > 0 and raw_rows > 0 and swain_batch > 0 and raw_batch > 0, line
    assert ratio == pytest.approx(swain_rows / raw_rows, abs=0.02, rel=0.02), line
    assert _bench_databases() <= before


@needs_postgres
def test_raw_handler_answers_the_post_scenarios_like_swain() -> None:
    """The baseline's hand-written SQL gives swain's answers, rows included, so the two
    do the same work (the harness checks this too, but only as a warning)."""
    database = dataset.create(POSTGRES_URL, 200)
    try:
        config = {"connections": {"development": {"url": database.url}},
                  "auth": {"enabled": False}, "logging": {"access_log": False}}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "swain.toml"
            path.write_text(to_toml(config), encoding="utf-8")
            with LiveServer(create_app(*load_config(path))) as swain, \
                    LiveServer(raw.create_app(database.dsn, 2)) as baseline:
                for scenario in scenarios(database.rows):
                    if scenario.body is None:
                        continue
                    for choice in ("DE", "JP") if "customers" in scenario.template else (1, 4):
                        body = scenario.body.replace(load.BODY_SLOT, str(choice))
                        answers = [httpx.post(base.url + scenario.template, content=body,
                                              headers={"Content-Type": "application/json"})
                                   for base in (swain, baseline)]
                        assert [a.status_code for a in answers] == [200, 200], answers[0].text
                        ours, theirs = (a.json() for a in answers)
                        assert ours == theirs
                        assert ours["data"] and ours["total"] > 0
                        if "customers" in scenario.template:
                            assert any(c["orders"] for c in ours["data"])
                            assert all(c["aggregations"]["n"] == len(c["orders"])
                                       for c in ours["data"])
                rows = bulk.batch(25, 20, seed=3)
                answers = [httpx.post(base.url + "/orders/bulk", json=rows)
                           for base in (swain, baseline)]
                assert [a.status_code for a in answers] == [200, 200], answers[0].text
                for answer in answers:
                    body = answer.json()
                    assert body["failed"] == [] and len(body["succeeded"]) == len(rows)
                    stored = [{k: v for k, v in item["data"].items() if k not in ("id",
                                                                                   "created_at")}
                              for item in body["succeeded"]]
                    assert stored == [{k: v for k, v in row.items() if k != "created_at"}
                                      for row in rows]
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
        assert 0.9 <= float(cells[5]) <= 1.2, rows[name]  # one transaction per request
    # a login reads the user and writes a session: at least two
    assert float(rows["login (argon2id)"][len("login (argon2id)"):].split()[5]) >= 2
    held = re.search(r"connections held by the instance: (\d+) \(pool 10 \+ the invalidation", out)
    assert held and 2 <= int(held.group(1)) <= 11, out  # a pool of 10 at most, and the listener
    assert re.search(r"through nginx: GET by id [\d,]+ req/s", out), out
    made = re.search(r"database (swain_bench_\w+) \(dropped at the end\)", result.stderr)
    assert made, result.stderr
    assert made.group(1) not in _bench_databases()  # (other runs may have their own)
