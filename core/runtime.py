"""The per-application context: everything one app (or one command) serves from.

A :class:`Runtime` holds the configuration, the plugin manager, the dialect,
the loaded catalog and the typed :class:`~swain.core.services.Services`
plugins share.  Hooks receive it as ``runtime``.  The request-pipeline hooks
run once, synchronously, in :meth:`Runtime.collect`; what they return
(providers, policies, preparers…) is kept here and awaited per request.
Only ``catalog`` changes after startup (schema reload).

Commands and plugins that need the live schema outside a served app use
:func:`open_runtime`: open the dialect, introspect, prepare, close.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy

from .catalog import Catalog
from .config import Config
from .dialect import Dialect
from .invalidation import INVALIDATION, InvalidationBus
from .plugins import collect, collect_mappings, create_plugin_manager, load_dialect
from .protocols import (
    AuditEvent,
    AuditSink,
    Authorizer,
    AuthProvider,
    EmailTransport,
    Identity,
    PasswordHasher,
    RequestObserver,
    RowPolicy,
    WritePreparer,
)
from .replicas import Reads
from .schema import Schema
from .services import Services

log = logging.getLogger("swain")


@dataclass
class Runtime:
    config: Config
    pm: pluggy.PluginManager
    dialect: Dialect
    catalog: Catalog | None = None
    #: typed objects plugins provide to each other (see :mod:`swain.core.services`)
    services: Services = field(default_factory=Services)
    auth_providers: list[AuthProvider] = field(default_factory=list)
    authorizers: list[Authorizer] = field(default_factory=list)
    row_policies: list[RowPolicy] = field(default_factory=list)
    write_preparers: list[WritePreparer] = field(default_factory=list)
    audit_sinks: list[AuditSink] = field(default_factory=list)
    request_observers: list[RequestObserver] = field(default_factory=list)
    password_hashers: list[PasswordHasher] = field(default_factory=list)
    email_transports: dict[str, EmailTransport] = field(default_factory=dict)
    filter_operators: dict[str, Any] = field(default_factory=dict)
    aggregate_functions: dict[str, Any] = field(default_factory=dict)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: cached OpenAPI documents per catalog, filled by the openapi plugin
    documents: dict[str, Any] = field(default_factory=dict)
    #: the read replicas and the choice between them (``read_url``), or ``None``
    reads: Reads | None = None

    def __post_init__(self) -> None:
        self.services.provide(INVALIDATION, InvalidationBus())

    @functools.cached_property
    def page_sizes(self) -> tuple[int, int]:
        """``api.default_page_size`` and ``api.max_page_size``, read once (every
        page request needs them)."""
        api = self.config.api
        return int(api.default_page_size), int(api.max_page_size)

    @functools.cached_property
    def exact_count_limit(self) -> int:
        """``api.exact_count_limit``, read once (every bounded count needs it)."""
        return int(self.config.api.exact_count_limit)

    @property
    def invalidations(self) -> InvalidationBus:
        """The invalidation bus (the :data:`~swain.core.invalidation.INVALIDATION` service)."""
        return self.services.get(INVALIDATION)

    @classmethod
    def create(cls, config: Config, pm: pluggy.PluginManager | None = None) -> Runtime:
        """A runtime for the configured stage: plugin manager and dialect, no hooks run."""
        if pm is None:
            pm = create_plugin_manager(disable=config.plugins.disable,
                                       modules=config.plugins.modules)
        connection = config.connection()
        backend = load_dialect(pm, connection.dialect)
        runtime = cls(config=config, pm=pm, dialect=backend(connection))
        if connection.read_urls:
            runtime.reads = Reads(runtime.dialect, [backend(connection.replica(url))
                                                    for url in connection.read_urls])
        return runtime

    @classmethod
    def build(cls, config: Config, pm: pluggy.PluginManager | None = None) -> Runtime:
        """:meth:`create`, then :meth:`collect`: the runtime of an application."""
        runtime = cls.create(config, pm)
        runtime.collect()
        return runtime

    def collect(self) -> None:
        """Run the request-pipeline hooks once and keep what they return."""
        pm, kwargs = self.pm, {"config": self.config, "runtime": self}
        self.password_hashers = collect(pm, "swain_password_hashers", **kwargs)
        self.email_transports = collect_mappings(pm, "swain_email_transports", **kwargs)
        self.filter_operators = collect_mappings(pm, "swain_filter_operators", **kwargs)
        self.aggregate_functions = collect_mappings(pm, "swain_aggregate_functions", **kwargs)
        self.audit_sinks = collect(pm, "swain_audit_sinks", **kwargs)
        self.auth_providers = collect(pm, "swain_auth_providers", **kwargs)
        self.authorizers = collect(pm, "swain_authorizers", **kwargs)
        self.row_policies = collect(pm, "swain_row_policies", **kwargs)
        self.write_preparers = collect(pm, "swain_write_preparers", **kwargs)
        self.request_observers = collect(pm, "swain_request_observers", **kwargs)
        self.collect_invalidation()
        settings = [s for s in pm.hook.swain_transaction_settings(**kwargs) if s is not None]
        if settings:
            merged = _merged(settings)
            for dialect in self.dialects:
                dialect.use_transaction_settings(merged)

    @property
    def dialects(self) -> list[Dialect]:
        """The primary's dialect, then each read replica's."""
        replicas = [r.dialect for r in self.reads.replicas] if self.reads is not None else []
        return [self.dialect, *replicas]

    def collect_invalidation(self) -> None:
        """The watched tables and the transports of the invalidation bus."""
        kwargs = {"config": self.config, "runtime": self}
        self.invalidations.watch(collect(self.pm, "swain_invalidation_watches", **kwargs))
        self.invalidations.transports = collect(self.pm, "swain_invalidation_transports",
                                                **kwargs)

    def start(self) -> None:
        """Call ``swain_startup``: the app is complete and about to be frozen."""
        self.pm.hook.swain_startup(runtime=self)

    # -- schema ---------------------------------------------------------------

    @property
    def schema(self) -> Schema:
        assert self.catalog is not None, "schema not loaded yet"
        return self.catalog.schema

    def prepare(self, schema: Schema) -> Catalog:
        excluded = set(self.config.api.exclude_tables)
        for table in schema.tables.values():
            table.hidden = table.key in excluded or table.name in excluded
        self.pm.hook.swain_prepare_schema(schema=schema, config=self.config, runtime=self)
        return Catalog(schema, int(self.config.query.cache_size))

    async def load_schema(self) -> Catalog:
        """Introspect and swap the catalog in; requests in flight keep the old one."""
        async with self._reload_lock:
            catalog = self.prepare(await self.dialect.introspect())
            previous, self.catalog = self.catalog, catalog
            self.documents.clear()
            if previous is not None:
                before = set(previous.schema.tables)
                after = set(catalog.schema.tables)
                for verb, names in (("added", after - before), ("removed", before - after)):
                    if names:
                        log.info("schema reload: %s %s", verb, ", ".join(sorted(names)))
            for name in catalog.reserved_collisions():
                log.warning("table %r collides with a reserved path; it is served only at "
                            "/tables/%s", name, name)
            return catalog

    # -- audit ----------------------------------------------------------------

    async def audit(self, events: Iterable[AuditEvent]) -> None:
        """Hand events to every audit sink (a failing sink is logged, never raised),
        then publish what writes on watched tables among them make stale."""
        events = list(events)
        for event in events:
            for sink in self.audit_sinks:
                try:
                    await sink.record(event)
                except Exception:
                    log.exception("audit sink %s failed to record %s on %s",
                                  type(sink).__name__, event.action, event.table)
        await self.invalidations.audited(events)


def audit_event(identity: Identity | None, action: str, table: str | None = None,
                target: Any = None, detail: Mapping[str, Any] | None = None) -> AuditEvent:
    """An event for ``identity`` happening now."""
    return AuditEvent(actor=identity.user_id if identity else None, action=action, table=table,
                      target=target, at=dt.datetime.now(dt.UTC), detail=dict(detail or {}),
                      provider=identity.provider if identity else None)


def _merged(sources: list[Callable[[], Mapping[str, str]]]) -> Callable[[], Mapping[str, str]]:
    if len(sources) == 1:
        return sources[0]

    def merged() -> Mapping[str, str]:
        values: dict[str, str] = {}
        for source in sources:
            values.update(source())
        return values

    return merged


@asynccontextmanager
async def open_runtime(config: Config, pm: pluggy.PluginManager | None = None, *,
                       prepare: bool = True, probe: bool = False) -> AsyncIterator[Runtime]:
    """A runtime holding the stage's live catalog, for a command or a plugin's tool.

    Opens the dialect, introspects and, with ``prepare``, applies the table
    exclusions and ``swain_prepare_schema`` as the server does; closes the
    dialect on the way out.  With ``probe`` the server is reached once first,
    so a wrong port or password (or a missing SQLite file) surfaces as the
    driver's own error.  No request-pipeline hook runs, but the audit sinks
    and the invalidation watches and transports are collected: administrative
    commands record what they change, and tell the serving instances
    (``runtime.invalidations.publish``).
    """
    runtime = Runtime.create(config, pm)
    runtime.audit_sinks = collect(runtime.pm, "swain_audit_sinks", config=config, runtime=runtime)
    runtime.collect_invalidation()
    if probe:
        await runtime.dialect.probe()
    await runtime.dialect.open()
    try:
        await runtime.dialect.ping()
        schema = await runtime.dialect.introspect()
        runtime.catalog = runtime.prepare(schema) if prepare else Catalog(schema)
        yield runtime
    finally:
        await runtime.invalidations.close()
        await runtime.dialect.close()


__all__ = ["Runtime", "audit_event", "open_runtime"]
