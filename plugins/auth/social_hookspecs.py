# Specs have no bodies: pluggy only reads their signatures and docstrings.
# mypy: disable-error-code="empty-body"
"""The hook the ``social`` plugin adds (through ``swain_addhooks``): login providers.

A provider is one object (:class:`SocialProvider`); the ``social`` plugin runs
the authorization-code flow for every provider whose ``[social.<name>]``
section sets a ``client_id``, so a new provider (a generic OpenID Connect
one, a company's own) is a plugin of its own and needs no change elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    from swain.core import Config, Runtime

    from .social import Pending, Profile, SocialFlow

hookspec = pluggy.HookspecMarker("swain")


@runtime_checkable
class SocialProvider(Protocol):
    """A login provider.  Its plugin also declares the ``[social.<name>]`` section
    (``client_id``, ``client_secret``, ``scope``, ``authorize_url``, ``token_url``
    and whatever ``fetch_profile`` reads)."""

    #: the path segment (``/auth/<name>/login``) and the config section name
    name: str
    #: how people call it ("Google"), for the documentation
    title: str
    #: OpenID Connect: the login sends a ``nonce`` the ID token must carry
    oidc: bool

    def required_settings(self, settings: Mapping[str, Any]) -> Iterable[str]:
        """The keys of ``[social.<name>]`` that must be set once ``client_id`` is."""

    async def fetch_profile(self, flow: SocialFlow, client: AsyncOAuth2Client,
                            token: Mapping[str, Any], pending: Pending) -> Profile:
        """Who logged in, from the token response (and the provider's API)."""


@hookspec
def swain_social_providers(config: Config, runtime: Runtime | None) -> Iterable[SocialProvider]:
    """Return social login providers; the ``social`` plugin serves
    ``/auth/<name>/login`` and ``/auth/<name>/callback`` for each one whose
    ``[social.<name>] client_id`` is set (and lists them all in ``swain social urls``).
    Of two providers with one name, the one collected first wins.  ``runtime`` is
    None when a tool lists the providers without serving the API (the console's
    social step asks for each one's settings)."""
