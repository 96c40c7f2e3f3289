"""gunicorn serves swain through aiohttp's workers and ``swain.core.serve:app_factory``:
two worker processes answer reads and writes, and SIGTERM stops them cleanly
(each closes its pool)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swain.contrib.testing import FreshDatabase, free_port, write_config
from swain.contrib.testing.infra import wait_for_port
from swain.contrib.testing.process import within

DDL = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(50) NOT NULL)"
WORKERS = ("aiohttp.GunicornWebWorker", "aiohttp.GunicornUVLoopWebWorker")


@pytest.fixture(scope="module")
def project(database: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("gunicorn"), database.swain_url)


class Gunicorn:
    def __init__(self, app: str, worker: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"swain-gunicorn-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", app, "--worker-class", worker,
                 "--workers", "2", "--bind", f"127.0.0.1:{self.port}",
                 "--graceful-timeout", "20"],
                env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log)

    def workers(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(p) for p in children.read_text().split()} if children.exists() else set()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log.unlink(missing_ok=True)


@pytest.fixture
def gunicorn(request: pytest.FixtureRequest) -> Iterator[Any]:
    started: list[Gunicorn] = []

    def start(app: str, worker: str, env: dict[str, str] | None = None) -> Gunicorn:
        server = Gunicorn(app, worker, env)
        started.append(server)
        wait_for_port(server.port, server.process, log=server.log)
        return server

    yield start
    for server in started:
        server.close()


@pytest.mark.parametrize("worker", WORKERS)
def test_gunicorn_workers_serve_the_app_and_stop_cleanly(
        project: Path, database: FreshDatabase, worker: str, gunicorn: Any) -> None:
    server = gunicorn(f'swain.core.serve:app_factory("{project}", "development")', worker)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # a worker still loading its schema answers 503 to /ready: a readiness probe waits
        within(lambda: http.get("/ready").status_code == 200, seconds=60)
        assert http.get("/ready").json()["status"] == "ready"
        note = 1 + WORKERS.index(worker)
        created = http.post("/notes", json={"id": note, "body": f"via {worker}"})
        assert created.status_code == 201, created.text
        bodies = {http.get(f"/notes/{note}").json()["body"] for _ in range(4)}
        assert bodies == {f"via {worker}"}
        assert http.post("/notes", json={"id": "x"}).status_code == 422
    assert len(server.workers()) == 2
    assert server.stop() == 0
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log
    if database.dialect == "postgresql":  # every worker closed its pool on the way out
        assert database.query("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                              "current_database() AND pid <> pg_backend_pid()") == [(0,)]


def test_the_factory_reads_the_project_from_the_environment(
        project: Path, gunicorn: Any) -> None:
    server = gunicorn("swain.core.serve:app_factory()", WORKERS[0],
                      env={"SWAIN_CONFIG": str(project), "SWAIN_STAGE": "development"})
    with httpx.Client(base_url=server.url, timeout=30) as http:
        within(lambda: http.get("/ready").status_code == 200, seconds=60)
        assert http.get("/notes").status_code == 200
    assert server.stop() == 0


def test_a_broken_project_stops_gunicorn_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "swain.toml"
    bad.write_text('[api]\nmax_page_size = "lots"\n', encoding="utf-8")
    server = Gunicorn(f'swain.core.serve:app_factory("{bad}")', WORKERS[0])
    try:
        assert server.process.wait(60) != 0
        assert "api.max_page_size" in server.log.read_text(errors="replace")
    finally:
        server.close()
