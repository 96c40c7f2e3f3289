"""Werkzeug's ``generate_password_hash`` (Flask apps): ``<method>$<salt>$<hex hash>``.

* ``pbkdf2:<digest>:<iterations>`` — PBKDF2-HMAC with sha1, sha224, sha256, sha384
  or sha512, the digest's own length;
* ``scrypt:<N>:<r>:<p>`` — 64 bytes of scrypt.

The salt is text, used as its UTF-8 bytes.  Werkzeug has always written the
parameters into the value; one without them (``pbkdf2:sha256$…``) cannot be
verified, since its iterations were the default of some past version.
"""

from __future__ import annotations

from .. import hashing, kdf


class WerkzeugHashes(hashing.Family):
    name = "werkzeug"

    def label(self, encoded: str) -> str | None:
        method = encoded.partition("$")[0]
        if method.startswith("pbkdf2:"):
            return f"Werkzeug pbkdf2:{method.split(':')[1]}"
        return "Werkzeug scrypt" if method.startswith("scrypt:") else None

    def prepare(self, label: str, encoded: str) -> hashing.Prepared:
        parts = encoded.split("$")
        if len(parts) != 3:
            raise kdf.Unverifiable("expected method, salt and hash")
        method, salt, hexhash = parts
        args = method.split(":")[1:]
        expected = kdf.hexdecode(hexhash)
        if method.startswith("pbkdf2:"):
            if len(args) != 2:
                raise kdf.Unverifiable("no iteration count in the method")
            digest, count = args[0], kdf.iterations(args[1])
            if len(expected) != kdf.DIGEST_SIZES.get(digest):
                raise kdf.Unverifiable(f"unsupported digest {digest!r} or a hash of the wrong "
                                       "length")
            return hashing.Prepared(count,
                                    hashing.pbkdf2_matches(digest, salt.encode(), count, expected))
        if len(args) != 3:
            raise kdf.Unverifiable("expected scrypt:N:r:p")
        n, r, p = (kdf.positive(arg, name) for arg, name in zip(args, "Nrp", strict=True))
        kdf.check_scrypt(n, r, p)
        if len(expected) != 64:
            raise kdf.Unverifiable("the hash has the wrong length")
        return hashing.Prepared(n * r * p,
                                hashing.scrypt_matches(salt.encode(), n, r, p, expected))
