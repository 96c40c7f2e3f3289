"""The settings steps of the workflow (authentication, tenancy, email, mapping,
social, authorization, deploy) as operations on a project.

Each takes the submitted fields (:mod:`.forms`), turns them into changes of the
project's ``swain.toml`` sections and stores them only after swain's own
checks pass: the configuration validators, the JWT signer, the reset-link
rules, the mapping checks against the synced schema, the tenancy scope.
Errors name the field (the setting's path) they concern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from swain.core import ConfigError, Schema
from swain.core.config import env_name
from swain.core.plugins import dialect_class
from swain.plugins import mapping
from swain.plugins.auth import social
from swain.plugins.auth.password_reset import check_link_settings
from swain.plugins.auth.tokens import TokenSigner
from swain.plugins.rbac import ACTIONS, check_permission, rbac_cards
from swain.plugins.rls import TenantScope

from . import database, forms, projects, settings
from .context import Console
from .deploy import Plan
from .forms import Form
from .projects import Built
from .settings import FieldError, field_error
from .store import ConnectionRow, Deployment, Project

EXPIRIES = ("auth.access_token_expiry", "auth.refresh_token_expiry",
            "auth.password_token_expiry")
SMTP_FIELDS = ("smtp.host", "smtp.port", "smtp.security", "smtp.username", "smtp.from_address",
               "smtp.from_name", "smtp.base_url", "smtp.password_reset_path")
_ROUTE = re.compile(r"^(?:(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) )?/\S*$")


def _signer_check(built: Built) -> None:
    if built.config.auth.enabled and built.config.auth.jwt_algorithm == "HS256":
        try:
            TokenSigner(built.config)
        except ConfigError as exc:
            raise field_error(exc, "auth.jwt_secret") from None


# -- 4.1 general security -----------------------------------------------------------------


async def save_general(c: Console, found: Project, form: Form) -> None:
    routes = forms.items(form, "auth.public_routes") + forms.items(form, "auth.public_routes.extra")
    for route in routes:
        if not _ROUTE.match(route):
            raise FieldError({"auth.public_routes": f"{route!r}: write a path such as /products "
                                                    "or a method and a path, GET /products"})
    overrides: dict[str, Any] = {"auth.enabled": forms.flag(form, "auth.enabled"),
                                 "rls.enabled": forms.flag(form, "rls.enabled"),
                                 "auth.public_routes": routes or None}
    for key in EXPIRIES:
        overrides[key] = forms.optional(form, key)
    secrets = projects.secret_updates(form, ("auth.jwt_secret",))
    if forms.flag(form, "auth.jwt_secret.generate"):
        secrets["auth.jwt_secret"] = projects.jwt_secret()
    built = await projects.build(c, found, None, overrides, secrets)
    _signer_check(built)
    if overrides["rls.enabled"]:
        _tenancy_ready(built)
    await projects.save_settings(c, found, overrides, secrets)


def _tenancy_ready(built: Built) -> None:
    if not TenantScope(built.config).tenant_table:
        raise FieldError({"rls.enabled": "choose the tenant table (Tenant scoping) before "
                                         "switching row-level security on"})


# -- 4.2 tenant scoping ---------------------------------------------------------------------------


def _rls_field(message: str) -> FieldError:
    match = re.match(r"\[rls\] (\w+)(?:\.[^:]*)?: (.*)", message)
    if match:
        return FieldError({f"rls.{match.group(1)}": match.group(2)})
    return FieldError({"rls.tenant_table": message})


async def save_tenancy(c: Console, found: Project, form: Form, schema: Schema | None) -> None:
    overrides: dict[str, Any] = {
        "rls.tenant_table": forms.optional(form, "rls.tenant_table"),
        "rls.tenant_field": forms.optional(form, "rls.tenant_field"),
        "rls.exclude_tables": forms.items(form, "rls.exclude_tables") or None,
    }
    field_name = overrides["rls.tenant_field"]
    if field_name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_name):
        raise FieldError({"rls.tenant_field": "a column name: letters, digits and _"})
    built = await projects.build(c, found, None, {**overrides, "rls.enabled": True})
    if schema is not None:
        problems = TenantScope(built.config).problems(schema)
        if problems:
            raise _rls_field(problems[0])
    await projects.save_settings(c, found, overrides)


async def apply_tenancy(c: Console, found: Project, row: ConnectionRow, form: Form) -> int:
    if not forms.flag(form, "confirm"):
        raise FieldError({"confirm": "tick the box to confirm you have read the SQL and want it "
                                     f"run on the {row.stage} database"})
    return await database.tenancy_apply(c, found, row, forms.text(form, "plan"),
                                        forms.text(form, "backfill"))


# -- 4.3 email ------------------------------------------------------------------------------------------


async def save_smtp(c: Console, found: Project, form: Form) -> None:
    overrides: dict[str, Any] = {key: forms.optional(form, key) for key in SMTP_FIELDS}
    port = overrides["smtp.port"]
    if port is not None:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise FieldError({"smtp.port": f"must be between 1 and 65535, got {port!r}"})
        overrides["smtp.port"] = int(port)
    secrets = projects.secret_updates(form, ("smtp.password",))
    built = await projects.build(c, found, None, overrides, secrets)
    smtp = built.config.smtp
    path = smtp.password_reset_path or ""
    if path.count("%s") != 1 or "%" in path.replace("%s", ""):
        raise FieldError({"smtp.password_reset_path": f"must contain %s exactly once, where the "
                                                      f"token goes (e.g. /reset-password?token=%s)"
                                                      f"; got {path!r}"})
    if smtp.host or smtp.base_url:
        try:
            check_link_settings(built.config)
        except ConfigError as exc:
            raise field_error(exc, "smtp.base_url") from None
    await projects.save_settings(c, found, overrides, secrets)


# -- 5 the nine cards ---------------------------------------------------------------------------------


@dataclass
class MappingCheck:
    problems: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)


def mapping_from_form(form: Form) -> dict[str, dict[str, str]]:
    cards: dict[str, dict[str, str]] = {}
    for name, card in mapping.CARDS.items():
        table = forms.text(form, f"mapping.{name}.table")
        if not table:
            continue
        values = {"table": table}
        for role in card.roles:
            column = forms.text(form, f"mapping.{name}.{role}")
            if column:
                values[role] = column
        cards[name] = values
    return cards


def _lines(lines: list[str], into: dict[str, str]) -> None:
    for line in lines:
        match = re.match(r"(mapping\.[\w]+\.\w+): (.*)", line)
        if match:
            into.setdefault(match.group(1), match.group(2))


async def check_mapping(c: Console, found: Project, cards: dict[str, dict[str, str]],
                        schema: Schema | None) -> tuple[MappingCheck, Built | None]:
    """What is wrong (blocking) and what looks wrong (warnings) with these cards."""
    result = MappingCheck()
    try:
        built = await projects.build(c, found, None, {"mapping": cards or None})
        mapped = mapping.parse(built.config)
    except FieldError as exc:
        result.problems.update(exc.errors)
        return result, None
    except ConfigError as exc:
        result.problems.update(field_error(exc, "mapping").errors)
        return result, None
    if schema is not None:
        _lines(mapping.problems(mapped, schema), result.problems)
        _lines(mapping.type_warnings(mapped, schema), result.warnings)
    return result, built


async def save_mapping(c: Console, found: Project, form: Form,
                       schema: Schema | None) -> MappingCheck:
    if schema is None:
        raise FieldError({"mapping": "sync the schema first (step 3): the cards are checked "
                                     "against it"})
    cards = mapping_from_form(form)
    result, _ = await check_mapping(c, found, cards, schema)
    if result.problems:
        raise FieldError(result.problems)
    await projects.save_settings(c, found, {"mapping": cards or None})
    return result


def missing_ddl(found: Project, schema: Schema, dialect: str) -> tuple[list[str], str]:
    """The cards whose tables the database lacks, and the DDL that creates them."""
    given = found.settings.get("mapping") or {}
    mapped = {name: mapping.MappedCard(mapping.CARDS[name], values["table"],
                                       {k: v for k, v in values.items() if k != "table"})
              for name, values in given.items() if name in mapping.CARDS and "table" in values}
    missing = [name for name, card in mapping.CARDS.items()
               if (mapped[name].table if name in mapped else card.default_table)
               not in schema.tables]
    if not missing:
        return [], ""
    return missing, mapping.scaffold_ddl(mapped, missing, dialect_class(dialect).compiler())


# -- 6 social ---------------------------------------------------------------------------------------------


def social_providers(built: Built) -> dict[str, str]:
    """The login providers the project's plugins declare: name and title, by title."""
    declared = social.declared(built.pm, built.config)
    return {name: provider.title
            for name, provider in sorted(declared.items(), key=lambda item: item[1].title)}


