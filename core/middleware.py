"""Core middlewares, outermost first: request id, access log and request
observers; CORS (only when ``api.cors_origins`` is set); error envelope;
authentication.  Plugins' middlewares run inside these.

Settings are resolved when the app is built, not per request: the request
context is made by :func:`request_context` for one runtime.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from . import codec, logs
from .errors import ApiError, ServiceUnavailable, Unauthorized
from .keys import IDENTITY, REQUEST_ID, RUNTIME

if TYPE_CHECKING:
    from .runtime import Runtime

H = TypeVar("H")
log = logging.getLogger("swain")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def error_response(error: ApiError, request_id: str | None = None) -> web.Response:
    body = error.body()
    if request_id:
        body["error"]["request_id"] = request_id
    return web.Response(body=codec.dumps(body), status=error.status,
                        content_type="application/json", headers=error.headers)


def request_context(runtime: Runtime) -> Any:
    """The outermost middleware of an app: request id in and out, security headers,
    then one access-log line and one call of each request observer per request."""
    access_log = bool(runtime.config.logging.access_log)
    observers = tuple(runtime.request_observers)

    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID", "")
        # getrandbits, not uuid4: no system call per request (and random reseeds after fork)
        request_id = incoming if incoming and _SAFE_ID.fullmatch(incoming) \
            else f"{random.getrandbits(128):032x}"
        request[REQUEST_ID] = request_id
        started = time.perf_counter()
        status = 500
        try:
            try:
                response: web.StreamResponse = await handler(request)
            except web.HTTPException as exc:  # redirects: the envelope lets only those through
                response = exc
            status = response.status
            response.headers["X-Request-ID"] = request_id
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if isinstance(response, web.HTTPException):
                raise response
            return response
        finally:
            if access_log or observers:
                seconds = time.perf_counter() - started
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else ""
                for observer in observers:
                    observer.observe(request, route, status, seconds)
                if access_log:
                    identity = request.get(IDENTITY)
                    logs.access({
                        "request_id": request_id,
                        "method": request.method,
                        "path": request.path,
                        "route": route or None,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "user_id": identity.user_id if identity else None,
                        "remote": request.remote,
                    })

    return request_context


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as the JSON envelope; nothing internal reaches the client."""
    request_id = request.get(REQUEST_ID)
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "bad_request" if exc.status < 500 else "server_error")
        error = ApiError(exc.reason if exc.status != 404 else "no such route")
        error.status, error.code = exc.status, code
        if exc.status == 405 and "Allow" in exc.headers:
            error.headers = {"Allow": exc.headers["Allow"]}
        return error_response(error, request_id)
    except Exception as exc:
        runtime = request.app[RUNTIME]
        describe = runtime.dialect.describe_error
        fields = {"fields": {"request_id": request_id}}
        classified = runtime.dialect.classify_error(exc)
        if classified is not None:
            # Driver messages carry row values (a failing row, a duplicate email):
            # only the dialect's description of the error reaches the log.
            if isinstance(classified, ServiceUnavailable):
                log.warning("database unavailable: %s", describe(exc), extra=fields)
                classified.headers.setdefault("Retry-After", "1")
            else:
                log.info("constraint or data error: %s", describe(exc), extra=fields)
            return error_response(classified, request_id)
        custom = runtime.pm.hook.swain_handle_exception(request=request, exception=exc)
        if custom is not None:
            return custom  # type: ignore[no-any-return]
        log.error("unhandled error: %s", logs.redacted(exc, describe), extra=fields)
        error = ApiError("internal server error")
        error.status, error.code = 500, "server_error"
        return error_response(error, request_id)


def is_public(request: web.Request, public_routes: list[str]) -> bool:
    handler = request.match_info.handler
    if getattr(handler, "swain_public", False):
        return True
    path = request.path
    for entry in public_routes:
        method, _, route = entry.partition(" ") if " " in entry else ("", "", entry)
        if route == path and (not method or method.upper() == request.method):
            return True
    return False


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ask each auth provider in order; the first identity wins.  Without one,
    only public routes are served (when auth is enabled)."""
    runtime = request.app[RUNTIME]
    identity = None
    for provider in runtime.auth_providers:
        identity = await provider.authenticate(request)
        if identity is not None:
            break
    request[IDENTITY] = identity
    if identity is None and runtime.config.auth.enabled and \
            not is_public(request, runtime.config.auth.public_routes):
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


def credential(request: web.Request, name: str, challenge: str = "Bearer") -> str | None:
    """The value of credential header ``name`` (``None`` when absent), for auth
    providers.  Tokens, keys and Basic pairs are printable ASCII; anything else
    (invalid UTF-8 arrives as surrogate escapes) is a 401, before any decoding."""
    value = request.headers.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isprintable():
        raise Unauthorized(f"malformed {name} header: credentials are printable ASCII",
                           headers={"WWW-Authenticate": challenge})
    return value


def public(handler: H) -> H:
    """Mark a handler as reachable without credentials (health, docs, login…)."""
    handler.swain_public = True  # type: ignore[attr-defined]
    return handler
