"""GitHub login (OAuth 2): inert until ``[social.github]`` names a
``client_id``.

The profile is ``GET /user`` (its numeric ``id`` is the provider user id)
and the address is the one ``GET /user/emails`` marks both primary and
verified; the public ``email`` of ``/user`` is never trusted.  ``api_base_url``
and the OAuth URLs point at GitHub Enterprise or a test provider when set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swain.core import Setting, Unauthorized, hookimpl

from . import social
from .social import AsyncOAuth2Client

#: the social plugin runs the flow
requires = ("social",)


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"social.github": {
        "client_id": Setting("str", None),
        "client_secret": Setting("str", None, secret=True),
        "scope": Setting("str", "read:user user:email"),
        "authorize_url": Setting("str", "https://github.com/login/oauth/authorize"),
        "token_url": Setting("str", "https://github.com/login/oauth/access_token"),
        "api_base_url": Setting("str", "https://api.github.com"),
    }}


async def _get_json(client: AsyncOAuth2Client, url: str) -> Any:
    try:
        response = await client.get(url, headers={"Accept": "application/vnd.github+json"})
        response.raise_for_status()
        return response.json()
    except Exception:  # unreachable, refused or not JSON
        raise Unauthorized("github profile could not be read") from None


async def fetch_profile(flow: social.SocialFlow, client: AsyncOAuth2Client,
                        token: Mapping[str, Any], pending: social.Pending) -> social.Profile:
    base = flow.settings.api_base_url.rstrip("/")
    user = await _get_json(client, f"{base}/user")
    emails = await _get_json(client, f"{base}/user/emails")
    if not isinstance(user, Mapping) or not isinstance(emails, list):
        raise Unauthorized("github profile could not be read")
    raw_id = user.get("id")
    user_id = str(raw_id) if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) \
        else ""
    primary = [e for e in emails if isinstance(e, Mapping) and e.get("primary") is True
               and e.get("verified") is True and isinstance(e.get("email"), str)]
    email = primary[0]["email"] if primary else None
    return social.Profile(provider_user_id=user_id.strip(), email=email,
                          email_verified=email is not None)


class GitHubProvider:
    name = "github"
    title = "GitHub"
    oidc = False

    def required_settings(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        return ("client_secret", "authorize_url", "token_url", "api_base_url")

    async def fetch_profile(self, flow: social.SocialFlow, client: AsyncOAuth2Client,
                            token: Mapping[str, Any], pending: social.Pending) -> social.Profile:
        return await fetch_profile(flow, client, token, pending)


@hookimpl
def swain_social_providers() -> list[GitHubProvider]:
    return [GitHubProvider()]
