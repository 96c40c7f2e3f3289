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

import psycopg
import pytest
from aiohttp import web

from swain.contrib.bench import load
from swain.contrib.bench.run import DEFAULT_POSTGRES_URL
from swain.contrib.testing import LiveServer, selected_dialects

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
         "--warmup", "0", "--connections", "4", "--workers", "1", "--postgres-url", POSTGRES_URL],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "logging.access_log = false" in out
    assert re.search(r"load generator: (wrk|Python load generator)", out), out
    assert "warning" not in out, out
    header = next(line for line in out.splitlines() if line.startswith("scenario"))
    assert header.split() == ["scenario", "swain", "req/s", "p50", "ms", "p99", "ms", "raw",
                              "req/s", "p50", "ms", "p99", "ms", "swain/raw"]
    for name in ("GET by id", "list page (25 rows)", "filtered list (status=)"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        numbers = [float(n.replace(",", "")) for n in line[len(name):].split()]
        assert len(numbers) == 7, line
        swain_rps, raw_rps, ratio = numbers[0], numbers[3], numbers[6]
        assert swain_rps > 0 and raw_rps > 0, line
        assert ratio == pytest.approx(swain_rps / raw_rps, abs=0.02, rel=0.02), line
    assert _bench_databases() <= before


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


def test_scenario_paths_stay_in_range() -> None:
    rng = random.Random(7)
    by_id = load.Scenario("id", "/orders/{}", (3, 5))
    assert {by_id.path(rng) for _ in range(200)} == {"/orders/3", "/orders/4", "/orders/5"}
    named = load.Scenario("status", "/orders?status={}", ("a", "b"))
    assert {named.path(rng) for _ in range(100)} == {"/orders?status=a", "/orders?status=b"}
