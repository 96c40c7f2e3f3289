"""Projects, their connections and their settings: the console's own records.

Every change is validated by swain's configuration rules before it is
stored (see :mod:`.settings`); secrets are sealed on the way in and opened
only to build a configuration in memory.
"""

from __future__ import annotations

import copy
import secrets as random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from swain.core import Config, NotFound

from . import forms, settings
from .context import Console
from .forms import Form
from .settings import ConnectionInput, FieldError
from .store import ConnectionRow, Project

NAME_LIMIT = 200


async def project(c: Console, project_id: int) -> Project:
    found = await c.store.project(project_id)
    if found is None:
        raise NotFound(f"no project {project_id}")
    return found


async def connection(c: Console, project_id: int, connection_id: int) -> ConnectionRow:
    found = await c.store.connection(connection_id)
    if found is None or found.project_id != project_id:
        raise NotFound(f"no connection {connection_id} in project {project_id}")
    return found


def jwt_secret() -> str:
    """A new signing secret: 48 random bytes, url-safe (64 characters)."""
    return random.token_urlsafe(48)


# -- projects -------------------------------------------------------------------------------


async def _checked_name(c: Console, form: Form, other_than: int | None = None) -> str:
    name = forms.text(form, "name")
    if not name:
        raise FieldError({"name": "required: give the project a name"})
    if len(name) > NAME_LIMIT:
        raise FieldError({"name": f"at most {NAME_LIMIT} characters"})
    if await c.store.project_named(name, other_than) is not None:
        raise FieldError({"name": f"a project named {name!r} exists already; pick another name"},
                         409)
    return name


async def create_project(c: Console, form: Form) -> Project:
    name = await _checked_name(c, form)
    created = await c.store.create_project(name, forms.text(form, "description"),
                                           {"auth": {"enabled": True}})
    # Auth is on by default, so a signing secret is there from the start.
    await c.store.set_secret(created.id, "auth.jwt_secret", c.vault.seal(jwt_secret()))
    return created


async def rename_project(c: Console, found: Project, form: Form) -> None:
    name = await _checked_name(c, form, found.id)
    await c.store.update_project(found.id, name=name,
                                 description=forms.text(form, "description"))


async def delete_project(c: Console, found: Project, form: Form) -> None:
    if forms.text(form, "confirm") != found.name:
        raise FieldError({"confirm": "type the project's name exactly to delete it"})
    for row in await c.store.connections(found.id):
        await c.deployer.stop(row.id)
    await c.store.delete_project(found.id)


# -- secrets and configuration -------------------------------------------------------------------


async def plain_secrets(c: Console, found: Project) -> dict[str, str]:
    return {name: c.vault.open(sealed) for name, sealed in (await c.store.secrets(found.id)).items()}


async def secret_names(c: Console, found: Project) -> set[str]:
    """Which secrets are set (their values stay sealed)."""
    return set(await c.store.secrets(found.id))


def connection_input(c: Console, row: ConnectionRow) -> tuple[ConnectionInput, str | None]:
    given = ConnectionInput(row.stage, row.dialect, row.host, row.port, row.database,
                            row.username, options=dict(row.options))
    password = c.vault.open(row.password_sealed) if row.password_sealed else None
    return given, password


@dataclass
class Built:
    config: Config
    pm: pluggy.PluginManager


async def build(c: Console, found: Project, row: ConnectionRow | None = None,
                overrides: dict[str, Any] | None = None,
                secret_overrides: dict[str, str | None] | None = None) -> Built:
    """The project's configuration (for ``row``'s stage, with only that connection), as
    swain validates it; ``overrides`` replace settings by path before validation."""
    current = copy.deepcopy(found.settings)
    for path, value in (overrides or {}).items():
        settings.set_path(current, path, value)
    plain = await plain_secrets(c, found)
    for path, secret in (secret_overrides or {}).items():
        if secret is None:
            plain.pop(path, None)
        else:
            plain[path] = secret
    pm = settings.plugin_manager(current)
    stages = [connection_input(c, row)] if row is not None else []
    raw = settings.raw_config(found.name, found.description, current, plain, stages)
    config = settings.validate(raw, pm, row.stage if row is not None else "development")
    return Built(config, pm)


async def save_settings(c: Console, found: Project, overrides: dict[str, Any],
                        secret_overrides: dict[str, str | None] | None = None) -> Built:
    """Validate the project with these changes, then store them."""
    built = await build(c, found, None, overrides, secret_overrides)
    current = copy.deepcopy(found.settings)
    for path, value in overrides.items():
        settings.set_path(current, path, value)
    await c.store.update_project(found.id, settings=current)
    for path, secret in (secret_overrides or {}).items():
        await c.store.set_secret(found.id, path, None if secret is None else c.vault.seal(secret))
    return built


def secret_change(form: Form, key: str) -> str | None:
    """A write-only field: blank keeps the stored value (``...`` is returned for "keep")."""
    value = forms.text(form, key)
    if forms.flag(form, f"{key}.clear"):
        return None
    return value or KEEP


KEEP = "\0keep"


