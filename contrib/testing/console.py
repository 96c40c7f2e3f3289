"""``swain console`` as a real subprocess, for tests of the control plane.

:class:`ConsoleProcess` runs the installed ``swain`` console script with its
own data folder (key file, SQLite store, deployments), waits until it
listens, reads the one-time setup link it prints, and on :meth:`close` stops
every deployment it started and then itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from . import free_port

READY = "swain console on "
SETUP = re.compile(r"(http://\S+/setup\?token=\S+)")


class ConsoleProcess:
    def __init__(self, data_dir: Path, port: int | None = None, store: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = store
        self.env = {**os.environ, **(env or {})}
        handle, name = tempfile.mkstemp(prefix="swain-console-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def swain(self) -> str:
        return str(Path(sys.executable).with_name("swain"))

    def _args(self) -> list[str]:
        args = ["console", "--data-dir", str(self.data_dir)]
        if self.store:
            args += ["--store", self.store]
        return args

    def start(self, timeout: float = 60) -> ConsoleProcess:
        self.log_path.write_bytes(b"")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.swain, *self._args(), "--port", str(self.port)], env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while READY not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"swain console exited with {self.process.returncode}:\n"
                                   f"{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"swain console did not start in {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def setup_link(self) -> str | None:
        found = SETUP.findall(self.log())
        return found[-1] if found else None

    def stop(self, timeout: float = 30) -> None:
        """Stop the console itself (its deployments keep running)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def stop_deployments(self) -> None:
        subprocess.run([self.swain, *self._args(), "stop-all"], env=self.env,
                       capture_output=True, timeout=120, check=False)

    def close(self) -> None:
        self.stop_deployments()
        self.stop()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ConsoleProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
