"""The shape every stored-hash format family shares: recognise a value by its look,
read its parameters (cheap, checked against the caps of :mod:`.kdf`), then
derive and compare only when a password is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from swain.core import HashInfo

from . import kdf


@dataclass(frozen=True)
class Prepared:
    """A stored hash read and checked: its relative cost and how to test a password."""

    cost: float
    matches: Callable[[str], bool]


class Family:
    """A :class:`~swain.core.PasswordVerifier` made of :meth:`label` and :meth:`prepare`."""

    name = ""

    def label(self, encoded: str) -> str | None:
        """The format ``encoded`` looks like (``"Django pbkdf2_sha256"``), or ``None``."""
        raise NotImplementedError

    def prepare(self, label: str, encoded: str) -> Prepared:
        """Read the parameters without deriving anything; :class:`kdf.Unverifiable`
        when the value can never verify."""
        raise NotImplementedError

    def inspect(self, encoded: str) -> HashInfo | None:
        label = self.label(encoded)
        if label is None:
            return None
        try:
            return HashInfo(label, cost=self.prepare(label, encoded).cost)
        except (kdf.Unverifiable, ValueError) as exc:
            return HashInfo(label, problem=str(exc) or "malformed")

    def verify(self, encoded: str, password: str) -> bool:
        label = self.label(encoded)
        if label is None:
            return False
        try:
            return self.prepare(label, encoded).matches(password)
        except (kdf.Unverifiable, ValueError):
            return False


def pbkdf2_matches(digest: str, salt: bytes, count: int,
                   expected: bytes) -> Callable[[str], bool]:
    """A test of passwords (UTF-8) against a PBKDF2 result."""
    return lambda password: kdf.equal(
        kdf.pbkdf2(digest, password.encode(), salt, count, len(expected)), expected)


def scrypt_matches(salt: bytes, n: int, r: int, p: int,
                   expected: bytes) -> Callable[[str], bool]:
    return lambda password: kdf.equal(
        kdf.scrypt(password.encode(), salt, n, r, p, len(expected)), expected)


def bcrypt_prepared(encoded: str, transform: Callable[[str], bytes] = str.encode) -> Prepared:
    """A bcrypt hash inside another format's wrapper; ``transform`` turns the
    password into what bcrypt was given."""
    rounds = kdf.bcrypt_rounds(encoded)
    return Prepared(2.0 ** rounds, lambda password: kdf.bcrypt_check(transform(password),
                                                                     encoded))


def argon2_prepared(encoded: str) -> Prepared:
    params = kdf.argon2_parameters(encoded)
    return Prepared(params.time_cost * params.memory_cost,
                    lambda password: kdf.argon2_check(encoded, password))


def refused(reason: str) -> Prepared:
    raise kdf.Unverifiable(reason)
