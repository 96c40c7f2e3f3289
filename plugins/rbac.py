"""Role-based access control: permissions ``{table}.{action}`` (``docs/rbac.md``).

Roles, permissions and who holds what live in the operator's own tables,
named by the ``role``, ``permission``, ``role_permission`` and ``user_role``
mapping cards (``[mapping.*]``).  When ``[rbac] enabled = true`` an
authorizer is consulted by the table gateway for every statement on every
path (core's endpoints and any plugin's), so a user needs ``orders.read`` to
list, get, filter or count ``orders`` (and ``read`` on every table a
relationship filter or include reaches), ``orders.create`` to create,
``orders.update`` to update and ``orders.delete`` to delete.  Wildcards:
``orders.*``, ``*.read`` and ``*``.

A user's effective permissions are read once and cached for
``[rbac] permission_cache`` seconds.  Any change to the four RBAC tables
through the table API, ``swain rbac`` or the console (or, with ``swain
invalidation apply``, directly in PostgreSQL) empties the cache on every
instance at once; the time limit remains for instances not told.
Every credential of a user (bearer, Basic, API key) holds that user's roles:
keys have no scopes of their own, and an account-owned key names no user, so
it holds no roles.
Anonymous callers (public routes, or auth disabled) hold only the
permissions of ``[rbac] anonymous_role`` when one is set, and nothing
otherwise.  A middleware adds the resolved roles and permissions to the
request's identity, which is how ``/auth/me`` shows them.

``swain rbac`` manages roles, permissions, grants and assignments on the
stage's database and seeds ``admin``/``manager``/``member``.
"""

from __future__ import annotations

import dataclasses
import getpass
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import click
import sqlalchemy as sa
from aiohttp import web

from swain.core import (
    IDENTITY,
    Action,
    AuditEvent,
    Authorizer,
    Config,
    ConfigError,
    Detail,
    Forbidden,
    Identity,
    Runtime,
    ServiceKey,
    ServiceUnavailable,
    Setting,
    Table,
    audit_event,
    hookimpl,
)
from swain.core.catalog import Catalog
from swain.core.cli import with_catalog
from swain.core.invalidation import MISSING, TimedCache, Watch
from swain.plugins.mapping import MappedCard, Store, parse, require

#: the mapping cards RBAC reads: [mapping.role] and friends (defined with the others)
requires = ("mapping",)

ACTIONS: tuple[str, ...] = ("read", "create", "update", "delete")


# -- permissions --------------------------------------------------------------------


def check_permission(name: str) -> str:
    """``name`` if it is a well-formed permission, else a ``ValueError`` saying why."""
    if name == "*":
        return name
    table, dot, action = name.rpartition(".")
    if not dot or not table:
        raise ValueError(f'permission {name!r}: expected "{{table}}.{{action}}", '
                         f'"{{table}}.*", "*.{{action}}" or "*"')
    if action != "*" and action not in ACTIONS:
        raise ValueError(f"permission {name!r}: action must be one of "
                         f"{', '.join(ACTIONS)} or *")
    return name


def allows(permissions: Iterable[str], table: str, action: str) -> bool:
    """Whether any of ``permissions`` (wildcards included) grants ``table.action``."""
    for permission in permissions:
        if permission == "*":
            return True
        granted_table, _, granted_action = permission.rpartition(".")
        if granted_table in (table, "*") and granted_action in (action, "*"):
            return True
    return False


# -- the mapped tables ----------------------------------------------------------------

#: The cards RBAC reads (``[mapping.role]`` and friends), besides the user card.
RBAC_CARDS = ("role", "permission", "role_permission", "user_role")


def rbac_cards(config: Config) -> dict[str, MappedCard]:
    """The mapped cards with the four RBAC ones checked present (naming a missing one)."""
    mapped = parse(config)
    require(mapped, RBAC_CARDS, "[rbac]")
    return mapped


