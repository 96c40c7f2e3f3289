"""``swain.toml``: loading, interpolation, overrides and validation.

Every setting is listed in ``docs/configuration.md``.

Loading happens in three steps so that plugins can own config sections:

1. :func:`read_raw` parses TOML, applies ``${VAR}``/``${VAR:-default}`` and the
   ``SWAIN_<SECTION>_<KEY>`` environment overrides;
2. the plugin manager is built from ``[plugins]``;
3. :func:`validate` checks every section against the settings core and the
   enabled plugins declare (``swain_config_sections``).  Unknown keys are
   errors; every error names its key path and what was expected.

Section names may be dotted (``social.google`` is ``[social.google]``), and a
section named ``name.*`` validates every sub-table of ``[name]`` alike.

Connections are per stage (``[connections.<stage>]``).  A ``${VAR}`` that is
not set inside *another* stage's connection does not stop this stage from
loading: the error is kept and raised only when that stage is used, so a
developer needs no production secrets.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from .errors import ConfigError

_MISSING: Any = object()
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_STAGE = re.compile(r"[a-z][a-z0-9_-]*")
MASK = "********"
#: keys treated as secret wherever they appear, besides those declared ``secret=True``
_SECRET_NAMES = re.compile(r"(password|secret|token|api_key|private_key)$")
_KINDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
          "duration": "a duration like 90s, 15m, 1h or 7d", "size": "a size like 512kb or 1mb",
          "list": "a list", "table": "a table"}


@dataclass(frozen=True)
class Setting:
    """One key of a section: its kind, default and whether it is a secret.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``duration``
    (seconds as a float; ``90s``, ``15m``, ``1h``, ``7d``, ``1h30m``), ``size``
    (bytes; ``512kb``, ``1mb``), ``list`` (of ``item``) or ``table``.  A
    secret is masked by ``swain config show`` and never echoed in an error.
    """

    kind: str
    default: Any = None
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    doc: str = ""
    item: str = "str"

    @property
    def required(self) -> bool:
        return self.default is _MISSING


def required(kind: str, **options: Any) -> Setting:
    """A setting without a default: leaving it out is an error."""
    return Setting(kind, _MISSING, **options)


CONNECTION_SETTINGS: dict[str, Setting] = {
    "url": Setting("str", None, doc="one URL; fields given beside it override its parts"),
    "dialect": Setting("str", None, doc="postgresql | mysql | mariadb | sqlite"),
    "host": Setting("str", None),
    "port": Setting("int", None, minimum=1),
    "database": Setting("str", None),
    "username": Setting("str", None),
    "password": Setting("str", None, secret=True),
    "schemas": Setting("list", []),
    "pool_size": Setting("int", 10, minimum=1),
    "connect_timeout": Setting("duration", 5.0, minimum=0.1,
                               doc="opening one new connection"),
    "query_timeout": Setting("duration", 10.0, minimum=0.1,
                             doc="client-side bound on one statement, including the wait for "
                                 "a pooled connection; beyond it the answer is 503"),
    "statement_timeout": Setting("duration", None, minimum=0,
                                 doc="server-side bound on one statement (default: query_timeout "
                                     "less a second, so the database cancels it first)"),
    "prepared_statements": Setting("bool", True, doc="turn off behind PgBouncer"),
    "read_url": Setting("list", [], doc="read replicas (one URL or several): a request's reads "
                                        "go to one unless it wrote or asks for the primary"),
    "replica_retry": Setting("duration", 5.0, minimum=0.1,
                             doc="how long a replica that failed is left alone before it is "
                                 "tried again"),
    "max_replica_lag": Setting("duration", None, minimum=0,
                               doc="a replica further behind the primary than this is not read "
                                   "from (checked every replica_retry; default: no check)"),
}

CORE_SECTIONS: dict[str, dict[str, Setting]] = {
    "project": {
        "name": Setting("str", "swain"),
        "description": Setting("str", ""),
    },
    "api": {
        "public_url": Setting("str", "http://127.0.0.1:8000"),
        "exclude_tables": Setting("list", []),
        "default_page_size": Setting("int", 25, minimum=1),
        "max_page_size": Setting("int", 1000, minimum=1),
        "exact_count_limit": Setting("int", 10000, minimum=1,
                                     doc="count=bounded (the default) counts exactly up to "
                                         "this many rows, and estimates beyond"),
        "sql_preview": Setting("list", ["development"]),
        "max_body_size": Setting("size", 1024 * 1024, minimum=1024),
        "cors_origins": Setting("list", [], doc="origins browsers may call the API from "
                                                "(CORS; empty: off), or \"*\""),
        "cors_allow_credentials": Setting("bool", False, doc="let those origins send cookies "
                                                             "and Authorization"),
        "cors_max_age": Setting("duration", 600.0, minimum=0,
                                doc="how long a browser may cache a preflight answer"),
        "allow_explicit_keys": Setting("bool", False,
                                       doc="let clients write keys the database generates"),
    },
    "auth": {
        "enabled": Setting("bool", True),
        "public_routes": Setting("list", []),
    },
    "plugins": {
        "disable": Setting("list", []),
        "modules": Setting("list", [], doc="extra plugin modules, registered last"),
    },
    "server": {
        "host": Setting("str", "127.0.0.1"),
        "port": Setting("int", 8000, minimum=0),
        "workers": Setting("int", 1, minimum=1),
        "shutdown_timeout": Setting("duration", 30.0, minimum=0),
        "header_timeout": Setting("duration", 10.0, minimum=0.1,
                                  doc="for a request's headers to arrive (from the connection's "
                                      "start or its previous answer); also the idle keep-alive"),
        "body_timeout": Setting("duration", 30.0, minimum=0.1,
                                doc="for a request's body to arrive once its headers have"),
        "admin_addresses": Setting("list", ["127.0.0.1", "::1"]),
    },
    "logging": {
        "level": Setting("str", "info", choices=("debug", "info", "warning", "error")),
        "format": Setting("str", "auto", choices=("auto", "json", "text")),
        "access_log": Setting("bool", True),
    },
    "schema": {
        "snapshot": Setting("str", "swain.schema.json"),
    },
    "query": {
        "max_depth": Setting("int", 8, minimum=1, doc="nesting of filter groups and relationships"),
        "max_expressions": Setting("int", 200, minimum=1, doc="expressions in one filter"),
        "max_in_size": Setting("int", 1000, minimum=1, doc="values in one in/nin list"),
        "max_parameters": Setting("int", 20_000, minimum=1,
                                  doc="values one filter may bind (every in-list item counts)"),
        "cache_size": Setting("size", 16 * 1024 * 1024, minimum=64 * 1024,
                              doc="bytes each per-schema cache of compiled SQL may hold"),
        "compose_json": Setting("bool", True,
                                doc="compose included rows and per-parent aggregations as "
                                    "JSON in the page's statement where the database can"),
    },
}


class Section(Mapping[str, Any]):
    """Validated values of one section, readable as ``section.key`` or ``section["key"]``."""

    def __init__(self, path: str, values: dict[str, Any]) -> None:
        self._path = path
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"{self._path}.{key}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Section({self._path!r}, {self._values!r})"


@dataclass(frozen=True)
class Connection:
    """The database of one stage, resolved to a URL (password included: never print it)."""

    stage: str
    url: URL
    dialect: str
    schemas: list[str]
    pool_size: int
    connect_timeout: float
    statement_timeout: float
    prepared_statements: bool
    #: the project file's folder: file databases named by a relative path live there
    base_dir: Path = field(default_factory=Path.cwd)
    query_timeout: float = 10.0
    #: read replicas of the database (``read_url``), each a complete URL
    read_urls: tuple[URL, ...] = ()
    replica_retry: float = 5.0
    max_replica_lag: float | None = None

    def replica(self, url: URL) -> Connection:
        """The connection settings of one of :attr:`read_urls` (no replicas of its own)."""
        return replace(self, url=url, read_urls=())

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, fit for logs and messages."""
        return self.url.render_as_string(hide_password=True)


