"""Core middlewares, outermost first: request id, security headers, access log and
request observers; then the read routing (only with read replicas) and CORS (only
when ``api.cors_origins`` is set); then the error envelope and authentication.
Plugins' middlewares run inside these.

Without replicas and CORS all of core's work is one middleware (each aiohttp
middleware costs every request); with them, core's is two, around theirs, so
their answers still carry the request id and their errors become the envelope.
Settings are resolved when the app is built, never per request.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from . import codec, logs
from .errors import ApiError, ServiceUnavailable, Unauthorized
from .keys import IDENTITY, REQUEST_ID

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
#: added in one step, each only where the handler did not set its own (the console's
#: Referrer-Policy)
_SECURITY = CIMultiDict(SECURITY_HEADERS)
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
Respond = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def error_response(error: ApiError, request_id: str | None = None) -> web.Response:
    body = error.body()
    if request_id:
        body["error"]["request_id"] = request_id
    return web.Response(body=codec.dumps(body), status=error.status,
                        content_type="application/json", headers=error.headers)


def core_middlewares(runtime: Runtime, between: Sequence[Any] = ()) -> list[Any]:
    """Core's middlewares for ``runtime``, with ``between`` (read routing, CORS)
    inside the request context and outside the error envelope."""
    respond = _responder(runtime)
    if not between:
        return [_request_context(runtime, respond)]

    @web.middleware
    async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await respond(request, handler)

    return [_request_context(runtime, None), *between, error_envelope]


def _request_context(runtime: Runtime, respond: Respond | None) -> Any:
    """The outermost middleware: request id in and out, security headers, then one
    access-log line and one call of each request observer per request; with
    ``respond``, the error envelope and authentication too."""
    access_log = bool(runtime.config.logging.access_log)
    observers = tuple(runtime.request_observers)
    timed = access_log or bool(observers)
    perf_counter = time.perf_counter

    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID", "")
        # getrandbits, not uuid4: no system call per request (and random reseeds after fork)
        request_id = incoming if incoming and _SAFE_ID.fullmatch(incoming) \
            else f"{random.getrandbits(128):032x}"
        request[REQUEST_ID] = request_id
        started = perf_counter() if timed else 0.0
        status = 500
        try:
            try:
                response: web.StreamResponse = await (
                    handler(request) if respond is None else respond(request, handler))
            except web.HTTPException as exc:  # redirects: the envelope lets only those through
                response = exc
            status = response.status
            headers = response.headers
            headers["X-Request-ID"] = request_id
            headers.merge(_SECURITY)
            if isinstance(response, web.HTTPException):
                raise response
            return response
        finally:
            if timed:
                _observed(request, request_id, status, perf_counter() - started, observers,
                          access_log)

    return request_context


def _observed(request: web.Request, request_id: str, status: int, seconds: float,
              observers: Sequence[Any], access_log: bool) -> None:
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


def _responder(runtime: Runtime) -> Respond:
    """Authentication, then the handler, every error leaving as the JSON envelope
    (nothing internal reaches the client).  Each auth provider is asked in order
    and the first identity wins; without one, only public routes are served when
    auth is enabled.  With no provider and auth off there is nothing to ask."""
    providers = tuple(runtime.auth_providers)
    required = bool(runtime.config.auth.enabled)
    public_routes = list(runtime.config.auth.public_routes)
    authenticates = bool(providers) or required

    async def respond(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if not authenticates:
                request[IDENTITY] = None
                return await handler(request)
            identity = None
            for provider in providers:
                identity = await provider.authenticate(request)
                if identity is not None:
                    break
            request[IDENTITY] = identity
            if identity is None and required and not is_public(request, public_routes):
                raise Unauthorized("authentication required",
                                   headers={"WWW-Authenticate": "Bearer"})
            return await handler(request)
        except ApiError as exc:
            return error_response(exc, request.get(REQUEST_ID))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _http_error(exc, request.get(REQUEST_ID))
        except Exception as exc:
            return _unexpected(runtime, request, exc)

    return respond


def _http_error(exc: web.HTTPException, request_id: str | None) -> web.Response:
    """aiohttp's own errors (no route, wrong method, body too large) as the envelope."""
    code = _HTTP_CODES.get(exc.status, "bad_request" if exc.status < 500 else "server_error")
    error = ApiError(exc.reason if exc.status != 404 else "no such route")
    error.status, error.code = exc.status, code
    if exc.status == 405 and "Allow" in exc.headers:
        error.headers = {"Allow": exc.headers["Allow"]}
    return error_response(error, request_id)


def _unexpected(runtime: Runtime, request: web.Request, exc: Exception) -> web.StreamResponse:
    """A database error the dialect classifies, a plugin's answer, or a 500."""
    request_id = request.get(REQUEST_ID)
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