class Grants:
    """RBAC's statements on the mapped tables (joins and links), for the resolver and
    the CLI, built on the mapping store.

    These are RBAC's own bookkeeping, so they bypass the table gateway (and
    with it the authorizer that depends on them) on purpose.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.c = store.sa_column

    @property
    def catalog(self) -> Catalog:
        return self.store.catalog

    # -- reads ----------------------------------------------------------------

    async def effective(self, user_id: Any) -> tuple[frozenset[str], frozenset[str]]:
        """The names of a user's roles and of the permissions those roles hold."""
        c = self.c

        def build() -> Any:
            _, ur = self.store.table("user_role")
            _, role = self.store.table("role")
            _, rp = self.store.table("role_permission")
            _, perm = self.store.table("permission")
            grants = rp.join(perm, c("role_permission", "permissionid") == c("permission", "id"))
            joined = ur.join(role, c("user_role", "roleid") == c("role", "id")) \
                .outerjoin(grants, c("role_permission", "roleid") == c("role", "id"))
            return sa.select(c("role", "name"), c("permission", "name")) \
                .select_from(joined).where(c("user_role", "userid") == sa.bindparam("u"))

        rows = await self.store.rows(("rbac", "effective"), build,
                                     {"u": self.store.encode("user_role", "userid", user_id)})
        return (frozenset(str(r[0]) for r in rows),
                frozenset(str(r[1]) for r in rows if r[1] is not None))

    def _role_grants(self) -> Any:
        """role ⋈ role_permission ⋈ permission."""
        c = self.c
        _, role = self.store.table("role")
        _, rp = self.store.table("role_permission")
        _, perm = self.store.table("permission")
        return role.join(rp, c("role_permission", "roleid") == c("role", "id")) \
            .join(perm, c("role_permission", "permissionid") == c("permission", "id"))

    async def role_permissions(self, role_name: str) -> frozenset[str]:
        c = self.c

        def build() -> Any:
            return sa.select(c("permission", "name")).select_from(self._role_grants()) \
                .where(c("role", "name") == sa.bindparam("n"))

        rows = await self.store.rows(("rbac", "role_permissions"), build, {"n": role_name})
        return frozenset(str(r[0]) for r in rows)

    async def names(self, card: str) -> list[tuple[str, str | None]]:
        """(name, description) of every role or permission, by name."""
        roles = ["name", "description"] if self.has_description(card) else ["name"]
        rows = await self.store.fetch(card, [], roles)
        found = [(str(r["name"]), r.get("description")) for r in rows]
        return sorted(found, key=lambda pair: pair[0])

    async def grants(self) -> list[tuple[str, str]]:
        """Every (role name, permission name) pair a role holds."""
        c = self.c
        rows = await self.store.rows(("rbac", "grants"), lambda: sa.select(
            c("role", "name"), c("permission", "name")).select_from(self._role_grants()), {})
        return [(str(r[0]), str(r[1])) for r in rows]

    async def users(self, limit: int) -> list[tuple[Any, str, list[str]]]:
        """(id, email, role names) of the first ``limit`` users by email."""
        if "user" not in self.store.cards or not self.store.card("user").has("email"):
            raise ConfigError("mapping.user: required to name users")
        c = self.c
        rows = await self.store.rows(("rbac", "users"), lambda: sa.select(
            c("user", "id"), c("user", "email")).order_by(c("user", "email"))
            .limit(sa.bindparam("n", type_=sa.Integer)), {"n": limit})

        def build() -> Any:
            _, ur = self.store.table("user_role")
            _, role = self.store.table("role")
            return sa.select(c("user_role", "userid"), c("role", "name")).select_from(
                ur.join(role, c("user_role", "roleid") == c("role", "id")))

        held: dict[Any, list[str]] = {}
        for user_id, role_name in await self.store.rows(("rbac", "assignments"), build, {}):
            held.setdefault(user_id, []).append(str(role_name))
        return [(r[0], str(r[1]), sorted(held.get(r[0], []))) for r in rows]

    async def id_of(self, card: str, name: str) -> Any:
        row = await self.store.fetch_one(card, [("name", "eq", name)], ["id"])
        return row["id"] if row else None

    async def user_id(self, who: str) -> Any:
        """A user's id from an email or an id; ``None`` if there is none."""
        if "user" not in self.store.cards or not self.store.card("user").has("email"):
            raise ConfigError("mapping.user: required to name users")
        row = await self.store.fetch_one("user", [("email", "ieq", who)], ["id"])
        if row is not None:
            return row["id"]
        try:
            row = await self.store.fetch_one("user", [("id", "eq", who)], ["id"])
        except (ValueError, TypeError):
            return None
        return row["id"] if row else None

    # -- writes ------------------------------------------------------------------

    def has_description(self, card: str) -> bool:
        """Whether the operator's ``card`` table has a mapped description column."""
        return "description" in self.store.card(card).columns

    async def ensure_named(self, card: str, name: str, description: str | None = None) -> bool:
        """Create a role or permission unless it exists; whether it was created."""
        if await self.id_of(card, name) is not None:
            return False
        values: dict[str, Any] = {"name": name}
        if self.has_description(card):
            values["description"] = description
        await self.store.insert(card, values)
        return True

    async def link(self, card: str, left: str, right: str, a: Any, b: Any) -> bool:
        """Add a grant or an assignment unless it exists; whether it was added."""
        if await self.store.fetch_one(card, [(left, "eq", a), (right, "eq", b)], [left]):
            return False
        await self.store.insert(card, {left: a, right: b})
        return True

    async def unlink(self, card: str, left: str, right: str, a: Any, b: Any) -> int:
        removed: int = await self.store.delete(card, [(left, "eq", a), (right, "eq", b)])
        return removed


