"""The stored password hashes of other frameworks, so the users already in a
table swain is pointed at can log in (and get an argon2id hash at that login,
unless ``[auth] rehash_legacy = false``).

One verifier per family, each enabled by its name in ``[auth] password_formats``:

* ``django`` — Django's pbkdf2_sha256, pbkdf2_sha1, argon2, bcrypt_sha256, bcrypt, scrypt;
* ``werkzeug`` — Werkzeug's (Flask's) ``pbkdf2:<digest>:<n>`` and ``scrypt:<N>:<r>:<p>``;
* ``aspnet`` and ``aspnet_v2`` — ASP.NET (Core) Identity v3 and v2 blobs;
* ``spring`` and ``spring_sha256`` — Spring Security's ``{bcrypt}``, ``{pbkdf2}``,
  ``{scrypt}``, ``{argon2}`` and the deprecated ``{sha256}``.

Every one reads its parameters from the stored value, refuses values over the
cost caps of :mod:`swain.plugins.auth.kdf`, compares in constant time and runs,
like every verification, in the executor (see :mod:`..passwords`).
"""

from __future__ import annotations

from collections.abc import Iterable

from swain.core import PasswordVerifier, hookimpl

from .aspnet import IdentityV2, IdentityV3
from .django import DjangoHashes
from .spring import SpringHashes, SpringSha256
from .werkzeug import WerkzeugHashes

#: these verify for the passwords plugin, which decides which are enabled
requires = ("passwords",)


@hookimpl
def swain_password_hashers() -> Iterable[PasswordVerifier]:
    return [DjangoHashes(), WerkzeugHashes(), IdentityV3(), IdentityV2(), SpringHashes(),
            SpringSha256()]


__all__ = ["DjangoHashes", "IdentityV2", "IdentityV3", "SpringHashes", "SpringSha256",
           "WerkzeugHashes"]
