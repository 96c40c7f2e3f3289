"""``swain serve`` as a real subprocess, for tests of signals, workers and logs.

:class:`ServeProcess` runs the installed ``swain`` console script (the one
next to the running interpreter), waits until it says it is serving, keeps
its stderr in a file so tests can read the log lines, and sends signals.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from . import free_port

READY_MARK = "swain serving on "


class ServeProcess:
    """``swain serve --config … --stage … --workers N`` on a free loopback port."""

    def __init__(self, config_path: Path, stage: str = "development", workers: int = 1,
                 port: int | None = None, env: Mapping[str, str] | None = None,
                 python_path: Sequence[Path] = ()) -> None:
        self.config_path = config_path
        self.stage = stage
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        if python_path:
            self.env["PYTHONPATH"] = os.pathsep.join(
                [*map(str, python_path), *filter(None, [self.env.get("PYTHONPATH")])])
        handle, name = tempfile.mkstemp(prefix="swain-serve-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        self.process: subprocess.Popen[bytes] | None = None
        self._final_stderr: str | None = None

    @property
    def command(self) -> list[str]:
        swain = Path(sys.executable).with_name("swain")
        return [str(swain), "serve", "--config", str(self.config_path), "--stage", self.stage,
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, timeout: float = 30) -> ServeProcess:
        """Start and wait until every worker listens; raise with the log if it fails."""
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while READY_MARK not in self.stderr():
            if self.process.poll() is not None:
                raise RuntimeError(f"swain serve exited with {self.process.returncode}:\n"
                                   f"{self.stderr()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"swain serve did not start in {timeout}s:\n{self.stderr()}")
            time.sleep(0.05)
        return self

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None, "not started"
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for child in self.children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; kill if it does not exit in time."""
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            self.send(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def children(self) -> set[int]:
        """Pids of the server's direct child processes, as the OS (Linux /proc) lists them."""
        found: set[int] = set()
        tasks = Path(f"/proc/{self.pid}/task")
        if not tasks.exists():
            return found
        for task in tasks.iterdir():
            try:
                found.update(int(p) for p in (task / "children").read_text().split())
            except OSError:
                continue
        return found

    def worker_pids(self) -> set[int]:
        """The worker processes among :meth:`children` (not multiprocessing's helpers)."""
        found = set()
        for pid in self.children():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline:
                found.add(pid)
        return found

    def stderr(self) -> str:
        if self._final_stderr is not None:
            return self._final_stderr
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """Every stderr line that is a JSON object (the structured log)."""
        entries = []
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return entries

    def close(self) -> None:
        """Kill the server if it still runs and remove the log file (its text stays readable)."""
        self.kill()
        self._final_stderr = self.stderr()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``call`` (e.g. a slow request) in a thread; its result or exception
    lands in the returned dict under ``"response"``."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["response"] = call()
        except Exception as exc:  # reported by the test's assertion, not as a thread warning
            result["response"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` every 0.1 s until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def latencies_during(url: str, work: Sequence[Callable[[], Any]], interval: float = 0.01
                     ) -> list[float]:
    """Seconds each ``GET url`` took while every callable of ``work`` ran in a thread of
    its own (probing from before they start until they all end).  An exception in
    the work is re-raised once it has all ended."""
    import httpx

    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=120) as http:
            while not done.is_set():
                started = time.perf_counter()
                http.get(url).raise_for_status()
                latencies.append(time.perf_counter() - started)
                time.sleep(interval)

    prober = threading.Thread(target=probe)
    prober.start()
    runs = [in_background(call) for call in work]
    for thread, _ in runs:
        thread.join()
    done.set()
    prober.join()
    for _, outcome in runs:
        if isinstance(outcome.get("response"), BaseException):
            raise outcome["response"]
    return latencies


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` in MB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no resident memory reported for process {pid}")


def within(check: Callable[[], bool], seconds: float = 1.0) -> float:
    """Poll ``check`` every 20 ms until it holds and return how long that took; an
    ``AssertionError`` when it still does not after ``seconds`` (a promise such as
    "a revoked role is refused within a second")."""
    started = time.monotonic()
    while not check():
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"still not so after {elapsed:.2f}s"
        time.sleep(0.02)
    return time.monotonic() - started