class _Unresolved:
    """A value whose ``${VAR}`` could not be resolved; raised only if it is used."""

    def __init__(self, text: str, error: ConfigError) -> None:
        self.text = text
        self.error = error

    def __repr__(self) -> str:
        return self.text


@dataclass
class Config:
    """A validated project file for one stage."""

    stage: str
    path: Path | None
    sections: dict[str, Section]
    connections: dict[str, Section]
    secrets: set[str] = field(default_factory=set)
    #: stages whose connection could not be resolved (an unset ``${VAR}``), by stage
    deferred: dict[str, ConfigError] = field(default_factory=dict)
    #: the raw text of each deferred stage, for display
    unresolved: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Section:
        try:
            return self.__dict__["sections"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(name) from None

    def section(self, name: str) -> Section:
        """A section by (dotted) name; empty when no enabled plugin declares it."""
        return self.sections.get(name) or Section(name, {})

    def has_section(self, name: str) -> bool:
        return name in self.sections

    @property
    def base_dir(self) -> Path:
        """The project file's folder: relative paths in the file are relative to it."""
        return self.path.resolve().parent if self.path else Path.cwd()

    @property
    def stages(self) -> list[str]:
        return sorted({*self.connections, *self.deferred})

    def connection(self, stage: str | None = None) -> Connection:
        stage = stage or self.stage
        if stage in self.deferred:
            raise self.deferred[stage]
        try:
            section = self.connections[stage]
        except KeyError:
            known = ", ".join(self.stages) or "none"
            raise ConfigError(
                f"connections.{stage}: no connection for stage {stage!r} (configured: {known}); "
                f"add a [connections.{stage}] table or run `swain connection add --stage {stage}`"
            ) from None
        return _connection(stage, section, self.base_dir)


# -- value parsing -------------------------------------------------------------


def parse_duration(value: Any, path: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``1h``, ``7d``, ``1h30m`` or ``250ms``."""
    expected = f"{path}: expected a duration like 90s, 15m, 1h or 7d, got {value!r}"
    if isinstance(value, bool):
        raise ConfigError(expected)
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?", text)
    if not text or not re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w)?)+", text) or \
            (len(parts) > 1 and any(not unit for _, unit in parts)):
        raise ConfigError(expected)
    return sum(float(number) * _UNITS[unit or "s"] for number, unit in parts)


def parse_size(value: Any, path: str) -> int:
    """Bytes from ``1048576``, ``512kb``, ``1mb``, ``1MiB`` or ``2g``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(value).lower())
    if isinstance(value, bool) or not match or match.group(2) not in _SIZES:
        raise ConfigError(f"{path}: expected a size like 512kb or 1mb, got {value!r}")
    return int(float(match.group(1)) * _SIZES[match.group(2)])


def interpolate(value: Any, path: str, environ: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, f"{path}.{k}" if path else k, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{path}[{i}]", environ) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set "
                          f"(set it, or write ${{{name}:-default}})")

    result = _VAR.sub(replace, value)
    leftover = _VAR.sub("", value)
    if "${" in leftover:
        raise ConfigError(f"{path}: malformed reference in {value!r}: write ${{NAME}} or "
                          "${NAME:-default} (NAME is letters, digits and _), or $$ for a "
                          "literal $")
    return result


def _interpolate_lenient(value: Any, path: str, environ: Mapping[str, str]) -> Any:
    """Like :func:`interpolate`, but an unresolvable string becomes :class:`_Unresolved`."""
    if isinstance(value, dict):
        return {k: _interpolate_lenient(v, f"{path}.{k}", environ) for k, v in value.items()}
    try:
        return interpolate(value, path, environ)
    except ConfigError as exc:
        return _Unresolved(str(value), exc)


def read_raw(path: Path | None, environ: Mapping[str, str] | None = None,
             sections: Mapping[str, Mapping[str, Setting]] | None = None) -> dict[str, Any]:
    """Parse the file (absent file = empty), interpolate, then apply environment overrides.

    Values set through ``SWAIN_*`` variables are taken literally (not interpolated).
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    connections = raw.pop("connections", None)
    raw = interpolate(raw, "", environ)
    if connections is not None:
        if isinstance(connections, dict):
            connections = {stage: _interpolate_lenient(body, f"connections.{stage}", environ)
                           for stage, body in connections.items()}
        raw["connections"] = connections
    _apply_environment(raw, environ, sections or CORE_SECTIONS)
    return raw


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key``."""
    return f"SWAIN_{section.replace('.', '_').replace('-', '_').upper()}_{key.upper()}"


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str],
                       sections: Mapping[str, Mapping[str, Setting]]) -> None:
    for section, settings in sections.items():
        if section.endswith(".*"):
            continue
        for key in settings:
            name = env_name(section, key)
            if name in environ:
                node = raw
                for part in section.split("."):
                    child = node.setdefault(part, {})
                    if not isinstance(child, dict):
                        break
                    node = child
                else:
                    node[key] = _from_env(environ[name])
    prefix = "SWAIN_CONNECTIONS_"
    for name, value in environ.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):].lower()
        for key in sorted(CONNECTION_SETTINGS, key=len, reverse=True):
            if rest.endswith("_" + key) and len(rest) > len(key) + 1:
                stage = rest[: -len(key) - 1]
                stages = raw.setdefault("connections", {})
                if isinstance(stages, dict) and isinstance(stages.setdefault(stage, {}), dict):
                    stages[stage][key] = _from_env(value)
                break


