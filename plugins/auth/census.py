"""Which password hash formats the mapped user table holds, from a bounded
sample of its password column, so an operator learns *before* the first login
fails that existing users need a format enabled (or a reset).

``swain mapping check`` prints the census; the server logs it once at
start-up, at warning level, when some sampled hashes cannot verify.  Hash
values are never printed or logged, only counts and format names.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from swain.core import PasswordVerifier, Runtime
from swain.plugins.mapping import MappedCard, Store

from .passwords import Passwords, enabled, identify, registered, stored_text

log = logging.getLogger("swain")

#: rows of the password column read for a census
SAMPLE_ROWS = 1000


@dataclass
class Census:
    """Counts per format of a sample of stored hashes."""

    column: str
    total: int = 0
    #: (format, verifier name) -> count, for values that can verify
    usable: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: format -> (count, one reason), for values of a known format that never verify
    broken: dict[str, tuple[int, str]] = field(default_factory=dict)
    empty: int = 0
    unknown: int = 0
    #: names of the enabled verifiers (the first one makes new hashes)
    enabled: tuple[str, ...] = ()

    @property
    def disabled(self) -> int:
        return sum(n for (_, name), n in self.usable.items() if name not in self.enabled)

    @property
    def needs_attention(self) -> bool:
        """Whether some sampled users cannot log in with their password as things stand."""
        return bool(self.disabled or self.unknown or self.broken)

    def lines(self, problems_only: bool = False) -> list[str]:
        """One line per format (counts and names only); ``problems_only`` leaves out
        the formats that verify."""
        if not self.total:
            return [f"{self.column}: no rows to sample"]
        out = [f"{self.column}: {self.total} sampled " + ("row" if self.total == 1 else "rows")]
        for (label, name), count in self.usable.most_common():
            if name not in self.enabled:
                out.append(f"{self._of(count, 'looks', 'look')} like {label}: enable `{name}` in "
                           "[auth] password_formats")
            elif problems_only:
                continue
            elif name == self.enabled[0]:
                out.append(f"{self._of(count, 'is', 'are')} {label} (new hashes are argon2id)")
            else:
                out.append(f"{self._of(count, 'is', 'are')} {label} (`{name}`, enabled)")
        for label, (count, reason) in sorted(self.broken.items()):
            out.append(f"{self._of(count, 'looks', 'look')} like {label} but can never verify "
                       f"({reason})")
        if self.empty:
            out.append(f"{self._of(self.empty, 'holds', 'hold')} no password")
        if self.unknown:
            out.append(f"{self._of(self.unknown, 'is', 'are')} in no format swain knows: those "
                       "users must reset their password")
        return out

    def _of(self, count: int, one: str, more: str) -> str:
        return f"{count} of {self.total} {one if count == 1 else more}"


def take(values: Iterable[Any], verifiers: Sequence[PasswordVerifier],
         enabled_names: Sequence[str], column: str) -> Census:
    """The census of ``values`` (stored hashes, never printed) against every
    registered verifier, enabled or not."""
    census = Census(column=column, enabled=tuple(enabled_names))
    for value in values:
        census.total += 1
        text = stored_text(value)
        found = identify(verifiers, text) if text else None
        if text is None:
            census.empty += 1
        elif found is None:
            census.unknown += 1
        elif found[1].problem is not None:
            count, reason = census.broken.get(found[1].format, (0, found[1].problem))
            census.broken[found[1].format] = (count + 1, reason)
        else:
            census.usable[(found[1].format, found[0].name)] += 1
    return census


async def sample(store: Store) -> list[Any]:
    """Up to :data:`SAMPLE_ROWS` values of the mapped password column."""
    rows = await store.fetch("user", [], ["password"], limit=SAMPLE_ROWS)
    return [row.get("password") for row in rows]


def column_name(card: MappedCard) -> str:
    return f"{card.table}.{card.column('password')}"


async def at_startup(store: Store, passwords: Passwords) -> None:
    """Time the formats present (see :meth:`Passwords.calibrate`) and warn once
    when sampled users cannot log in; never stops the server."""
    try:
        values = await sample(store)
    except Exception as exc:  # the database may be down: the server still starts
        log.info("password formats not checked at start-up (%s); run `swain mapping check`",
                 exc.__class__.__name__)
        return
    await passwords.calibrate(values)
    census = take(values, passwords.registered, [v.name for v in passwords.verifiers],
                  column_name(store.card("user")))
    if census.needs_attention:
        log.warning("password hashes in %s; see `swain mapping check`",
                    "; ".join(census.lines(problems_only=True)))


async def from_runtime(runtime: Runtime, cards: dict[str, MappedCard]) -> list[str]:
    """The census lines for ``swain mapping check``, from a command's runtime; a
    ConfigError for an unknown name in ``[auth] password_formats``."""
    found = registered(runtime)
    names = [v.name for v in enabled(found, runtime.config.auth.password_formats)]
    values = await sample(Store(runtime, cards))
    return take(values, found, names, column_name(cards["user"])).lines()