# -- the authorizer ---------------------------------------------------------------


class Rbac:
    """The authorizer, its permission cache and the identity enrichment; one per
    application (the :data:`RBAC` service), so every hook shares the cache."""

    def __init__(self, config: Config, runtime: Runtime | None = None) -> None:
        self.config = config
        self.cards = rbac_cards(config)
        self.ttl = float(config.section("rbac").get("permission_cache", 30.0))
        self.anonymous_role: str | None = config.section("rbac").get("anonymous_role")
        self.runtime = runtime
        #: ("user", id) or ("anonymous",) -> (role names, permission names)
        self._cache: TimedCache[Any, tuple[frozenset[str], frozenset[str]]] = TimedCache(self.ttl)

    def grants(self) -> Grants:
        runtime = self.runtime
        if runtime is None or runtime.catalog is None:
            raise ServiceUnavailable("permissions are not available yet")
        return Grants(Store(runtime, self.cards))

    async def _cached(self, key: Any,
                      load: Callable[[], Awaitable[tuple[frozenset[str], frozenset[str]]]]
                      ) -> tuple[frozenset[str], frozenset[str]]:
        found = self._cache.fresh(key)
        if found is not MISSING:
            return found
        since = self._cache.epoch
        loaded = await load()
        self._cache.put(key, loaded, since)
        return loaded

    async def effective(self, identity: Identity | None) -> tuple[frozenset[str], frozenset[str]]:
        """The roles and permissions ``identity`` holds (anonymous: the anonymous role's)."""
        if identity is None:
            role = self.anonymous_role
            if not role:
                return frozenset(), frozenset()

            async def anonymous() -> tuple[frozenset[str], frozenset[str]]:
                return frozenset({role}), await self.grants().role_permissions(role)

            return await self._cached(("anonymous",), anonymous)
        if identity.user_id is None:
            # An account-owned API key (mapping.api_key.accountid) names no user,
            # so no user_role row can reach it: only what the provider put on it.
            return identity.roles, identity.permissions
        roles, permissions = await self._cached(
            ("user", identity.user_id), lambda: self.grants().effective(identity.user_id))
        return identity.roles | roles, identity.permissions | permissions

    def invalidate(self, key: str | None) -> None:
        """Subscriber of the ``rbac`` topic: forget every cached permission set."""
        self._cache.forget(None, lambda _key, _held: None)

    async def authorize(self, identity: Identity | None, table: Table, action: Action) -> None:
        _, permissions = await self.effective(identity)
        if not allows(permissions, table.key, action):
            needed = f"{table.key}.{action}"
            raise Forbidden(f'missing permission "{needed}"', [Detail("permission", needed)])

    def middleware(self) -> Any:
        @web.middleware
        async def rbac_identity(request: web.Request,
                                handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                ) -> web.StreamResponse:
            identity = request.get(IDENTITY)
            if identity is not None:
                roles, permissions = await self.effective(identity)
                request[IDENTITY] = dataclasses.replace(identity, roles=roles,
                                                        permissions=permissions)
            return await handler(request)

        return rbac_identity


