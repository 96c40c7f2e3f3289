"""``swain.toml``: loading, interpolation, overrides and validation (SPEC §3).

Loading happens in three steps so that plugins can own config sections:

1. :func:`read_raw` parses TOML, applies ``${VAR}``/``${VAR:-default}`` and the
   ``SWAIN_<SECTION>_<KEY>`` environment overrides;
2. the plugin manager is built from ``[plugins]``;
3. :func:`validate` checks every section against the settings core and the
   enabled plugins declare (``swain_config_sections``).  Unknown keys are
   errors; every error names its key path.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from .errors import ConfigError

_MISSING: Any = object()
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"b": 1, "kb": 1024, "k": 1024, "mb": 1024**2, "m": 1024**2, "gb": 1024**3}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Setting:
    """One key of a section: its kind, default and whether it is a secret."""

    kind: str  # str | int | float | bool | duration | size | list | table
    default: Any = None
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING


def required(kind: str, **options: Any) -> Setting:
    return Setting(kind, _MISSING, **options)


CONNECTION_SETTINGS: dict[str, Setting] = {
    "url": Setting("str", None, secret=False, doc="one URL instead of the fields below"),
    "dialect": Setting("str", None, doc="postgresql | mysql | mariadb | sqlite"),
    "host": Setting("str", None),
    "port": Setting("int", None, minimum=1),
    "database": Setting("str", None),
    "username": Setting("str", None),
    "password": Setting("str", None, secret=True),
    "schemas": Setting("list", []),
    "pool_size": Setting("int", 10, minimum=1),
    "connect_timeout": Setting("duration", 5.0, minimum=0.1),
    "statement_timeout": Setting("duration", 30.0, minimum=0),
    "prepared_statements": Setting("bool", True, doc="turn off behind PgBouncer"),
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
        "sql_preview": Setting("list", ["development"]),
        "max_body_size": Setting("size", 1024 * 1024, minimum=1024),
        "cors_origins": Setting("list", []),
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
    stage: str
    url: URL
    dialect: str
    schemas: list[str]
    pool_size: int
    connect_timeout: float
    statement_timeout: float
    prepared_statements: bool


@dataclass
class Config:
    """A validated project file for one stage."""

    stage: str
    path: Path | None
    sections: dict[str, Section]
    connections: dict[str, Section]
    secrets: set[str] = field(default_factory=set)

    def __getattr__(self, name: str) -> Section:
        try:
            return self.__dict__["sections"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(name) from None

    def section(self, name: str) -> Section:
        return self.sections.get(name) or Section(name, {})

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def connection(self, stage: str | None = None) -> Connection:
        stage = stage or self.stage
        try:
            section = self.connections[stage]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none"
            raise ConfigError(
                f"connections.{stage}: no connection for stage {stage!r} (configured: {known}); "
                f"add a [connections.{stage}] table or run `swain connection add --stage {stage}`"
            ) from None
        return _connection(stage, section, self.base_dir)


def parse_duration(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{path}: expected a duration like 90s, 15m, 1h or 7d, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", str(value))
    if not match:
        raise ConfigError(f"{path}: expected a duration like 90s, 15m, 1h or 7d, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_size(value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b?)\s*", str(value).lower())
    if not match:
        raise ConfigError(f"{path}: expected a size like 512kb or 1mb, got {value!r}")
    return int(match.group(1)) * _SIZES[match.group(2) or "b"]


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

    return _VAR.sub(replace, value)


def read_raw(path: Path | None, environ: Mapping[str, str] | None = None,
             sections: Mapping[str, Mapping[str, Setting]] | None = None) -> dict[str, Any]:
    """Parse the file (absent file = empty), interpolate, then apply environment overrides."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    raw = interpolate(raw, "", environ)
    _apply_environment(raw, environ, sections or CORE_SECTIONS)
    return raw


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str],
                       sections: Mapping[str, Mapping[str, Setting]]) -> None:
    for section, settings in sections.items():
        for key in settings:
            name = f"SWAIN_{section.upper()}_{key.upper()}"
            if name in environ:
                raw.setdefault(section, {})[key] = _from_env(environ[name])
    prefix = "SWAIN_CONNECTIONS_"
    for name, value in environ.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):].lower()
        for key in sorted(CONNECTION_SETTINGS, key=len, reverse=True):
            if rest.endswith("_" + key):
                stage = rest[: -len(key) - 1]
                raw.setdefault("connections", {}).setdefault(stage, {})[key] = _from_env(value)
                break


def _from_env(text: str) -> Any:
    """Environment values are strings; a TOML array literal (``["a", "b"]``) is a list."""
    if text.startswith("["):
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    return text


