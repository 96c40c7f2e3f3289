"""Credentials for ``--swain-base``: the system keyring, or a 0600 file fallback."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

SERVICE = "swain_cli"
ACCOUNT = "token"


def credentials_file() -> Path:
    """The fallback file used when no real keyring backend exists."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "swain_cli" / "credentials.json"


def keyring_backend() -> str | None:
    """The usable keyring backend's name, or None when only a fail/null backend exists."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or "null" in type(backend).__module__.lower():
        return None
    return f"{type(backend).__module__}.{type(backend).__name__}"


def save_token(token: str) -> str:
    """Store the token; return where it went ("keyring" or the file path)."""
    if keyring_backend() is not None:
        import keyring
        keyring.set_password(SERVICE, ACCOUNT, token)
        return "keyring"
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    warnings.warn(f"no system keyring available; storing the token in {path} (mode 0600)",
                  stacklevel=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"token": token}, handle)
    os.chmod(path, 0o600)
    return str(path)


def load_token() -> tuple[str | None, str | None]:
    """The token and its source: SWAIN_TOKEN, the keyring, or the file."""
    env = os.environ.get("SWAIN_TOKEN")
    if env:
        return env, "SWAIN_TOKEN"
    if keyring_backend() is not None:
        import keyring
        token = keyring.get_password(SERVICE, ACCOUNT)
        if token:
            return token, "keyring"
    path = credentials_file()
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))["token"], str(path)
        except (ValueError, KeyError):
            return None, None
    return None, None


def delete_token() -> bool:
    """Forget the stored token; True when something was removed."""
    removed = False
    if keyring_backend() is not None:
        import keyring
        from keyring.errors import PasswordDeleteError
        try:
            keyring.delete_password(SERVICE, ACCOUNT)
            removed = True
        except PasswordDeleteError:
            pass
    path = credentials_file()
    if path.is_file():
        path.unlink()
        removed = True
    return removed
