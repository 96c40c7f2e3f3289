"""Google login (OpenID Connect): inert until ``[social.google]`` names a
``client_id``.

:class:`OidcProvider` is a generic OpenID Connect provider; Google is one
with Google's endpoints as defaults.  The ID token from the token endpoint is
the source of truth: its signature is checked against the provider's JWKS,
and its issuer, audience, expiry and nonce against this login.  Only
``email_verified: true`` counts as a verified address.  Endpoints may point
anywhere (a test provider, a proxy), or come from a discovery document.

Another OpenID Connect provider is a plugin of a few lines::

    @hookimpl
    def swain_config_sections():
        return {"social.acme": oidc_settings(discovery_url="https://id.acme.example/"
                                                           ".well-known/openid-configuration")}

    @hookimpl
    def swain_social_providers():
        return [OidcProvider("acme", "Acme")]
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jwt

from swain.core import Setting, Unauthorized, hookimpl

from . import social
from .social import AsyncOAuth2Client, JoseError, JsonWebKey, JsonWebToken

#: the social plugin runs the flow
requires = ("social",)

ALGORITHMS = ["RS256"]
#: seconds a provider's signing keys are kept before they are fetched again
JWKS_TTL = 3600.0


def oidc_settings(*, authorize_url: str | None = None, token_url: str | None = None,
                  jwks_url: str | None = None, issuer: list[str] | None = None,
                  discovery_url: str | None = None) -> dict[str, Setting]:
    """The ``[social.<name>]`` settings of an OpenID Connect provider, with its defaults."""
    return {
        "client_id": Setting("str", None),
        "client_secret": Setting("str", None, secret=True),
        "scope": Setting("str", "openid email profile"),
        "authorize_url": Setting("str", authorize_url),
        "token_url": Setting("str", token_url),
        "jwks_url": Setting("str", jwks_url),
        "issuer": Setting("list", issuer or [], doc="accepted ID token issuers"),
        "discovery_url": Setting("str", discovery_url, doc="OpenID discovery document; when "
                                 "set it supplies the endpoints and issuer"),
        "leeway": Setting("duration", 30.0, minimum=0, doc="clock skew allowed"),
    }


class OidcProvider:
    """An OpenID Connect provider, configured from ``[social.<name>]``."""

    oidc = True

    def __init__(self, name: str, title: str) -> None:
        self.name = name
        self.title = title

    def required_settings(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        if settings.get("discovery_url"):
            return ("client_secret",)
        return ("client_secret", "authorize_url", "token_url", "jwks_url")

    async def fetch_profile(self, flow: social.SocialFlow, client: AsyncOAuth2Client,
                            token: Mapping[str, Any], pending: social.Pending) -> social.Profile:
        return await fetch_profile(flow, client, token, pending)


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"social.google": oidc_settings(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        jwks_url="https://www.googleapis.com/oauth2/v3/certs",
        issuer=["https://accounts.google.com", "accounts.google.com"])}


@hookimpl
def swain_social_providers() -> list[OidcProvider]:
    return [OidcProvider("google", "Google")]


async def fetch_profile(flow: social.SocialFlow, client: AsyncOAuth2Client,
                        token: Mapping[str, Any], pending: social.Pending) -> social.Profile:
    """Who logged in, from the ID token of an OpenID Connect provider."""
    name = flow.name
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise Unauthorized(f"{name} answered without an ID token")
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
        raise Unauthorized(f"invalid {name} ID token: {exc}"[:200]) from None
    azp = claims.get("azp")
    if azp is not None and azp != settings.client_id:
        raise Unauthorized(f"invalid {name} ID token: azp is another client")
    sub = claims.get("sub")
    email = claims.get("email")
    return social.Profile(provider_user_id=sub if isinstance(sub, str) else "",
                          email=email if isinstance(email, str) else None,
                          email_verified=claims.get("email_verified") is True)


async def _signing_keys(flow: social.SocialFlow, client: AsyncOAuth2Client, *,
                        fresh: bool) -> Any:
    """The provider's key set, fetched at most once per :data:`JWKS_TTL` unless ``fresh``."""
    now = time.monotonic()
    cached = flow.cache.get("jwks")
    if cached is not None and cached[0] > now and not fresh:
        return cached[1]
    try:
        response = await client.get(await flow.endpoint("jwks_url"))
        response.raise_for_status()
        keys = JsonWebKey.import_key_set(response.json())
    except Exception:  # unreachable or malformed key set
        raise Unauthorized(f"{flow.name}'s signing keys could not be fetched") from None
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