def _coerce(setting: Setting, value: Any, path: str) -> Any:
    kind = setting.kind
    if value is None:
        return None
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
    elif kind == "bool":
        if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on", "false", "0",
                                                        "no", "off"}:
            value = value.lower() in {"true", "1", "yes", "on"}
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
    elif kind in ("int", "float"):
        caster = int if kind == "int" else float
        try:
            if isinstance(value, bool):
                raise ValueError
            value = caster(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected {'an integer' if kind == 'int' else 'a number'},"
                              f" got {value!r}") from None
    elif kind == "duration":
        value = parse_duration(value, path)
    elif kind == "size":
        value = parse_size(value, path)
    elif kind == "list":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
    elif kind == "table":
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {value!r}")
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{path}: expected one of {', '.join(setting.choices)}, got {value!r}")
    if setting.minimum is not None and isinstance(value, int | float) and value < setting.minimum:
        raise ConfigError(f"{path}: must be at least {setting.minimum:g}, got {value!r}")
    return value


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def validate_section(path: str, raw: Any, settings: Mapping[str, Setting]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table, got {raw!r}")
    for key in raw:
        if key not in settings:
            allowed = sorted(settings)
            raise ConfigError(f"{path}.{key}: unknown key{_suggest(key, allowed)} "
                              f"(allowed: {', '.join(allowed)})")
    values: dict[str, Any] = {}
    for key, setting in settings.items():
        if key in raw:
            values[key] = _coerce(setting, raw[key], f"{path}.{key}")
        elif setting.required:
            raise ConfigError(f"{path}.{key}: required ({setting.doc or setting.kind})")
        else:
            default = setting.default
            values[key] = list(default) if isinstance(default, list) else default
    return values


def merge_sections(*contributions: Mapping[str, Mapping[str, Setting]]) -> dict[str, dict[str, Setting]]:
    merged: dict[str, dict[str, Setting]] = {}
    for contribution in contributions:
        for section, settings in contribution.items():
            merged.setdefault(section, {}).update(settings)
    return merged


def validate(raw: dict[str, Any], sections: Mapping[str, Mapping[str, Setting]], *, stage: str,
             path: Path | None) -> Config:
    known = sorted([*sections, "connections"])
    for name in raw:
        if name not in sections and name != "connections":
            raise ConfigError(f"{name}: unknown section{_suggest(name, known)}; no enabled plugin "
                              f"reads it (known: {', '.join(known)})")
    validated: dict[str, Section] = {}
    secrets: set[str] = set()
    for name, settings in sections.items():
        validated[name] = Section(name, validate_section(name, raw.get(name, {}), settings))
        secrets.update(f"{name}.{key}" for key, s in settings.items() if s.secret)
    connections: dict[str, Section] = {}
    stages = raw.get("connections", {})
    if not isinstance(stages, dict):
        raise ConfigError(f"connections: expected a table of stages, got {stages!r}")
    for stage_name, body in stages.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", stage_name):
            raise ConfigError(f"connections.{stage_name}: stage names are lower-case identifiers")
        values = validate_section(f"connections.{stage_name}", body, CONNECTION_SETTINGS)
        connections[stage_name] = Section(f"connections.{stage_name}", values)
        _connection(stage_name, connections[stage_name], path.parent if path else Path.cwd())
        secrets.add(f"connections.{stage_name}.password")
    config = Config(stage=stage, path=path, sections=validated, connections=connections,
                    secrets=secrets)
    api = config.api
    if api.default_page_size > api.max_page_size:
        raise ConfigError(f"api.default_page_size: {api.default_page_size} exceeds "
                          f"api.max_page_size ({api.max_page_size})")
    return config


_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+aiomysql",
            "mariadb": "mysql+aiomysql", "sqlite": "sqlite+aiosqlite"}


def _connection(stage: str, section: Section, base_dir: Path) -> Connection:
    path = f"connections.{stage}"
    if section.url:
        try:
            url = make_url(section.url)
        except Exception:
            raise ConfigError(f"{path}.url: not a database URL: expected e.g. "
                              "postgresql://user@host/db or sqlite:///file.db") from None
        dialect = url.get_backend_name()
        if section.dialect and section.dialect != dialect:
            raise ConfigError(f"{path}.dialect: {section.dialect!r} contradicts the URL's "
                              f"{dialect!r}")
    else:
        dialect = section.dialect
        if not dialect:
            raise ConfigError(f"{path}: give either url or dialect (postgresql | mysql | mariadb "
                              "| sqlite) with host/port/database")
        if not section.database:
            raise ConfigError(f"{path}.database: required when no url is given")
        url = URL.create(_DRIVERS.get(dialect, dialect), username=section.username,
                         password=section.password, host=section.host, port=section.port,
                         database=section.database)
    if dialect == "mariadb":
        dialect = "mysql"
    if dialect == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        if not database.is_absolute():
            url = url.set(database=str(base_dir / database))
    return Connection(stage=stage, url=url, dialect=dialect, schemas=list(section.schemas),
                      pool_size=section.pool_size, connect_timeout=section.connect_timeout,
                      statement_timeout=section.statement_timeout,
                      prepared_statements=section.prepared_statements)


def masked(config: Config) -> dict[str, Any]:
    """The configuration as a plain dict with every secret replaced by ``********``."""

    def mask(path: str, key: str, value: Any) -> Any:
        if value and f"{path}.{key}" in config.secrets:
            return "********"
        if key == "url" and isinstance(value, str) and "://" in value:
            try:
                return make_url(value).render_as_string(hide_password=True)
            except Exception:
                return value
        if key.endswith(("secret", "password", "token")) and value:
            return "********"
        return value

    out: dict[str, Any] = {}
    for name, section in config.sections.items():
        out[name] = {k: mask(name, k, v) for k, v in section.items()}
    out["connections"] = {
        stage: {k: mask(f"connections.{stage}", k, v) for k, v in section.items()}
        for stage, section in config.connections.items()
    }
    return out
