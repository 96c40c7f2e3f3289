"""Password hashing: argon2id for new hashes; the stored hashes of other formats
verified (and re-hashed with argon2id at the next login) when their format is
enabled in ``[auth] password_formats``.

Hashing takes tens to hundreds of milliseconds by design, so
:class:`Passwords` runs it in the default executor, never on the event loop.
The policy (minimum length, maximum bytes) is checked before any hashing, so a
huge password cannot be used to burn CPU.

Formats cost different amounts of work, so the time a login takes could tell
an attacker which format an account's hash has, or whether the account exists
at all (an unknown address verifies a dummy argon2id hash).  :class:`Pace`
therefore lets no verification answer sooner than the slowest one seen
recently, the start-up calibration included (see :meth:`Passwords.calibrate`).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import argon2

from swain.core import (
    Config,
    ConfigError,
    HashInfo,
    PasswordHasher,
    PasswordVerifier,
    Runtime,
    Setting,
    hookimpl,
    invalid,
)
from swain.core.plugins import collect

from .hashing import Family, Prepared, argon2_prepared, bcrypt_prepared

log = logging.getLogger("swain")

#: the formats that verify by default besides argon2id: the salted, iterated
#: ones; the weak ones (ASP.NET Identity v2, Spring's ``{sha256}``) only by name
DEFAULT_FORMATS = ("bcrypt", "django", "werkzeug", "aspnet", "spring")
#: the formats of the built-in plugins (``passwords``, ``hash_formats``): named while
#: their plugin is disabled, they stay off rather than stop the app
BUILTIN_FORMATS = (*DEFAULT_FORMATS, "argon2", "aspnet_v2", "spring_sha256")
#: the pace key of a login whose account or hash format is unknown
UNKNOWN = "(none)"


class Argon2Hasher(Family):
    """argon2id (RFC 9106) with configurable cost; verifies any ``$argon2…$`` hash."""

    name = "argon2"

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                             parallelism=parallelism, type=argon2.Type.ID)

    def label(self, encoded: str) -> str | None:
        if encoded.startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
            return encoded.split("$", 2)[1]
        return None

    def prepare(self, label: str, encoded: str) -> Prepared:
        return argon2_prepared(encoded)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def needs_rehash(self, encoded: str) -> bool:
        return self._hasher.check_needs_rehash(encoded)


class BcryptHasher(Family):
    """Verifies ``$2a$``/``$2b$``/``$2y$`` hashes (Laravel, Rails, Node …)."""

    name = "bcrypt"

    def label(self, encoded: str) -> str | None:
        return "bcrypt" if encoded.startswith(("$2a$", "$2b$", "$2y$")) else None

    def prepare(self, label: str, encoded: str) -> Prepared:
        return bcrypt_prepared(encoded)


def stored_text(value: object) -> str | None:
    """A password column's value as text (binary columns hold ASCII hashes too)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace") or None
    return value if isinstance(value, str) and value else None


def identify(verifiers: Iterable[PasswordVerifier],
             encoded: str) -> tuple[PasswordVerifier, HashInfo] | None:
    """The first verifier that recognises ``encoded``, and what it makes of it."""
    for verifier in verifiers:
        try:
            info = verifier.inspect(encoded)
        except Exception:  # a plugin's bug must not turn a login into a 500
            log.exception("password format %r failed to inspect a stored hash", verifier.name)
            continue
        if info is not None:
            return verifier, info
    return None


def registered(runtime: Runtime) -> list[PasswordVerifier]:
    """Every verifier the plugins offer, argon2id first (collected again for a command's
    runtime, which does not run the pipeline hooks)."""
    return list(runtime.password_hashers) or collect(
        runtime.pm, "swain_password_hashers", config=runtime.config, runtime=runtime)


def enabled(found: Sequence[PasswordVerifier], names: Sequence[str]) -> list[PasswordVerifier]:
    """The first verifier and those ``names`` enables; an unknown name is a ConfigError."""
    known = sorted({v.name for v in found})
    for i, name in enumerate(names):
        if name not in known and name in BUILTIN_FORMATS:
            log.warning("auth.password_formats: %r stays off, its plugin is disabled", name)
        elif name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise ConfigError(f"auth.password_formats[{i}]: unknown format {name!r}{hint} "
                              f"(known: {', '.join(known)})")
    return [v for i, v in enumerate(found) if i == 0 or v.name in names]


class Pace:
    """How long a verification may take at least: the slowest of the last
    :attr:`WINDOW` verifications of any format (or of none)."""

    WINDOW = 16

    def __init__(self) -> None:
        self._recent: dict[str, deque[float]] = {}

    def observe(self, key: str, seconds: float) -> None:
        self._recent.setdefault(key, deque(maxlen=self.WINDOW)).append(seconds)

    @property
    def floor(self) -> float:
        return max((max(times) for times in self._recent.values()), default=0.0)