async def save_social(c: Console, found: Project, form: Form) -> None:
    providers = social_providers(await projects.build(c, found))
    overrides: dict[str, Any] = {"api.public_url": forms.optional(form, "api.public_url"),
                                 "social.redirect_allowlist":
                                     forms.items(form, "social.redirect_allowlist") or None}
    for provider in providers:
        overrides[f"social.{provider}.client_id"] = forms.optional(
            form, f"social.{provider}.client_id")
    secrets = projects.secret_updates(form, tuple(f"social.{p}.client_secret" for p in providers))
    public_url = overrides["api.public_url"]
    if public_url and not re.match(r"https?://[^/\s]+", public_url):
        raise FieldError({"api.public_url": "expected the API's origin, e.g. "
                                            "https://api.example.com"})
    built = await projects.build(c, found, None, overrides, secrets)
    for provider in providers:
        if built.config.section(f"social.{provider}").get("client_id"):
            try:
                social.check_settings(built.config, provider, ("client_secret",))
            except ConfigError as exc:
                raise field_error(exc, f"social.{provider}.client_id") from None
    await projects.save_settings(c, found, overrides, secrets)


def callback_urls(built: Built) -> dict[str, str]:
    return {provider: social.callback_url(built.config, provider)
            for provider in social_providers(built)}


