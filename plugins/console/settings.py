"""A console project is a ``swain.toml``: its settings are the file's sections,
held as plain values (what the operator typed), its secrets sealed apart.

This module turns a project into the raw configuration swain validates
(:func:`raw_config`), into the file itself (:func:`export_toml`, secrets as
``${ENV}`` references) and back (:func:`import_toml`).  Validation is swain's
own (``swain.core.config``) against the sections every enabled plugin
declares, so a setting the console accepts is one ``swain serve`` accepts.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
import tomli_w
from sqlalchemy.engine import make_url

from swain.core import Config, ConfigError, Setting
from swain.core import config as config_module
from swain.core.config import CONNECTION_SETTINGS, CORE_SECTIONS, env_name, merge_sections
from swain.core.plugins import create_plugin_manager

STAGES = ("development", "staging", "production")
DIALECTS = {"postgresql": "PostgreSQL", "mysql": "MySQL / MariaDB", "sqlite": "SQLite"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
#: the connection fields a console connection keeps (the password is sealed apart)
CONNECTION_FIELDS = ("dialect", "host", "port", "database", "username")
_PATH = re.compile(r"^([A-Za-z0-9_.\-\[\]]+): (.*)$", re.DOTALL)


class FieldError(Exception):
    """Bad input, with the form fields (setting paths) it concerns."""

    def __init__(self, errors: Mapping[str, str], status: int = 422) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)
        self.status = status


def field_error(exc: ConfigError, default: str = "file") -> FieldError:
    """A swain configuration error as a field error: its message starts with the key path."""
    text = str(exc)
    match = _PATH.match(text)
    if match:
        return FieldError({match.group(1): match.group(2)})
    return FieldError({default: text})


# -- declared sections ------------------------------------------------------------------


def plugin_manager(settings: Mapping[str, Any]) -> pluggy.PluginManager:
    plugins = settings.get("plugins") or {}
    try:
        return create_plugin_manager(disable=plugins.get("disable") or (),
                                     modules=plugins.get("modules") or ())
    except ConfigError as exc:
        raise field_error(exc, "plugins") from None


def declared(pm: pluggy.PluginManager) -> dict[str, dict[str, Setting]]:
    """Every section and key that core and the enabled plugins declare."""
    return merge_sections(CORE_SECTIONS, *reversed(pm.hook.swain_config_sections()))


def secret_paths(sections: Mapping[str, Mapping[str, Setting]]) -> list[str]:
    """``section.key`` of every setting declared secret (kept sealed, never shown)."""
    return sorted(f"{name}.{key}" for name, settings in sections.items()
                  if not name.endswith(".*") for key, setting in settings.items()
                  if setting.secret)


def get_path(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c``; ``None`` removes the key (and empty tables it leaves)."""
    parts = path.split(".")
    node = data
    trail = []
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is None:
                return
            child = node[part] = {}
        trail.append((node, part))
        node = child
    if value is None:
        node.pop(parts[-1], None)
        for parent, part in reversed(trail):
            if not parent[part]:
                del parent[part]
    else:
        node[parts[-1]] = value


def secret_env(path: str) -> str:
    """The environment variable an exported file reads a secret from (also swain's
    override variable for that key, so both ways of setting it agree)."""
    section, _, key = path.rpartition(".")
    return env_name(section, key)


# -- connections ----------------------------------------------------------------------------


