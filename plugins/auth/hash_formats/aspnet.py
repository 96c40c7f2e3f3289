"""ASP.NET (Core) Identity's ``PasswordHasher``: one base64 blob, its first byte
the version.

* v3 (``0x01``, ASP.NET Core Identity's default): PRF (0 HMAC-SHA1, 1 HMAC-SHA256,
  2 HMAC-SHA512), iteration count and salt length as big-endian 32-bit numbers,
  then the salt (at least 16 bytes) and the PBKDF2 subkey (the rest, at least 16).
* v2 (``0x00``, ASP.NET Identity 2 and Core's IdentityV2 compatibility mode):
  a 16-byte salt and a 32-byte PBKDF2-HMAC-SHA1 subkey at 1,000 iterations — a
  weak hash, so it has its own name and is not enabled by default.

Passwords are derived from their UTF-8 bytes.
"""

from __future__ import annotations

from .. import hashing, kdf

_PRF = {0: "sha1", 1: "sha256", 2: "sha512"}
_LONGEST = 1024  # characters: a blob longer than this is not a password hash


def _blob(encoded: str) -> bytes | None:
    if len(encoded) > _LONGEST or len(encoded) % 4:
        return None
    try:
        return kdf.b64decode(encoded)
    except kdf.Unverifiable:
        return None


def _number(blob: bytes, offset: int) -> int:
    return int.from_bytes(blob[offset:offset + 4], "big")


class IdentityV3(hashing.Family):
    name = "aspnet"

    def label(self, encoded: str) -> str | None:
        blob = _blob(encoded)
        return "ASP.NET Core Identity v3" if blob and blob[0] == 1 and len(blob) > 13 else None

    def prepare(self, label: str, encoded: str) -> hashing.Prepared:
        blob = _blob(encoded) or b""
        digest = _PRF.get(_number(blob, 1))
        if digest is None:
            raise kdf.Unverifiable(f"unknown PRF {_number(blob, 1)}")
        count = kdf.capped_iterations(_number(blob, 5))
        salt_length = _number(blob, 9)
        if salt_length < 16 or len(blob) - 13 - salt_length < 16:
            raise kdf.Unverifiable("the salt or subkey is shorter than 16 bytes")
        salt, subkey = blob[13:13 + salt_length], blob[13 + salt_length:]
        # SHA-512 rounds cost about twice SHA-256's
        cost = count * (2 if digest == "sha512" else 1)
        return hashing.Prepared(cost, hashing.pbkdf2_matches(digest, salt, count, subkey))


class IdentityV2(hashing.Family):
    name = "aspnet_v2"

    def label(self, encoded: str) -> str | None:
        blob = _blob(encoded)
        return "ASP.NET Identity v2" if blob and blob[0] == 0 and len(blob) == 49 else None

    def prepare(self, label: str, encoded: str) -> hashing.Prepared:
        blob = _blob(encoded) or b""
        return hashing.Prepared(1000, hashing.pbkdf2_matches("sha1", blob[1:17], 1000, blob[17:]))
