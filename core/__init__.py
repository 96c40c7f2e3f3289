"""swain's core: the one import surface for plugin authors.

A plugin is a module (or object) with ``swain_*`` functions decorated with
:data:`hookimpl`; see :mod:`swain.core.hookspecs` for every hook and
``docs/plugins.md`` for an example of each.
"""

from __future__ import annotations

from .app import create_app, load_config
from .config import Config, Setting
from .dialect import DBConnection, Dialect, ExecResult, PoolStats
from .errors import (
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    Detail,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    invalid,
)
from .gateway import JsonRow, ListQuery, Page, TableGateway
from .invalidation import INVALIDATION, Invalidation, InvalidationBus, InvalidationTransport, Watch
from .keys import IDENTITY, REQUEST_ID, RUNTIME
from .middleware import credential, public
from .plugins import hookimpl
from .protocols import (
    Action,
    AuditEvent,
    AuditSink,
    Authorizer,
    AuthProvider,
    EmailMessage,
    EmailTransport,
    HashInfo,
    Identity,
    PasswordHasher,
    PasswordVerifier,
    Predicate,
    RequestObserver,
    RowPolicy,
    WriteOnlyValue,
    WritePreparer,
)
from .queryapi import filter_predicate, parse_payload
from .routes import table_routes
from .runtime import Runtime, audit_event, open_runtime
from .schema import Column, ForeignKey, Relationship, Schema, Table
from .services import ServiceKey, Services
from .tableapi import json_response, read_json, resolve_table

__all__ = [
    "IDENTITY", "INVALIDATION", "REQUEST_ID", "RUNTIME", "Action", "ApiError", "AuditEvent",
    "AuditSink", "AuthProvider", "Authorizer", "BadRequest", "Column", "Config", "ConfigError",
    "Conflict",
    "DBConnection", "Detail", "Dialect", "EmailMessage", "EmailTransport", "ExecResult",
    "Forbidden", "ForeignKey", "HashInfo", "Identity", "Invalidation", "InvalidationBus",
    "InvalidationTransport", "JsonRow", "ListQuery", "MethodNotAllowed", "NotFound", "Page",
    "PasswordHasher", "PasswordVerifier", "PayloadTooLarge", "PoolStats", "Predicate",
    "RateLimited", "Relationship", "RequestObserver", "RowPolicy", "Runtime", "Schema",
    "ServiceKey", "ServiceUnavailable", "Services", "Setting", "Table", "TableGateway",
    "Unauthorized", "ValidationFailed", "Watch", "WriteOnlyValue", "WritePreparer",
    "audit_event", "create_app", "credential",
    "filter_predicate", "hookimpl", "invalid", "json_response", "load_config", "open_runtime",
    "parse_payload", "public", "read_json", "resolve_table", "table_routes",
]
