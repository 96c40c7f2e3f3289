"""Administrative endpoints under ``/_swain``: schema reload (an audited action).

``POST /_swain/reload`` re-introspects the database and swaps the schema in
without dropping requests in flight.  It needs an admin identity; when auth
is disabled, only clients from ``server.admin_addresses`` (loopback by
default) may call it.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from swain.core import IDENTITY, RUNTIME, Forbidden, audit_event, hookimpl, json_response
from swain.core.codec import dumps


def is_admin(request: web.Request) -> bool:
    runtime = request.app[RUNTIME]
    identity = request.get(IDENTITY)
    if identity is not None:
        return bool(identity.is_admin)
    # Without auth there is no identity to check: trust only the configured peer
    # addresses (the socket's peer, never a forwarded header).
    return not runtime.config.auth.enabled and \
        request.remote in runtime.config.server.admin_addresses


async def reload_schema(request: web.Request) -> web.Response:
    if not is_admin(request):
        raise Forbidden("reloading the schema needs an administrator")
    runtime = request.app[RUNTIME]
    catalog = await runtime.load_schema()
    await runtime.audit([audit_event(request.get(IDENTITY), "reload", detail={
        "tables": len(catalog.schema.visible_tables), "remote": request.remote})])
    return json_response(dumps({"reloaded": True, "tables": len(catalog.schema.visible_tables)}))


@hookimpl
def swain_routes() -> Iterable[web.RouteDef]:
    return [web.post("/_swain/reload", reload_schema)]
