"""Django's ``django.contrib.auth.hashers`` encodings, ``<algorithm>$…``:

* ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`` (and ``pbkdf2_sha1``);
* ``argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`` (argon2-cffi's string after ``argon2``);
* ``bcrypt_sha256$$2b$12$…`` (bcrypt of the hex SHA-256 of the password) and ``bcrypt$$2b$…``;
* ``scrypt$<N>$<salt>$<r>$<p>$<base64 hash>``.

The salt is text, used as its UTF-8 bytes.  A value starting with ``!`` is
Django's mark of an unusable password; ``md5``, ``sha1``, ``unsalted_*`` and
``crypt`` are recognised only to be refused (fast hashes, no work factor).
"""

from __future__ import annotations

import binascii
import hashlib

from .. import hashing, kdf

_PBKDF2 = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}
_SUPPORTED = (*_PBKDF2, "argon2", "bcrypt_sha256", "bcrypt", "scrypt")
_FAST = ("md5", "sha1", "unsalted_md5", "unsalted_sha1", "crypt")
UNUSABLE = "Django unusable password"


def _sha256_hex(password: str) -> bytes:
    return binascii.hexlify(hashlib.sha256(password.encode()).digest())


class DjangoHashes(hashing.Family):
    name = "django"

    def label(self, encoded: str) -> str | None:
        if encoded.startswith("!"):
            return UNUSABLE
        algorithm, dollar, _ = encoded.partition("$")
        return f"Django {algorithm}" if dollar and algorithm in (*_SUPPORTED, *_FAST) else None

    def prepare(self, label: str, encoded: str) -> hashing.Prepared:
        algorithm, _, rest = encoded.partition("$")
        if label == UNUSABLE:
            return hashing.refused("no password set: Django's unusable-password mark")
        if algorithm in _FAST:
            return hashing.refused("a fast hash without a work factor, not supported: the user "
                                   "must reset the password")
        if algorithm in _PBKDF2:
            parts = rest.split("$")
            if len(parts) != 3:
                raise kdf.Unverifiable("expected iterations, salt and hash")
            count = kdf.iterations(parts[0])
            expected = kdf.b64decode(parts[2])
            if len(expected) != kdf.DIGEST_SIZES[_PBKDF2[algorithm]]:
                raise kdf.Unverifiable("the hash has the wrong length")
            matches = hashing.pbkdf2_matches(_PBKDF2[algorithm], parts[1].encode(), count,
                                             expected)
            return hashing.Prepared(count, matches)
        if algorithm == "argon2":
            return hashing.argon2_prepared("$" + rest)
        if algorithm == "bcrypt_sha256":
            return hashing.bcrypt_prepared(rest, _sha256_hex)
        if algorithm == "bcrypt":
            return hashing.bcrypt_prepared(rest)
        parts = rest.split("$")  # scrypt: N, salt, r, p, hash
        if len(parts) != 5:
            raise kdf.Unverifiable("expected N, salt, r, p and hash")
        n, r, p = (kdf.positive(parts[i], name) for i, name in ((0, "N"), (2, "r"), (3, "p")))
        kdf.check_scrypt(n, r, p)
        expected = kdf.b64decode(parts[4])
        return hashing.Prepared(n * r * p,
                                hashing.scrypt_matches(parts[1].encode(), n, r, p, expected))