# -- 7 authorization ---------------------------------------------------------------------------------------


def suggested_permissions(schema: Schema | None, existing: set[str]) -> list[str]:
    names = ["*", "*.read"]
    if schema is not None:
        for table in sorted(schema.visible_tables, key=lambda t: t.key):
            names += [f"{table.key}.{action}" for action in ACTIONS]
    return [name for name in names if name not in existing]


async def save_rbac_enabled(c: Console, found: Project, form: Form) -> None:
    enabled = forms.flag(form, "rbac.enabled")
    overrides = {"rbac.enabled": enabled,
                 "rbac.anonymous_role": forms.optional(form, "rbac.anonymous_role")}
    built = await projects.build(c, found, None, overrides)
    if enabled:
        try:
            rbac_cards(built.config)
        except ConfigError as exc:
            raise FieldError({"rbac.enabled": f"{exc}; map the role, permission, "
                                              "role_permission and user_role cards first"}) from None
    await projects.save_settings(c, found, overrides)


async def rbac_action(c: Console, found: Project, row: ConnectionRow, form: Form) -> str:
    action = forms.text(form, "action")

    async def work(store: Any) -> str:
        if action == "create_role":
            name = forms.text(form, "name")
            if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", name):
                raise FieldError({"name": "a role name: letters, digits and _ . : - "
                                          "(1 to 100 characters)"})
            description = forms.optional(form, "description") \
                if store.has_description("role") else None
            created = await store.ensure_named("role", name, description)
            return f"role {name} {'created' if created else 'exists already'}"
        if action == "create_permissions":
            names = forms.items(form, "permissions")
            if not names:
                raise FieldError({"permissions": "pick or type at least one permission"})
            for name in names:
                try:
                    check_permission(name)
                except ValueError as exc:
                    raise FieldError({"permissions": str(exc)}) from None
            made = [name for name in names if await store.ensure_named("permission", name)]
            return f"created {len(made)} permission(s)"
        if action == "save_matrix":
            wanted = {tuple(entry.split("|", 1)) for entry in forms.items(form, "grant")
                      if "|" in entry}
            current = set(await store.grants())
            roles = {name: await store.id_of("role", name) for name, _ in await store.names("role")}
            perms = {name: await store.id_of("permission", name)
                     for name, _ in await store.names("permission")}
            added = removed = 0
            for role, perm in wanted - current:
                if role in roles and perm in perms:
                    added += await store.link("role_permission", "roleid", "permissionid",
                                              roles[role], perms[perm])
            for role, perm in current - wanted:
                removed += bool(await store.unlink("role_permission", "roleid", "permissionid",
                                                   roles[role], perms[perm]))
            return f"granted {added}, revoked {removed}"
        if action in ("assign", "unassign"):
            who, role = forms.text(form, "user"), forms.text(form, "role")
            user_id = await store.user_id(who) if who else None
            if user_id is None:
                raise FieldError({"user": f"no user with email or id {who!r}"})
            role_id = await store.id_of("role", role)
            if role_id is None:
                raise FieldError({"role": f"no role named {role!r}"})
            if action == "assign":
                done = await store.link("user_role", "userid", "roleid", user_id, role_id)
                return f"{'assigned' if done else 'already assigned'} {role} to {who}"
            gone = await store.unlink("user_role", "userid", "roleid", user_id, role_id)
            return f"{'removed' if gone else 'did not hold'} {role} from {who}"
        if action == "seed":
            tables = forms.items(form, "manager_tables")
            plan = {"admin": ["*"], "member": ["*.read"],
                    "manager": [f"{t}.{a}" for t in tables for a in ("read", "create", "update")]}
            for role, granted in plan.items():
                await store.ensure_named("role", role)
                role_id = await store.id_of("role", role)
                for name in granted:
                    await store.ensure_named("permission", name)
                    await store.link("role_permission", "roleid", "permissionid", role_id,
                                     await store.id_of("permission", name))
            return "seeded admin (*), manager and member (*.read)"
        raise FieldError({"action": f"unknown action {action!r}"}, 400)

    return await database.with_rbac(c, found, row, work, action=action or "change")


