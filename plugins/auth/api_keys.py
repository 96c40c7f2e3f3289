"""API keys: ``X-API-Key: <key>``.

Keys are random (256 bits), shown once when created, stored only as a
SHA-256 hash in the ``api_key`` card, and refused once ``revokedat`` is set
or their owner is inactive.  ``POST /auth/api_keys`` creates one,
``GET /auth/api_keys`` lists the caller's (never the key itself),
``DELETE /auth/api_keys/{id}`` revokes one.  Managing keys needs a login
(bearer or Basic): a leaked key cannot mint more keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from swain.core import (
    IDENTITY,
    AuthProvider,
    BadRequest,
    Config,
    ConfigError,
    Forbidden,
    Identity,
    NotFound,
    Runtime,
    Setting,
    Unauthorized,
    ValidationFailed,
    audit_event,
    credential,
    hookimpl,
    invalid,
    json_response,
    read_json,
)
from swain.core.codec import dumps, parse_value
from swain.core.invalidation import MISSING, TimedCache, Watch
from swain.plugins.mapping import parse, utcnow

from . import docs
from .service import API_KEY_TOPIC, AuthService, accounts, auth_active, token_hash

#: keys belong to the account service's users
requires = ("jwt",)

PREFIX = "swk_"
HEADER = "X-API-Key"


def _owner_role(service: AuthService) -> str:
    return "userid" if service.cards["api_key"].has("userid") else "accountid"


def _owner(service: AuthService, identity: Identity) -> Any:
    return identity.user_id if _owner_role(service) == "userid" else identity.tenant


def _manager(request: web.Request) -> tuple[AuthService, Identity]:
    identity = request.get(IDENTITY)
    if identity is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": "Bearer"})
    if identity.provider == "api_key":
        raise Forbidden("API keys cannot manage API keys; log in with a password or token")
    service = accounts(request)
    if _owner(service, identity) is None:
        raise Forbidden("this account has no owner for API keys (mapping.api_key.accountid "
                        "needs a tenant)")
    return service, identity


def _listing(service: AuthService, row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row.get("name"), "created_at": row.get("createdat"),
            "revoked_at": row.get("revokedat")}


async def create_key(request: web.Request) -> web.Response:
    service, identity = _manager(request)
    body: Any = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, Mapping):
        raise BadRequest("expected a JSON object")
    for key in body:
        if key != "name":
            raise invalid(key, "unknown field (allowed: name)")
    card = service.cards["api_key"]
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid("name", "expected a string")
    key = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    values: dict[str, Any] = {_owner_role(service): _owner(service, identity),
                              "key": token_hash(key)}
    if card.has("createdat"):
        values["createdat"] = now
    if card.has("name") and name is not None:
        values["name"] = name
    key_id = await service.store.insert("api_key", values)
    await service.runtime.audit([audit_event(identity, "api_key.create", card.table,
                                             {"id": key_id})])
    return json_response(dumps({"id": key_id, "key": key, "name": name, "created_at": now,
                                "revoked_at": None}), status=201,
                         headers={"Cache-Control": "no-store"})


async def list_keys(request: web.Request) -> web.Response:
    service, identity = _manager(request)
    roles = [r for r in ("id", "name", "createdat", "revokedat")
             if service.cards["api_key"].has(r)]
    rows = await service.store.fetch("api_key", [(_owner_role(service), "eq",
                                                  _owner(service, identity))], roles)
    return json_response(dumps({"data": [_listing(service, r) for r in rows]}))


async def revoke_key(request: web.Request) -> web.Response:
    service, identity = _manager(request)
    column = service.store.column("api_key", "id")
    try:
        key_id = parse_value(column, request.match_info["id"], "id", from_text=True)
    except ValidationFailed:
        raise NotFound("no such API key") from None
    owner = (_owner_role(service), "eq", _owner(service, identity))
    changed = await service.store.update(
        "api_key", [("id", "eq", key_id), owner, ("revokedat", "null", None)],
        {"revokedat": utcnow()})
    if changed != 1:
        exists = await service.store.fetch_one("api_key", [("id", "eq", key_id), owner], ["id"])
        if exists is None:
            raise NotFound("no such API key")
    else:
        await service.runtime.invalidations.publish(API_KEY_TOPIC, key_id)
        await service.runtime.audit([audit_event(identity, "api_key.revoke",
                                                 service.cards["api_key"].table, {"id": key_id})])
    return json_response(dumps({"id": key_id, "revoked": True}))


class ApiKeyProvider:
    """``X-API-Key``: a live key of an active owner.

    A live key's row is remembered for ``auth.api_key_cache`` seconds under the
    key's hash; revoking or deleting it drops it on every instance at once
    (the ``api_key`` invalidation topic), and the time limit covers instances
    that were not told.  Unknown and revoked keys are never remembered."""

    name = "api_key"

    def __init__(self, ttl: float) -> None:
        #: hash of a live key -> its row
        self._live: TimedCache[str, dict[str, Any]] = TimedCache(ttl)

    async def authenticate(self, request: web.Request) -> Identity | None:
        key = credential(request, HEADER, HEADER)
        if key is None:
            return None
        service = accounts(request)
        if not key.startswith(PREFIX) or len(key) > 200:
            raise Unauthorized("invalid API key", headers={"WWW-Authenticate": HEADER})
        role = _owner_role(service)
        digest = token_hash(key)
        found = self._live.fresh(digest)
        row: dict[str, Any] | None
        if found is MISSING:
            since = self._live.epoch
            row = await service.store.fetch_one(
                "api_key", [("key", "eq", digest), ("revokedat", "null", None)], ["id", role])
            if row is not None:
                self._live.put(digest, row, since)
        else:
            row = found
        if row is None:
            raise Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": HEADER})
        claims = {"api_key_id": row["id"]}
        if role == "userid":
            return await service.active_identity(row["userid"], self.name, claims)
        return Identity(user_id=None, provider=self.name, tenant=row["accountid"], claims=claims)

    def invalidate(self, key: str | None) -> None:
        """Subscriber of the ``api_key`` topic: forget the key whose row id reads as
        ``key`` (every key for ``None``)."""
        self._live.forget(key, lambda _digest, row: row["id"])


def _active(config: Config) -> bool:
    return auth_active(config) and config.section("mapping").get("api_key") is not None


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"auth": {"api_key_cache": Setting(
        "duration", 10.0, minimum=0, doc="how long a live API key is remembered (a revoked "
                                         "one still works this long on an instance not told)")}}


@hookimpl
def swain_auth_providers(config: Config, runtime: Runtime) -> Iterable[AuthProvider]:
    if not _active(config):
        return []
    provider = ApiKeyProvider(float(config.auth.api_key_cache))
    runtime.invalidations.subscribe(API_KEY_TOPIC, provider.invalidate)
    return [provider]


@hookimpl
def swain_invalidation_watches(config: Config) -> Iterable[Watch]:
    """The key table: a revoked, deleted or re-owned key must stop working at once."""
    if not _active(config):
        return []
    card = parse(config)["api_key"]
    columns = [card.column(r) for r in ("id", "key", "revokedat", "userid", "accountid")
               if card.has(r)]
    return [Watch(card.table, API_KEY_TOPIC, card.column("id"), tuple(columns))]


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    if not _active(config):
        return []
    return [web.post("/auth/api_keys", create_key), web.get("/auth/api_keys", list_keys),
            web.delete("/auth/api_keys/{id}", revoke_key)]


@hookimpl
def swain_spec_contributions(spec: Any, config: Config) -> None:
    if _active(config):
        docs.add_scheme(spec, "apiKeyAuth", {"type": "apiKey", "in": "header", "name": HEADER})
        docs.add_api_key_paths(spec)


__all__ = ["ApiKeyProvider", "ConfigError"]
