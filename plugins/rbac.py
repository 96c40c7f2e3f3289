"""Role-based access control (SPEC §9): permissions ``{table}.{action}``.

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
``[rbac] permission_cache`` seconds, so role changes apply within that time.
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

import asyncio
import dataclasses
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import click
import sqlalchemy as sa
from aiohttp import web

from swain.core import (
    IDENTITY,
    RUNTIME,
    Action,
    Authorizer,
    Config,
    ConfigError,
    DBConnection,
    Detail,
    Dialect,
    Forbidden,
    Identity,
    Runtime,
    ServiceUnavailable,
    Setting,
    Table,
    hookimpl,
)
from swain.core.catalog import Catalog, Compiled
from swain.core.config import validate_section

ACTIONS: tuple[str, ...] = ("read", "create", "update", "delete")

#: The mapping cards RBAC reads, with their roles (``description`` is optional, as on the
#: mapping cards: without it the CLI simply does not write descriptions).
CARDS: dict[str, tuple[str, ...]] = {
    "role": ("id", "name", "description"),
    "permission": ("id", "name", "description"),
    "role_permission": ("id", "roleid", "permissionid"),
    "user_role": ("id", "userid", "roleid"),
}
_REQUIRED = {"role": ("id", "name"), "permission": ("id", "name"),
             "role_permission": ("roleid", "permissionid"), "user_role": ("userid", "roleid")}


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


@dataclasses.dataclass(frozen=True)
class Cards:
    """The RBAC cards as mapped: card → {"table": …, role: column}, plus the user card."""

    mapped: dict[str, dict[str, str]]
    user: dict[str, str] | None

    def table(self, card: str) -> str:
        return self.mapped[card]["table"]

    def col(self, card: str, role: str) -> str:
        return self.mapped[card][role]


def parse_cards(config: Config) -> Cards:
    """The RBAC cards from ``[mapping.*]``; a missing card or role names its key."""
    section = config.section("mapping")
    mapped: dict[str, dict[str, str]] = {}
    for card, roles in CARDS.items():
        raw = section.get(card)
        if raw is None:
            raise ConfigError(f"mapping.{card}: required by [rbac] (the table holding "
                              f"{card.replace('_', ' ')}s)")
        settings = {"table": Setting("str", None), **{r: Setting("str", None) for r in roles}}
        values = validate_section(f"mapping.{card}", raw, settings)
        for role in ("table", *_REQUIRED[card]):
            if not values[role]:
                raise ConfigError(f"mapping.{card}.{role}: required by [rbac]")
        mapped[card] = {k: v for k, v in values.items() if v}
    user = section.get("user")
    user_card = {k: v for k, v in user.items() if isinstance(v, str)} \
        if isinstance(user, dict) else None
    return Cards(mapped, user_card)


class Store:
    """Statements on the mapped RBAC tables, for the resolver and the CLI.

    These are RBAC's own bookkeeping, so they bypass the table gateway (and
    with it the authorizer that depends on them) on purpose.
    """

    def __init__(self, dialect: Dialect, catalog: Catalog, cards: Cards) -> None:
        self.dialect = dialect
        self.catalog = catalog
        self.cards = cards

    def _table(self, card: str) -> tuple[Table, sa.Table]:
        name = self.cards.user["table"] if card == "user" and self.cards.user \
            else self.cards.table(card)
        table = self.catalog.schema.tables.get(name)
        if table is None:
            raise ConfigError(f"mapping.{card}.table: table {name!r} not in the schema")
        return table, self.catalog.sa_table(table)

    def _c(self, card: str, role: str) -> sa.ColumnElement[Any]:
        _, sa_table = self._table(card)
        name = self.cards.user[role] if card == "user" and self.cards.user \
            else self.cards.col(card, role)
        return sa_table.c[name]

    def _encode(self, card: str, role: str, value: Any) -> Any:
        table, _ = self._table(card)
        column = table.column(self._c(card, role).name)
        assert column is not None
        if column.kind == "integer" and isinstance(value, str):
            value = int(value)  # a ValueError for anything but digits
        elif column.kind == "uuid" and isinstance(value, str):
            value = uuid.UUID(value)
        return self.dialect.encode(column.kind, value)

    def _compiled(self, key: tuple[Any, ...], build: Callable[[], Any]) -> str:
        compiled: Compiled = self.catalog.compiled(
            ("rbac", *key), lambda: Compiled(*self.dialect.compile(build())))
        sql: str = compiled.sql
        return sql

    async def _all(self, key: tuple[Any, ...], build: Callable[[], Any],
                   params: dict[str, Any]) -> list[Sequence[Any]]:
        sql = self._compiled(key, build)
        conn: DBConnection
        async with self.dialect.acquire() as conn:
            rows: list[Sequence[Any]] = await conn.fetch_all(sql, params)
        return rows

    async def _execute(self, key: tuple[Any, ...], build: Callable[[], Any],
                       params: dict[str, Any]) -> int:
        sql = self._compiled(key, build)
        conn: DBConnection
        async with self.dialect.acquire() as conn:
            changed: int = (await conn.execute(sql, params)).rowcount
        return changed

    # -- reads ----------------------------------------------------------------

    async def effective(self, user_id: Any) -> tuple[frozenset[str], frozenset[str]]:
        """The names of a user's roles and of the permissions those roles hold."""

        def build() -> Any:
            _, ur = self._table("user_role")
            _, role = self._table("role")
            _, rp = self._table("role_permission")
            _, perm = self._table("permission")
            grants = rp.join(perm, self._c("role_permission", "permissionid")
                             == self._c("permission", "id"))
            joined = ur.join(role, self._c("user_role", "roleid") == self._c("role", "id")) \
                .outerjoin(grants, self._c("role_permission", "roleid") == self._c("role", "id"))
            return sa.select(self._c("role", "name"), self._c("permission", "name")) \
                .select_from(joined).where(self._c("user_role", "userid") == sa.bindparam("u"))

        rows = await self._all(("effective",), build,
                               {"u": self._encode("user_role", "userid", user_id)})
        return (frozenset(str(r[0]) for r in rows),
                frozenset(str(r[1]) for r in rows if r[1] is not None))

    def _role_grants(self) -> Any:
        """role ⋈ role_permission ⋈ permission."""
        _, role = self._table("role")
        _, rp = self._table("role_permission")
        _, perm = self._table("permission")
        return role.join(rp, self._c("role_permission", "roleid") == self._c("role", "id")) \
            .join(perm, self._c("role_permission", "permissionid") == self._c("permission", "id"))

    async def role_permissions(self, role_name: str) -> frozenset[str]:
        def build() -> Any:
            return sa.select(self._c("permission", "name")).select_from(self._role_grants()) \
                .where(self._c("role", "name") == sa.bindparam("n"))

        rows = await self._all(("role_permissions",), build, {"n": role_name})
        return frozenset(str(r[0]) for r in rows)

    async def names(self, card: str) -> list[tuple[str, str | None]]:
        """(name, description) of every role or permission, by name."""
        has_description = self.has_description(card)

        def build() -> Any:
            columns = [self._c(card, "name")]
            if has_description:
                columns.append(self._c(card, "description"))
            return sa.select(*columns).order_by(self._c(card, "name"))

        rows = await self._all(("names", card), build, {})
        return [(str(r[0]), (r[1] if has_description else None)) for r in rows]

    async def grants(self) -> list[tuple[str, str]]:
        """Every (role name, permission name) pair a role holds."""

        def build() -> Any:
            return sa.select(self._c("role", "name"), self._c("permission", "name")) \
                .select_from(self._role_grants())

        return [(str(r[0]), str(r[1])) for r in await self._all(("grants",), build, {})]

    async def users(self, limit: int) -> list[tuple[Any, str, list[str]]]:
        """(id, email, role names) of the first ``limit`` users by email."""
        if not self.cards.user or "email" not in self.cards.user:
            raise ConfigError("mapping.user: required to name users")
        rows = await self._all(("users",), lambda: sa.select(
            self._c("user", "id"), self._c("user", "email"))
            .order_by(self._c("user", "email")).limit(sa.bindparam("n", type_=sa.Integer)),
            {"n": limit})

        def build() -> Any:
            _, ur = self._table("user_role")
            _, role = self._table("role")
            return sa.select(self._c("user_role", "userid"), self._c("role", "name")).select_from(
                ur.join(role, self._c("user_role", "roleid") == self._c("role", "id")))

        held: dict[Any, list[str]] = {}
        for user_id, role_name in await self._all(("assignments",), build, {}):
            held.setdefault(user_id, []).append(str(role_name))
        return [(r[0], str(r[1]), sorted(held.get(r[0], []))) for r in rows]

    async def id_of(self, card: str, name: str) -> Any:
        rows = await self._all(("id_of", card), lambda: sa.select(self._c(card, "id")).where(
            self._c(card, "name") == sa.bindparam("n")), {"n": name})
        return rows[0][0] if rows else None

    async def user_id(self, who: str) -> Any:
        """A user's id from an email or an id; ``None`` if there is none."""
        if not self.cards.user or "email" not in self.cards.user:
            raise ConfigError("mapping.user: required to name users")
        rows = await self._all(("user_by_email",), lambda: sa.select(self._c("user", "id")).where(
            sa.func.lower(self._c("user", "email")) == sa.bindparam("e")), {"e": who.lower()})
        if rows:
            return rows[0][0]
        try:
            value = self._encode("user", "id", who)
        except (ValueError, TypeError):
            return None
        rows = await self._all(("user_by_id",), lambda: sa.select(self._c("user", "id")).where(
            self._c("user", "id") == sa.bindparam("i")), {"i": value})
        return rows[0][0] if rows else None

    async def _link_exists(self, card: str, left: str, right: str, a: Any, b: Any) -> bool:
        rows = await self._all(("link", card), lambda: sa.select(sa.func.count()).where(
            self._c(card, left) == sa.bindparam("a"), self._c(card, right) == sa.bindparam("b")),
            {"a": self._encode(card, left, a), "b": self._encode(card, right, b)})
        return bool(rows and rows[0][0])

    # -- writes ------------------------------------------------------------------

    async def _new_id(self, card: str) -> Any:
        table, _ = self._table(card)
        column = table.column(self._c(card, "id").name)
        assert column is not None
        key = column.fresh_key()
        if key is not None or column.has_default:
            return key
        rows = await self._all(("max_id", card), lambda: sa.select(
            sa.func.max(self._c(card, "id"))), {})
        return int(rows[0][0] or 0) + 1

    async def _insert(self, card: str, values: dict[str, Any]) -> None:
        if "id" in self.cards.mapped[card]:
            new_id = await self._new_id(card)
            if new_id is not None:
                values = {"id": new_id, **values}
        roles = tuple(values)
        _, sa_table = self._table(card)

        def build() -> Any:
            return sa.insert(sa_table).values(
                {self._c(card, r).name: sa.bindparam(f"v{i}") for i, r in enumerate(roles)})

        await self._execute(("insert", card, roles), build,
                            {f"v{i}": self._encode(card, r, values[r])
                             for i, r in enumerate(roles)})

    def has_description(self, card: str) -> bool:
        """Whether the operator's ``card`` table has a mapped description column."""
        return "description" in self.cards.mapped[card]

    async def ensure_named(self, card: str, name: str, description: str | None = None) -> bool:
        """Create a role or permission unless it exists; whether it was created."""
        if await self.id_of(card, name) is not None:
            return False
        values: dict[str, Any] = {"name": name}
        if self.has_description(card):
            values["description"] = description
        await self._insert(card, values)
        return True

    async def link(self, card: str, left: str, right: str, a: Any, b: Any) -> bool:
        """Add a grant or an assignment unless it exists; whether it was added."""
        if await self._link_exists(card, left, right, a, b):
            return False
        await self._insert(card, {left: a, right: b})
        return True

    async def unlink(self, card: str, left: str, right: str, a: Any, b: Any) -> int:
        _, sa_table = self._table(card)
        return await self._execute(("unlink", card), lambda: sa.delete(sa_table).where(
            self._c(card, left) == sa.bindparam("a"), self._c(card, right) == sa.bindparam("b")),
            {"a": self._encode(card, left, a), "b": self._encode(card, right, b)})


