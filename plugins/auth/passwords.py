"""Password hashing: argon2id for new hashes, bcrypt hashes of existing
databases verified (and re-hashed with argon2id on the next login).

Hashing takes tens to hundreds of milliseconds by design, so
:class:`Passwords` runs it in the default executor, never on the event loop.
The policy (minimum length, maximum bytes) is checked before any hashing, so a
huge password cannot be used to burn CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from functools import partial

import argon2
import bcrypt

from swain.core import Config, ConfigError, PasswordHasher, Setting, hookimpl, invalid


class Argon2Hasher:
    """argon2id (RFC 9106) with configurable cost."""

    name = "argon2id"

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                             parallelism=parallelism, type=argon2.Type.ID)

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith("$argon2")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, encoded: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(encoded, password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        return self._hasher.check_needs_rehash(encoded)


class BcryptHasher:
    """Verifies ``$2a$``/``$2b$``/``$2y$`` hashes; never used for new ones."""

    name = "bcrypt"

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith(("$2a$", "$2b$", "$2y$"))

    def hash(self, password: str) -> str:
        return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt()).decode()

    def verify(self, encoded: str, password: str) -> bool:
        data = password.encode()
        if len(data) > 72:
            # bcrypt only ever saw the first 72 bytes; newer bcrypt refuses more.
            data = data[:72]
        try:
            return bcrypt.checkpw(data, encoded.replace("$2y$", "$2b$", 1).encode())
        except ValueError:
            return False


class Passwords:
    """Hash, verify and police passwords off the event loop."""

    def __init__(self, hashers: Sequence[PasswordHasher], min_length: int, max_bytes: int) -> None:
        if not hashers:
            raise ConfigError("auth: no password hasher is enabled; enable the passwords plugin")
        self.hashers = list(hashers)
        self.min_length = min_length
        self.max_bytes = max_bytes
        self._dummy: str | None = None

    def check_policy(self, password: object, path: str) -> str:
        if not isinstance(password, str):
            raise invalid(path, "expected a string")
        if len(password) < self.min_length:
            raise invalid(path, f"at least {self.min_length} characters")
        if len(password.encode()) > self.max_bytes:
            raise invalid(path, f"at most {self.max_bytes} bytes")
        return password

    def acceptable_length(self, password: str) -> bool:
        return len(password.encode()) <= self.max_bytes

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.hashers[0].hash, password)

    def _verify(self, encoded: str | None, password: str) -> tuple[bool, bool]:
        """(matches, should be re-hashed); an unknown or missing hash verifies
        against a dummy so the work done is the same (anti-enumeration)."""
        hasher = next((h for h in self.hashers if encoded and h.identifies(encoded)), None)
        if hasher is None or encoded is None:
            if self._dummy is None:
                self._dummy = self.hashers[0].hash("dummy password for equal work")
            self.hashers[0].verify(self._dummy, password)
            return False, False
        ok = hasher.verify(encoded, password)
        rehash = ok and (hasher is not self.hashers[0] or
                         bool(getattr(hasher, "needs_rehash", lambda _e: False)(encoded)))
        return ok, rehash

    async def verify(self, encoded: str | None, password: str) -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, partial(self._verify, encoded, password))

    async def warm_up(self) -> None:
        """Compute the dummy hash at startup, so the first unknown-address login
        costs the same as the others."""
        await self.verify(None, "warm up")


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"auth": {
        "password_min_length": Setting("int", 8, minimum=1),
        "password_max_bytes": Setting("int", 256, minimum=16,
                                      doc="longer passwords are refused before hashing"),
        "argon2_time_cost": Setting("int", 3, minimum=1),
        "argon2_memory_kib": Setting("int", 65536, minimum=8),
        "argon2_parallelism": Setting("int", 4, minimum=1),
    }}


@hookimpl
def swain_password_hashers(config: Config) -> Iterable[PasswordHasher]:
    auth = config.auth
    return [Argon2Hasher(auth.argon2_time_cost, auth.argon2_memory_kib, auth.argon2_parallelism),
            BcryptHasher()]
