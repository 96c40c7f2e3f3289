"""The console's aiohttp application: store, key, middlewares and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from swain.core import ApiError, Detail, Forbidden, Unauthorized
from swain.core.middleware import error_response
from swain.plugins.auth.passwords import Argon2Hasher

from . import api, forms, pages, security
from . import web as views
from .context import CONSOLE, SESSION, TOKEN, VIA, Console
from .crypto import Vault, load_key
from .deploy import Deployer
from .settings import FieldError
from .store import Store

log = logging.getLogger("swain.console")
STATIC = Path(__file__).resolve().parent / "static"
#: what pages may load: only this origin; no inline script or style
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PUBLIC_PATHS = ("/login", "/setup", "/static/", "/api/login", "/api/openapi.json", "/favicon.ico")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON envelopes under /api/, pages elsewhere; never a traceback."""
    try:
        return await handler(request)
    except FieldError as exc:
        error = ApiError("; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
        error.status = exc.status
        error.code = {409: "conflict", 503: "service_unavailable", 400: "bad_request"}.get(
            exc.status, "validation_error")
        error.details = [Detail(k, v) for k, v in exc.errors.items()]
        if _is_api(request):
            return error_response(error)
        return views.render(request, "error.html", status=exc.status, error=error)
    except ApiError as exc:
        if _is_api(request):
            return error_response(exc)
        response = views.render(request, "error.html", status=exc.status, error=exc)
        response.headers.update(exc.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or not _is_api(request):
            raise
        error = ApiError(exc.reason)
        error.status = exc.status
        error.code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
                      415: "unsupported_media_type"}.get(exc.status, "bad_request")
        return error_response(error)
    except Exception:
        log.exception("console error on %s %s", request.method, request.path)
        error = ApiError("internal error; the console's log has the details")
        error.status, error.code = 500, "server_error"
        if _is_api(request):
            return error_response(error)
        return views.render(request, "error.html", status=500, error=error)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking (bearer token or session cookie), CSRF on every change, and the
    way back to the same page for a browser whose session ended."""
    console = request.app[CONSOLE]
    token, via = None, None
    bearer = request.headers.get("Authorization", "")
    if bearer.lower().startswith("bearer ") and _is_api(request):
        token, via = bearer[7:].strip(), "bearer"
    elif request.cookies.get(security.SESSION_COOKIE):
        token, via = request.cookies[security.SESSION_COOKIE], "cookie"
    session = await console.store.session(token) if token else None
    expired = session is not None and session.expired
    request[SESSION] = None if expired else session
    request[TOKEN] = token if session is not None else None
    request[VIA] = via if session is not None and not expired else None
    if request.method in UNSAFE and via != "bearer":
        bound = token if session is not None else request.cookies.get(security.PRE_COOKIE)
        given = request.headers.get(security.CSRF_HEADER)
        if given is None and request.content_type in ("application/x-www-form-urlencoded",
                                                      "multipart/form-data"):
            given = (await request.post()).get(security.CSRF_FIELD)  # type: ignore[assignment]
        json_login = request.path == "/api/login" and request.content_type == "application/json"
        if not json_login and not console.tokens.valid(bound, given if isinstance(given, str)
                                                       else None):
            raise Forbidden("missing or invalid CSRF token: reload the page and try again")
    public = request.path.startswith(PUBLIC_PATHS) or request.path == "/"
    if request[SESSION] is None and not public:
        if _is_api(request):
            message = "your session has expired; sign in again" if expired else \
                "sign in first (POST /api/login)"
            raise Unauthorized(message, headers={"WWW-Authenticate": "Bearer"})
        if request.method in UNSAFE and expired and session is not None:
            fields = forms.from_post(await request.post())
            page = str(fields.get("_page") or request.path)
            response = web.HTTPSeeOther(f"/login?expired=1&next={quote(page, safe='')}")
            views.stash(console, response, page, session.user.id, fields)
            raise response
        reason = "&expired=1" if expired else ""
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}{reason}")
    return await handler(request)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    console = app[CONSOLE]
    restore = asyncio.create_task(console.deployer.restore())
    yield
    restore.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await restore
    await console.store.close()


async def build(store: Store, key: bytes, data_dir: Path, public_url: str,
                secure_cookies: bool = False) -> web.Application:
    vault = Vault(key)
    console = Console(store=store, vault=vault, data_dir=data_dir,
                      deployer=Deployer(store, vault, data_dir),
                      limiter=security.LoginLimiter(), hasher=Argon2Hasher(),
                      tokens=security.Tokens(key), public_url=public_url.rstrip("/"),
                      secure_cookies=secure_cookies)
    app = web.Application(middlewares=[headers, errors, authenticate],
                          client_max_size=2 * 1024 * 1024)
    app[CONSOLE] = console
    app[views.TEMPLATES] = views.environment()
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_static("/static/", STATIC, append_version=True, name="static")
    pages.add_routes(app)
    api.add_routes(app)
    return app


async def open_console(store_location: str, data_dir: Path, public_url: str,
                       secure_cookies: bool = False) -> web.Application:
    key = load_key(data_dir / "console.key")
    store = await Store.open(store_location)
    return await build(store, key, data_dir, public_url, secure_cookies)
