"""Deployments: a stage of a project served by a real ``swain serve`` process.

The process runs the project's exported ``swain.toml`` (the very file
``swain console`` lets you download), with its secrets handed over in the
environment variables the file names, never written to disk.  It runs in its
own session, so it outlives the console: when the console starts again it
adopts the processes still running and starts again those that should run
but do not.

A (re)deploy first starts the new configuration on a spare port and waits
until ``/ready`` answers; only then is the previous process replaced.  A
configuration that does not come up is reported with the lines its log ends
with, and the previous deployment keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .crypto import Vault
from .settings import FieldError
from .store import Deployment, Store, now

log = logging.getLogger("swain.console")
READY_TIMEOUT = 45.0
#: seconds after which a 503 from /ready (database unreachable) counts as a failure
UNREACHABLE = 8.0
STOP_TIMEOUT = 15.0
LOG_LINES = 40
SERVE = "from swain.core.cli import main; main()"


@dataclass(frozen=True)
class Plan:
    """What to run: the stage, the file's text and the secrets it reads."""

    stage: str
    toml: str
    env: dict[str, str]


@dataclass
class Status:
    running: bool
    health: str
    ready: str
    log: list[str]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = LOG_LINES) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return text.splitlines()[-lines:]


class Deployer:
    """Starts, replaces, stops and adopts the deployments' processes."""

    def __init__(self, store: Store, vault: Vault, data_dir: Path) -> None:
        self.store = store
        self.vault = vault
        self.root = data_dir / "deployments"
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def _lock(self, connection_id: int) -> asyncio.Lock:
        return self._locks.setdefault(connection_id, asyncio.Lock())

    def folder(self, connection_id: int) -> Path:
        return self.root / str(connection_id)

    def log_path(self, connection_id: int) -> Path:
        return self.folder(connection_id) / "serve.log"

    def _config_path(self, connection_id: int, generation: int) -> Path:
        return self.folder(connection_id) / f"g{generation}" / "swain.toml"

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, config: Path, stage: str, host: str, port: int, env: dict[str, str],
               log_file: Path) -> subprocess.Popen[bytes]:
        # The child gets the console's environment without any SWAIN_* variable,
        # so nothing but the project's own file and secrets configures it.
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SWAIN_")}
        child_env.update(env)
        child_env["PYTHONUNBUFFERED"] = "1"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} swain serve --stage {stage} "
                      f"on {host}:{port}\n".encode())
            out.flush()
            process = subprocess.Popen(
                [sys.executable, "-c", SERVE, "serve", "--config", str(config), "--stage", stage,
                 "--host", host, "--port", str(port), "--workers", "1"],
                cwd=config.parent, env=child_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        return process

    async def _wait_ready(self, process: subprocess.Popen[bytes], host: str, port: int,
                          log_file: Path, timeout: float = READY_TIMEOUT) -> str | None:
        """``None`` once ``/ready`` answers 200; else why the process did not come up."""
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/ready"
        started = time.monotonic()
        last = "it did not answer"
        # /ready itself waits up to the connection's connect timeout for the database.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            while time.monotonic() - started < timeout:
                if process.poll() is not None:
                    await asyncio.sleep(0.1)
                    return "swain serve exited: " + _reason(tail(log_file, 12))
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(url) as response:
                        if response.status == 200:
                            return None
                        body = await response.text()
                        with contextlib.suppress(ValueError, KeyError, TypeError):
                            body = json.loads(body)["error"]["message"]
                        last = f"/ready answered {response.status}: {body}"[:300]
                        if response.status == 503 and time.monotonic() - started > UNREACHABLE:
                            return f"the API started but {body}; " + _reason(tail(log_file, 12))
                await asyncio.sleep(0.25)
        return f"not ready after {timeout:g}s ({last}); " + _reason(tail(log_file, 12))

    async def _terminate(self, pid: int | None) -> None:
        if not pid or not _alive(pid):
            self._reap(pid)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            self._reap(pid)
            await asyncio.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap(pid)

    def _reap(self, pid: int | None) -> None:
        for key, child in list(self._children.items()):
            if child.pid == pid and child.poll() is not None:
                del self._children[key]

    def _ours(self, deployment: Deployment) -> bool:
        """The pid is alive and runs this deployment's configuration (pids get reused)."""
        return _alive(deployment.pid) and \
            str(self.folder(deployment.connection_id)) in _cmdline(deployment.pid or 0)

    # -- operations ------------------------------------------------------------------------------

    async def deploy(self, connection_id: int, plan: Plan, host: str, port: int) -> Deployment:
        """Start, or replace after a successful trial on a spare port."""
        async with self._lock(connection_id):
            previous = await self.store.deployment(connection_id)
            running = previous is not None and previous.desired == "running" and \
                self._ours(previous)
            if not (running and previous is not None and previous.port == port
                    and previous.host == host) and not port_free(host, port):
                raise FieldError({"port": f"port {port} on {host} is in use; choose another"}, 409)
            if await self.store.port_taken(port, connection_id):
                raise FieldError({"port": f"another deployment uses port {port}"}, 409)
            generation = (previous.generation if previous else 0) + 1
            config = self._config_path(connection_id, generation)
            config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            config.write_text(plan.toml, encoding="utf-8")
            (config.parent / "stage").write_text(plan.stage, encoding="utf-8")
            trial_log = config.parent / "trial.log"
            trial_port = free_port()
            trial = self._spawn(config, plan.stage, "127.0.0.1", trial_port, plan.env, trial_log)
            try:
                failure = await self._wait_ready(trial, "127.0.0.1", trial_port, trial_log)
            finally:
                trial.terminate()
                await asyncio.get_running_loop().run_in_executor(None, trial.wait)
            if failure is not None:
                await self._remember_failure(connection_id, previous, host, port, failure)
                shutil.rmtree(config.parent, ignore_errors=True)
                raise FieldError({"deploy": failure})
            if running and previous is not None:
                await self._terminate(previous.pid)
            process = self._spawn(config, plan.stage, host, port, plan.env,
                                  self.log_path(connection_id))
            failure = await self._wait_ready(process, host, port, self.log_path(connection_id))
            if failure is not None:
                await self._terminate(process.pid)
                if running and previous is not None:
                    await self._restart(previous)
                await self._remember_failure(connection_id, previous, host, port, failure)
                raise FieldError({"deploy": failure})
            self._children[connection_id] = process
            return await self.store.save_deployment(
                connection_id, host=host, port=port, desired="running", pid=process.pid,
                generation=generation, env_sealed=self.vault.seal(json.dumps(plan.env)),
                started_at=now(), last_error=None)

    async def _remember_failure(self, connection_id: int, previous: Deployment | None,
                                host: str, port: int, failure: str) -> None:
        if previous is None:
            await self.store.save_deployment(connection_id, host=host, port=port,
                                              desired="stopped", pid=None, last_error=failure)
        else:
            await self.store.save_deployment(connection_id, last_error=failure)

    async def _restart(self, deployment: Deployment) -> str | None:
        """Start a deployment again from its own configuration and secrets."""
        config = self._config_path(deployment.connection_id, deployment.generation)
        if not config.exists() or deployment.env_sealed is None:
            return "its configuration is gone; deploy it again"
        env = json.loads(self.vault.open(deployment.env_sealed))
        stage = _stage_of(config)
        process = self._spawn(config, stage, deployment.host, deployment.port, env,
                              self.log_path(deployment.connection_id))
        failure = await self._wait_ready(process, deployment.host, deployment.port,
                                         self.log_path(deployment.connection_id))
        if failure is not None:
            await self._terminate(process.pid)
            await self.store.save_deployment(deployment.connection_id, pid=None,
                                              last_error=failure)
            return failure
        self._children[deployment.connection_id] = process
        await self.store.save_deployment(deployment.connection_id, pid=process.pid,
                                          started_at=now(), last_error=None)
        return None

    async def stop(self, connection_id: int) -> Deployment | None:
        async with self._lock(connection_id):
            found = await self.store.deployment(connection_id)
            if found is None:
                return None
            if self._ours(found):
                await self._terminate(found.pid)
            return await self.store.save_deployment(connection_id, desired="stopped", pid=None)

    async def restore(self) -> None:
        """At console start: adopt what still runs, start what should run but does not."""
        for deployment in await self.store.deployments():
            if deployment.desired != "running":
                continue
            if self._ours(deployment):
                log.info("deployment of connection %d still runs (pid %s); adopted",
                         deployment.connection_id, deployment.pid)
                continue
            async with self._lock(deployment.connection_id):
                failure = await self._restart(deployment)
            if failure:
                log.error("deployment of connection %d could not be started again: %s",
                          deployment.connection_id, failure)

    async def status(self, deployment: Deployment) -> Status:
        running = deployment.desired == "running" and self._ours(deployment)
        health = ready = "stopped"
        if running:
            health, ready = await asyncio.gather(_probe(deployment.base_url + "/health"),
                                                 _probe(deployment.base_url + "/ready"))
        return Status(running, health, ready, tail(self.log_path(deployment.connection_id)))

    async def stop_all(self) -> None:
        """Stop every deployment this console knows (``swain console stop-all``, tests)."""
        for deployment in await self.store.deployments():
            await self.stop(deployment.connection_id)


async def _probe(url: str) -> str:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http, \
                http.get(url) as response:
            return f"{response.status} {response.reason}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        return f"no answer ({type(exc).__name__})"


def _reason(lines: list[str]) -> str:
    useful = [line for line in lines if line.strip() and not line.startswith("---")]
    for line in reversed(useful):
        if line.startswith(("Error:", "swain: error", "ConfigError")) or "error" in line.lower():
            return line.strip()[:500]
    return (useful[-1].strip() if useful else "no output")[:500]


def _stage_of(config: Path) -> str:
    return (config.parent / "stage").read_text(encoding="utf-8").strip() \
        if (config.parent / "stage").exists() else "development"
