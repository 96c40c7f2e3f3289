"""The objects plugins hand to core, and what core hands back.

Hooks return these; core awaits their methods while serving requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy import ColumnElement
    from sqlalchemy import Table as SATable

    from .schema import Table

Action = Literal["read", "create", "update", "delete"]
CleanupContext = Callable[["web.Application"], AsyncIterator[None]]


@dataclass(frozen=True)
class Identity:
    """Who is calling: set by an auth provider, read by everything after it."""

    user_id: Any
    provider: str
    email: str | None = None
    tenant: Any = None
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    is_admin: bool = False
    claims: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Predicate:
    """A WHERE clause a row policy adds, with its parameters kept apart.

    ``clause`` must use named ``bindparam`` objects, so the compiled statement
    can be cached by ``key`` and reused with new ``params``.
    """

    key: Hashable
    clause: ColumnElement[bool]
    params: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class AuthProvider(Protocol):
    name: str

    async def authenticate(self, request: web.Request) -> Identity | None:
        """Return an identity, ``None`` to decline, or raise ``Unauthorized``."""


@runtime_checkable
class Authorizer(Protocol):
    async def authorize(self, identity: Identity | None, table: Table, action: Action) -> None:
        """Raise ``Forbidden`` (naming the permission) to deny; return to allow."""


@runtime_checkable
class RowPolicy(Protocol):
    async def predicate(self, identity: Identity | None, table: Table, sa_table: SATable,
                        action: Action) -> Predicate | None:
        """The predicate that confines ``action`` on ``table`` for ``identity``, if any."""


@dataclass(eq=False)
class WriteOnlyValue:
    """A client's value for a write-only column (:attr:`Column.write_only`), as sent.

    The write preparer of the plugin that made the column write-only replaces it
    with what is stored (a password's hash), and keeps that in :attr:`stored`: a
    row prepared twice (an upsert's insert and update, a batch replayed row by
    row) is prepared once.  ``path`` names the value in the request, for errors.
    """

    text: str = field(repr=False)
    path: str
    stored: Any = field(default=None, repr=False)


@runtime_checkable
class WritePreparer(Protocol):
    async def prepare(self, identity: Identity | None, table: Table, values: dict[str, Any],
                      action: Action) -> dict[str, Any]:
        """Return the values to write; raise ``ValidationFailed``/``Forbidden`` to refuse."""


@runtime_checkable
class FilterOperator(Protocol):
    def build(self, column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        """The SQL condition for ``column <op> value``.

        ``value`` is already a bound parameter; inline any constant the clause
        needs (``sqlalchemy.literal_column``) instead of binding a new one.
        """


@runtime_checkable
class AggregateFunction(Protocol):
    """An aggregate function.  Optional attributes refine how it is checked:
    ``needs_field`` (default true), ``kinds`` (the column kinds it takes; default
    any) and ``result_kind(column)`` (the kind of its result; default ``number``)."""

    def build(self, column: ColumnElement[Any] | None) -> ColumnElement[Any]:
        """The SQL aggregate over ``column``."""


@dataclass(frozen=True)
class HashInfo:
    """What a password verifier can tell about a stored hash without the password."""

    #: the format as operators know it, e.g. ``"Django pbkdf2_sha256"``
    format: str
    #: relative verification work within the format (iterations, ``2**rounds``…)
    cost: float = 1.0
    #: why the hash can never verify (malformed, over the cost caps); ``None`` when usable
    problem: str | None = None


@runtime_checkable
class PasswordVerifier(Protocol):
    """Verifies the stored hashes of one family of formats (a framework's, say).

    ``name`` is what ``[auth] password_formats`` enables it by.  Both methods
    must be safe on any string: a value of another format gives ``None`` /
    ``False``, never an exception, and the work is bounded whatever parameters
    the value claims.
    """

    name: str

    def inspect(self, encoded: str) -> HashInfo | None:
        """``None`` when ``encoded`` is not of this family; cheap (no key derivation)."""

    def verify(self, encoded: str, password: str) -> bool:
        """Whether ``password`` matches, compared in constant time."""


@runtime_checkable
class PasswordHasher(PasswordVerifier, Protocol):
    """A verifier that also makes new hashes (the first one registered does)."""

    def hash(self, password: str) -> str: ...

    def needs_rehash(self, encoded: str) -> bool:
        """Whether a hash of this format should be replaced (weaker parameters)."""


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None


@runtime_checkable
class EmailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class AuditEvent:
    """One write or administrative action, after it took effect.

    ``actor`` is the caller's user id (``None`` for an anonymous caller, or
    ``"cli:<os user>"`` for a command), ``provider`` how it authenticated;
    ``action`` is ``create``, ``update``, ``upsert``, ``delete``,
    ``mass_update``, ``mass_delete`` or an administrative verb (``reload``,
    ``rbac.grant``…); ``target`` the row's primary key values (``None`` where
    there is no one row, e.g. a mass operation, whose ``detail`` carries the
    filter and the number of rows).
    """

    actor: Any
    action: str
    table: str | None
    target: Any
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)
    provider: str | None = None


@runtime_checkable
class AuditSink(Protocol):
    async def record(self, event: AuditEvent) -> None: ...


@runtime_checkable
class RequestObserver(Protocol):
    def observe(self, request: web.Request, route: str, status: int, seconds: float) -> None:
        """Count one finished request; ``route`` is the matched route's template
        (``/{table}/{id}``) or ``""`` when no route matched.  Must not block."""
