"""Key derivations for verifying stored password hashes, with their cost capped.

A stored hash names its own parameters (iterations, memory, rounds), and a
database can hold anything: a corrupted row or a hostile one claiming 10^12
iterations must fail in bounded time, not burn a core for hours.  Every
function here checks the parameters against the caps below *before* deriving
anything and raises :class:`Unverifiable` (with a reason operators can read in
``swain mapping check``) for a value that can never verify.  The caps sit a few
times above the strongest defaults frameworks use today.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

import argon2
import bcrypt

#: PBKDF2 iterations, whatever the digest (Django 5.2 and Werkzeug 3.1 use 1,000,000)
MAX_PBKDF2_ITERATIONS = 4_000_000
#: bcrypt's logarithmic cost (frameworks use 10 to 13; each step doubles the work)
MAX_BCRYPT_ROUNDS = 15
#: scrypt: memory ``128·N·r`` bytes and work ``N·r·p``
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
MAX_SCRYPT_WORK = 2**22
#: argon2: memory in KiB, ``time_cost·memory`` and lanes
MAX_ARGON2_MEMORY_KIB = 256 * 1024
MAX_ARGON2_WORK = 2**21
MAX_ARGON2_LANES = 64

DIGEST_SIZES = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_DECIMAL = re.compile(r"[1-9][0-9]{0,15}")


class Unverifiable(ValueError):
    """A stored value that can never verify; the message says why."""


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison (the lengths are not secret)."""
    return hmac.compare_digest(a, b)


def positive(text: str, what: str) -> int:
    """A plain decimal count (no sign, spaces or underscores, at most 16 digits)."""
    if not _DECIMAL.fullmatch(text):
        raise Unverifiable(f"{what} is not a positive number")
    return int(text)


def iterations(text: str) -> int:
    """A PBKDF2 iteration count written in a stored hash, within the cap."""
    return capped_iterations(positive(text, "the iteration count"))


def capped_iterations(count: int) -> int:
    if not 0 < count <= MAX_PBKDF2_ITERATIONS:
        raise Unverifiable(f"{count} iterations: over the cap of {MAX_PBKDF2_ITERATIONS}")
    return count


def b64decode(text: str, what: str = "the hash") -> bytes:
    """Standard base64, padded or not; anything else is :class:`Unverifiable`."""
    if not _B64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
        raise Unverifiable(f"{what} is not base64")
    try:
        return base64.b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4),
                                validate=True)
    except (binascii.Error, ValueError):
        raise Unverifiable(f"{what} is not base64") from None


def hexdecode(text: str, what: str = "the hash") -> bytes:
    if not _HEX.fullmatch(text):
        raise Unverifiable(f"{what} is not hexadecimal")
    return bytes.fromhex(text)


def pbkdf2(digest: str, password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    if digest not in DIGEST_SIZES:
        raise Unverifiable(f"unsupported PBKDF2 digest {digest!r}")
    capped_iterations(iterations)
    if not 0 < length <= 1024:
        raise Unverifiable("implausible derived key length")
    return hashlib.pbkdf2_hmac(digest, password, salt, iterations, length)


def check_scrypt(n: int, r: int, p: int) -> None:
    if n < 2 or n & (n - 1):
        raise Unverifiable("scrypt N is not a power of two")
    if r < 1 or p < 1:
        raise Unverifiable("scrypt r and p must be positive")
    if 128 * n * r > MAX_SCRYPT_MEMORY or n * r * p > MAX_SCRYPT_WORK:
        raise Unverifiable(f"scrypt N={n}, r={r}, p={p}: over the cost cap")


def scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    check_scrypt(n, r, p)
    if not 0 < length <= 1024:
        raise Unverifiable("implausible derived key length")
    # hashlib refuses to use more than ``maxmem``: room for V (128·N·r) and the p blocks.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


def bcrypt_rounds(encoded: str) -> int:
    """The cost of a ``$2a$``/``$2b$``/``$2y$`` hash, checked against the cap."""
    found = _BCRYPT.fullmatch(encoded)
    if found is None:
        raise Unverifiable("not a complete bcrypt hash")
    rounds = int(found.group(1))
    if not 4 <= rounds <= MAX_BCRYPT_ROUNDS:
        raise Unverifiable(f"bcrypt cost {rounds}: outside 4 to {MAX_BCRYPT_ROUNDS}")
    return rounds


def bcrypt_check(password: bytes, encoded: str) -> bool:
    bcrypt_rounds(encoded)
    # bcrypt only ever saw the first 72 bytes; bcrypt 5 refuses longer input.
    # $2y$ (PHP) is the same algorithm as $2b$.
    return bcrypt.checkpw(password[:72], ("$2b$" + encoded[4:]).encode())


def argon2_parameters(encoded: str) -> argon2.Parameters:
    """The parameters of a PHC-format argon2 hash, checked against the caps."""
    try:
        params = argon2.extract_parameters(encoded)
    except argon2.exceptions.InvalidHashError:
        raise Unverifiable("not a complete argon2 hash") from None
    memory, time_cost, lanes = params.memory_cost, params.time_cost, params.parallelism
    if not (0 < memory <= MAX_ARGON2_MEMORY_KIB and 0 < lanes <= MAX_ARGON2_LANES
            and time_cost > 0 and memory * time_cost <= MAX_ARGON2_WORK):
        raise Unverifiable(f"argon2 m={memory}, t={time_cost}, p={lanes}: over the cost cap")
    return params


def argon2_check(encoded: str, password: str) -> bool:
    argon2_parameters(encoded)
    try:
        return bool(argon2.PasswordHasher().verify(encoded, password))
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
