"""Running the server: one process per worker, all sharing the port.

With ``--workers N`` (N > 1) the parent starts N worker processes that bind
the same port with ``SO_REUSEPORT`` and lets the kernel spread connections;
it announces the URL once every worker listens, forwards SIGTERM/SIGINT/SIGHUP
to them, and waits.  Each worker shuts down gracefully: it stops accepting,
lets requests in flight finish (up to ``server.shutdown_timeout``), then
closes its pool.  SIGHUP makes every worker reload the schema.

:func:`app_factory` serves the same application under a process manager
instead, gunicorn's aiohttp workers::

    gunicorn 'swain.core.serve:app_factory("swain.toml", "production")' \
        --worker-class aiohttp.GunicornUVLoopWebWorker --workers 4 --bind 0.0.0.0:8000
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext, SpawnContext
from typing import Any

from aiohttp import web

from . import logs
from .app import create_app, load_config
from .config import Config, env_name

log = logging.getLogger("swain")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def runner_options(config: Config) -> dict[str, Any]:
    """``web.AppRunner`` settings from ``[server]``.

    aiohttp closes a connection that is waiting for a request once
    ``keepalive_timeout`` has passed since it opened or since its last answer,
    so that bound is the time a request's headers get (a client sending them a
    byte at a time cannot hold the connection open)."""
    return {"keepalive_timeout": float(config.server.header_timeout),
            "shutdown_timeout": float(config.server.shutdown_timeout)}


def run_worker(config_path: str | None, stage: str | None, host: str | None, port: int | None,
               reuse_port: bool, ready: Connection | None = None,
               on_ready: Callable[[str], None] | None = None, workers: int | None = None) -> None:
    """Serve in this process until SIGTERM/SIGINT; ``ready`` gets one message once listening.

    ``workers`` (when the command line gave it) is seen by the plugins as
    ``server.workers``, so they know how many processes share the work."""
    if ready is not None:  # a worker: drop the parent's forwarding handlers inherited by fork
        for signum in _FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
    environ = dict(os.environ)
    if workers is not None:
        environ[env_name("server", "workers")] = str(workers)
    config, pm = load_config(config_path, stage, environ)
    logs.configure(config.logging.level, config.logging.format, config.stage)
    app = create_app(config, pm)
    host = host or config.server.host
    port = config.server.port if port is None else port
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(app, host, port, reuse_port, runner_options(config), ready, on_ready))


async def _serve(app: web.Application, host: str, port: int, reuse_port: bool,
                 options: dict[str, Any], ready: Connection | None,
                 on_ready: Callable[[str], None] | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **options)
    await runner.setup()  # startup: pool, schema, plugins
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        url = f"http://{host}:{port}"
        log.info("worker %d listening on %s", os.getpid(), url)
        if ready is not None:
            ready.send(url)
            ready.close()
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
        log.info("worker %d shutting down: draining requests in flight", os.getpid())
    finally:
        # stops listening, waits for requests in flight, then runs cleanup (pools)
        await runner.cleanup()


def app_factory(config_path: str | None = None,
                stage: str | None = None) -> Callable[[], Awaitable[web.Application]]:
    """The application for a process manager's aiohttp worker (gunicorn's
    ``aiohttp.GunicornWebWorker`` or ``GunicornUVLoopWebWorker``), which awaits
    the returned function once per worker process, after the fork.  The project
    file and stage default to ``SWAIN_CONFIG`` and ``SWAIN_STAGE``, as for
    ``swain serve``; the worker owns the socket, the signals and the graceful
    shutdown (``--graceful-timeout``), swain the rest."""

    async def application() -> web.Application:
        config, pm = load_config(config_path, stage)
        logs.configure(config.logging.level, config.logging.format, config.stage)
        return create_app(config, pm)

    return application


def serve(config_path: str | None, stage: str | None, host: str | None, port: int | None,
          workers: int | None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the stage with ``workers`` processes (``server.workers`` by default)."""
    config, _ = load_config(config_path, stage)
    chosen = workers
    workers = workers or config.server.workers
    if workers <= 1:
        run_worker(config_path, stage, host, port, reuse_port=False, on_ready=on_ready,
                   workers=chosen)
        return
    host = host or config.server.host
    port = config.server.port if port is None else port
    if port == 0:
        raise SystemExit("server.port: several workers need a fixed port to share, not 0")
    # fork shares the already imported code (fast start, less memory); the
    # parent has no threads or event loop yet, so forking is safe.  Elsewhere
    # spawn is the platform's safe default.
    context: ForkContext | SpawnContext
    if sys.platform == "linux":
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("spawn")
    processes: list[multiprocessing.process.BaseProcess] = []  # filled as they start

    def forward(signum: int, frame: Any) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    pending: list[Connection] = []
    for i in range(workers):
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(target=run_worker, name=f"swain-worker-{i}",
                                 args=(config_path, stage, host, port, True, sender, None,
                                       workers))
        worker.start()
        sender.close()
        processes.append(worker)
        pending.append(receiver)
    if _wait_until_listening(pending, processes) and on_ready is not None:
        on_ready(f"http://{host}:{port}")
    exit_code = 0
    for process in processes:
        process.join()
        exit_code = exit_code or (process.exitcode or 0)
    sys.exit(exit_code)


def _wait_until_listening(pending: list[Connection],
                          processes: list[multiprocessing.process.BaseProcess]) -> bool:
    """Wait for every worker's "listening" message; on a worker dying first, stop the rest."""
    while pending:
        for receiver in wait(pending):
            assert isinstance(receiver, Connection)
            pending.remove(receiver)
            try:
                receiver.recv()
            except EOFError:  # the worker died before listening (its error is on stderr)
                for process in processes:
                    if process.is_alive() and process.pid is not None:
                        os.kill(process.pid, signal.SIGTERM)
                return False
            finally:
                receiver.close()
    return True
