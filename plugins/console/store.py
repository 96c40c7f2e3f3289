"""The console's metadata store: users, sessions, projects, connections,
schema snapshots and deployments.

An embedded SQLite file by default, PostgreSQL when the console is given a
URL; both through SQLAlchemy Core's async engine.  The tables are created and
upgraded by Alembic migrations (``migrations/``) when the store opens, so an
older store file is brought up to date by a newer console.  Secrets arrive
here already sealed by :class:`~.crypto.Vault`; this module never sees a
plain secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = sa.MetaData()
TZ = sa.DateTime(timezone=True)

users = sa.Table(
    "console_users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", TZ, nullable=False),
)
sessions = sa.Table(
    "console_sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("console_users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("expires_at", TZ, nullable=False),
)
setup_tokens = sa.Table(
    "console_setup_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("expires_at", TZ, nullable=False),
)
projects = sa.Table(
    "console_projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("settings", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
)
project_secrets = sa.Table(
    "console_project_secrets", metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("console_projects.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("sealed", sa.Text, nullable=False),
)
connections = sa.Table(
    "console_connections", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("console_projects.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("stage", sa.String(40), nullable=False),
    sa.Column("dialect", sa.String(40), nullable=False),
    sa.Column("host", sa.String(255)),
    sa.Column("port", sa.Integer),
    sa.Column("database", sa.Text),
    sa.Column("username", sa.String(255)),
    sa.Column("password_sealed", sa.Text),
    sa.Column("options", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.UniqueConstraint("project_id", "stage", name="uq_console_connections_stage"),
)
snapshots = sa.Table(
    "console_snapshots", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection_id", sa.Integer,
              sa.ForeignKey("console_connections.id", ondelete="CASCADE"), nullable=False),
    sa.Column("taken_at", TZ, nullable=False),
    sa.Column("schema", sa.Text, nullable=False),
)
deployments = sa.Table(
    "console_deployments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection_id", sa.Integer,
              sa.ForeignKey("console_connections.id", ondelete="CASCADE"), nullable=False,
              unique=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("desired", sa.String(10), nullable=False),
    sa.Column("pid", sa.Integer),
    sa.Column("generation", sa.Integer, nullable=False, default=0),
    sa.Column("env_sealed", sa.Text),
    sa.Column("started_at", TZ),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", TZ, nullable=False),
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    email: str
    password_hash: str


@dataclass(frozen=True)
class Session:
    id: int
    user: User
    kind: str
    expires_at: dt.datetime

    @property
    def expired(self) -> bool:
        return self.expires_at <= now()


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    description: str
    settings: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class ConnectionRow:
    id: int
    project_id: int
    stage: str
    dialect: str
    host: str | None
    port: int | None
    database: str | None
    username: str | None
    password_sealed: str | None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def has_password(self) -> bool:
        return self.password_sealed is not None


@dataclass(frozen=True)
class Snapshot:
    id: int
    connection_id: int
    taken_at: dt.datetime
    schema: dict[str, Any]


@dataclass(frozen=True)
class Deployment:
    id: int
    connection_id: int
    host: str
    port: int
    desired: str
    pid: int | None
    generation: int
    env_sealed: str | None
    started_at: dt.datetime | None
    last_error: str | None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def store_url(store: str) -> sa.URL:
    """The async driver URL for ``--store``: a file path, or a PostgreSQL URL."""
    if "://" not in store:
        return sa.URL.create("sqlite+aiosqlite", database=str(Path(store).expanduser().resolve()))
    url = sa.make_url(store)
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"--store: {backend!r} is not supported; give a file path (SQLite) or a "
                     "postgresql:// URL")


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """All reads and writes of the console's own tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, store: str) -> Store:
        """Connect and bring the tables up to the newest migration."""
        url = store_url(store)
        if url.get_backend_name() == "sqlite" and url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_pre_ping=True)
        if url.get_backend_name() == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
        from .migrations import upgrade

        async with engine.begin() as conn:
            await conn.run_sync(upgrade)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- helpers ---------------------------------------------------------------

    async def _rows(self, statement: Any) -> Sequence[sa.Row[Any]]:
        async with self.engine.connect() as conn:
            return (await conn.execute(statement)).all()

    async def _one(self, statement: Any) -> sa.Row[Any] | None:
        rows = await self._rows(statement)
        return rows[0] if rows else None

    async def _write(self, statement: Any) -> sa.CursorResult[Any]:
        async with self.engine.begin() as conn:
            result: sa.CursorResult[Any] = await conn.execute(statement)
            return result

    # -- users -------------------------------------------------------------------

    async def count_users(self) -> int:
        row = await self._one(sa.select(sa.func.count()).select_from(users))
        return int(row[0]) if row else 0

    async def create_user(self, email: str, password_hash: str) -> User:
        result = await self._write(users.insert().values(
            email=email.strip().lower(), password_hash=password_hash, created_at=now()))
        assert result.inserted_primary_key is not None
        return User(int(result.inserted_primary_key[0]), email.strip().lower(), password_hash)

    async def user_by_email(self, email: str) -> User | None:
        row = await self._one(sa.select(users).where(users.c.email == email.strip().lower()))
        return User(row.id, row.email, row.password_hash) if row else None

    async def set_password(self, user_id: int, password_hash: str) -> None:
        await self._write(users.update().where(users.c.id == user_id)
                          .values(password_hash=password_hash))

    # -- sessions ------------------------------------------------------------------

    async def create_session(self, user_id: int, kind: str, ttl: float) -> str:
        token = secrets.token_urlsafe(32)
        await self._write(sessions.insert().values(
            token_hash=token_hash(token), user_id=user_id, kind=kind, created_at=now(),
            expires_at=now() + dt.timedelta(seconds=ttl)))
        return token

    async def session(self, token: str) -> Session | None:
        """The session a token names, expired or not (the caller decides)."""
        row = await self._one(
            sa.select(sessions.c.id, sessions.c.kind, sessions.c.expires_at, users.c.id.label("uid"),
                      users.c.email, users.c.password_hash)
            .select_from(sessions.join(users, sessions.c.user_id == users.c.id))
            .where(sessions.c.token_hash == token_hash(token)))
        if row is None:
            return None
        expires = _utc(row.expires_at)
        assert expires is not None
        return Session(row.id, User(row.uid, row.email, row.password_hash), row.kind, expires)

    async def end_session(self, token: str) -> None:
        await self._write(sessions.delete().where(sessions.c.token_hash == token_hash(token)))

    async def expire_session(self, token: str) -> None:
        """End a session's validity now but keep the row (tests of expiry use it)."""
        await self._write(sessions.update().where(sessions.c.token_hash == token_hash(token))
                          .values(expires_at=now() - dt.timedelta(seconds=1)))

    async def purge_sessions(self, older_than: dt.timedelta) -> None:
        await self._write(sessions.delete().where(sessions.c.expires_at < now() - older_than))

    # -- first start -----------------------------------------------------------------

    async def create_setup_token(self, ttl: float) -> str:
        token = secrets.token_urlsafe(24)
        async with self.engine.begin() as conn:
            await conn.execute(setup_tokens.delete())
            await conn.execute(setup_tokens.insert().values(
                token_hash=token_hash(token), expires_at=now() + dt.timedelta(seconds=ttl)))
        return token

    async def setup_token_valid(self, token: str) -> bool:
        row = await self._one(sa.select(setup_tokens.c.expires_at)
                              .where(setup_tokens.c.token_hash == token_hash(token)))
        expires = _utc(row.expires_at) if row else None
        return expires is not None and expires > now()

    async def create_first_user(self, token: str, email: str, password_hash: str) -> User | None:
        """Use the one-time setup token: create the first admin, or ``None`` if the token
        is spent, expired, or a user exists already (one transaction, so it runs once)."""
        async with self.engine.begin() as conn:
            deleted = await conn.execute(setup_tokens.delete().where(
                setup_tokens.c.token_hash == token_hash(token), setup_tokens.c.expires_at > now()))
            existing = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar()
            if deleted.rowcount != 1 or existing:
                return None
            result = await conn.execute(users.insert().values(
                email=email.strip().lower(), password_hash=password_hash, created_at=now()))
            assert result.inserted_primary_key is not None
            return User(int(result.inserted_primary_key[0]), email.strip().lower(), password_hash)

    # -- projects ----------------------------------------------------------------------

    @staticmethod
    def _project(row: sa.Row[Any]) -> Project:
        created, updated = _utc(row.created_at), _utc(row.updated_at)
        assert created is not None and updated is not None
        return Project(row.id, row.name, row.description or "", json.loads(row.settings or "{}"),
                       created, updated)

    async def projects(self) -> list[Project]:
        rows = await self._rows(sa.select(projects).order_by(sa.func.lower(projects.c.name)))
        return [self._project(r) for r in rows]

    async def project(self, project_id: int) -> Project | None:
        row = await self._one(sa.select(projects).where(projects.c.id == project_id))
        return self._project(row) if row else None

    async def project_named(self, name: str, other_than: int | None = None) -> Project | None:
        """A project whose name equals ``name`` ignoring case (names must differ by more)."""
        query = sa.select(projects).where(sa.func.lower(projects.c.name) == name.lower())
        if other_than is not None:
            query = query.where(projects.c.id != other_than)
        row = await self._one(query)
        return self._project(row) if row else None

    async def create_project(self, name: str, description: str,
                             settings: dict[str, Any] | None = None) -> Project:
        stamp = now()
        result = await self._write(projects.insert().values(
            name=name, description=description, settings=json.dumps(settings or {}),
            created_at=stamp, updated_at=stamp))
        assert result.inserted_primary_key is not None
        found = await self.project(int(result.inserted_primary_key[0]))
        assert found is not None
        return found

    async def update_project(self, project_id: int, **values: Any) -> None:
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"])
        await self._write(projects.update().where(projects.c.id == project_id)
                          .values(updated_at=now(), **values))

    async def delete_project(self, project_id: int) -> None:
        await self._write(projects.delete().where(projects.c.id == project_id))

    async def secrets(self, project_id: int) -> dict[str, str]:
        rows = await self._rows(sa.select(project_secrets.c.name, project_secrets.c.sealed)
                                .where(project_secrets.c.project_id == project_id))
        return {r.name: r.sealed for r in rows}

    async def set_secret(self, project_id: int, name: str, sealed: str | None) -> None:
        """Store (or with ``None`` remove) one sealed secret of a project."""
        async with self.engine.begin() as conn:
            await conn.execute(project_secrets.delete().where(
                project_secrets.c.project_id == project_id, project_secrets.c.name == name))
            if sealed is not None:
                await conn.execute(project_secrets.insert().values(
                    project_id=project_id, name=name, sealed=sealed))

    # -- connections -------------------------------------------------------------------

    @staticmethod
    def _connection(row: sa.Row[Any]) -> ConnectionRow:
        return ConnectionRow(row.id, row.project_id, row.stage, row.dialect, row.host, row.port,
                             row.database, row.username, row.password_sealed,
                             json.loads(row.options or "{}"))

    async def connections(self, project_id: int) -> list[ConnectionRow]:
        rows = await self._rows(sa.select(connections)
                                .where(connections.c.project_id == project_id)
                                .order_by(connections.c.id))
        return [self._connection(r) for r in rows]

    async def connection(self, connection_id: int) -> ConnectionRow | None:
        row = await self._one(sa.select(connections).where(connections.c.id == connection_id))
        return self._connection(row) if row else None

    async def save_connection(self, project_id: int, connection_id: int | None,
                              values: dict[str, Any], keep_password: bool) -> int:
        """Insert or update; ``keep_password`` leaves the sealed password as it is."""
        values = dict(values)
        values["options"] = json.dumps(values.get("options") or {})
        if keep_password:
            values.pop("password_sealed", None)
        stamp = now()
        async with self.engine.begin() as conn:
            if connection_id is None:
                result = await conn.execute(connections.insert().values(
                    project_id=project_id, created_at=stamp, updated_at=stamp, **values))
                assert result.inserted_primary_key is not None
                return int(result.inserted_primary_key[0])
            await conn.execute(connections.update().where(
                connections.c.id == connection_id, connections.c.project_id == project_id)
                .values(updated_at=stamp, **values))
            return connection_id

    async def delete_connection(self, connection_id: int) -> None:
        await self._write(connections.delete().where(connections.c.id == connection_id))

    # -- snapshots ------------------------------------------------------------------------

    async def add_snapshot(self, connection_id: int, schema: dict[str, Any]) -> Snapshot:
        stamp = now()
        result = await self._write(snapshots.insert().values(
            connection_id=connection_id, taken_at=stamp, schema=json.dumps(schema, default=str)))
        assert result.inserted_primary_key is not None
        return Snapshot(int(result.inserted_primary_key[0]), connection_id, stamp, schema)

    async def snapshots(self, connection_id: int, limit: int = 2) -> list[Snapshot]:
        """The newest ``limit`` snapshots of a connection, newest first."""
        rows = await self._rows(sa.select(snapshots).where(
            snapshots.c.connection_id == connection_id)
            .order_by(snapshots.c.id.desc()).limit(limit))
        out = []
        for r in rows:
            taken = _utc(r.taken_at)
            assert taken is not None
            out.append(Snapshot(r.id, r.connection_id, taken, json.loads(r.schema)))
        return out

    # -- deployments ------------------------------------------------------------------------

    @staticmethod
    def _deployment(row: sa.Row[Any]) -> Deployment:
        return Deployment(row.id, row.connection_id, row.host, row.port, row.desired, row.pid,
                          row.generation, row.env_sealed, _utc(row.started_at), row.last_error)

    async def deployment(self, connection_id: int) -> Deployment | None:
        row = await self._one(sa.select(deployments)
                              .where(deployments.c.connection_id == connection_id))
        return self._deployment(row) if row else None

    async def deployments(self) -> list[Deployment]:
        rows = await self._rows(sa.select(deployments).order_by(deployments.c.id))
        return [self._deployment(r) for r in rows]

    async def port_taken(self, port: int, other_than: int) -> bool:
        row = await self._one(sa.select(deployments.c.id).where(
            deployments.c.port == port, deployments.c.connection_id != other_than,
            deployments.c.desired == "running"))
        return row is not None

    async def save_deployment(self, connection_id: int, **values: Any) -> Deployment:
        async with self.engine.begin() as conn:
            updated = await conn.execute(deployments.update().where(
                deployments.c.connection_id == connection_id).values(updated_at=now(), **values))
            if updated.rowcount == 0:
                await conn.execute(deployments.insert().values(
                    connection_id=connection_id, updated_at=now(),
                    **{"generation": 0, **values}))
        found = await self.deployment(connection_id)
        assert found is not None
        return found


