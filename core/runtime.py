"""Everything one application serves from, gathered once from the plugins.

The hooks run here, synchronously, while the app is built; what they return
(providers, policies, preparers…) is kept on the :class:`Runtime` and awaited
per request.  Only ``catalog`` changes after startup (schema reload).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pluggy

from .catalog import Catalog
from .config import Config
from .dialect import Dialect
from .plugins import collect, collect_mappings
from .protocols import AuditSink, Authorizer, AuthProvider, RowPolicy, WritePreparer
from .schema import Schema

log = logging.getLogger("swain")


@dataclass
class Runtime:
    config: Config
    pm: pluggy.PluginManager
    dialect: Dialect
    catalog: Catalog | None = None
    auth_providers: list[AuthProvider] = field(default_factory=list)
    authorizers: list[Authorizer] = field(default_factory=list)
    row_policies: list[RowPolicy] = field(default_factory=list)
    write_preparers: list[WritePreparer] = field(default_factory=list)
    audit_sinks: list[AuditSink] = field(default_factory=list)
    filter_operators: dict[str, Any] = field(default_factory=dict)
    aggregate_functions: dict[str, Any] = field(default_factory=dict)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: cached OpenAPI documents per catalog, filled by the openapi plugin
    documents: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config, pm: pluggy.PluginManager, dialect: Dialect) -> Runtime:
        return cls(
            config=config,
            pm=pm,
            dialect=dialect,
            auth_providers=collect(pm, "swain_auth_providers", config=config),
            authorizers=collect(pm, "swain_authorizers", config=config),
            row_policies=collect(pm, "swain_row_policies", config=config),
            write_preparers=collect(pm, "swain_write_preparers", config=config),
            audit_sinks=collect(pm, "swain_audit_sinks", config=config),
            filter_operators=collect_mappings(pm, "swain_filter_operators", config=config),
            aggregate_functions=collect_mappings(pm, "swain_aggregate_functions", config=config),
        )

    @property
    def schema(self) -> Schema:
        assert self.catalog is not None, "schema not loaded yet"
        return self.catalog.schema

    def prepare(self, schema: Schema) -> Catalog:
        excluded = set(self.config.api.exclude_tables)
        for table in schema.tables.values():
            table.hidden = table.key in excluded or table.name in excluded
        self.pm.hook.swain_prepare_schema(schema=schema, config=self.config)
        return Catalog(schema)

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