@dataclass
class ConnectionInput:
    """One stage's database as entered (fields, or parsed from a URL)."""

    stage: str
    dialect: str
    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = None
    #: the other keys of the table (schemas, pool_size, timeouts…), as written
    options: dict[str, Any] = field(default_factory=dict)

    def raw(self, password: str | None) -> dict[str, Any]:
        """The ``[connections.<stage>]`` table swain validates."""
        out: dict[str, Any] = {"dialect": self.dialect}
        for key in ("host", "port", "database", "username"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        if password:
            out["password"] = password
        out.update(copy.deepcopy(self.options))
        return out


def parse_url(stage: str, url: str) -> ConnectionInput:
    """A connection from one database URL (``postgresql://user:pw@host:5432/db``)."""
    try:
        parsed = make_url(url.strip())
    except Exception:
        raise FieldError({"url": "not a database URL; expected e.g. "
                                 "postgresql://user@host:5432/db or sqlite:////path/file.db"}) from None
    backend = parsed.get_backend_name()
    dialect = config_module.ALIASES.get(backend, backend)
    if dialect not in DIALECTS:
        raise FieldError({"url": f"{backend!r} is not a supported database; use postgresql, "
                                 "mysql, mariadb or sqlite"})
    return ConnectionInput(stage, dialect, parsed.host, parsed.port, parsed.database,
                           parsed.username, parsed.password)


# -- the raw configuration ---------------------------------------------------------------------


def escape(value: Any) -> Any:
    """Values as written in a file: a literal ``$`` is ``$$`` there."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [escape(v) for v in value]
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    return value


def raw_config(name: str, description: str, settings: Mapping[str, Any],
               secrets: Mapping[str, str], connections: Iterable[tuple[ConnectionInput,
                                                                        str | None]]
               ) -> dict[str, Any]:
    """The configuration swain validates, with the secrets' plain values (memory only)."""
    raw = copy.deepcopy(dict(settings))
    raw["project"] = {"name": name, "description": description}
    for path, value in secrets.items():
        set_path(raw, path, value)
    stages = {c.stage: c.raw(password) for c, password in connections}
    if stages:
        raw["connections"] = stages
    return raw


def validate(raw: dict[str, Any], pm: pluggy.PluginManager, stage: str) -> Config:
    """swain's own validation of ``raw`` (paths in errors are the form's field names)."""
    try:
        return config_module.validate(copy.deepcopy(raw), declared(pm), stage=stage, path=None)
    except ConfigError as exc:
        raise field_error(exc) from None


# -- export and import ---------------------------------------------------------------------------


HEADER = """\
# swain project file, exported from the swain console.
# Secrets are not in this file: each is read from the environment variable
# named where it belongs.  Serve it anywhere with:
#   swain serve --config swain.toml --stage <stage>
"""


def export_toml(name: str, description: str, settings: Mapping[str, Any],
                secret_names: Iterable[str],
                connections: Iterable[tuple[ConnectionInput, bool]]) -> tuple[str, list[str]]:
    """The project as ``swain.toml`` text and the environment variables it reads."""
    doc: dict[str, Any] = {"project": {"name": escape(name), "description": escape(description)}}
    doc.update(escape(copy.deepcopy(dict(settings))))
    variables: list[str] = []
    for path in sorted(secret_names):
        variable = secret_env(path)
        set_path(doc, path, f"${{{variable}}}")
        variables.append(variable)
    stages: dict[str, Any] = {}
    for connection, has_password in connections:
        body = escape(connection.raw(None))
        if has_password:
            variable = env_name(f"connections.{connection.stage}", "password")
            body["password"] = f"${{{variable}}}"
            variables.append(variable)
        stages[connection.stage] = body
    if stages:
        doc["connections"] = stages
    lines = [HEADER.rstrip()]
    if variables:
        lines.append("# It reads: " + ", ".join(variables))
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(doc), variables


@dataclass
class Imported:
    name: str
    description: str
    settings: dict[str, Any]
    secrets: dict[str, str]
    connections: list[ConnectionInput]
    #: what could not be brought in (secrets whose variable is not set here)
    notes: list[str] = field(default_factory=list)


def import_toml(text: str, environ: Mapping[str, str]) -> Imported:
    """Read a ``swain.toml``: references are resolved from ``environ``; a secret whose
    variable is unset is left to be entered in the console (noted), anything else
    unresolved is an error naming its key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FieldError({"file": f"not valid TOML: {exc}"}) from None
    pm = plugin_manager(raw)
    sections = declared(pm)
    notes: list[str] = []
    secrets: dict[str, str] = {}
    for path in secret_paths(sections):
        value = get_path(raw, path)
        if value is None:
            continue
        set_path(raw, path, None)
        try:
            resolved = config_module.interpolate(value, path, environ)
        except ConfigError:
            notes.append(f"{path}: {value} is not set here; enter the secret in the console")
            continue
        if resolved:
            secrets[path] = str(resolved)
    stages = raw.pop("connections", {}) or {}
    if not isinstance(stages, dict):
        raise FieldError({"connections": "expected a table of stages"})
    try:
        raw = config_module.interpolate(raw, "", environ)
    except ConfigError as exc:
        raise field_error(exc) from None
    project = raw.pop("project", {}) or {}
    connections = [_imported_connection(stage, body, environ, notes)
                   for stage, body in stages.items()]
    name = str(project.get("name") or "").strip()
    if not name:
        raise FieldError({"project.name": "required: the project's name"})
    imported = Imported(name, str(project.get("description") or ""), raw, secrets, connections,
                        notes)
    check = raw_config(imported.name, imported.description, raw, secrets,
                       [(c, c.password) for c in connections])
    validate(check, pm, connections[0].stage if connections else "development")
    return imported


def _imported_connection(stage: str, body: Any, environ: Mapping[str, str],
                         notes: list[str]) -> ConnectionInput:
    where = f"connections.{stage}"
    if not isinstance(body, dict):
        raise FieldError({where: "expected a table (url = ..., or dialect, host, port, …)"})
    unknown = set(body) - set(CONNECTION_SETTINGS)
    if unknown:
        raise FieldError({f"{where}.{sorted(unknown)[0]}": "unknown key"})
    password = body.get("password")
    if password is not None:
        try:
            password = config_module.interpolate(password, f"{where}.password", environ)
        except ConfigError:
            notes.append(f"{where}.password: {password} is not set here; enter it in the console")
            password = None
    rest = {k: v for k, v in body.items() if k != "password"}
    try:
        rest = config_module.interpolate(rest, where, environ)
    except ConfigError as exc:
        raise field_error(exc) from None
    if rest.get("url"):
        connection = parse_url(stage, str(rest["url"]))
        for key in ("host", "port", "database", "username"):
            if rest.get(key) is not None:
                setattr(connection, key, rest[key])
        password = password or connection.password
    else:
        dialect = config_module.ALIASES.get(str(rest.get("dialect") or ""),
                                            str(rest.get("dialect") or ""))
        if dialect not in DIALECTS:
            raise FieldError({f"{where}.dialect": "expected postgresql, mysql, mariadb or "
                                                  "sqlite"})
        connection = ConnectionInput(stage, dialect, rest.get("host"), rest.get("port"),
                                     rest.get("database"), rest.get("username"))
    connection.password = password
    connection.options = {k: v for k, v in rest.items() if k not in (*CONNECTION_FIELDS, "url")}
    return connection
