"""A testing kit for swain and its plugins: fresh databases and live servers.

* :class:`FreshDatabase` creates an empty database of any installed dialect
  (the dialect itself does it: ``Dialect.create_test_database``), runs a DDL
  script in it and drops it afterwards.  The built-in server dialects read
  their server's address from ``SWAIN_TEST_POSTGRES_URL`` and
  ``SWAIN_TEST_MYSQL_URL`` (defaults: the local servers with
  trust/empty-password auth).
* :mod:`swain.contrib.testing.dialect_suite` is the conformance suite a
  dialect runs against its own database.
* :func:`write_config` writes a ``swain.toml`` for such a database.
* :class:`LiveServer` runs an app on a real loopback port in a background
  thread, so tests talk to it over real HTTP with any client.

The pytest plugin :mod:`swain.contrib.testing.fixtures` wraps these as fixtures.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from swain.core import create_app, load_config
from swain.core.plugins import dialect_class

#: the built-in dialects swain's own suite runs on
DIALECTS: tuple[str, ...] = ("sqlite", "postgresql", "mysql")


def selected_dialects() -> tuple[str, ...]:
    """Dialects to test: ``SWAIN_TEST_DIALECTS=sqlite,postgresql`` narrows the default three."""
    chosen = os.environ.get("SWAIN_TEST_DIALECTS")
    if not chosen:
        return DIALECTS
    names = tuple(n.strip() for n in chosen.split(",") if n.strip())
    unknown = set(names) - set(DIALECTS)
    if unknown:
        raise ValueError(f"SWAIN_TEST_DIALECTS: unknown {', '.join(sorted(unknown))}")
    return names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FreshDatabase:
    """An empty database of one dialect (by its registered name), dropped on :meth:`drop`."""

    def __init__(self, dialect: str, name: str | None = None) -> None:
        self.dialect = dialect
        self.name = name or f"swain_t_{uuid.uuid4().hex[:12]}"
        self.backend = dialect_class(dialect)
        self._tmp = tempfile.TemporaryDirectory(prefix="swain-test-")
        try:
            self.url = self.backend.create_test_database(self.name, Path(self._tmp.name))
        except BaseException:
            self._tmp.cleanup()
            raise
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        """A synchronous engine for setting up and independently checking data."""
        if self._engine is None:
            self._engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        return self._engine

    @property
    def swain_url(self) -> str:
        """The URL as written in ``swain.toml``: the dialect's name as the scheme (the
        dialect picks its async driver)."""
        return self.url.set(drivername=self.dialect).render_as_string(hide_password=False)

    def run_script(self, script: str) -> None:
        """Run ``;``-separated statements (no semicolons inside literals)."""
        with self.engine.begin() as conn:
            for statement in split_statements(script):
                conn.exec_driver_sql(statement)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), dict(params or {}))]

    def drop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        try:
            self.backend.drop_test_database(self.url)
        finally:
            self._tmp.cleanup()

    def __enter__(self) -> FreshDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()


def split_statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Iterable):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    out = []
    if scalars:
        if prefix:
            out.append(f"[{prefix}]")
        out += [f"{_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
        out.append("")
    for key, value in tables.items():
        out.append(to_toml(value, f"{prefix}.{_key(key)}" if prefix else _key(key)))
    return "\n".join(out)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def write_config(directory: Path, url: str, **sections: Mapping[str, Any]) -> Path:
    """A ``swain.toml`` in ``directory`` for ``url`` (stage development), auth off
    unless ``auth`` says otherwise, plus any other sections given."""
    data: dict[str, Any] = {"connections": {"development": {"url": url}},
                            "auth": {"enabled": False}, "logging": {"access_log": False}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path = directory / "swain.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def serving(config_path: Path, stage: str = "development") -> LiveServer:
    """A :class:`LiveServer` (not yet started) for the project file ``config_path``;
    ``with serving(path) as live:`` serves it."""
    config, pm = load_config(config_path, stage, environ={})
    return LiveServer(create_app(config, pm))


class LiveServer:
    """An aiohttp app on a real loopback port, served from a background thread."""

    def __init__(self, app: web.Application, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._started = False

    def start(self) -> LiveServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)
        self._started = True
        return self

    async def _start(self) -> None:
        from swain.core.keys import RUNTIME
        from swain.core.serve import runner_options

        # a swain app's own settings (header timeout…), with a short drain for tests
        options = runner_options(self.app[RUNTIME].config) if RUNTIME in self.app else {}
        options["shutdown_timeout"] = 5
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, **options)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()

    def call(self, coroutine: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the server's loop (e.g. to inspect app state)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def stop(self) -> None:
        if self._started and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