# -- 8 deploy ---------------------------------------------------------------------------------------


async def deploy_plan(c: Console, found: Project, row: ConnectionRow, public_url: str) -> Plan:
    """The deployment's file (the export, with only this stage) and its secrets."""
    plain = await projects.plain_secrets(c, found)
    current = dict(found.settings)
    if not (current.get("api") or {}).get("public_url"):
        # Links the API builds (OAuth callbacks) then point at where it runs.
        current = {**current, "api": {**(current.get("api") or {}), "public_url": public_url}}
    given, password = projects.connection_input(c, row)
    text, _ = settings.export_toml(found.name, found.description, current, plain,
                                   [(given, password is not None)])
    env = {settings.secret_env(path): value for path, value in plain.items()}
    if password is not None:
        env[env_name(f"connections.{row.stage}", "password")] = password
    # Checked here as well, so an invalid file never reaches a process.
    await projects.build(c, found, row)
    return Plan(row.stage, text, env)


def deploy_target(form: Form, current: Deployment | None) -> tuple[str, int]:
    host = forms.text(form, "host") or (current.host if current else "127.0.0.1")
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,255}", host):
        raise FieldError({"host": "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0"})
    raw = forms.text(form, "port") or (str(current.port) if current else "")
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise FieldError({"port": f"must be between 1 and 65535, got {raw!r}"})
    return host, int(raw)


async def deploy(c: Console, found: Project, row: ConnectionRow, form: Form) -> Deployment:
    current = await c.store.deployment(row.id)
    host, port = deploy_target(form, current)
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    plan = await deploy_plan(c, found, row, f"http://{reachable}:{port}")
    return await c.deployer.deploy(row.id, plan, host, port)
