"""What one console application works with, under typed aiohttp keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from swain.plugins.auth.passwords import Argon2Hasher

if TYPE_CHECKING:
    from .crypto import Vault
    from .deploy import Deployer
    from .security import LoginLimiter, Tokens
    from .store import Session, Store


@dataclass
class Console:
    store: Store
    vault: Vault
    data_dir: Path
    deployer: Deployer
    limiter: LoginLimiter
    hasher: Argon2Hasher
    tokens: Tokens
    #: the console's own address, for the commands it shows (swain_cli …)
    public_url: str
    #: seconds a browser session or an API token lives
    session_ttl: float = 12 * 3600.0
    #: whether cookies are marked Secure (the console is served over https)
    secure_cookies: bool = False
    #: a hash to verify against when the email is unknown (the same work either way)
    dummy_hash: str | None = None


CONSOLE: web.AppKey[Console] = web.AppKey("swain.console")
SESSION: web.RequestKey[Session | None] = web.RequestKey("swain.console.session")
#: the raw session token of the request (cookie or bearer), for the CSRF token
TOKEN: web.RequestKey[str | None] = web.RequestKey("swain.console.token")
#: how the request authenticated: "cookie", "bearer" or None
#: a pre-session token made for this response (sign-in forms)
PRE: web.RequestKey[str] = web.RequestKey("swain.console.pre")
VIA: web.RequestKey[str | None] = web.RequestKey("swain.console.via")