#: The application's Rbac, shared by the authorizer and the middleware.
RBAC: ServiceKey[Rbac] = ServiceKey("swain.rbac", provider="rbac")


def enabled(config: Config) -> bool:
    return bool(config.section("rbac").get("enabled"))


#: invalidations of every cached permission set: any change to roles, permissions,
#: grants or assignments (no key: they are few, and a grant reaches many users)
TOPIC = "rbac"


def instance(runtime: Runtime) -> Rbac:
    def create() -> Rbac:
        rbac = Rbac(runtime.config, runtime)
        runtime.invalidations.subscribe(TOPIC, rbac.invalidate)
        return rbac

    return runtime.services.ensure(RBAC, create)


async def changed(runtime: Runtime, event: AuditEvent) -> None:
    """Roles or permissions changed outside the table API (a command, the console):
    record it, and make every instance forget the permissions it cached."""
    await runtime.audit([event])
    await runtime.invalidations.publish(TOPIC)


# -- hooks ----------------------------------------------------------------------------


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"rbac": {
        "enabled": Setting("bool", False, doc="enforce role-based permissions on every table"),
        "permission_cache": Setting("duration", 30.0, minimum=0,
                                    doc="how long a user's effective permissions are cached "
                                        "(role changes apply within this time)"),
        "anonymous_role": Setting("str", None, doc="the role whose permissions anonymous "
                                                   "callers hold (default: none)"),
        "manager_tables": Setting("list", [], doc="tables `swain rbac seed` gives the manager "
                                                  "role read/create/update on"),
    }}


@hookimpl
def swain_authorizers(config: Config, runtime: Runtime) -> Iterable[Authorizer]:
    return [instance(runtime)] if enabled(config) else []


@hookimpl
def swain_middlewares(config: Config, runtime: Runtime) -> Iterable[Any]:
    return [instance(runtime).middleware()] if enabled(config) else []


@hookimpl
def swain_invalidation_watches(config: Config) -> Iterable[Watch]:
    if not enabled(config):
        return []
    cards = rbac_cards(config)
    return [Watch(cards[card].table, TOPIC) for card in RBAC_CARDS]


# -- CLI --------------------------------------------------------------------------------


