"""Every piece of application and request state, under typed keys declared here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .protocols import Identity
    from .runtime import Runtime

RUNTIME: web.AppKey[Runtime] = web.AppKey("swain.runtime")
#: a table's own fixed paths (``count``, ``filter``, ``bulk``…) → the methods they take
FIXED_PATHS: web.AppKey[dict[str, frozenset[str]]] = web.AppKey("swain.fixed_paths")
#: the API's own paths without parameters (``/health``, ``/auth/login``…) → their methods
STATIC_PATHS: web.AppKey[dict[str, frozenset[str]]] = web.AppKey("swain.static_paths")
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("swain.identity")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("swain.request_id")
