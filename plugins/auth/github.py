"""GitHub login (OAuth 2, SPEC §12): inert until ``[social.github]`` names a
``client_id``.

The profile is ``GET /user`` (its numeric ``id`` is the provider user id)
and the address is the one ``GET /user/emails`` marks both primary and
verified; the public ``email`` of ``/user`` is never trusted.  ``api_base_url``
and the OAuth URLs point at GitHub Enterprise or a test provider when set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click
from aiohttp import web

from swain.core import Config, Setting, Unauthorized, hookimpl

from . import social
from .social import AsyncOAuth2Client

NAME = "github"


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"social": social.SOCIAL_SETTINGS, "social.github": {
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


def _active(config: Config) -> bool:
    return social.configured(config, NAME)


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    if not _active(config):
        return []
    social.check_settings(config, NAME, ("client_secret", "authorize_url", "token_url",
                                         "api_base_url"))
    return social.SocialFlow(NAME, config, fetch_profile, oidc=False).routes()


@hookimpl
def swain_spec_contributions(spec: Any, config: Config) -> None:
    if _active(config):
        social.add_paths(spec, NAME, "GitHub")


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    social.add_cli(cli)
