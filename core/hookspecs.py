# Specs have no bodies: pluggy only reads their signatures and docstrings.
# mypy: disable-error-code="empty-body"
"""Hook specifications: every extension point of swain, in lifecycle order.

pluggy is synchronous, and an ``async def`` implementation would return a
coroutine that pluggy counts as a result.  So every hook here runs once, while
the application is built (or the schema is loaded), and returns *objects*; the
request-time work lives in the async methods of those objects (see
:mod:`swain.core.protocols`), which core awaits in a defined order.

Hooks are called with keyword arguments only.  Implementations may accept any
subset of the arguments named in the spec, so a hook that gains an argument
keeps every existing implementation valid.  Most hooks receive the
application's :class:`~swain.core.runtime.Runtime` as ``runtime``: the
per-app context (configuration, plugin manager, dialect, catalog and the
typed ``services`` plugins share).  Plugins keep their state there, never in
module globals.

A list hook's results are gathered in the order pluggy calls the
implementations: ``tryfirst`` ones first, ``trylast`` ones last, otherwise
the most recently registered plugin first (so an installed plugin comes
before the built-ins).  Every hook is documented with an example in
``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from aiohttp import web
    from apispec import APISpec

    from .config import Config, Setting
    from .dialect import Dialect
    from .invalidation import InvalidationTransport, Watch
    from .protocols import (
        AggregateFunction,
        AuditSink,
        Authorizer,
        AuthProvider,
        CleanupContext,
        EmailTransport,
        FilterOperator,
        PasswordVerifier,
        RequestObserver,
        RowPolicy,
        WritePreparer,
    )
    from .runtime import Runtime
    from .schema import Schema

hookspec = pluggy.HookspecMarker("swain")

# -- the plugin manager ----------------------------------------------------------


@hookspec(historic=True)
def swain_addhooks(pm: pluggy.PluginManager) -> None:
    """Add hook specifications of a feature package: ``pm.add_hookspecs(module)``.

    Called for every plugin as it is registered (a historic hook, as pytest's
    ``pytest_addhooks``), so a package's own hooks exist before the plugins
    implementing them are checked.  Specs added here use
    ``pluggy.HookspecMarker("swain")`` and a ``swain_<feature>_`` prefix.
    """


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


@hookspec
def swain_transaction_settings(config: Config,
                               runtime: Runtime) -> Callable[[], Mapping[str, str]] | None:
    """Return a function giving settings to make transaction-local on every checkout.

    Core merges every plugin's settings and hands them to the dialect, which
    then runs each connection checkout as one transaction opening with them
    (PostgreSQL: ``set_config(name, value, true)``).  The function is called
    per checkout, so it may read a context variable set by a middleware.
    Start-up fails when the dialect cannot apply settings
    (``Dialect.supports_transaction_settings``).
    """


# -- schema ------------------------------------------------------------------


@hookspec
def swain_prepare_schema(schema: Schema, config: Config, runtime: Runtime) -> None:
    """Adjust the schema model after every introspection, before it is served.

    Plugins mark columns as secret (never read, written, filtered or sorted
    through the table API) and secret columns as write-only (written as text their
    write preparer turns into what is stored), hide tables, or validate their own mapping
    against it (raise :class:`~swain.core.errors.ConfigError` to refuse to start).
    Also called by commands that open a catalog (``swain.core.open_runtime``).
    """


# -- request pipeline --------------------------------------------------------


@hookspec
def swain_auth_providers(config: Config, runtime: Runtime) -> Iterable[AuthProvider]:
    """Return auth providers; each turns a request into an identity or declines.

    Core awaits providers in the order they were collected and keeps the first
    identity.  A provider raises :class:`~swain.core.errors.Unauthorized` only
    when a credential of its kind is present and wrong.
    """


@hookspec
def swain_authorizers(config: Config, runtime: Runtime) -> Iterable[Authorizer]:
    """Return authorization deciders, consulted for every table action.

    Each one may raise :class:`~swain.core.errors.Forbidden`; all must allow.
    Core calls them below the route level (in the table gateway), so an
    endpoint added later cannot skip them.
    """


@hookspec
def swain_row_policies(config: Config, runtime: Runtime) -> Iterable[RowPolicy]:
    """Return query scopers: predicates ANDed into every statement on a table.

    Core applies them to reads, counts, updates and deletes, including the rows
    reached through relationships.
    """


@hookspec
def swain_write_preparers(config: Config, runtime: Runtime) -> Iterable[WritePreparer]:
    """Return write preparers that inject, strip or validate values before
    every insert and update (single, bulk and mass), in the order collected.

    A client's value for a write-only column arrives as a
    :class:`~swain.core.protocols.WriteOnlyValue`; the preparer owning the column
    replaces it with what is stored (and keeps that in ``stored``).
    """


@hookspec
def swain_routes(config: Config, runtime: Runtime) -> Iterable[web.AbstractRouteDef]:
    """Return aiohttp route definitions to add to the application.

    Plugin routes are registered before the table routes, so a fixed path
    such as ``/auth/login`` always wins over ``/{table}/{id}``.
    """


@hookspec
def swain_middlewares(config: Config, runtime: Runtime) -> Iterable[Any]:
    """Return aiohttp middlewares, placed inside core's error and auth middlewares.

    They run after authentication (the identity is set), the first collected
    outermost.  An error raised by the handler passes through them as an
    exception; core's envelope turns it into the response outside them.
    """


@hookspec
def swain_request_observers(config: Config, runtime: Runtime) -> Iterable[RequestObserver]:
    """Return observers told about every finished request (route, status, duration).

    Core calls ``observe`` synchronously from its outermost middleware, for
    every request (errors, unknown routes and refused credentials included),
    so an observer must be cheap: count, never do I/O.  Metrics live here.
    """


@hookspec
def swain_cleanup_ctx(config: Config, runtime: Runtime) -> Iterable[CleanupContext]:
    """Return async generators run as aiohttp ``cleanup_ctx``: code before
    ``yield`` runs when the server starts, after it when it stops.  Open and
    close resources (pools, clients, background tasks) here."""


@hookspec
def swain_startup(runtime: Runtime) -> None:
    """Wire a plugin into the application once its runtime is complete.

    Called once per application, synchronously, after every other hook of the
    app (providers, routes, middlewares, cleanup contexts…) has been
    collected and before the app is frozen; as Datasette's ``startup``, it
    receives the per-app context.  Provide services here
    (``runtime.services.provide(KEY, obj)``), check what other plugins
    provide, or raise :class:`~swain.core.errors.ConfigError` to refuse to
    start.  Not called for commands (``open_runtime``); async work belongs in
    ``swain_cleanup_ctx``.
    """


@hookspec(firstresult=True)
def swain_handle_exception(request: web.Request,
                           exception: BaseException) -> web.StreamResponse | None:
    """Turn an exception core does not know into a response, or return ``None``.

    Stops at the first non-``None`` result; otherwise the client gets a 500
    envelope and the log gets the traceback.
    """


# -- query language ----------------------------------------------------------


@hookspec
def swain_filter_operators(config: Config, runtime: Runtime) -> Mapping[str, FilterOperator]:
    """Return extra filter operators by name (regex, JSON containment, full text…).

    ``FilterOperator.build(column, value)`` receives the value already bound as
    a parameter and checks it itself; any constant in the clause it returns
    must be inlined (``sqlalchemy.literal_column``), not bound anew.  Of two
    operators with one name, the one collected first wins.
    """


@hookspec
def swain_aggregate_functions(config: Config,
                              runtime: Runtime) -> Mapping[str, AggregateFunction]:
    """Return extra aggregate functions by upper-case name (the first collected wins)."""


# -- auth helpers ------------------------------------------------------------


@hookspec
def swain_password_hashers(config: Config, runtime: Runtime) -> Iterable[PasswordVerifier]:
    """Return password verifiers, one per stored-hash format family.

    The first collected must be a :class:`~swain.core.PasswordHasher`: it makes
    every new hash and always verifies (the ``passwords`` plugin's argon2id,
    which is ``tryfirst`` for that).  Every other one verifies only when its
    ``name`` is listed in ``[auth] password_formats``; a listed name no
    verifier has stops the app at startup.
    """


@hookspec
def swain_email_transports(config: Config, runtime: Runtime) -> Mapping[str, EmailTransport]:
    """Return email transports by name (``smtp``, ``console``, ``file``…)."""


@hookspec
def swain_audit_sinks(config: Config, runtime: Runtime) -> Iterable[AuditSink]:
    """Return sinks that record every write and administrative action (who, what, when).

    Core awaits ``record(event)`` on each sink after a write commits: every
    insert, update and delete through the table gateway (bulk rows one event
    each, a mass operation one event with its filter and count) and the
    administrative endpoints and commands.  A failing sink is logged; it never
    undoes or fails the write.
    """


# -- caches across instances ---------------------------------------------------


@hookspec
def swain_invalidation_watches(config: Config, runtime: Runtime) -> Iterable[Watch]:
    """Return the tables whose changes make a plugin's cached entries stale.

    Each :class:`~swain.core.invalidation.Watch` names a table, the topic its
    changes are published under and, optionally, the column naming the entry
    (a user's id).  Core publishes every committed write through the table
    gateway on a watched table; ``swain invalidation plan`` turns the watches
    into database triggers, so changes made directly in the database are
    published too.  Subscribe to the topics on the ``INVALIDATION`` service.
    Also collected for commands (``open_runtime``).
    """


@hookspec
def swain_invalidation_transports(config: Config,
                                  runtime: Runtime) -> Iterable[InvalidationTransport]:
    """Return transports that carry invalidations between instances.

    Core sends every published message through each and, while serving, runs
    their ``listen`` (before the first request, waiting a moment for them to
    connect) and delivers what they hear to this instance's subscribers.
    Also collected for commands (``open_runtime``), which only send.  The
    ``invalidation`` plugin provides PostgreSQL ``LISTEN/NOTIFY`` and Redis
    pub/sub.
    """


# -- documentation and tooling -------------------------------------------------


@hookspec
def swain_spec_contributions(spec: APISpec, schema: Schema, config: Config,
                             runtime: Runtime) -> None:
    """Add paths, components or security schemes to the OpenAPI document.

    Called every time the document is built (at startup and after a reload),
    first with a schema of no tables: the component names registered then are
    the shared ones, which no table's model name will take.  Per-table
    components belong under the table's model name (``x-swain-model`` of its tag).
    """


@hookspec
def swain_cli_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``swain`` command line."""
