"""HTTP Basic with email (or, where ``[mapping.user] username`` is mapped, username)
and password, so generated SDKs' ``username``/``password`` configuration works.

A verified pair is remembered for ``auth.basic_cache`` seconds (30 by
default) under an HMAC of the pair with a per-process random key, so the
password hash is not recomputed on every request and no password is kept in
memory.  Failures are never cached and count against the login rate limit.
A password change or deactivation drops the user's pairs on every instance
(the ``user`` invalidation topic).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from swain.core import (
    AuthProvider,
    Config,
    Identity,
    Runtime,
    Setting,
    Unauthorized,
    credential,
    hookimpl,
)
from swain.core.invalidation import MISSING, TimedCache

from . import docs
from .service import USER_TOPIC, accounts, auth_active

#: the account service checks the password (and counts attempts)
requires = ("jwt",)

CHALLENGE = {"WWW-Authenticate": 'Basic realm="swain", charset="UTF-8"'}


class BasicProvider:
    name = "basic"

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        #: HMAC of a verified pair -> the user's id
        self._verified: TimedCache[bytes, Any] = TimedCache(ttl)

    def _fingerprint(self, login: str, password: str) -> bytes:
        # exact: usernames may differ by case alone
        return hmac.new(self._key, f"{login}\x00{password}".encode(),
                        hashlib.sha256).digest()

    async def authenticate(self, request: web.Request) -> Identity | None:
        header = credential(request, "Authorization", CHALLENGE["WWW-Authenticate"]) or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials", headers=CHALLENGE) from None
        login, colon, password = decoded.partition(":")
        if not colon:
            raise Unauthorized("malformed Basic credentials", headers=CHALLENGE)
        service = accounts(request)
        fingerprint = self._fingerprint(login, password)
        user_id = self._verified.fresh(fingerprint)
        if user_id is not MISSING:
            return await service.active_identity(user_id, self.name)
        since = self._verified.epoch
        await service.limit(request, "login", login)
        try:
            user = await service.check_password(login, password, "either")
        except Unauthorized as exc:
            raise Unauthorized(exc.message, headers=CHALLENGE) from None
        self._verified.put(fingerprint, user["id"], since)
        return await service.active_identity(user["id"], self.name)

    def invalidate(self, key: str | None) -> None:
        """Subscriber of the ``user`` topic: drop the verified pairs of the user whose
        id reads as ``key`` (a password change, a deactivation; all for ``None``)."""
        self._verified.forget(key, lambda _fingerprint, user_id: user_id)


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"auth": {"basic_cache": Setting("duration", 30.0, minimum=0,
                                            doc="how long a verified Basic pair is remembered")}}


@hookimpl
def swain_auth_providers(config: Config, runtime: Runtime) -> Iterable[AuthProvider]:
    if not auth_active(config):
        return []
    provider = BasicProvider(float(config.auth.basic_cache))
    runtime.invalidations.subscribe(USER_TOPIC, provider.invalidate)
    return [provider]


@hookimpl
def swain_spec_contributions(spec: Any, config: Config) -> None:
    if auth_active(config):
        docs.add_scheme(spec, "basicAuth", {"type": "http", "scheme": "basic"})
