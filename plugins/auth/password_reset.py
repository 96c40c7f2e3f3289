"""Password reset by email (``docs/authentication.md``).

``POST /auth/password_reset`` (alias ``/auth/request-reset``) always answers
202 with the same body, whether or not the address exists, and does the rest
after answering, so neither the answer nor its timing depends on the address:
for an active user it stores a new random token (256 bits) as a SHA-256 hash
in the ``password_reset_token`` card and emails the link ``smtp.base_url`` +
``smtp.password_reset_path`` (``%s`` → the token); any other address gets an
email saying that no active account has it.  The request's Host header never
takes part in the link.

``POST /auth/password_reset/confirm`` (alias ``/auth/confirm-reset``) takes
``{"token", "new_password"}``.  In one transaction it marks the token used
(``usedat IS NULL`` in the WHERE clause, so of concurrent confirms exactly one
succeeds), sets the new password, uses up the user's other reset tokens and
ends all of the user's sessions.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from swain.core import (
    RUNTIME,
    BadRequest,
    Config,
    ConfigError,
    EmailMessage,
    Runtime,
    ServiceKey,
    hookimpl,
    invalid,
    json_response,
    public,
    read_json,
)
from swain.core.codec import dumps
from swain.plugins.mapping import utcnow

from . import docs
from .service import AUTH, AuthService, Background, auth_active, token_hash
from .smtp import Mailer
from .smtp import mailer as build_mailer

#: the account service, and the [smtp] settings the links and transports come from
requires = ("jwt", "smtp")

INVALID_TOKEN = "the reset token is invalid, used or expired"
ACCEPTED = {"status": "accepted",
            "message": "an email to this address says how to continue"}
log = logging.getLogger("swain")


def _active(config: Config) -> bool:
    return auth_active(config) and \
        config.section("mapping").get("password_reset_token") is not None


def check_link_settings(config: Config) -> None:
    smtp = config.section("smtp")
    base_url = smtp.get("base_url")
    if not base_url:
        raise ConfigError("smtp.base_url: required for password reset links (the front end's "
                          "origin, e.g. https://app.example.com)")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"smtp.base_url: expected an http(s) origin, got {base_url!r}")
    path = smtp.get("password_reset_path") or ""
    if path.count("%s") != 1 or "%" in path.replace("%s", ""):
        raise ConfigError(f"smtp.password_reset_path: must contain %s exactly once (where the "
                          f"token goes), got {path!r}")


def reset_link(config: Config, token: str) -> str:
    smtp = config.smtp
    base: str = smtp.base_url
    path: str = smtp.password_reset_path
    return base.rstrip("/") + path.replace("%s", quote(token, safe=""))


def _body(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadRequest("expected a JSON object")
    return value


class ResetFlow:
    def __init__(self, service: AuthService, mailer: Mailer) -> None:
        self.service = service
        self.mailer = mailer
        self.background = Background()

    def start(self, email: str) -> None:
        """Answer first, then look the address up and write to it: the answer and its
        timing are the same whether or not the address has an account."""
        self.background.spawn(self.request(email))

    async def request(self, email: str) -> None:
        service = self.service
        try:
            user = await service.find_by_email(email)
            token = secrets.token_urlsafe(32)
            if user is None or not service.is_active(user):
                # a round trip like the token's insert, so both cases cost the same
                await service.store.fetch_one("password_reset_token",
                                              [("token", "eq", token_hash(token))], ["id"])
                await self.mailer.deliver(self._no_account(email))
                return
            now = utcnow()
            card = service.cards["password_reset_token"]
            values: dict[str, Any] = {"userid": user["id"], "token": token_hash(token),
                                      "expiresat": now + dt.timedelta(
                                          seconds=float(service.config.auth.password_token_expiry))}
            if card.has("createdat"):
                values["createdat"] = now
            await service.store.insert("password_reset_token", values)
        except Exception as exc:
            log.error("password reset request failed: %s",
                      service.runtime.dialect.describe_error(exc) or type(exc).__name__)
            return
        link = reset_link(service.config, token)
        minutes = int(float(service.config.auth.password_token_expiry) // 60)
        await self.mailer.deliver(EmailMessage(
            to=str(user["email"]), subject="Reset your password",
            text=(f"Someone asked to reset the password of this account.\n\n"
                  f"To choose a new password, open this link within {minutes} minutes:\n\n"
                  f"{link}\n\nIf it was not you, ignore this email: your password stays as it is.")))

    def _no_account(self, email: str) -> EmailMessage:
        name = self.service.config.project.name
        return EmailMessage(
            to=email, subject="Reset your password",
            text=(f"Someone asked to reset the password of a {name} account with this address, "
                  "but no active account has it, so nothing was changed.\n\nIf it was you, "
                  "perhaps you signed up with another address.  If it was not, ignore this "
                  "email."))

    async def confirm(self, token: object, new_password: object) -> None:
        service = self.service
        if not isinstance(token, str) or not token or len(token) > 512:
            raise invalid("token", "required")
        password = service.passwords.check_policy(new_password, "new_password")
        row = await service.store.fetch_one("password_reset_token",
                                            [("token", "eq", token_hash(token))],
                                            ["id", "userid", "expiresat", "usedat"])
        if row is None or row.get("usedat") is not None:
            raise BadRequest(INVALID_TOKEN)
        expires = service.store.decode_time("password_reset_token", "expiresat", row["expiresat"])
        if expires is None or expires <= utcnow():
            raise BadRequest(INVALID_TOKEN)
        user = await service.find_by_id(row["userid"])
        if user is None or not service.is_active(user):
            raise BadRequest(INVALID_TOKEN)
        new_hash = await service.passwords.hash(password)
        now = utcnow()
        async with service.runtime.dialect.transaction() as conn:
            claimed = await service.store.update(
                "password_reset_token", [("id", "eq", row["id"]), ("usedat", "null", None)],
                {"usedat": now}, conn=conn)
            if claimed != 1:
                raise BadRequest(INVALID_TOKEN)
            await service.store.update("user", [("id", "eq", user["id"])],
                                       {"password": new_hash}, conn=conn)
            await service.store.update(
                "password_reset_token", [("userid", "eq", user["id"]), ("usedat", "null", None)],
                {"usedat": now}, conn=conn)
            await service.revoke_sessions(user["id"], conn=conn)
        await service.changed(user["id"])

    async def drain(self) -> None:
        await self.background.drain()


FLOW: ServiceKey[ResetFlow] = ServiceKey("swain.auth.password_reset", provider="password_reset")


def _flow(request: web.Request) -> ResetFlow:
    return request.app[RUNTIME].services.get(FLOW)


@public
async def request_reset(request: web.Request) -> web.Response:
    flow = _flow(request)
    body = _body(await read_json(request))
    email = body.get("email")
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        raise invalid("email", "expected an email address")
    await flow.service.limit(request, "reset", email)
    flow.start(email.strip())
    return json_response(dumps(ACCEPTED), status=202)


@public
async def confirm_reset(request: web.Request) -> web.Response:
    flow = _flow(request)
    body = _body(await read_json(request))
    await flow.service.limit(request, "reset", None)
    await flow.confirm(body.get("token"), body.get("new_password"))
    return json_response(dumps({"status": "password changed"}))


@hookimpl
def swain_startup(runtime: Runtime) -> None:
    if _active(runtime.config):
        runtime.services.provide(FLOW, ResetFlow(
            runtime.services.get(AUTH), build_mailer(runtime.config, runtime.email_transports)))


async def _drain(app: web.Application) -> AsyncIterator[None]:
    yield
    # emails still being sent finish (or fail and are logged) before the loop stops
    await app[RUNTIME].services.get(FLOW).drain()


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    if not _active(config):
        return []
    check_link_settings(config)
    return [web.post("/auth/password_reset", request_reset),
            web.post("/auth/request-reset", request_reset),
            web.post("/auth/password_reset/confirm", confirm_reset),
            web.post("/auth/confirm-reset", confirm_reset)]


@hookimpl
def swain_cleanup_ctx(config: Config) -> Iterable[Any]:
    return [_drain] if _active(config) else []


@hookimpl
def swain_spec_contributions(spec: Any, config: Config) -> None:
    if _active(config):
        docs.add_reset_paths(spec)
