"""Accounts and bearer tokens: signup, login, the OAuth2 password grant,
refresh, logout and ``/auth/me`` (``docs/authentication.md``).

Access tokens are JWTs (see :mod:`.tokens`).  Refresh tokens depend on the
mapping: with the ``session`` card mapped they are opaque random strings
(``<session id>.<secret>``, the secret carrying an HMAC of the session id, so
a token the server never issued is refused without touching any session),
stored only as a hash, rotated on every refresh; presenting a rotated one
revokes the session.  Without the session card
they are signed JWTs of type ``refresh`` bound to the current password (a
password change invalidates them); logout is then client-side: the server
has nothing to revoke, and a refresh token stays usable until it expires.

This plugin also builds the :class:`~.service.AuthService` the other
credential plugins share, and provides it as the ``AUTH`` service.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiohttp import web

from swain.core import (
    IDENTITY,
    RUNTIME,
    AuthProvider,
    BadRequest,
    Config,
    ConfigError,
    Forbidden,
    Identity,
    Runtime,
    Schema,
    Setting,
    Unauthorized,
    WritePreparer,
    credential,
    hookimpl,
    json_response,
    public,
    read_json,
)
from swain.core.codec import dumps
from swain.core.invalidation import Watch
from swain.core.tableapi import read_body
from swain.plugins import mapping

from . import census, docs
from .password_column import PasswordColumn, mark_write_only
from .passwords import Passwords
from .service import AUTH, USER_TOPIC, AuthService, accounts, auth_active, user_watch
from .smtp import Mailer
from .smtp import mailer as build_mailer
from .tokens import ALGORITHMS, TokenSigner

log = logging.getLogger("swain")

#: the cards (and their secret columns) and the hashers the accounts stand on
requires = ("mapping", "passwords")


def _body(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadRequest("expected a JSON object")
    return value


#: the answer to every private signup
SIGNUP_ACCEPTED = {"status": "accepted",
                   "message": "check your email: it says how to continue"}


@public
async def signup(request: web.Request) -> web.Response:
    service = accounts(request)
    if not service.config.auth.signup_enabled:
        raise Forbidden("signup is disabled (auth.signup_enabled)")
    body = _body(await read_json(request))
    # Validate first: a user correcting a typo should not use up the limit.
    email = service.signup_values(body)[0]
    await service.limit(request, "signup", email)
    if service.private_signup:
        service.signup_privately(body)
        return json_response(dumps(SIGNUP_ACCEPTED), status=202)
    user, tokens = await service.signup(body)
    return json_response(dumps({"user": user, **tokens}), status=201)


@public
async def login(request: web.Request) -> web.Response:
    service = accounts(request)
    body = _body(await read_json(request))
    name, field = service.login_name(body)
    await service.limit(request, "login", name if isinstance(name, str) else None)
    user = await service.check_password(name, body.get("password"), field)
    return json_response(dumps(await service.issue_pair(user)))


@public
async def token(request: web.Request) -> web.Response:
    """OAuth2 resource-owner password grant (form-encoded), for Swagger UI's Authorize."""
    service = accounts(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("expected a form-encoded body (application/x-www-form-urlencoded) with "
                         "username and password")
    await read_body(request)  # bounded in time and size; post() parses what it read
    form = await request.post()
    grant = form.get("grant_type", "password")
    if grant != "password":
        raise BadRequest("unsupported grant_type (only password)")
    username = form.get("username")
    username = username if isinstance(username, str) else None
    await service.limit(request, "login", username)
    password = form.get("password")
    user = await service.check_password(username, password if isinstance(password, str) else None,
                                        "either")
    return json_response(dumps(await service.issue_pair(user)),
                         headers={"Cache-Control": "no-store"})


@public
async def refresh(request: web.Request) -> web.Response:
    service = accounts(request)
    body = _body(await read_json(request))
    await service.limit(request, "refresh", None)
    return json_response(dumps(await service.refresh(body.get("refresh_token"))))


@public
async def logout(request: web.Request) -> web.Response:
    service = accounts(request)
    body = _body(await read_json(request))
    await service.limit(request, "logout", None)
    await service.logout(body.get("refresh_token"))
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    service = accounts(request)
    identity = request.get(IDENTITY)
    if identity is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": "Bearer"})
    user = await service.public_user(identity.user_id)
    return json_response(dumps({"user": user, "roles": sorted(identity.roles),
                                "permissions": sorted(identity.permissions),
                                "tenant": identity.tenant, "provider": identity.provider}))


@public
async def jwks(request: web.Request) -> web.Response:
    jwk = accounts(request).signer.public_jwk
    return json_response(dumps({"keys": [jwk] if jwk else []}))


class BearerProvider:
    """``Authorization: Bearer <access token>``."""

    name = "jwt"

    async def authenticate(self, request: web.Request) -> Identity | None:
        header = credential(request, "Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        service = accounts(request)
        claims = service.signer.verify(credentials.strip(), "access")
        return await service.active_identity(service.user_id(claims["sub"]), self.name, claims)


async def _warm_up(app: web.Application) -> AsyncIterator[None]:
    service = app[RUNTIME].services.get(AUTH)
    await service.passwords.warm_up()
    await census.at_startup(service.store, service.passwords)
    yield
    await service.background.drain()  # private signups answered, not yet done


def _mailer(runtime: Runtime) -> Mailer | None:
    """The email transport private signups tell their outcome through, if any."""
    config = runtime.config
    if not runtime.email_transports or not config.has_section("smtp"):
        return None
    return build_mailer(config, runtime.email_transports)


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"auth": {
        "jwt_secret": Setting("str", None, secret=True, doc="HS256 secret, at least 32 bytes"),
        "jwt_algorithm": Setting("str", "HS256", choices=ALGORITHMS),
        "jwt_private_key_file": Setting("str", None, doc="PEM key for RS256/ES256"),
        "jwt_public_key_file": Setting("str", None, doc="PEM public key (default: derived)"),
        "jwt_issuer": Setting("str", None, doc="iss claim (default: project.name)"),
        "access_token_expiry": Setting("duration", 3600.0, minimum=10),
        "refresh_token_expiry": Setting("duration", 7 * 86400.0, minimum=60),
        "password_token_expiry": Setting("duration", 3600.0, minimum=60),
        "identity_cache": Setting("duration", 10.0, minimum=0,
                                  doc="how long a deactivated user's access tokens still work"),
        "signup_enabled": Setting("bool", True),
        "signup_answer": Setting("str", "accepted", choices=("accepted", "tokens"),
                                 doc="accepted: 202 whether or not the address has an account, "
                                     "the email tells; tokens: 201 with tokens, 409 for a taken "
                                     "address (which reveals it)"),
        "signup_active": Setting("bool", True, doc="whether new accounts start active"),
        "signup_allow_is_active": Setting("bool", False,
                                          doc="let the signup body's is_active activate an "
                                              "account where signup_active is false"),
        "signup_protected_columns": Setting("list", [],
                                            doc="user columns additional_data may never set"),
    }}


def _check(config: Config) -> bool:
    if not auth_active(config):
        return False
    mapping.parse(config)  # refuse to start on a malformed card, naming its key
    TokenSigner(config)  # refuse a weak secret or unusable key now, not at first login
    return True


# tryfirst: a bearer token is what most requests carry and the cheapest to check, so
# it is asked before the other credentials (as it always was).
@hookimpl(tryfirst=True)
def swain_auth_providers(config: Config) -> Iterable[AuthProvider]:
    return [BearerProvider()] if _check(config) else []


# tryfirst: the other auth plugins' startups use the account service.
@hookimpl(tryfirst=True)
def swain_startup(runtime: Runtime) -> None:
    config = runtime.config
    if not auth_active(config):
        return
    service = AuthService(config=config, runtime=runtime, cards=mapping.parse(config),
                          signer=TokenSigner(config), passwords=Passwords.from_runtime(runtime))
    if service.private_signup and config.auth.signup_enabled:
        service.mailer = _mailer(runtime)
        if service.mailer is None:
            log.warning("auth.signup_answer = \"accepted\": no email transport is enabled, so "
                        "signups cannot tell anyone what happened")
    runtime.services.provide(AUTH, service)
    runtime.invalidations.subscribe(USER_TOPIC, service.invalidate)


@hookimpl
def swain_prepare_schema(schema: Schema, config: Config) -> None:
    if auth_active(config):
        mark_write_only(schema, mapping.parse(config)["user"])


@hookimpl
def swain_write_preparers(config: Config, runtime: Runtime) -> Iterable[WritePreparer]:
    if not auth_active(config):
        return []
    return [PasswordColumn(runtime, mapping.parse(config)["user"])]


@hookimpl
def swain_invalidation_watches(config: Config) -> Iterable[Watch]:
    return [user_watch(config, mapping.parse(config))] if auth_active(config) else []


@hookimpl
def swain_cleanup_ctx(config: Config) -> Iterable[Any]:
    # The dummy hash is computed (and the stored formats timed and counted) once at
    # startup, so the first unknown-address login costs the same as the others.
    return [_warm_up] if auth_active(config) else []


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    if not auth_active(config):
        return []
    routes = [
        web.post("/auth/signup", signup), web.post("/auth/register", signup),
        web.post("/auth/login", login), web.post("/auth/token", token),
        web.post("/auth/refresh", refresh), web.post("/auth/logout", logout),
        web.get("/auth/me", me),
    ]
    if config.auth.jwt_algorithm != "HS256":
        routes.append(web.get("/.well-known/jwks.json", jwks))
    return routes


@hookimpl
def swain_spec_contributions(spec: Any, schema: Schema, config: Config) -> None:
    if not auth_active(config):
        return
    docs.add_scheme(spec, "bearerAuth", {"type": "http", "scheme": "bearer",
                                         "bearerFormat": "JWT"})
    docs.add_scheme(spec, "oauth2Password", {"type": "oauth2", "flows": {"password": {
        "tokenUrl": "/auth/token", "refreshUrl": "/auth/refresh", "scopes": {}}}})
    card = mapping.parse(config)["user"]
    user = schema.tables.get(card.table)
    properties: dict[str, Any] = {c.name: {} for c in user.visible_columns} if user else {}
    docs.add_account_paths(spec, {"type": "object", "properties": properties,
                                  "description": "A row of the user table (no secret columns)."},
                           jwks=config.auth.jwt_algorithm != "HS256",
                           username=card.has("username"),
                           private_signup=config.auth.signup_answer == "accepted")


__all__ = ["AUTH", "AuthService", "BearerProvider", "ConfigError"]
