"""Talking to a swain console: sign in, list projects and connections, fetch the
dynamic swagger document of a project's stage.

The console's address is remembered (not a secret) next to the credentials
file; the token itself goes to the keyring through :mod:`.auth`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from . import auth

DEFAULT_BASE = "http://127.0.0.1:8100"


class ConsoleError(Exception):
    """The console refused or could not be reached; the message says what to do."""


def config_file() -> Path:
    return auth.credentials_file().with_name("config.json")


def saved_base() -> str:
    """The console address: ``SWAIN_BASE``, else the one remembered at sign-in, else local."""
    env = os.environ.get("SWAIN_BASE")
    if env:
        return env.rstrip("/")
    path = config_file()
    if path.is_file():
        try:
            base = json.loads(path.read_text(encoding="utf-8")).get("swain_base")
        except ValueError:
            base = None
        if isinstance(base, str) and base:
            return base.rstrip("/")
    return DEFAULT_BASE


def remember_base(base: str) -> None:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"swain_base": base.rstrip("/")}), encoding="utf-8")


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def _get(base: str, path: str, token: str | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(base.rstrip("/") + path, params=params, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise ConsoleError(f"cannot reach the console at {base}: {exc}") from None
    if response.status_code == 401:
        raise ConsoleError(f"the console at {base} wants you to sign in: run "
                           f"`swain_cli auth login --swain-base {base}` ({_message(response)})")
    if response.status_code != 200:
        raise ConsoleError(f"{response.request.url} answered {response.status_code}: "
                           f"{_message(response)}")
    return response


def login(base: str, email: str, password: str) -> str:
    """Sign in; the access token."""
    try:
        response = httpx.post(base.rstrip("/") + "/api/login", timeout=60,
                              json={"email": email, "password": password})
    except httpx.HTTPError as exc:
        raise ConsoleError(f"cannot reach the console at {base}: {exc}") from None
    if response.status_code != 200:
        raise ConsoleError(f"sign-in refused: {_message(response)}")
    return str(response.json()["access_token"])


def projects(base: str, token: str | None) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = _get(base, "/api/projects", token).json()["data"]
    return data


def dynamic_swagger(base: str, project: str, connection: str, token: str | None) -> bytes:
    return _get(base, "/api/dynamic_swagger", token, project=project,
                connection=connection).content


def document_url(base: str, project: str, connection: str) -> str:
    return f"{base.rstrip('/')}/api/dynamic_swagger?project={project}&connection={connection}"


def masked(email: str) -> str:
    """``founder@acme.co`` → ``foun...co``, as the sign-in message shows it."""
    return f"{email[:4]}...{email[-2:]}" if len(email) > 6 else "***"
