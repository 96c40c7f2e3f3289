"""Sessions, CSRF tokens and the login rate limit of the console.

* Browser sessions are a random token in an HttpOnly, SameSite=Lax cookie
  (Secure when the console is served over https); only its SHA-256 is stored.
  API clients (swain_cli) get the same kind of token from ``POST /api/login``
  and send it as ``Authorization: Bearer``.
* Every state-changing request made with the cookie carries a CSRF token
  (form field ``csrf_token`` or header ``X-CSRF-Token``): an HMAC of the
  session token under a key derived from the console key, so it needs no
  storage and dies with the session.  Forms shown before signing in (login,
  first admin) are bound the same way to a pre-session cookie.  Bearer
  requests carry no ambient credential and need no token.
* Logins are limited per client address and per account (fixed windows, in
  memory: the console is one process), answered with 429 and ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets

from aiohttp import web

from swain.core import RateLimited
from swain.plugins.auth.rate_limit import MemoryCounter

SESSION_COOKIE = "swain_console_session"
PRE_COOKIE = "swain_console_pre"
STASH_COOKIE = "swain_console_stash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class Tokens:
    """CSRF tokens bound to a session (or pre-session) token."""

    def __init__(self, console_key: bytes) -> None:
        self._key = hashlib.sha256(b"swain console csrf\0" + console_key).digest()

    def csrf(self, bound_to: str) -> str:
        return hmac.new(self._key, bound_to.encode(), hashlib.sha256).hexdigest()

    def valid(self, bound_to: str | None, given: str | None) -> bool:
        if not bound_to or not given:
            return False
        return hmac.compare_digest(self.csrf(bound_to), given)


def set_cookie(response: web.StreamResponse, name: str, value: str, *, secure: bool,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, httponly=True, samesite="Lax", secure=secure, path="/",
                        max_age=max_age)


def new_token() -> str:
    return secrets.token_urlsafe(32)


class LoginLimiter:
    """At most ``per_client`` attempts per address and ``per_account`` per email in
    each ``window`` seconds."""

    def __init__(self, per_client: int = 30, per_account: int = 10, window: float = 300.0) -> None:
        self.counter = MemoryCounter()
        self.per_client = per_client
        self.per_account = per_account
        self.window = window

    async def hit(self, address: str, email: str) -> None:
        for key, limit in ((f"client:{address}", self.per_client),
                           (f"account:{email.strip().lower()}", self.per_account)):
            count, remaining = await self.counter.hit(key, self.window)
            if count > limit:
                retry = max(1, math.ceil(remaining))
                raise RateLimited(f"too many sign-in attempts; try again in {retry} seconds",
                                  headers={"Retry-After": str(retry)})