def secret_updates(form: Form, keys: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key in keys:
        change = secret_change(form, key)
        if change != KEEP:
            out[key] = change
    return out


# -- connections ----------------------------------------------------------------------------------


def _port(form: Form) -> int | None:
    raw = forms.text(form, "port")
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise FieldError({"port": f"expected a number between 1 and 65535, got {raw!r}"}) from None
    if not 1 <= port <= 65535:
        raise FieldError({"port": f"must be between 1 and 65535, got {port}"})
    return port


def connection_from_form(form: Form, data_dir: Path) -> ConnectionInput:
    stage = forms.text(form, "stage")
    if stage not in settings.STAGES:
        raise FieldError({"stage": f"choose one of {', '.join(settings.STAGES)}"})
    url = forms.text(form, "url")
    if url:
        given = settings.parse_url(stage, url)
        if given.port is not None and not 1 <= given.port <= 65535:
            raise FieldError({"url": f"the port must be between 1 and 65535, got {given.port}"})
        given.password = given.password or forms.optional(form, "password")
    else:
        dialect = forms.text(form, "dialect")
        if dialect not in settings.DIALECTS:
            raise FieldError({"dialect": "choose PostgreSQL, MySQL / MariaDB or SQLite"})
        given = ConnectionInput(stage, dialect, forms.optional(form, "host"), _port(form),
                                forms.optional(form, "database"), forms.optional(form, "username"),
                                forms.optional(form, "password"))
    if given.dialect == "sqlite":
        if not given.database:
            raise FieldError({"database": "required: the SQLite file's path"})
        if not Path(given.database).expanduser().is_absolute():
            raise FieldError({"database": "give the SQLite file's absolute path (it must not "
                                          "depend on where the API is started)"})
        given.host = given.port = given.username = given.password = None
    else:
        missing = {key: "required" for key in ("host", "database") if not getattr(given, key)}
        if missing:
            raise FieldError(missing)
        given.port = given.port or settings.DEFAULT_PORTS[given.dialect]
    schemas = forms.items(form, "schemas")
    if schemas:
        given.options["schemas"] = schemas
    return given


async def save_connection(c: Console, found: Project, connection_id: int | None,
                          form: Form) -> int:
    given = connection_from_form(form, c.data_dir)
    existing = None
    if connection_id is not None:
        existing = await connection(c, found.id, connection_id)
    for other in await c.store.connections(found.id):
        if other.stage == given.stage and other.id != connection_id:
            raise FieldError({"stage": f"this project has a {given.stage} connection already "
                                       f"(#{other.id}); edit that one"}, 409)
    keep = given.password is None and existing is not None and not forms.flag(form,
                                                                              "password.clear")
    password = given.password
    if keep and existing is not None and existing.password_sealed:
        password = c.vault.open(existing.password_sealed)
    raw = settings.raw_config(found.name, found.description, {}, {}, [(given, password)])
    settings.validate(raw, settings.plugin_manager({}), given.stage)
    if existing is not None:
        given.options = {**existing.options, **given.options}
        if not forms.items(form, "schemas"):
            given.options.pop("schemas", None)
    values = {"stage": given.stage, "dialect": given.dialect, "host": given.host,
              "port": given.port, "database": given.database, "username": given.username,
              "options": given.options,
              "password_sealed": c.vault.seal(given.password) if given.password else None}
    return await c.store.save_connection(found.id, connection_id, values, keep_password=keep)


async def delete_connection(c: Console, found: Project, row: ConnectionRow) -> None:
    await c.deployer.stop(row.id)
    await c.store.delete_connection(row.id)


def describe(row: ConnectionRow) -> str:
    """``#2 - production (postgresql, database=shop)`` as swain_cli lists connections."""
    where = row.database or ""
    if row.dialect == "sqlite":
        where = Path(where).name
    schemas = row.options.get("schemas") or []
    extra = f", schema={','.join(schemas)}" if schemas else ""
    return f"#{row.id} - {row.stage} ({row.dialect}, database={where}{extra})"


def address(row: ConnectionRow) -> str:
    """Where the database is, without credentials."""
    if row.dialect == "sqlite":
        return row.database or ""
    user = f"{row.username}@" if row.username else ""
    return f"{user}{row.host}:{row.port}/{row.database}"


# -- export and import --------------------------------------------------------------------------


async def export(c: Console, found: Project) -> tuple[str, list[str]]:
    rows = await c.store.connections(found.id)
    stages = [(connection_input(c, row)[0], row.has_password) for row in rows]
    return settings.export_toml(found.name, found.description, found.settings,
                                await secret_names(c, found), stages)


async def import_project(c: Console, text: str, environ: dict[str, str]) -> tuple[Project,
                                                                                   list[str]]:
    imported = settings.import_toml(text, environ)
    await _checked_name(c, {"name": imported.name})
    created = await c.store.create_project(imported.name, imported.description,
                                           imported.settings)
    for path, value in imported.secrets.items():
        await c.store.set_secret(created.id, path, c.vault.seal(value))
    for given in imported.connections:
        values = {"stage": given.stage, "dialect": given.dialect, "host": given.host,
                  "port": given.port, "database": given.database, "username": given.username,
                  "options": given.options,
                  "password_sealed": c.vault.seal(given.password) if given.password else None}
        await c.store.save_connection(created.id, None, values, keep_password=False)
    return created, imported.notes
