"""Running the server: one process per worker, all sharing the port.

With ``--workers N`` (N > 1) the parent starts N worker processes that bind
the same port with ``SO_REUSEPORT`` and lets the kernel spread connections;
it forwards SIGTERM/SIGINT/SIGHUP to them and waits.  Each worker shuts down
gracefully: it stops accepting, lets requests in flight finish (up to
``server.shutdown_timeout``), then closes its pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import logs
from .app import create_app, load_config

log = logging.getLogger("swain")


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_worker(config_path: str | None, stage: str | None, host: str | None, port: int | None,
               reuse_port: bool, sock: socket.socket | None = None,
               on_ready: Callable[[str], None] | None = None) -> None:
    _event_loop_policy()
    config, pm = load_config(config_path, stage)
    logs.configure(config.logging.level, config.logging.format, config.stage)
    app = create_app(config, pm)
    host = host or config.server.host
    port = config.server.port if port is None else port

    async def announce(app: web.Application) -> None:
        if on_ready is not None:
            on_ready(f"http://{host}:{port}")

    app.on_startup.append(announce)
    web.run_app(app, host=None if sock else host, port=None if sock else port, sock=sock,
                reuse_port=reuse_port or None, shutdown_timeout=config.server.shutdown_timeout,
                access_log=None, print=None, handle_signals=True)


def serve(config_path: str | None, stage: str | None, host: str | None, port: int | None,
          workers: int | None, on_ready: Callable[[str], None] | None = None) -> None:
    config, _ = load_config(config_path, stage)
    workers = workers or config.server.workers
    if workers <= 1:
        run_worker(config_path, stage, host, port, reuse_port=False, on_ready=on_ready)
        return
    host = host or config.server.host
    port = config.server.port if port is None else port
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=run_worker, args=(config_path, stage, host, port, True),
                                 daemon=False, name=f"swain-worker-{i}") for i in range(workers)]
    for process in processes:
        process.start()
    if on_ready is not None:
        on_ready(f"http://{host}:{port}")

    def forward(signum: int, frame: Any) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    exit_code = 0
    for process in processes:
        process.join()
        exit_code = exit_code or (process.exitcode or 0)
    sys.exit(exit_code)
