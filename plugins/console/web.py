"""Rendering, flash messages, and the restoration of a form sent with an expired
session (so signing in again loses nothing)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web

from . import security
from .context import CONSOLE, PRE, SESSION, TOKEN, Console
from .settings import FieldError

TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("swain.console.templates")
FLASH_COOKIE = "swain_console_flash"
CARD_TITLES = {"user": "User", "password_reset_token": "Password reset token",
               "session": "Session", "api_key": "API key", "social_profile": "Social profile",
               "role": "Role", "permission": "Permission", "role_permission": "Role permission",
               "user_role": "User role"}
STASH_TTL = 1800
#: fields never rendered back into a page (they are write-only)
SECRET_FIELDS = frozenset({"password", "auth.jwt_secret", "smtp.password", "new_password",
                           "csrf_token"})


def is_secret_field(name: str) -> bool:
    return name in SECRET_FIELDS or name.endswith(".client_secret")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("swain.plugins.console", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["version"] = lambda text: str(text).split(" (")[0].split(" on ")[0][:60]
    env.filters["card_title"] = lambda card: CARD_TITLES.get(card, card.replace("_", " ").capitalize())
    env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M UTC") if value else ""
    return env


def static_url(request: web.Request, name: str) -> str:
    return str(request.app.router["static"].url_for(filename=name))


def csrf_token(request: web.Request) -> str:
    console = request.app[CONSOLE]
    bound = request.get(TOKEN) or request.get(PRE) or request.cookies.get(security.PRE_COOKIE) or ""
    return console.tokens.csrf(bound) if bound else ""


def render(request: web.Request, template: str, *, status: int = 200,
           errors: Mapping[str, str] | None = None, values: Mapping[str, Any] | None = None,
           **context: Any) -> web.Response:
    env = request.app[TEMPLATES]
    session = request.get(SESSION)
    flash = take_flash(request)
    body = env.get_template(template).render(
        request=request, user=session.user if session else None, csrf=csrf_token(request),
        errors=dict(errors or {}), values=_shown(values or {}), flash=flash,
        page=request.path_qs, static=lambda name: static_url(request, name), **context)
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    if flash is not None:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


def _shown(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not is_secret_field(k)}


def form_error(request: web.Request, exc: FieldError) -> dict[str, str]:
    return exc.errors


# -- flash messages -------------------------------------------------------------------------


def flash(request: web.Request, response: web.StreamResponse, message: str,
          kind: str = "ok") -> None:
    console = request.app[CONSOLE]
    sealed = console.vault.seal(json.dumps({"message": message, "kind": kind}))
    security.set_cookie(response, FLASH_COOKIE, sealed, secure=console.secure_cookies,
                        max_age=60)


def take_flash(request: web.Request) -> dict[str, str] | None:
    sealed = request.cookies.get(FLASH_COOKIE)
    if not sealed:
        return None
    opened = request.app[CONSOLE].vault.open_for(sealed, 120)
    if opened is None:
        return None
    try:
        found = json.loads(opened)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def redirect(request: web.Request, location: str, message: str | None = None,
             kind: str = "ok") -> web.HTTPSeeOther:
    response = web.HTTPSeeOther(location)
    if message:
        flash(request, response, message, kind)
    return response


# -- forms sent with an expired session ------------------------------------------------------------


def stash(console: Console, response: web.StreamResponse, page: str, user_id: int,
          fields: Mapping[str, Any]) -> None:
    """Keep a form that arrived after its session expired, sealed in a cookie."""
    data = {"page": page, "user": user_id,
            "fields": {k: v for k, v in fields.items() if k != security.CSRF_FIELD}}
    packed = zlib.compress(json.dumps(data).encode()).hex()
    security.set_cookie(response, security.STASH_COOKIE, console.vault.seal(packed),
                        secure=console.secure_cookies, max_age=STASH_TTL)


def stashed(request: web.Request) -> dict[str, Any] | None:
    """The stashed form for this page and user, if any."""
    sealed = request.cookies.get(security.STASH_COOKIE)
    session = request.get(SESSION)
    if not sealed or session is None:
        return None
    opened = request.app[CONSOLE].vault.open_for(sealed, STASH_TTL)
    if opened is None:
        return None
    try:
        data = json.loads(zlib.decompress(bytes.fromhex(opened)))
    except (ValueError, zlib.error):
        return None
    if data.get("user") != session.user.id or data.get("page") != request.path_qs:
        return None
    fields = data.get("fields")
    return fields if isinstance(fields, dict) else None


def restore_secrets(request: web.Request, form: dict[str, Any]) -> dict[str, Any]:
    """Write-only fields left blank take what the stashed form held for them."""
    page = form.get("_page")
    sealed = request.cookies.get(security.STASH_COOKIE)
    session = request.get(SESSION)
    if not page or not sealed or session is None:
        return form
    opened = request.app[CONSOLE].vault.open_for(sealed, STASH_TTL)
    if opened is None:
        return form
    try:
        data = json.loads(zlib.decompress(bytes.fromhex(opened)))
    except (ValueError, zlib.error):
        return form
    if data.get("user") != session.user.id or data.get("page") != page:
        return form
    for key in filter(is_secret_field, data.get("fields", {})):
        if not form.get(key):
            form[key] = data["fields"][key]
    return form