def _from_env(text: str) -> Any:
    """Environment values are strings; a TOML array literal (``["a", "b"]``) is a list."""
    if text.startswith("["):
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    return text


# -- validation ----------------------------------------------------------------


def _shown(setting: Setting, value: Any) -> str:
    return "a secret value" if setting.secret else repr(value)


def _coerce(setting: Setting, value: Any, path: str) -> Any:
    kind = setting.kind
    if isinstance(value, _Unresolved):
        raise value.error
    if value is None:
        return None
    wrong = ConfigError(f"{path}: expected {_KINDS.get(kind, kind)}, got {_shown(setting, value)}")
    if kind == "str":
        if not isinstance(value, str):
            raise wrong
    elif kind == "bool":
        if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on", "false", "0",
                                                        "no", "off"}:
            value = value.lower() in {"true", "1", "yes", "on"}
        if not isinstance(value, bool):
            raise wrong
    elif kind in ("int", "float"):
        if isinstance(value, bool) or (isinstance(value, float) and kind == "int"):
            raise wrong
        try:
            value = int(value) if kind == "int" else float(value)
        except (TypeError, ValueError):
            raise wrong from None
    elif kind == "duration":
        value = parse_duration(value, path)
    elif kind == "size":
        value = parse_size(value, path)
    elif kind == "list":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise wrong
        item = Setting(setting.item, secret=setting.secret)
        value = [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    elif kind == "table" and not isinstance(value, dict):
        raise wrong
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{path}: expected one of {', '.join(setting.choices)}, "
                          f"got {_shown(setting, value)}")
    if setting.minimum is not None and isinstance(value, int | float) and value < setting.minimum:
        raise ConfigError(f"{path}: must be at least {setting.minimum:g}, got {value!r}")
    return value


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def validate_section(path: str, raw: Any, settings: Mapping[str, Setting],
                     subsections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check one section's keys and coerce its values; ``subsections`` are the
    names of sub-tables that are validated separately (so they are not unknown)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table, got {raw!r}")
    subsections = subsections or {}
    for key in raw:
        if key not in settings and key not in subsections:
            allowed = sorted([*settings, *subsections])
            raise ConfigError(f"{path}.{key}: unknown key{_suggest(key, allowed)} "
                              f"(allowed: {', '.join(allowed) or 'none'})")
    values: dict[str, Any] = {}
    for key, setting in settings.items():
        if key in raw:
            values[key] = _coerce(setting, raw[key], f"{path}.{key}")
        elif setting.required:
            raise ConfigError(f"{path}.{key}: required ({setting.doc or _KINDS.get(setting.kind)})")
        else:
            default = setting.default
            values[key] = list(default) if isinstance(default, list) else default
    return values


def merge_sections(
        *contributions: Mapping[str, Mapping[str, Setting]]) -> dict[str, dict[str, Setting]]:
    """Merge section declarations; a later contribution adds keys to (or overrides) earlier ones."""
    merged: dict[str, dict[str, Setting]] = {}
    for contribution in contributions:
        for section, settings in contribution.items():
            merged.setdefault(section, {}).update(settings)
    return merged


def _children(name: str, sections: Mapping[str, Any]) -> dict[str, str]:
    """Sub-table names of section ``name`` that some declaration covers → declaration name."""
    found: dict[str, str] = {}
    prefix = f"{name}."
    for declared in sections:
        if declared.startswith(prefix):
            child = declared[len(prefix):].split(".", 1)[0]
            if child != "*":
                found.setdefault(child, f"{prefix}{child}")
    return found


class _Validator:
    def __init__(self, sections: Mapping[str, Mapping[str, Setting]]) -> None:
        self.sections = sections
        self.validated: dict[str, Section] = {}
        self.secrets: set[str] = set()

    def section(self, path: str, declared: str, raw: Any) -> None:
        """Validate ``raw`` found at ``path`` against declaration ``declared``."""
        settings = self.sections.get(declared, {})
        children = _children(declared, self.sections)
        wildcard = f"{declared}.*" in self.sections
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a table, got {raw!r}")
        subtables = {k: v for k, v in raw.items() if k not in settings and isinstance(v, dict)}
        allowed_subs: dict[str, str] = {k: children[k] for k in subtables if k in children}
        if wildcard:
            allowed_subs.update({k: f"{declared}.*" for k in subtables if k not in children})
        values = validate_section(path, raw, settings, {**children, **allowed_subs})
        self.validated[path] = Section(path, values)
        self.secrets.update(f"{path}.{key}" for key, s in settings.items() if s.secret)
        for key, child_declared in sorted({**children, **allowed_subs}.items()):
            if key in raw:
                self.section(f"{path}.{key}", child_declared, raw[key])
            elif not any(s.required for s in self.sections.get(child_declared, {}).values()) \
                    and not child_declared.endswith(".*"):
                self.section(f"{path}.{key}", child_declared, {})


def _top_level(sections: Mapping[str, Any]) -> list[str]:
    return sorted({name.split(".", 1)[0] for name in sections})


def validate(raw: dict[str, Any], sections: Mapping[str, Mapping[str, Setting]], *, stage: str,
             path: Path | None) -> Config:
    """Check ``raw`` against the declared sections and build the :class:`Config` for ``stage``."""
    if not _STAGE.fullmatch(stage):
        raise ConfigError(f"stage {stage!r}: stage names are lower-case identifiers "
                          "(development, staging, production…)")
    roots = _top_level(sections)
    known = sorted([*roots, "connections"])
    for name in raw:
        if name not in roots and name != "connections":
            raise ConfigError(f"{name}: unknown section{_suggest(name, known)}; no enabled plugin "
                              f"reads it (known: {', '.join(known)})")
    validator = _Validator(sections)
    for name in roots:
        validator.section(name, name, raw.get(name, {}))
    base_dir = path.resolve().parent if path else Path.cwd()
    connections: dict[str, Section] = {}
    deferred: dict[str, ConfigError] = {}
    unresolved: dict[str, dict[str, Any]] = {}
    stages = raw.get("connections", {})
    if not isinstance(stages, dict):
        raise ConfigError(f"connections: expected a table of stages, got {stages!r}")
    for stage_name, body in stages.items():
        where = f"connections.{stage_name}"
        if not _STAGE.fullmatch(stage_name):
            raise ConfigError(f"{where}: stage names are lower-case identifiers "
                              "(development, staging, production…)")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: expected a table (url = ..., or dialect/host/port/"
                              f"database/username/password), got {body!r}")
        pending = [v for v in body.values() if isinstance(v, _Unresolved)]
        if pending and stage_name != stage:
            validate_section(where, {k: None for k in body}, CONNECTION_SETTINGS)
            deferred[stage_name] = pending[0].error
            unresolved[stage_name] = {k: (v.text if isinstance(v, _Unresolved) else v)
                                      for k, v in body.items()}
            continue
        values = validate_section(where, body, CONNECTION_SETTINGS)
        connections[stage_name] = Section(where, values)
        _connection(stage_name, connections[stage_name], base_dir)
    for stage_name in [*connections, *deferred]:
        validator.secrets.add(f"connections.{stage_name}.password")
    config = Config(stage=stage, path=path, sections=validator.validated,
                    connections=connections, secrets=validator.secrets, deferred=deferred,
                    unresolved=unresolved)
    api = config.section("api")
    if api.get("default_page_size", 0) > api.get("max_page_size", float("inf")):
        raise ConfigError(f"api.default_page_size: {api.default_page_size} exceeds "
                          f"api.max_page_size ({api.max_page_size})")
    return config


# -- connections -----------------------------------------------------------------

#: other names of a dialect (URL schemes people write), mapped to the registered name
ALIASES = {"postgres": "postgresql", "pgsql": "postgresql", "mariadb": "mysql", "sqlite3": "sqlite"}
_URL_PARTS = ("host", "port", "database", "username", "password")


def known_dialects() -> list[str]:
    """Dialect names installed in entry-point group ``swain.dialects`` (not loaded)."""
    return sorted({ep.name for ep in entry_points(group="swain.dialects")})


def _connection(stage: str, section: Section, base_dir: Path) -> Connection:
    path = f"connections.{stage}"
    overrides = {k: section[k] for k in _URL_PARTS if section[k] is not None}
    if section.url:
        where = f"{path}.url"
        try:
            url = make_url(section.url)
        except Exception:
            raise ConfigError(f"{where}: not a database URL; expected e.g. "
                              "postgresql://user@host:5432/db or sqlite:///file.db") from None
        backend = url.get_backend_name()
        dialect = ALIASES.get(backend, backend)
        if section.dialect and ALIASES.get(section.dialect, section.dialect) != dialect:
            raise ConfigError(f"{path}.dialect: {section.dialect!r} contradicts the URL's "
                              f"{backend!r}; drop one of them")
        # Fields beside the URL replace its parts (e.g. password = "${DB_PASSWORD}").
        if overrides:
            url = url.set(**overrides)
    else:
        where = f"{path}.dialect"
        if not section.dialect:
            raise ConfigError(f"{path}: give either url, or dialect (postgresql | mysql | mariadb "
                              "| sqlite) with host/port/database/username/password")
        dialect = ALIASES.get(section.dialect, section.dialect)
        if not section.database:
            raise ConfigError(f"{path}.database: required when no url is given (for sqlite, the "
                              "file's path)")
        # The dialect's name as the scheme: the dialect sets its own driver.
        url = URL.create(dialect, **overrides)
    installed = known_dialects()
    # A plugin may provide a dialect through swain_get_dialect without an entry
    # point, so only a near miss of an installed name is an error here.
    if dialect not in installed and _suggest(dialect, installed):
        raise ConfigError(f"{where}: no dialect {dialect!r} is installed"
                          f"{_suggest(dialect, installed)} (installed: {', '.join(installed)})")
    url = _local_file(url, dialect, base_dir)
    query_timeout = float(section.query_timeout)
    statement_timeout = section.statement_timeout
    if statement_timeout is None:
        statement_timeout = max(query_timeout - 1.0, query_timeout * 0.8)
    elif statement_timeout > query_timeout or statement_timeout == 0:
        raise ConfigError(f"{path}.statement_timeout: {statement_timeout:g}s lets the database "
                          f"run a statement longer than query_timeout ({query_timeout:g}s), after "
                          "which the API gives up on it; raise query_timeout as well")
    return Connection(stage=stage, url=url, dialect=dialect, schemas=list(section.schemas),
                      pool_size=section.pool_size, connect_timeout=section.connect_timeout,
                      statement_timeout=float(statement_timeout),
                      prepared_statements=section.prepared_statements, base_dir=base_dir,
                      query_timeout=query_timeout,
                      read_urls=_read_urls(path, section.read_url, url, dialect, base_dir),
                      replica_retry=float(section.replica_retry),
                      max_replica_lag=section.max_replica_lag)


def _local_file(url: URL, dialect: str, base_dir: Path) -> URL:
    """A SQLite file named by a relative path lives in the project file's folder."""
    if dialect == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        database = Path(url.database).expanduser()
        if not database.is_absolute():
            database = base_dir / database
        url = url.set(database=str(database))
    return url


def _read_urls(path: str, given: list[str], primary: URL, dialect: str,
               base_dir: Path) -> tuple[URL, ...]:
    """The replicas' URLs: of the primary's database kind; the primary's user,
    password and database where a replica's URL leaves them out."""
    found = []
    for i, text in enumerate(given):
        where = f"{path}.read_url[{i}]"
        try:
            url = make_url(text)
        except Exception:
            raise ConfigError(f"{where}: not a database URL; expected e.g. "
                              "postgresql://user@replica:5432/db") from None
        backend = url.get_backend_name()
        if ALIASES.get(backend, backend) != dialect:
            raise ConfigError(f"{where}: a replica of a {dialect} database must be one too, "
                              f"not {backend!r}")
        url = url.set(drivername=primary.drivername)
        inherited = {k: getattr(primary, k) for k in ("username", "password", "database")
                     if getattr(url, k) is None and getattr(primary, k) is not None}
        found.append(_local_file(url.set(**inherited) if inherited else url, dialect, base_dir))
    return tuple(found)


# -- display ------------------------------------------------------------------------


def _mask_url(value: str) -> str:
    try:
        return make_url(value).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@/]*@", rf"\1{MASK}@", value)