def _run(ctx: click.Context, work: Callable[[Grants], Awaitable[None]],
         action: str | None = None, detail: Callable[[], dict[str, Any]] | None = None) -> None:
    """Run ``work`` against the stage's database through the mapped tables; with an
    ``action``, record it in the audit sinks afterwards (who ran which command)."""
    config, pm = ctx.obj.load()
    try:
        cards = rbac_cards(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    async def main(runtime: Runtime) -> None:
        await work(Grants(Store(runtime, cards)))
        if action is not None:
            await changed(runtime, command_event(f"rbac.{action}", detail() if detail else {}))

    try:
        with_catalog(config, pm, main)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def command_event(action: str, detail: dict[str, Any]) -> AuditEvent:
    """An audit event for a command run by the current operating-system user."""
    return dataclasses.replace(audit_event(None, action, detail=detail),
                               actor=f"cli:{getpass.getuser()}", provider="cli")


async def _require(store: Grants, card: str, name: str) -> Any:
    found = await store.id_of(card, name)
    if found is None:
        raise click.ClickException(f"no {card} named {name!r}")
    return found


async def _user(store: Grants, who: str) -> Any:
    found = await store.user_id(who)
    if found is None:
        raise click.ClickException(f"no user with email or id {who!r}")
    return found


def _description(store: Grants, card: str, description: str | None) -> str | None:
    """``description``, or ``None`` with a warning when the card maps no description column."""
    if description is not None and not store.has_description(card):
        click.echo(f"warning: mapping.{card} has no description column; --description ignored",
                   err=True)
        return None
    return description


def _known_table(store: Grants, permission: str) -> None:
    table = permission.rpartition(".")[0]
    if table not in ("", "*") and store.catalog.table(table) is None:
        click.echo(f"warning: no table {table!r} in the schema", err=True)


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    @cli.group("rbac")
    def rbac_group() -> None:
        """Manage roles, permissions and assignments ([mapping.role] and friends)."""

    @rbac_group.group("role")
    def role_group() -> None:
        """Create or list roles."""

    @role_group.command("create")
    @click.argument("name")
    @click.option("--description", default=None)
    @click.pass_context
    def role_create(ctx: click.Context, name: str, description: str | None) -> None:
        """Create a role."""

        async def work(store: Grants) -> None:
            created = await store.ensure_named("role", name, _description(store, "role",
                                                                           description))
            click.echo(f"{'created' if created else 'exists: '} role {name}")

        _run(ctx, work, "role.create", lambda: {"role": name})

    @role_group.command("list")
    @click.pass_context
    def role_list(ctx: click.Context) -> None:
        """List roles with their permissions."""

        async def work(store: Grants) -> None:
            for name, description in await store.names("role"):
                permissions = ", ".join(sorted(await store.role_permissions(name)))
                click.echo(f"{name}\t{permissions}\t{description or ''}".rstrip())

        _run(ctx, work)

    @rbac_group.group("permission")
    def permission_group() -> None:
        """Create or list permissions."""

    @permission_group.command("create")
    @click.argument("name")
    @click.option("--description", default=None)
    @click.pass_context
    def permission_create(ctx: click.Context, name: str, description: str | None) -> None:
        """Create a permission such as orders.read, orders.*, *.read or *."""

        async def work(store: Grants) -> None:
            check_permission(name)
            _known_table(store, name)
            created = await store.ensure_named("permission", name,
                                               _description(store, "permission", description))
            click.echo(f"{'created' if created else 'exists: '} permission {name}")

        _run(ctx, work, "permission.create", lambda: {"permission": name})

    @permission_group.command("list")
    @click.pass_context
    def permission_list(ctx: click.Context) -> None:
        """List permissions."""

        async def work(store: Grants) -> None:
            for name, description in await store.names("permission"):
                click.echo(f"{name}\t{description or ''}".rstrip())

        _run(ctx, work)

    @rbac_group.command("grant")
    @click.argument("role")
    @click.argument("permissions", nargs=-1, required=True)
    @click.pass_context
    def grant(ctx: click.Context, role: str, permissions: tuple[str, ...]) -> None:
        """Give ROLE the PERMISSIONS (created if missing)."""

        async def work(store: Grants) -> None:
            role_id = await _require(store, "role", role)
            for name in permissions:
                check_permission(name)
                _known_table(store, name)
                await store.ensure_named("permission", name)
                added = await store.link("role_permission", "roleid", "permissionid", role_id,
                                         await store.id_of("permission", name))
                click.echo(f"{'granted' if added else 'already granted'} {name} to {role}")

        _run(ctx, work, "grant", lambda: {"role": role, "permissions": list(permissions)})

    @rbac_group.command("revoke")
    @click.argument("role")
    @click.argument("permissions", nargs=-1, required=True)
    @click.pass_context
    def revoke(ctx: click.Context, role: str, permissions: tuple[str, ...]) -> None:
        """Take PERMISSIONS away from ROLE."""

        async def work(store: Grants) -> None:
            role_id = await _require(store, "role", role)
            for name in permissions:
                permission_id = await _require(store, "permission", name)
                removed = await store.unlink("role_permission", "roleid", "permissionid",
                                             role_id, permission_id)
                click.echo(f"{'revoked' if removed else 'not granted:'} {name} from {role}")

        _run(ctx, work, "revoke", lambda: {"role": role, "permissions": list(permissions)})

    @rbac_group.command("assign")
    @click.argument("user")
    @click.argument("roles", nargs=-1, required=True)
    @click.pass_context
    def assign(ctx: click.Context, user: str, roles: tuple[str, ...]) -> None:
        """Give USER (email or id) the ROLES."""

        async def work(store: Grants) -> None:
            user_id = await _user(store, user)
            for role in roles:
                added = await store.link("user_role", "userid", "roleid", user_id,
                                         await _require(store, "role", role))
                click.echo(f"{'assigned' if added else 'already assigned'} {role} to {user}")

        _run(ctx, work, "assign", lambda: {"user": user, "roles": list(roles)})

    @rbac_group.command("unassign")
    @click.argument("user")
    @click.argument("roles", nargs=-1, required=True)
    @click.pass_context
    def unassign(ctx: click.Context, user: str, roles: tuple[str, ...]) -> None:
        """Take ROLES away from USER (email or id)."""

        async def work(store: Grants) -> None:
            user_id = await _user(store, user)
            for role in roles:
                removed = await store.unlink("user_role", "userid", "roleid", user_id,
                                             await _require(store, "role", role))
                click.echo(f"{'unassigned' if removed else 'not assigned:'} {role} from {user}")

        _run(ctx, work, "unassign", lambda: {"user": user, "roles": list(roles)})

    @rbac_group.command("permissions")
    @click.argument("user")
    @click.pass_context
    def permissions(ctx: click.Context, user: str) -> None:
        """List the roles and effective permissions of USER (email or id)."""

        async def work(store: Grants) -> None:
            roles, granted = await store.effective(await _user(store, user))
            click.echo(f"roles: {', '.join(sorted(roles)) or '(none)'}")
            for name in sorted(granted):
                click.echo(name)

        _run(ctx, work)

    @rbac_group.command("seed")
    @click.option("--tables", default=None,
                  help="Comma-separated tables the manager role may read, create and update "
                       "(default: [rbac] manager_tables).")
    @click.pass_context
    def seed(ctx: click.Context, tables: str | None) -> None:
        """Create admin (*), manager (read/create/update on --tables) and member (*.read)."""

        async def work(store: Grants) -> None:
            config, _ = ctx.obj.load()
            chosen = [t.strip() for t in tables.split(",") if t.strip()] if tables is not None \
                else list(config.section("rbac").get("manager_tables") or [])
            for table in chosen:
                if store.catalog.table(table) is None:
                    raise click.ClickException(f"no table {table!r} in the schema")
            plan = {"admin": ["*"], "member": ["*.read"],
                    "manager": [f"{t}.{a}" for t in chosen for a in ("read", "create", "update")]}
            descriptions = {"admin": "everything", "member": "read every table",
                            "manager": "read, create and update " + (", ".join(chosen) or
                                                                     "(no tables yet)")}
            for role, granted in plan.items():
                await store.ensure_named("role", role, descriptions[role])
                role_id = await store.id_of("role", role)
                for name in granted:
                    await store.ensure_named("permission", name)
                    await store.link("role_permission", "roleid", "permissionid", role_id,
                                     await store.id_of("permission", name))
                click.echo(f"{role}: {', '.join(granted) or '(no permissions)'}")

        _run(ctx, work, "seed", lambda: {"tables": tables})
