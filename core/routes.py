"""The table routes: the table API's and the query API's handlers on dynamic paths.

Routes are dynamic (``/{table}``, ``/{table}/{id}`` and the same under
``/tables/``) so a schema reload can add or drop tables without rebuilding the
router.  Fixed paths (``/auth/...``, ``/swagger/...``) are registered first
and always win; a table named like one of them is served only under
``/tables/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from . import queryapi, tableapi
from .keys import FIXED_PATHS, STATIC_PATHS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def list_rows(request: web.Request) -> web.StreamResponse:
    """``GET /{t}``; with ``?filter=<JSON payload>`` the query API answers."""
    if "filter" in request.query:
        return await queryapi.list_with_filter(request)
    return await tableapi.list_rows(request)


#: (method, path suffix, handler) — order matters: fixed suffixes before ``{id}``.
TABLE_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "", list_rows),
    ("POST", "", tableapi.create_row),
    ("GET", "/count", tableapi.count_rows),
    ("POST", "/count", queryapi.count_filtered),
    ("POST", "/filter", queryapi.filter_rows),
    ("POST", "/filter/query", queryapi.filter_query),
    ("GET", "/{id}", tableapi.get_row),
    ("PUT", "/{id}", tableapi.update_row),
    ("PATCH", "/{id}", tableapi.update_row),
    ("DELETE", "/{id}", tableapi.delete_row),
]

PREFIXES = ("/tables/{table}", "/{table}")


def table_routes(method: str, suffix: str, handler: Handler) -> list[web.RouteDef]:
    """A table-level route under both ``/{table}`` and ``/tables/{table}``.

    Plugins return these from ``swain_routes`` (e.g. ``/filter``, ``/bulk``);
    plugin routes are registered before core's, so ``/{table}/filter`` wins
    over ``/{table}/{id}``.
    """
    return [web.route(method, prefix + suffix, handler) for prefix in PREFIXES]


def add_table_routes(app: web.Application) -> None:
    # One prefix at a time: consecutive methods on one path then share an aiohttp
    # resource, and the router walks fewer of them on every request.  Matching is
    # unchanged, since the two prefixes sit in different buckets of its index.
    app.router.add_routes([web.route(method, prefix + suffix, handler)
                           for prefix in PREFIXES
                           for method, suffix, handler in TABLE_ROUTES])
    # Every route is known now: which methods each fixed path takes, so another
    # method gets a 405 naming them instead of reaching a table route.
    fixed: dict[str, set[str]] = {}
    static: dict[str, set[str]] = {}
    for route in app.router.routes():
        resource = route.resource
        canonical = resource.canonical if resource is not None else ""
        head, _, segment = canonical.rpartition("/")
        if head == "/{table}" and segment and "{" not in segment:
            fixed.setdefault(segment, set()).add(route.method)
        elif "{" not in canonical:
            static.setdefault(canonical, set()).add(route.method)
    app[FIXED_PATHS] = {name: frozenset(methods) for name, methods in fixed.items()}
    app[STATIC_PATHS] = {path: frozenset(methods) for path, methods in static.items()}
