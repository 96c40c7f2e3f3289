"""Plugin modules as operators write them, as source text to load in tests.

A test writes the text into a folder with :func:`write_plugin` and loads it the
way an operator would: ``[plugins] modules`` with the folder on ``PYTHONPATH``
(see :class:`~swain.contrib.testing.process.ServeProcess`), or imported with
:func:`import_plugin` and handed to ``load_config(..., plugins=[module])``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

#: what the slow route logs (as a warning) once it has started, so a test can
#: act while the request is in flight
SLOW_STARTED = "slow request started"

_SLOW_ROUTE = '''
import asyncio
import logging

from aiohttp import web

from swain.core import RUNTIME, hookimpl, json_response, public
from swain.core.codec import dumps


@public
async def slow(request):
    logging.getLogger(LOGGER).warning(SLOW_STARTED)
    await asyncio.sleep(float(request.query.get("seconds", "1")))
    runtime = request.app[RUNTIME]
    async with runtime.dialect.acquire() as conn:
        row = await conn.fetch_one("SELECT 42")
    return json_response(dumps({"answer": row[0]}))


@hookimpl
def swain_routes(config):
    return [web.get("/slow", slow)]
'''


def slow_route_plugin(logger: str, extra: str = "") -> str:
    """Source of a plugin with a public ``GET /slow?seconds=N`` route: it logs
    :data:`SLOW_STARTED` on ``logger``, sleeps N seconds (default 1), then still
    needs the database pool and answers ``{"answer": 42}``.  ``extra`` is more
    source appended to the module (its own imports included)."""
    header = f"LOGGER = {logger!r}\nSLOW_STARTED = {SLOW_STARTED!r}\n"
    return header + _SLOW_ROUTE + ("\n" + extra if extra else "")


def write_plugin(directory: Path, module: str, source: str) -> Path:
    """Write ``source`` as ``directory/<module>.py``; returns ``directory``, the
    folder to put on ``PYTHONPATH``."""
    (directory / f"{module}.py").write_text(source, encoding="utf-8")
    return directory


def import_plugin(path: Path) -> ModuleType:
    """Import a plugin module from its file, without putting its folder on ``sys.path``."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
