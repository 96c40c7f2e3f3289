"""Google login (OpenID Connect, SPEC §12): inert until ``[social.google]``
names a ``client_id``.

The ID token from the token endpoint is the source of truth: its signature
is checked against the provider's JWKS, and its issuer, audience, expiry and
nonce against this login.  Only ``email_verified: true`` counts as a
verified address.  Endpoints default to Google's and may point anywhere (a
test provider, a proxy).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import click
import jwt
from aiohttp import web

from swain.core import Config, Setting, Unauthorized, hookimpl

from . import social
from .social import AsyncOAuth2Client, JoseError, JsonWebKey, JsonWebToken

NAME = "google"
ALGORITHMS = ["RS256"]
#: seconds Google's signing keys are kept before they are fetched again
JWKS_TTL = 3600.0


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"social": social.SOCIAL_SETTINGS, "social.google": {
        "client_id": Setting("str", None),
        "client_secret": Setting("str", None, secret=True),
        "scope": Setting("str", "openid email profile"),
        "authorize_url": Setting("str", "https://accounts.google.com/o/oauth2/v2/auth"),
        "token_url": Setting("str", "https://oauth2.googleapis.com/token"),
        "jwks_url": Setting("str", "https://www.googleapis.com/oauth2/v3/certs"),
        "issuer": Setting("list", ["https://accounts.google.com", "accounts.google.com"],
                          doc="accepted ID token issuers"),
        "discovery_url": Setting("str", None, doc="OpenID discovery document; when set it "
                                                  "supplies the endpoints and issuer"),
        "leeway": Setting("duration", 30.0, minimum=0, doc="clock skew allowed"),
    }}


async def fetch_profile(flow: social.SocialFlow, client: AsyncOAuth2Client,
                        token: Mapping[str, Any], pending: social.Pending) -> social.Profile:
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise Unauthorized("google answered without an ID token")
    settings = flow.settings
    keys = await _signing_keys(flow, client, fresh=False)
    if not _holds(keys, id_token):
        # Google rotates its keys: one the cached set lacks means fetching again
        keys = await _signing_keys(flow, client, fresh=True)
    issuers = list(await flow.endpoint("issuer"))
    try:
        claims = JsonWebToken(ALGORITHMS).decode(id_token, keys, claims_options={
            "iss": {"essential": True, "values": issuers},
            "aud": {"essential": True, "value": settings.client_id},
            "exp": {"essential": True},
            "sub": {"essential": True},
            "nonce": {"essential": True, "value": pending.nonce}})
        claims.validate(leeway=int(settings.leeway))
    except (JoseError, ValueError) as exc:
        raise Unauthorized(f"invalid google ID token: {exc}"[:200]) from None
    azp = claims.get("azp")
    if azp is not None and azp != settings.client_id:
        raise Unauthorized("invalid google ID token: azp is another client")
    sub = claims.get("sub")
    email = claims.get("email")
    return social.Profile(provider_user_id=sub if isinstance(sub, str) else "",
                          email=email if isinstance(email, str) else None,
                          email_verified=claims.get("email_verified") is True)


async def _signing_keys(flow: social.SocialFlow, client: AsyncOAuth2Client, *,
                        fresh: bool) -> Any:
    """Google's key set, fetched at most once per :data:`JWKS_TTL` unless ``fresh``."""
    now = time.monotonic()
    cached = flow.cache.get("jwks")
    if cached is not None and cached[0] > now and not fresh:
        return cached[1]
    try:
        response = await client.get(await flow.endpoint("jwks_url"))
        response.raise_for_status()
        keys = JsonWebKey.import_key_set(response.json())
    except Exception:  # unreachable or malformed key set
        raise Unauthorized("google's signing keys could not be fetched") from None
    flow.cache["jwks"] = (now + JWKS_TTL, keys)
    return keys


def _holds(keys: Any, id_token: str) -> bool:
    """Whether the key set has the key the token names (its header's ``kid``)."""
    try:
        kid = jwt.get_unverified_header(id_token).get("kid")
        keys.find_by_kid(kid)
    except (jwt.PyJWTError, ValueError):
        return False
    return True


def _active(config: Config) -> bool:
    return social.configured(config, NAME)


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    if not _active(config):
        return []
    social.check_settings(config, NAME, ("client_secret",) if config.section(
        "social.google").get("discovery_url") else ("client_secret", "authorize_url",
                                                    "token_url", "jwks_url"))
    return social.SocialFlow(NAME, config, fetch_profile, oidc=True).routes()


@hookimpl
def swain_spec_contributions(spec: Any, config: Config) -> None:
    if _active(config):
        social.add_paths(spec, NAME, "Google")


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    social.add_cli(cli)
