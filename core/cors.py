"""Cross-origin requests from browsers (CORS), off unless ``api.cors_origins`` lists
origins; with the list empty no middleware is installed at all.

* A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
  is answered here, before authentication, since browsers send no credentials
  on it: 204 with the allowed methods, the requested headers and
  ``Access-Control-Max-Age``.  From an origin not on the list it is a 403
  envelope without CORS headers.
* Every other response to an allowed origin (errors included, so a browser can
  read them) carries ``Access-Control-Allow-Origin`` and
  ``Access-Control-Expose-Headers`` (``X-Request-ID``, ``Retry-After``,
  ``Location``, ``X-Read-From``), and, with ``api.cors_allow_credentials``,
  ``Access-Control-Allow-Credentials: true``.  Responses vary by ``Origin``.
* ``"*"`` allows any origin without credentials.  With credentials it is a
  start-up error: browsers refuse the pair, and echoing every origin instead
  would let any site act with a user's cookies or Basic credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from .config import Config
from .errors import ConfigError, Forbidden
from .keys import REQUEST_ID
from .middleware import error_response

METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
EXPOSED = "X-Request-ID, Retry-After, Location, X-Read-From"


def origin_of(text: str, path: str) -> str:
    """``text`` as a canonical origin (``scheme://host[:port]``), or a ConfigError."""
    if text == "*":
        return text
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or \
            parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{path}: expected an origin such as https://app.example.com "
                          f"(scheme, host and optional port; no path), got {text!r}")
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origins(config: Config) -> tuple[str, ...]:
    origins = tuple(origin_of(o, f"api.cors_origins[{i}]")
                    for i, o in enumerate(config.api.cors_origins))
    if "*" in origins and config.api.cors_allow_credentials:
        raise ConfigError('api.cors_origins: "*" cannot be combined with '
                          "api.cors_allow_credentials; list the origins that may send "
                          "credentials")
    return origins


def cors_middleware(config: Config) -> Any | None:
    """The CORS middleware for ``config``, or ``None`` when CORS is off."""
    origins = allowed_origins(config)
    if not origins:
        return None
    any_origin = "*" in origins
    allowed = frozenset(origins)
    credentials = bool(config.api.cors_allow_credentials)
    max_age = str(int(config.api.cors_max_age))

    def headers_for(origin: str) -> dict[str, str]:
        found = {"Access-Control-Allow-Origin": "*" if any_origin else origin,
                 "Access-Control-Expose-Headers": EXPOSED}
        if credentials:
            found["Access-Control-Allow-Credentials"] = "true"
        return found

    def permitted(origin: str | None) -> bool:
        if origin is None:
            return False
        return any_origin or _canonical(origin) in allowed

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin is not None and \
                "Access-Control-Request-Method" in request.headers:
            if not permitted(origin):
                return error_response(Forbidden("this origin may not call the API "
                                                "(api.cors_origins)"), request.get(REQUEST_ID))
            headers = headers_for(origin)
            headers.update({"Access-Control-Allow-Methods": METHODS,
                            "Access-Control-Max-Age": max_age})
            requested = request.headers.get("Access-Control-Request-Headers")
            if requested:
                headers["Access-Control-Allow-Headers"] = requested
            if not any_origin:
                headers["Vary"] = "Origin"
            return web.Response(status=204, headers=headers)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects, raised through the envelope
            _decorate(exc, origin, permitted(origin), any_origin, headers_for)
            raise
        _decorate(response, origin, permitted(origin), any_origin, headers_for)
        return response

    return cors


def _canonical(origin: str) -> str:
    try:
        return origin_of(origin, "Origin")
    except ConfigError:
        return ""


def _decorate(response: web.StreamResponse, origin: str | None, permitted: bool,
              any_origin: bool, headers_for: Any) -> None:
    if not any_origin:
        _add_vary(response, "Origin")
    if permitted and origin is not None:
        response.headers.update(headers_for(origin))


def _add_vary(response: web.StreamResponse, name: str) -> None:
    present: Sequence[str] = [v.strip() for v in response.headers.get("Vary", "").split(",")
                              if v.strip()]
    if name not in present:
        response.headers["Vary"] = ", ".join([*present, name])
