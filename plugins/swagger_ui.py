"""Swagger UI 5 at ``/swagger/index.html``, served by the app itself.

The assets come from the locally installed ``swagger-ui-bundle-v2`` package
(no CDN).  The page and its initializer are swain's own: they load the
document from ``./doc.json`` (so the same origin that served the page), keep
"Try it out" switched on and authorizations across reloads, and turn off the
online validator badge, which would otherwise call validator.swagger.io.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import swagger_ui_bundle
from aiohttp import web

from swain.core import Config, hookimpl, public

#: the page loads the document the openapi plugin serves at /swagger/doc.json
requires = ("openapi",)

ASSETS_DIR = Path(swagger_ui_bundle.swagger_ui_path)

#: Asset types served, by file suffix; anything else in the bundle folder is not.
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".map": "application/json",
    ".html": "text/html",
}
#: Files of the bundle replaced by swain's own (the bundle's point at the petstore demo).
REPLACED = frozenset({"index.html", "swagger-initializer.js"})

INDEX_HTML = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{title}</title>
    <link rel="stylesheet" type="text/css" href="./swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./index.css" />
    <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="./favicon-16x16.png" sizes="16x16" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"""

INITIALIZER_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "./doc.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: true,
    persistAuthorization: true,
    displayOperationId: true,
    displayRequestDuration: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def asset_names() -> list[str]:
    """The bundle files served under ``/swagger/``."""
    return sorted(p.name for p in ASSETS_DIR.iterdir()
                  if p.is_file() and p.suffix in CONTENT_TYPES and p.name not in REPLACED)


def _asset_handler(path: Path) -> Handler:
    content_type = CONTENT_TYPES[path.suffix]

    @public
    async def serve_asset(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": content_type,
                                               "Cache-Control": "public, max-age=86400"})

    return serve_asset


def _index_handler(title: str) -> Handler:
    body = INDEX_HTML.format(title=_escape(f"{title} · Swagger UI"))

    @public
    async def index(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    return index


@public
async def initializer(request: web.Request) -> web.Response:
    return web.Response(text=INITIALIZER_JS, content_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})


@public
async def to_index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/swagger/index.html")


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    # One fixed route per file, rather than /swagger/{name}: a pattern here
    # would shadow /swagger/doc.json if the openapi plugin registered later.
    routes = [web.get("/swagger", to_index), web.get("/swagger/", to_index),
              web.get("/swagger/index.html", _index_handler(config.project.name)),
              web.get("/swagger/swagger-initializer.js", initializer)]
    routes += [web.get(f"/swagger/{name}", _asset_handler(ASSETS_DIR / name))
               for name in asset_names()]
    return routes
