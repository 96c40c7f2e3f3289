"""Encryption at rest for the console's secrets (database passwords, JWT
secrets, SMTP and OAuth secrets): Fernet (AES-128-CBC with HMAC-SHA256).

The key comes from ``SWAIN_CONSOLE_KEY`` or from a key file the console makes
on first start, readable only by its owner (0600).  A secret is stored only as
its ciphertext; the plain value exists in memory while a connection is opened
or a deployment is started, and is never rendered, logged or put in an error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_ENV = "SWAIN_CONSOLE_KEY"


class ConsoleKeyError(Exception):
    """The key cannot be read, or does not open what the store holds."""


def load_key(key_file: Path, environ: dict[str, str] | None = None) -> bytes:
    """The Fernet key: ``SWAIN_CONSOLE_KEY``, else ``key_file`` (made 0600 on first use)."""
    environ = dict(os.environ) if environ is None else environ
    given = environ.get(KEY_ENV)
    if given:
        key = given.strip().encode()
        _check(key, KEY_ENV)
        return key
    if key_file.exists():
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            raise ConsoleKeyError(f"{key_file}: the console key file must be private (chmod 600), "
                            f"it is {mode:o}")
        key = key_file.read_bytes().strip()
        _check(key, str(key_file))
        return key
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def _check(key: bytes, where: str) -> None:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise ConsoleKeyError(f"{where}: not a console key (32 url-safe base64-encoded bytes; make "
                        "one with: python -c 'from cryptography.fernet import Fernet; "
                        "print(Fernet.generate_key().decode())')") from None


class Vault:
    """Encrypts and decrypts secrets with the console key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise ConsoleKeyError("a stored secret cannot be decrypted: the console key is not the "
                            f"one the store was written with (check {KEY_ENV} or the key "
                            "file)") from None

    def open_for(self, sealed: str, ttl: int) -> str | None:
        """A value sealed at most ``ttl`` seconds ago, else ``None`` (short-lived cookies)."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii"), ttl=ttl).decode("utf-8")
        except (InvalidToken, ValueError):
            return None