# -- the authorizer ---------------------------------------------------------------


class Rbac:
    """The authorizer, its permission cache and the identity enrichment."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cards = parse_cards(config)
        self.ttl = float(config.section("rbac").get("permission_cache", 30.0))
        self.anonymous_role: str | None = config.section("rbac").get("anonymous_role")
        self.runtime: Runtime | None = None
        self._cache: dict[Any, tuple[float, frozenset[str], frozenset[str]]] = {}

    def store(self) -> Store:
        runtime = self.runtime
        if runtime is None or runtime.catalog is None:
            raise ServiceUnavailable("permissions are not available yet")
        return Store(runtime.dialect, runtime.catalog, self.cards)

    async def _cached(self, key: Any,
                      load: Callable[[], Awaitable[tuple[frozenset[str], frozenset[str]]]]
                      ) -> tuple[frozenset[str], frozenset[str]]:
        now = time.monotonic()
        found = self._cache.get(key)
        if found is not None and found[0] > now:
            return found[1], found[2]
        roles, permissions = await load()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, roles, permissions)
        return roles, permissions

    async def effective(self, identity: Identity | None) -> tuple[frozenset[str], frozenset[str]]:
        """The roles and permissions ``identity`` holds (anonymous: the anonymous role's)."""
        if identity is None:
            role = self.anonymous_role
            if not role:
                return frozenset(), frozenset()

            async def anonymous() -> tuple[frozenset[str], frozenset[str]]:
                return frozenset({role}), await self.store().role_permissions(role)

            return await self._cached(("anonymous",), anonymous)
        if identity.user_id is None:
            # An account-owned API key (mapping.api_key.accountid) names no user,
            # so no user_role row can reach it: only what the provider put on it.
            return identity.roles, identity.permissions
        roles, permissions = await self._cached(
            ("user", identity.user_id), lambda: self.store().effective(identity.user_id))
        return identity.roles | roles, identity.permissions | permissions

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


#: One Rbac per configuration (by identity: configs are unhashable), shared by the hooks.
_INSTANCES: dict[int, tuple[weakref.ref[Config], Rbac]] = {}


def enabled(config: Config) -> bool:
    return bool(config.section("rbac").get("enabled"))


def instance(config: Config) -> Rbac:
    found = _INSTANCES.get(id(config))
    if found is not None and found[0]() is config:
        return found[1]
    for key in [k for k, (ref, _) in _INSTANCES.items() if ref() is None]:
        del _INSTANCES[key]
    rbac = Rbac(config)
    _INSTANCES[id(config)] = (weakref.ref(config), rbac)
    return rbac


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
def swain_authorizers(config: Config) -> Iterable[Authorizer]:
    return [instance(config)] if enabled(config) else []


@hookimpl
def swain_middlewares(config: Config) -> Iterable[Any]:
    return [instance(config).middleware()] if enabled(config) else []


@hookimpl
def swain_cleanup_ctx(config: Config) -> Iterable[Any]:
    if not enabled(config):
        return []
    rbac = instance(config)

    async def attach(app: web.Application) -> AsyncIterator[None]:
        rbac.runtime = app[RUNTIME]
        yield

    return [attach]


# -- CLI --------------------------------------------------------------------------------


def _run(ctx: click.Context, work: Callable[[Store], Awaitable[None]]) -> None:
    """Run ``work`` against the stage's database through the mapped tables."""

    async def main() -> None:
        from swain.core.plugins import load_dialect

        config, pm = ctx.obj.load()
        cards = parse_cards(config)
        connection = config.connection()
        dialect = load_dialect(pm, connection.dialect)(connection)
        await dialect.open()
        try:
            schema = await dialect.introspect()
            await work(Store(dialect, Catalog(schema), cards))
        finally:
            await dialect.close()

    try:
        asyncio.run(main())
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


async def _require(store: Store, card: str, name: str) -> Any:
    found = await store.id_of(card, name)
    if found is None:
        raise click.ClickException(f"no {card} named {name!r}")
    return found


async def _user(store: Store, who: str) -> Any:
    found = await store.user_id(who)
    if found is None:
        raise click.ClickException(f"no user with email or id {who!r}")
    return found


def _description(store: Store, card: str, description: str | None) -> str | None:
    """``description``, or ``None`` with a warning when the card maps no description column."""
    if description is not None and not store.has_description(card):
        click.echo(f"warning: mapping.{card} has no description column; --description ignored",
                   err=True)
        return None
    return description


def _known_table(store: Store, permission: str) -> None:
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

        async def work(store: Store) -> None:
            created = await store.ensure_named("role", name, _description(store, "role",
                                                                           description))
            click.echo(f"{'created' if created else 'exists: '} role {name}")

        _run(ctx, work)

    @role_group.command("list")
    @click.pass_context
    def role_list(ctx: click.Context) -> None:
        """List roles with their permissions."""

        async def work(store: Store) -> None:
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

        async def work(store: Store) -> None:
            check_permission(name)
            _known_table(store, name)
            created = await store.ensure_named("permission", name,
                                               _description(store, "permission", description))
            click.echo(f"{'created' if created else 'exists: '} permission {name}")

        _run(ctx, work)

    @permission_group.command("list")
    @click.pass_context
    def permission_list(ctx: click.Context) -> None:
        """List permissions."""

        async def work(store: Store) -> None:
            for name, description in await store.names("permission"):
                click.echo(f"{name}\t{description or ''}".rstrip())

        _run(ctx, work)

    @rbac_group.command("grant")
    @click.argument("role")
    @click.argument("permissions", nargs=-1, required=True)
    @click.pass_context
    def grant(ctx: click.Context, role: str, permissions: tuple[str, ...]) -> None:
        """Give ROLE the PERMISSIONS (created if missing)."""

        async def work(store: Store) -> None:
            role_id = await _require(store, "role", role)
            for name in permissions:
                check_permission(name)
                _known_table(store, name)
                await store.ensure_named("permission", name)
                added = await store.link("role_permission", "roleid", "permissionid", role_id,
                                         await store.id_of("permission", name))
                click.echo(f"{'granted' if added else 'already granted'} {name} to {role}")

        _run(ctx, work)

    @rbac_group.command("revoke")
    @click.argument("role")
    @click.argument("permissions", nargs=-1, required=True)
    @click.pass_context
    def revoke(ctx: click.Context, role: str, permissions: tuple[str, ...]) -> None:
        """Take PERMISSIONS away from ROLE."""

        async def work(store: Store) -> None:
            role_id = await _require(store, "role", role)
            for name in permissions:
                permission_id = await _require(store, "permission", name)
                removed = await store.unlink("role_permission", "roleid", "permissionid",
                                             role_id, permission_id)
                click.echo(f"{'revoked' if removed else 'not granted:'} {name} from {role}")

        _run(ctx, work)

    @rbac_group.command("assign")
    @click.argument("user")
    @click.argument("roles", nargs=-1, required=True)
    @click.pass_context
    def assign(ctx: click.Context, user: str, roles: tuple[str, ...]) -> None:
        """Give USER (email or id) the ROLES."""

        async def work(store: Store) -> None:
            user_id = await _user(store, user)
            for role in roles:
                added = await store.link("user_role", "userid", "roleid", user_id,
                                         await _require(store, "role", role))
                click.echo(f"{'assigned' if added else 'already assigned'} {role} to {user}")

        _run(ctx, work)

    @rbac_group.command("unassign")
    @click.argument("user")
    @click.argument("roles", nargs=-1, required=True)
    @click.pass_context
    def unassign(ctx: click.Context, user: str, roles: tuple[str, ...]) -> None:
        """Take ROLES away from USER (email or id)."""

        async def work(store: Store) -> None:
            user_id = await _user(store, user)
            for role in roles:
                removed = await store.unlink("user_role", "userid", "roleid", user_id,
                                             await _require(store, "role", role))
                click.echo(f"{'unassigned' if removed else 'not assigned:'} {role} from {user}")

        _run(ctx, work)

    @rbac_group.command("permissions")
    @click.argument("user")
    @click.pass_context
    def permissions(ctx: click.Context, user: str) -> None:
        """List the roles and effective permissions of USER (email or id)."""

        async def work(store: Store) -> None:
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

        async def work(store: Store) -> None:
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

        _run(ctx, work)
