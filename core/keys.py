"""Every piece of application and request state, under typed keys declared here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .protocols import Identity
    from .runtime import Runtime

RUNTIME: web.AppKey[Runtime] = web.AppKey("swain.runtime")
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("swain.identity")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("swain.request_id")