def _mask(path: str, value: Any, secrets: set[str]) -> Any:
    key = path.rsplit(".", 1)[-1]
    if value in (None, "", []):
        return value
    if path in secrets or _SECRET_NAMES.search(key):
        return MASK
    if isinstance(value, str) and "://" in value and "@" in value:
        return _mask_url(value)
    if isinstance(value, list):
        return [_mask(f"{path}[{i}]", v, secrets) if not isinstance(v, str) or "://" not in v
                else _mask_url(v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _mask(f"{path}.{k}", v, secrets) for k, v in value.items()}
    return value


def masked(config: Config) -> dict[str, Any]:
    """The configuration as a plain nested dict with every secret replaced by ``********``:
    keys declared secret, keys named like secrets, and passwords inside URLs."""
    out: dict[str, Any] = {"stage": config.stage}
    for name, section in config.sections.items():
        node = out
        for part in name.split("."):
            node = node.setdefault(part, {})
        node.update({k: _mask(f"{name}.{k}", v, config.secrets) for k, v in section.items()})
    stages: dict[str, Any] = {}
    for stage, section in config.connections.items():
        stages[stage] = {k: _mask(f"connections.{stage}.{k}", v, config.secrets)
                         for k, v in section.items()}
        with contextlib.suppress(ConfigError):
            stages[stage]["resolved_url"] = config.connection(stage).safe_url
    for stage, body in config.unresolved.items():
        stages[stage] = {k: _mask(f"connections.{stage}.{k}", v, config.secrets)
                         for k, v in body.items()}
        stages[stage]["unresolved"] = str(config.deferred[stage])
    out["connections"] = dict(sorted(stages.items()))
    return out
