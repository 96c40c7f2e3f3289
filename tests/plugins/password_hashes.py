"""Stored password hashes of other frameworks, for the tests of the hash formats.

Django's and Werkzeug's are made here by the libraries themselves
(``make_password``, ``generate_password_hash``), with their work factors
lowered where the default would make every paced login slow;
:func:`library_defaults` makes them at each library's defaults unchanged.  ASP.NET Identity
and Spring Security cannot run here, so theirs are the test vectors published
in their own repositories (dotnet/aspnetcore ``PasswordHasherTest.cs``,
spring-security ``PasswordEncoderFactoriesTests.java``), plus one ASP.NET Core
v3 hash at today's defaults computed below with :mod:`hashlib`, independently
of swain's verifier.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass

import bcrypt
from django.conf import settings

if not settings.configured:
    settings.configure(PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.BCryptPasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ])

# imported once the settings exist
from django.contrib.auth import hashers as django_hashers
from werkzeug.security import generate_password_hash

PASSWORD = "correct horse battery"
#: the password of dotnet/aspnetcore's vectors, and of spring-security's
ASPNET_PASSWORD = "my password"
SPRING_PASSWORD = "password"


@dataclass(frozen=True)
class Stored:
    username: str
    encoded: str
    password: str
    #: the format swain should name it by
    label: str

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


def django_hash(algorithm: str, **cheaper: int) -> str:
    """``make_password`` with the named Django hasher, its cost attributes lowered."""
    hasher = django_hashers.get_hasher(algorithm)
    if cheaper:
        hasher = type(f"Cheap{type(hasher).__name__}", (type(hasher),), cheaper)()
    return str(django_hashers.make_password(PASSWORD, hasher=hasher))


def aspnet_v3(password: str, iterations: int = 100_000) -> str:
    """ASP.NET Core Identity v3 at its .NET 7+ defaults (HMAC-SHA512, 100,000
    iterations, 16-byte salt, 32-byte subkey), laid out as PasswordHasher.cs does."""
    salt = os.urandom(16)
    subkey = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 32)
    return base64.b64encode(struct.pack(">BIII", 1, 2, iterations, 16) + salt + subkey).decode()


ASPNET_V2 = "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg=="
SPRING_BCRYPT = "{bcrypt}$2a$10$dXJ3SW6G7P50lGmMkkmwe.20cQQubK3.HZWzG3YB1tlRy.fqvM/BG"
SPRING_SHA256 = ("{sha256}97cde38028ad898ebc02e690819fa220e88c62e0699403e94fff291cfffaf8410849f2760"
                 "5abcbc0")


def _aspnet_blob(prf: int, iterations: int, salt_length: int, rest: bytes) -> str:
    return base64.b64encode(struct.pack(">BIII", 1, prf, iterations, salt_length) + rest).decode()


LEGACY: list[Stored] = [
    Stored("dj_pbkdf2", django_hash("pbkdf2_sha256", iterations=20_000), PASSWORD,
           "Django pbkdf2_sha256"),
    Stored("dj_pbkdf2_sha1", django_hash("pbkdf2_sha1", iterations=20_000), PASSWORD,
           "Django pbkdf2_sha1"),
    Stored("dj_argon2", django_hash("argon2", time_cost=1, memory_cost=8192, parallelism=2),
           PASSWORD, "Django argon2"),
    Stored("dj_bcrypt_sha256", django_hash("bcrypt_sha256", rounds=5), PASSWORD,
           "Django bcrypt_sha256"),
    Stored("dj_bcrypt", django_hash("bcrypt", rounds=5), PASSWORD, "Django bcrypt"),
    Stored("dj_scrypt", django_hash("scrypt", work_factor=2**12, parallelism=2), PASSWORD,
           "Django scrypt"),
    Stored("wz_scrypt", generate_password_hash(PASSWORD), PASSWORD, "Werkzeug scrypt"),
    Stored("wz_pbkdf2", generate_password_hash(PASSWORD, "pbkdf2:sha256:20000"), PASSWORD,
           "Werkzeug pbkdf2:sha256"),
    Stored("wz_pbkdf2_sha512", generate_password_hash(PASSWORD, "pbkdf2:sha512:10000"), PASSWORD,
           "Werkzeug pbkdf2:sha512"),
    # dotnet/aspnetcore PasswordHasherTest.cs: HashPassword_Version3 (SHA256, 10,000)
    Stored("aspnet_v3", "AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+yWU7rLgUwPZb1Itsmra7cbxw2EFpwpVFIEtP"
                        "+JIuUEw==", ASPNET_PASSWORD, "ASP.NET Core Identity v3"),
    # … and its success cases: SHA512, 250 iterations, 256-bit salt, 512-bit subkey
    Stored("aspnet_v3_sha512", "AQAAAAIAAAD6AAAAIJbVi5wbMR+htSfFp8fTw8N8GOS/Sje+S/4YZcgBfU7EQuqv4O"
                               "kVYmc4VJl9AGZzmRTxSkP7LtVi9IWyUxX8IAAfZ8v+ZfhjCcudtC1YERSqE1OEdXL"
                               "W9VukPuJWBBjLuw==", ASPNET_PASSWORD, "ASP.NET Core Identity v3"),
    # SHA1, 250 iterations, 128-bit salt, 128-bit subkey
    Stored("aspnet_v3_sha1", "AQAAAAAAAAD6AAAAEAhftMyfTJylOlZT+eEotFXd1elee8ih5WsjXaR3PA9M",
           ASPNET_PASSWORD, "ASP.NET Core Identity v3"),
    Stored("aspnet_v3_net8", aspnet_v3(ASPNET_PASSWORD), ASPNET_PASSWORD,
           "ASP.NET Core Identity v3"),
    # HashPassword_Version2 (SHA1, 1,000 iterations)
    Stored("aspnet_v2", ASPNET_V2, ASPNET_PASSWORD, "ASP.NET Identity v2"),
    # spring-security PasswordEncoderFactoriesTests.java
    Stored("spring_bcrypt", SPRING_BCRYPT, SPRING_PASSWORD, "Spring {bcrypt}"),
    Stored("spring_pbkdf2", "{pbkdf2}5d923b44a6d129f3ddf3e3c8d29412723dcbde72445e8ef6bf3b508fbf17fa"
                            "4ed4d6b99ca763d8dc", SPRING_PASSWORD, "Spring {pbkdf2}"),
    Stored("spring_pbkdf2_58", "{pbkdf2@SpringSecurity_v5_8}fefe5120467e5d4ccff442dbb2fa86d276262d9"
                               "7435c0c54e5eebced51ffd144fcb05eb53fea2677216c4f3250010006",
           SPRING_PASSWORD, "Spring {pbkdf2@SpringSecurity_v5_8}"),
    Stored("spring_scrypt", "{scrypt}$e0801$8bWJaSu2IKSn9Z9kM+TPXfOc/9bdYSrN1oD9qfVThWEwdRTnO7re7E"
                            "i+fUZRJ68k9lTyuTeUp4of4g24hHnazw==$OAOec05+bXxvuu/1qZ6NUR+xQYvYv7BeL1Q"
                            "xwRpY5Pc=", SPRING_PASSWORD, "Spring {scrypt}"),
    Stored("spring_scrypt_58", "{scrypt@SpringSecurity_v5_8}$e0801$vSriIassJwvdNBF1vpSoCenqBxvpT4e"
                               "+NcLKVsrOVpaZfyRfpUJ6KctkpmketuacWelLU5njpILXM9LLkMXLMw==$vIQQljL25"
                               "7HOcnumyiy1hJBGYHmoXgENIh+NkFvmrGY=", SPRING_PASSWORD,
           "Spring {scrypt@SpringSecurity_v5_8}"),
    Stored("spring_argon2", "{argon2}$argon2d$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$Li5eBf5XrCz0cuzQRe9"
                            "oflYqmA/VAzmzichw4ZYrvEU", SPRING_PASSWORD, "Spring {argon2}"),
    Stored("spring_argon2_58", "{argon2@SpringSecurity_v5_8}$argon2id$v=19$m=16384,t=2,p=1$v7fN5p9"
                               "1BQbdbA2HfdSPRg$MULpa02CO/6FKfqwuerCFvS7OhMxGFCKUOoWfzt86Rc",
           SPRING_PASSWORD, "Spring {argon2@SpringSecurity_v5_8}"),
    Stored("spring_sha256", SPRING_SHA256, SPRING_PASSWORD, "Spring {sha256}"),
    Stored("plain_bcrypt", bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
           PASSWORD, "bcrypt"),
]

#: the weak formats, which verify only when named in [auth] password_formats (own
#: rows, so the logins of the other tests do not upgrade them first)
WEAK: list[Stored] = [
    Stored("weak_aspnet_v2", ASPNET_V2, ASPNET_PASSWORD, "ASP.NET Identity v2"),
    Stored("weak_spring_sha256", SPRING_SHA256, SPRING_PASSWORD, "Spring {sha256}"),
]

#: left alone by the tests that log in, for the one with rehash_legacy off
KEPT: list[Stored] = [
    Stored("keep_django", django_hash("pbkdf2_sha256", iterations=20_000), PASSWORD,
           "Django pbkdf2_sha256"),
    Stored("keep_werkzeug", generate_password_hash(PASSWORD, "pbkdf2:sha256:20000"), PASSWORD,
           "Werkzeug pbkdf2:sha256"),
    Stored("keep_aspnet", aspnet_v3(ASPNET_PASSWORD, 10_000), ASPNET_PASSWORD,
           "ASP.NET Core Identity v3"),
    Stored("keep_spring", SPRING_BCRYPT, SPRING_PASSWORD, "Spring {bcrypt}"),
]

#: only ever given wrong passwords (so never upgraded), for the timing test
TIMED: list[Stored] = [
    Stored("timed_scrypt", generate_password_hash(PASSWORD), PASSWORD, "Werkzeug scrypt"),
    Stored("timed_sha1", "AQAAAAAAAAD6AAAAEAhftMyfTJylOlZT+eEotFXd1elee8ih5WsjXaR3PA9M",
           ASPNET_PASSWORD, "ASP.NET Core Identity v3"),
]
#: a Django user who logs in by username
NAMED = Stored("named_django", django_hash("pbkdf2_sha256", iterations=20_000), PASSWORD,
               "Django pbkdf2_sha256")

_KEY = base64.b64encode(bytes(48)).decode()
#: stored values that can never verify, whatever the password: (user, why)
MALFORMED: list[Stored] = [
    Stored("bad_iterations", "pbkdf2_sha256$1000000000000$salt$aGFzaA==", PASSWORD,
           "Django pbkdf2_sha256"),
    Stored("bad_truncated", "pbkdf2_sha256$600000$salt", PASSWORD, "Django pbkdf2_sha256"),
    Stored("bad_base64", "pbkdf2_sha256$20000$salt$not*base64!", PASSWORD,
           "Django pbkdf2_sha256"),
    Stored("bad_werkzeug", "pbkdf2:sha256:1000000000000$salt$00ff", PASSWORD,
           "Werkzeug pbkdf2:sha256"),
    Stored("bad_scrypt", "scrypt:1048576:64:64$salt$00ff", PASSWORD, "Werkzeug scrypt"),
    Stored("bad_bcrypt", "$2b$31$" + "a" * 53, PASSWORD, "bcrypt"),
    Stored("bad_argon2", "$argon2id$v=19$m=2147483647,t=4294967295,p=255$c29tZXNhbHQ$aGFzaA",
           PASSWORD, "argon2id"),
    Stored("bad_aspnet", _aspnet_blob(2, 0xFFFFFFFF, 16, bytes(48)), ASPNET_PASSWORD,
           "ASP.NET Core Identity v3"),
    Stored("bad_aspnet_salt", _aspnet_blob(1, 10_000, 0xFFFFFFF0, bytes(48)), ASPNET_PASSWORD,
           "ASP.NET Core Identity v3"),
    Stored("bad_spring", "{scrypt}$ffff0801$" + _KEY + "$" + _KEY, SPRING_PASSWORD,
           "Spring {scrypt}"),
    Stored("bad_spring_pbkdf2", "{pbkdf2}zz", SPRING_PASSWORD, "Spring {pbkdf2}"),
]

#: values no password opens: plain text, Django's unusable mark, Spring's {noop}
REFUSED: list[Stored] = [
    Stored("plain_text", "hunter2-plain-text", "hunter2-plain-text", ""),
    Stored("dj_unusable", "!" + "x" * 40, PASSWORD, "Django unusable password"),
    Stored("spring_noop", "{noop}password", SPRING_PASSWORD, "Spring {noop}"),
]

def library_defaults() -> list[Stored]:
    """Django's and Werkzeug's hashes at the libraries' own (current, slow) default costs."""
    django = [Stored(f"django_{a}", str(django_hashers.make_password(PASSWORD, hasher=a)),
                     PASSWORD, f"Django {a}")
              for a in ("pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt",
                        "scrypt")]
    werkzeug = [Stored(f"werkzeug_{m}", generate_password_hash(PASSWORD, m), PASSWORD,
                       f"Werkzeug {m}" if m == "scrypt" else "Werkzeug pbkdf2:sha256")
                for m in ("scrypt", "pbkdf2")]
    return django + werkzeug


def user_table(dialect: str, rows: list[Stored]) -> str:
    """A Django-like ``auth_user`` table holding ``rows``."""
    key = {"sqlite": "id INTEGER PRIMARY KEY", "postgresql": "id SERIAL PRIMARY KEY",
           "mysql": "id INTEGER AUTO_INCREMENT PRIMARY KEY"}[dialect]
    flag = "TINYINT(1)" if dialect == "mysql" else "BOOLEAN"
    true = "TRUE" if dialect == "postgresql" else "1"
    values = ",\n".join(f"('{r.username}', '{r.email}', '{r.encoded}', {true})" for r in rows)
    return (f"CREATE TABLE auth_user ({key}, username VARCHAR(150) NOT NULL UNIQUE, "
            f"email VARCHAR(254) NOT NULL, password VARCHAR(255) NOT NULL, "
            f"first_name VARCHAR(150), is_active {flag} NOT NULL);\n"
            f"INSERT INTO auth_user (username, email, password, is_active) VALUES\n{values}")


#: ``[mapping.user]`` for ``auth_user``
DJANGO_USER = {"table": "auth_user", "id": "id", "email": "email", "password": "password",
               "firstname": "first_name", "isactive": "is_active", "username": "username"}