class Passwords:
    """Hash, verify and police passwords off the event loop."""

    def __init__(self, verifiers: Sequence[PasswordVerifier], min_length: int, max_bytes: int,
                 rehash_legacy: bool = True,
                 registered: Sequence[PasswordVerifier] | None = None) -> None:
        if not verifiers or not isinstance(verifiers[0], PasswordHasher):
            raise ConfigError("auth: no password hasher makes new hashes; enable the passwords "
                              "plugin")
        self.primary: PasswordHasher = verifiers[0]
        #: the enabled verifiers, the primary first
        self.verifiers = list(verifiers)
        #: every verifier the plugins offer, enabled or not (for the census)
        self.registered = list(registered or verifiers)
        self.min_length = min_length
        self.max_bytes = max_bytes
        self.rehash_legacy = rehash_legacy
        self.pace = Pace()
        self._dummy: str | None = None

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> Passwords:
        auth = runtime.config.auth  # without this plugin its settings are missing: the defaults
        found = registered(runtime)
        return cls(enabled(found, auth.get("password_formats", DEFAULT_FORMATS)),
                   auth.get("password_min_length", 8), auth.get("password_max_bytes", 256),
                   auth.get("rehash_legacy", True), found)

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
        return await loop.run_in_executor(None, self.primary.hash, password)

    def _verify(self, stored: object, password: str) -> tuple[bool, bool, str, float]:
        """(matches, should be re-hashed, pace key, seconds spent).  An unknown,
        disabled, unusable or missing hash verifies a dummy argon2id hash instead,
        so the work is not skipped."""
        started = time.perf_counter()
        encoded = stored_text(stored)
        found = identify(self.verifiers, encoded) if encoded else None
        if found is None or found[1].problem is not None or encoded is None:
            if self._dummy is None:
                self._dummy = self.primary.hash("dummy password for equal work")
            self.primary.verify(self._dummy, password)
            return False, False, UNKNOWN, time.perf_counter() - started
        verifier, info = found
        try:
            ok = verifier.verify(encoded, password)
        except Exception:  # a plugin's bug is a failed login, not a 500
            log.exception("password format %r failed to verify a stored hash", verifier.name)
            ok = False
        if verifier is self.primary:
            rehash = ok and self.primary.needs_rehash(encoded)
        else:
            rehash = ok and self.rehash_legacy
        return ok, rehash, info.format, time.perf_counter() - started

    async def verify(self, stored: object, password: str) -> tuple[bool, bool]:
        """(matches, should be re-hashed), never sooner than :attr:`pace` allows."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        ok, rehash, key, spent = await loop.run_in_executor(
            None, partial(self._verify, stored, password))
        self.pace.observe(key, spent)
        wait = self.pace.floor - (loop.time() - started)
        if wait > 0:
            await asyncio.sleep(wait)
        return ok, rehash

    async def warm_up(self) -> None:
        """Compute the dummy hash at startup, so the first unknown-address login
        costs the same as the others."""
        await self.verify(None, "warm up")

    async def calibrate(self, stored: Iterable[Any]) -> None:
        """Time one verification per enabled format found in ``stored`` (the costliest
        of each), so logins are paced from the first."""
        costliest: dict[str, tuple[float, str]] = {}
        for item in stored:
            value = stored_text(item)
            found = identify(self.verifiers, value) if value else None
            if value is None or found is None or found[1].problem is not None:
                continue
            info = found[1]
            if info.format not in costliest or info.cost > costliest[info.format][0]:
                costliest[info.format] = (info.cost, value)
        for _cost, value in costliest.values():
            await self.verify(value, secrets.token_urlsafe(12))


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"auth": {
        "password_min_length": Setting("int", 8, minimum=1),
        "password_max_bytes": Setting("int", 256, minimum=16,
                                      doc="longer passwords are refused before hashing"),
        "argon2_time_cost": Setting("int", 3, minimum=1),
        "argon2_memory_kib": Setting("int", 65536, minimum=8),
        "argon2_parallelism": Setting("int", 4, minimum=1),
        "password_formats": Setting("list", list(DEFAULT_FORMATS),
                                    doc="stored-hash formats that verify besides argon2id"),
        "rehash_legacy": Setting("bool", True,
                                 doc="replace a verified hash of another format with argon2id"),
    }}


# tryfirst: argon2id makes every new hash, so it must be the first verifier collected.
@hookimpl(tryfirst=True)
def swain_password_hashers(config: Config) -> Iterable[PasswordVerifier]:
    auth = config.auth
    return [Argon2Hasher(auth.argon2_time_cost, auth.argon2_memory_kib, auth.argon2_parallelism),
            BcryptHasher()]
