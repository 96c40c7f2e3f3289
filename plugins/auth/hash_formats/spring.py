"""Spring Security's ``DelegatingPasswordEncoder``: ``{id}<encoded>``, with the
encoders of ``PasswordEncoderFactories.createDelegatingPasswordEncoder()``.

``{bcrypt}`` is bcrypt; ``{argon2}`` and ``{argon2@SpringSecurity_v5_8}`` are PHC
argon2 strings.  ``{pbkdf2}`` (Spring's 5.5 defaults: HMAC-SHA1, 8-byte salt,
185,000 iterations) and ``{pbkdf2@SpringSecurity_v5_8}`` (HMAC-SHA256, 16-byte
salt, 310,000 iterations) hold the salt and a 32-byte key in hex (or base64) and
no parameters: only those defaults, without a secret, can be verified.
``{scrypt}`` and ``{scrypt@SpringSecurity_v5_8}`` are
``$<hex: log2 N << 16 | r << 8 | p>$<base64 salt>$<base64 key>``.

``{sha256}`` (``StandardPasswordEncoder``: 1,024 rounds of SHA-256 over salt and
password, deprecated by Spring) is its own format, ``spring_sha256``, off by
default.  ``{noop}`` (plain text), ``{MD4}``, ``{MD5}``, ``{SHA-1}``,
``{SHA-256}`` and ``{ldap}`` are recognised only to be refused.
"""

from __future__ import annotations

import hashlib

from .. import hashing, kdf

#: encoder id -> (digest, salt bytes, iterations)
_PBKDF2 = {"pbkdf2": ("sha1", 8, 185_000), "pbkdf2@SpringSecurity_v5_8": ("sha256", 16, 310_000)}
_KEY_BYTES = 32
_SUPPORTED = ("bcrypt", *_PBKDF2, "scrypt", "scrypt@SpringSecurity_v5_8", "argon2",
              "argon2@SpringSecurity_v5_8")
_REFUSED = ("noop", "MD4", "MD5", "SHA-1", "SHA-256", "ldap")


def _split(encoded: str) -> tuple[str, str] | None:
    """(encoder id, the encoder's own value) of ``{id}value``."""
    if not encoded.startswith("{"):
        return None
    ident, brace, rest = encoded[1:].partition("}")
    return (ident, rest) if brace else None


def _salted(text: str, salt_bytes: int) -> tuple[bytes, bytes]:
    """(salt, key) from Spring's hex (or base64) of their concatenation."""
    length = salt_bytes + _KEY_BYTES
    blob = kdf.hexdecode(text) if len(text) == 2 * length else kdf.b64decode(text)
    if len(blob) != length:
        raise kdf.Unverifiable(f"expected {length} bytes of salt and key")
    return blob[:salt_bytes], blob[salt_bytes:]


def _scrypt(value: str) -> hashing.Prepared:
    parts = value.split("$")
    if len(parts) != 4 or parts[0] or not 0 < len(parts[1]) <= 8:
        raise kdf.Unverifiable("expected $params$salt$key")
    params = int.from_bytes(kdf.hexdecode(parts[1].rjust(8, "0")), "big")
    log_n, r, p = params >> 16 & 0xFFFF, params >> 8 & 0xFF, params & 0xFF
    if log_n > 30:
        raise kdf.Unverifiable(f"scrypt N=2^{log_n}: over the cost cap")
    n = 2**log_n
    kdf.check_scrypt(n, r, p)
    salt, key = kdf.b64decode(parts[2], "the salt"), kdf.b64decode(parts[3])
    return hashing.Prepared(n * r * p, hashing.scrypt_matches(salt, n, r, p, key))


class SpringHashes(hashing.Family):
    name = "spring"

    def label(self, encoded: str) -> str | None:
        split = _split(encoded)
        if split is None or split[0] not in (*_SUPPORTED, *_REFUSED):
            return None
        return f"Spring {{{split[0]}}}"

    def prepare(self, label: str, encoded: str) -> hashing.Prepared:
        ident, value = _split(encoded) or ("", "")
        if ident in _REFUSED:
            return hashing.refused("plain text or a fast hash, not supported: the user must "
                                   "reset the password")
        if ident == "bcrypt":
            return hashing.bcrypt_prepared(value)
        if ident.startswith("argon2"):
            return hashing.argon2_prepared(value)
        if ident.startswith("scrypt"):
            return _scrypt(value)
        digest, salt_bytes, count = _PBKDF2[ident]
        salt, key = _salted(value, salt_bytes)
        return hashing.Prepared(count, hashing.pbkdf2_matches(digest, salt, count, key))


def _sha256_rounds(salt: bytes, key: bytes) -> hashing.Prepared:
    def matches(password: str) -> bool:
        value = salt + password.encode()
        for _ in range(1024):
            value = hashlib.sha256(value).digest()
        return kdf.equal(value, key)

    return hashing.Prepared(1024, matches)


class SpringSha256(hashing.Family):
    name = "spring_sha256"

    def label(self, encoded: str) -> str | None:
        split = _split(encoded)
        return "Spring {sha256}" if split and split[0] == "sha256" else None

    def prepare(self, label: str, encoded: str) -> hashing.Prepared:
        value = (_split(encoded) or ("", ""))[1]
        blob = kdf.hexdecode(value)
        if len(blob) != 8 + 32:
            raise kdf.Unverifiable("expected 8 bytes of salt and 32 of digest")
        return _sha256_rounds(blob[:8], blob[8:])
