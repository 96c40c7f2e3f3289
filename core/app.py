"""The application factory: config → plugin manager → dialect → aiohttp app.

No module globals: everything an app needs hangs off ``app[RUNTIME]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import pluggy
from aiohttp import web

from . import codec
from . import config as config_module
from .config import CORE_SECTIONS, Config, merge_sections
from .cors import cors_middleware
from .errors import ApiError, ConfigError, ServiceUnavailable
from .keys import RUNTIME
from .middleware import core_middlewares, public
from .plugins import collect, create_plugin_manager
from .replicas import routing_middleware
from .routes import add_table_routes
from .runtime import Runtime
from .tableapi import json_response

log = logging.getLogger("swain")
SCHEMA_RETRY_SECONDS = 2.0


def load_config(path: Path | str | None = None, stage: str | None = None,
                environ: Mapping[str, str] | None = None,
                plugins: Iterable[object] = ()) -> tuple[Config, pluggy.PluginManager]:
    """Read and validate ``swain.toml`` with the sections of every enabled plugin."""
    environ = os.environ if environ is None else environ
    path = Path(path) if path is not None else Path(environ.get("SWAIN_CONFIG", "swain.toml"))
    stage = stage or environ.get("SWAIN_STAGE") or "development"
    raw = config_module.read_raw(path, environ)
    plugin_section = config_module.validate_section("plugins", raw.get("plugins", {}),
                                                    CORE_SECTIONS["plugins"])
    plugin_list = list(plugins)
    pm = create_plugin_manager(disable=plugin_section["disable"], modules=plugin_section["modules"],
                               plugins=plugin_list)
    # Of two declarations of one key, the one pluggy calls first wins (as everywhere).
    sections = merge_sections(CORE_SECTIONS, *reversed(pm.hook.swain_config_sections()))
    # Environment overrides for plugin-owned sections need the merged list.
    raw = config_module.read_raw(path, environ, sections)
    config = config_module.validate(raw, sections, stage=stage,
                                    path=path if path.exists() else None)
    return config, pm


async def _database(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    await runtime.dialect.open()
    if runtime.reads is not None:
        # pools connect lazily: a replica down now is found, and rested, on first use
        await runtime.reads.open()
    loader: asyncio.Task[None] | None = None
    if not await _first_load(runtime):
        # Start anyway (503 until the database answers) rather than crash-loop;
        # the loader keeps trying in the background.
        loader = asyncio.create_task(_load_schema_until_ready(runtime))
    try:
        yield
    finally:
        if loader is not None:
            loader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loader
        if runtime.reads is not None:
            await runtime.reads.close()
        await runtime.dialect.close()
        log.info("database pool closed")


async def _first_load(runtime: Runtime) -> bool:
    """Load the schema once before serving; ``False`` when the database is unreachable."""
    timeout = runtime.config.connection().connect_timeout
    try:
        await asyncio.wait_for(runtime.dialect.ping(), timeout=timeout + 1)
        await runtime.load_schema()
    except ConfigError:
        raise
    except Exception as exc:
        log.error("the database is unreachable at startup (%s); serving 503 until it answers",
                  _describe(exc))
        return False
    return True


def _describe(exc: BaseException) -> str:
    return exc.__class__.__name__ if isinstance(exc, asyncio.TimeoutError) else \
        f"{exc.__class__.__name__}: {exc}".splitlines()[0]


async def _load_schema_until_ready(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(SCHEMA_RETRY_SECONDS)
        try:
            await runtime.dialect.ping()
            await runtime.load_schema()
        except ConfigError as exc:
            log.critical("the schema cannot be served: %s", exc)
            return
        except Exception as exc:
            log.warning("cannot load the schema yet (%s); retrying in %.0fs", _describe(exc),
                        SCHEMA_RETRY_SECONDS)
        else:
            log.info("the database answers again; schema loaded")
            return


async def _invalidation(app: web.Application) -> AsyncIterator[None]:
    """Listen to the other instances' invalidations while serving."""
    runtime = app[RUNTIME]
    async with runtime.invalidations.listening(runtime.config.connection().connect_timeout):
        yield


async def _sighup(app: web.Application) -> AsyncIterator[None]:
    """Reload the schema on SIGHUP (only where signals can be handled: the main thread)."""
    loop = asyncio.get_running_loop()
    installed = False
    reloads: set[asyncio.Task[None]] = set()  # strong references until each reload ends

    async def reload() -> None:
        try:
            catalog = await app[RUNTIME].load_schema()
        except Exception as exc:
            log.error("schema reload failed (%s); still serving the previous schema",
                      _describe(exc))
        else:
            log.info("schema reloaded: %d tables", len(catalog.schema.visible_tables))

    def on_signal() -> None:
        log.info("SIGHUP: reloading the schema")
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
        try:
            loop.add_signal_handler(signal.SIGHUP, on_signal)
            installed = True
        except (NotImplementedError, RuntimeError):
            pass
    yield
    if installed:
        loop.remove_signal_handler(signal.SIGHUP)
    for task in reloads:
        task.cancel()


@public
async def health(request: web.Request) -> web.Response:
    return json_response(codec.dumps({"status": "ok"}))


@public
async def ready(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        await asyncio.wait_for(runtime.dialect.ping(),
                               timeout=runtime.config.connection().connect_timeout)
    except Exception as exc:
        classified = runtime.dialect.classify_error(exc)
        if classified is None and not isinstance(exc, asyncio.TimeoutError | OSError):
            raise
        raise ServiceUnavailable("the database is unreachable") from None
    if runtime.catalog is None:
        raise ServiceUnavailable("the schema is not loaded yet")
    answer: dict[str, Any] = {"status": "ready", "database": runtime.dialect.server_version,
                              "tables": len(runtime.schema.visible_tables)}
    if runtime.reads is not None:
        answer.update(runtime.reads.status())
    return json_response(codec.dumps(answer))


def create_app(config: Config, pm: pluggy.PluginManager | None = None) -> web.Application:
    """The application for ``config``: the runtime is built (every pipeline hook runs
    once), the middlewares, cleanup contexts and routes are collected, then
    ``swain_startup`` wires the plugins to the finished runtime."""
    if pm is None:
        pm = create_plugin_manager(disable=config.plugins.disable, modules=config.plugins.modules)
    runtime = Runtime.build(config, pm)
    if config.auth.enabled and not runtime.auth_providers:
        raise ConfigError("auth.enabled: authentication is on but no enabled plugin provides it; "
                          "enable an auth plugin, or set [auth] enabled = false to serve an "
                          "open API")
    if not config.auth.enabled:
        log.warning("auth is disabled: anyone who can reach this server can read and write every "
                    "exposed table")
    hook_args = {"config": config, "runtime": runtime}
    cors = cors_middleware(config)
    routing = [routing_middleware(runtime.reads)] if runtime.reads is not None else []
    middlewares = [*core_middlewares(runtime, [*routing, *([cors] if cors is not None else [])]),
                   *collect(pm, "swain_middlewares", **hook_args)]
    app = web.Application(middlewares=middlewares, client_max_size=config.api.max_body_size)
    app[RUNTIME] = runtime
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_invalidation)
    app.cleanup_ctx.append(_sighup)
    for ctx in collect(pm, "swain_cleanup_ctx", **hook_args):
        app.cleanup_ctx.append(ctx)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_routes(collect(pm, "swain_routes", **hook_args))
    add_table_routes(app)
    runtime.start()
    return app


__all__ = ["ApiError", "create_app", "load_config"]
