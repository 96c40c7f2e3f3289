# Specs have no bodies: pluggy only reads their signatures and docstrings.
# mypy: disable-error-code="empty-body"
"""Hook specifications: every extension point of swain, in lifecycle order.

pluggy is synchronous, and an ``async def`` implementation would return a
coroutine that pluggy counts as a result.  So every hook here runs once, while
the application is built (or the schema is loaded), and returns *objects*; the
request-time work lives in the async methods of those objects (see
:mod:`swain.core.protocols`), which core awaits in a defined order.

Hooks are called with keyword arguments only.  Implementations may accept any
subset of the arguments named in the spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from aiohttp import web
    from apispec import APISpec

    from .config import Config, Setting
    from .dialect import Dialect
    from .protocols import (
        AggregateFunction,
        AuditSink,
        Authorizer,
        AuthProvider,
        CleanupContext,
        EmailTransport,
        FilterOperator,
        PasswordVerifier,
        RowPolicy,
        WritePreparer,
    )
    from .schema import Schema

hookspec = pluggy.HookspecMarker("swain")

# -- configuration ---------------------------------------------------------


@hookspec
def swain_config_sections() -> Mapping[str, Mapping[str, Setting]]:
    """Declare the config sections (or extra keys of existing sections) a plugin reads.

    Returns ``{"section": {"key": Setting(...)}}``.  Contributions are merged;
    a key no enabled plugin declares is a configuration error, so a plugin must
    declare every key it reads.
    """


# -- dialects ----------------------------------------------------------------


@hookspec(firstresult=True)
def swain_get_dialect(name: str) -> type[Dialect] | None:
    """Return the dialect class for a URL scheme's backend name, or ``None``.

    Stops at the first non-``None`` result.  When no plugin answers, core loads
    the entry point ``name`` from the group ``swain.dialects``.
    """


# -- schema ------------------------------------------------------------------


@hookspec
def swain_prepare_schema(schema: Schema, config: Config) -> None:
    """Adjust the schema model after every introspection, before it is served.

    Plugins mark columns as secret (never read, written, filtered or sorted
    through the table API), hide tables, or validate their own mapping
    against it (raise :class:`~swain.core.errors.ConfigError` to refuse to start).
    """


# -- request pipeline --------------------------------------------------------


@hookspec
def swain_auth_providers(config: Config) -> Iterable[AuthProvider]:
    """Return auth providers; each turns a request into an identity or declines.

    Core awaits providers in registration order and keeps the first identity.
    A provider raises :class:`~swain.core.errors.Unauthorized` only when a
    credential of its kind is present and wrong.
    """


@hookspec
def swain_authorizers(config: Config) -> Iterable[Authorizer]:
    """Return authorization deciders, consulted for every table action.

    Each one may raise :class:`~swain.core.errors.Forbidden`; all must allow.
    Core calls them below the route level (in the table gateway), so an
    endpoint added later cannot skip them.
    """


@hookspec
def swain_row_policies(config: Config) -> Iterable[RowPolicy]:
    """Return query scopers: predicates ANDed into every statement on a table.

    Core applies them to reads, counts, updates and deletes, including the rows
    reached through relationships.
    """


@hookspec
def swain_write_preparers(config: Config) -> Iterable[WritePreparer]:
    """Return write preparers that inject, strip or validate values before
    every insert and update (single, bulk and mass)."""


@hookspec
def swain_routes(config: Config) -> Iterable[web.AbstractRouteDef]:
    """Return aiohttp route definitions to add to the application.

    Plugin routes are registered before the table routes, so a fixed path
    such as ``/auth/login`` always wins over ``/{table}/{id}``.
    """


@hookspec
def swain_middlewares(config: Config) -> Iterable[Any]:
    """Return aiohttp middlewares, placed inside core's error and auth middlewares.

    They run after authentication (the identity is set) and in registration
    order, outermost first.  An error raised by the handler passes through them
    as an exception; core's envelope turns it into the response outside them.
    """


@hookspec
def swain_cleanup_ctx(config: Config) -> Iterable[CleanupContext]:
    """Return async generators run as aiohttp ``cleanup_ctx``: code before
    ``yield`` runs at startup, after it at shutdown (startup/shutdown hook)."""


@hookspec(firstresult=True)
def swain_handle_exception(request: web.Request,
                           exception: BaseException) -> web.StreamResponse | None:
    """Turn an exception core does not know into a response, or return ``None``.

    Stops at the first non-``None`` result; otherwise the client gets a 500
    envelope and the log gets the traceback.
    """


# -- query language ----------------------------------------------------------


@hookspec
def swain_filter_operators(config: Config) -> Mapping[str, FilterOperator]:
    """Return extra filter operators by name (regex, JSON containment, full text…).

    ``FilterOperator.build(column, value)`` receives the value already bound as
    a parameter and checks it itself; any constant in the clause it returns
    must be inlined (``sqlalchemy.literal_column``), not bound anew.  A later
    plugin's operator replaces an earlier one of the same name.
    """


@hookspec
def swain_aggregate_functions(config: Config) -> Mapping[str, AggregateFunction]:
    """Return extra aggregate functions by upper-case name."""


# -- auth helpers ------------------------------------------------------------


@hookspec
def swain_password_hashers(config: Config) -> Iterable[PasswordVerifier]:
    """Return password verifiers, one per stored-hash format family.

    Collected in registration order.  The very first (the built-in argon2id
    of the ``passwords`` plugin) must be a :class:`~swain.core.PasswordHasher`:
    it makes every new hash and always verifies.  Every other one verifies only
    when its ``name`` is listed in ``[auth] password_formats``; a listed name
    no verifier has stops the app at startup.
    """


@hookspec
def swain_email_transports(config: Config) -> Mapping[str, EmailTransport]:
    """Return email transports by name (``smtp``, ``console``, ``file``…)."""


@hookspec
def swain_audit_sinks(config: Config) -> Iterable[AuditSink]:
    """Return sinks that record administrative actions and mutations (who, what, when)."""


# -- documentation and tooling -------------------------------------------------


@hookspec
def swain_spec_contributions(spec: APISpec, schema: Schema, config: Config) -> None:
    """Add paths, components or security schemes to the OpenAPI document.

    Called every time the document is built (at startup and after a reload),
    first with a schema of no tables: the component names registered then are
    the shared ones, which no table's model name will take.  Per-table
    components belong under the table's model name (``x-swain-model`` of its tag).
    """


@hookspec
def swain_cli_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``swain`` command line."""
