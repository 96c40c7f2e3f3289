"""The audit log: every write and administrative action as one structured log line.

Core hands each :class:`~swain.core.AuditEvent` to the sinks plugins return
from ``swain_audit_sinks`` once the write has committed: inserts, updates and
deletes through the table API, every row of a bulk request, upserts, mass
updates and deletes (one event with the filter and the number of rows),
schema reloads, API keys created or revoked, and the ``swain rbac`` commands.
This plugin's sink writes them to the logger ``[audit] logger`` (``swain.audit``),
one record per event; with ``[logging] format = "json"`` each is a JSON line
with ``actor``, ``provider``, ``action``, ``table``, ``target`` (the row's key),
``at`` and ``detail`` at the top level, ready for a log pipeline.  Off unless
``[audit] enabled = true``; another sink (a table, a queue) is a plugin
returning its own object from the same hook.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from swain.core import AuditEvent, AuditSink, Config, Setting, hookimpl


class LogSink:
    """Writes each event to a logger at INFO."""

    def __init__(self, logger: str) -> None:
        self.log = logging.getLogger(logger)

    async def record(self, event: AuditEvent) -> None:
        self.log.info("audit: %s %s %s by %s", event.action, event.table or "-",
                      event.target if event.target is not None else "-", event.actor,
                      extra={"fields": {"audit": True, "actor": event.actor,
                                        "provider": event.provider, "action": event.action,
                                        "table": event.table, "target": event.target,
                                        "at": event.at.isoformat(),
                                        "detail": dict(event.detail)}})


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"audit": {
        "enabled": Setting("bool", False, doc="log every write and administrative action"),
        "logger": Setting("str", "swain.audit", doc="the logger audit events are written to"),
    }}


@hookimpl
def swain_audit_sinks(config: Config) -> Iterable[AuditSink]:
    return [LogSink(config.audit.logger)] if config.audit.enabled else []
