"""``swain tenancy plan`` / ``apply``: add the tenant column to scoped tables.

For every scoped table that lacks its tenant column, the plan adds the column
(the type of the tenant table's key), fills existing rows with an explicit
backfill value, makes it NOT NULL, adds the foreign key to the tenant table
and an index.  The plan's hash covers everything it depends on (dialect,
tables, their columns, the tenant key); ``apply`` refuses to run when the hash
it is given no longer matches, so what runs is what was shown.

Every database ends either fully migrated or exactly as it started:

* PostgreSQL runs the whole plan in one transaction.
* SQLite rebuilds each table (foreign keys off, copy, swap, indexes and
  triggers recreated) in one transaction and runs ``PRAGMA foreign_key_check``
  before committing.
* MySQL/MariaDB commit every DDL statement on their own, so there is no
  transaction to roll back.  Each table changes in one atomic
  ``ALTER TABLE`` (column ``NOT NULL DEFAULT <backfill>``, foreign key and
  index together; atomic DDL since MariaDB 10.6 and MySQL 8), followed by
  ``ALTER COLUMN … DROP DEFAULT``.  When a table fails, the tables already
  changed are changed back, last first (foreign key, index and column
  dropped), and the error says so.  DDL takes no parameters there: the
  backfill value is written as a literal rendered by SQLAlchemy for the
  connection's dialect, never pasted from the input.

The backfill value is checked against the tenant table before anything runs.
Failures come back as :class:`ConfigError` naming the table and the
database's reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from swain.core import ConfigError, Dialect, Schema, Table


@dataclass(frozen=True)
class Step:
    """One table to migrate."""

    table: Table
    column: str
    sql_type: str


@dataclass(frozen=True)
class Plan:
    dialect: str
    tenant: Table
    tenant_key: str
    steps: tuple[Step, ...]

    @property
    def digest(self) -> str:
        """What the plan depends on, hashed: any change to it changes the hash."""
        state = {"dialect": self.dialect, "tenant": [self.tenant.key, self.tenant_key],
                 "steps": [[s.table.key, s.column, s.sql_type,
                            [[c.name, c.sql_type, c.nullable] for c in s.table.columns]]
                           for s in self.steps]}
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def make_plan(scope: Any, schema: Schema, dialect_name: str) -> Plan:
    """The migration for the scoped tables of ``schema`` that lack their column."""
    if scope.tenant_table is None:
        raise ConfigError("[rls] tenant_table is needed to plan the tenant column")
    tenant = schema.table(scope.tenant_table) or next(
        (t for t in schema.tables.values() if t.name == scope.tenant_table), None)
    if tenant is None or len(tenant.primary_key) != 1:
        raise ConfigError(f"[rls] tenant_table {scope.tenant_table!r} must exist and have a "
                          "single-column primary key")
    key = tenant.column(tenant.primary_key[0])
    assert key is not None
    steps = []
    for table in sorted(scope.lacking(schema), key=lambda t: t.key):
        if scope.is_tenant_table(table) or table.kind != "table":
            continue
        steps.append(Step(table, scope.column_name(table), _column_type(key.sql_type)))
    return Plan(dialect_name, tenant, tenant.primary_key[0], tuple(steps))


def _column_type(sql_type: str) -> str:
    """The key's type as a plain column type (no identity/serial semantics)."""
    text = sql_type.strip()
    lowered = text.lower()
    if lowered in ("serial", "serial4"):
        return "INTEGER"
    if lowered in ("bigserial", "serial8"):
        return "BIGINT"
    return re.sub(r"\s+(unsigned\s+)?auto_increment", "", text, flags=re.I)


def _quoter(dialect_name: str) -> Any:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    factories: dict[str, Any] = {"postgresql": postgresql.dialect, "mysql": mysql.dialect,
                                 "mariadb": mysql.dialect, "sqlite": sqlite.dialect}
    sa_dialect = factories[dialect_name]()
    return sa_dialect.identifier_preparer


def _name(q: Any, table: Table) -> str:
    return (f"{q.quote(table.schema)}." if table.schema else "") + str(q.quote(table.name))


def _short(kind: str, table: Table, column: str) -> str:
    return f"{kind}_{table.name}_{column}"[:60]


def statements(plan: Plan, backfill: str = ":backfill") -> list[tuple[str, str]]:
    """``(table key, SQL)`` in order.

    ``:backfill`` is the bound backfill value on PostgreSQL and SQLite; on
    MySQL, whose DDL takes no parameters, ``backfill`` is the rendered literal
    (``:backfill`` in the printed plan).
    """
    q = _quoter(plan.dialect)
    tenant = _name(q, plan.tenant)
    out: list[tuple[str, str]] = []
    for step in plan.steps:
        t, c = _name(q, step.table), q.quote(step.column)
        ref = f"{tenant} ({q.quote(plan.tenant_key)})"
        fk = q.quote(_short("fk", step.table, step.column))
        ix = q.quote(_short("ix", step.table, step.column))
        if plan.dialect == "sqlite":
            out += [
                (step.table.key, f"ALTER TABLE {t} ADD COLUMN {c} {step.sql_type} REFERENCES "
                                 f"{ref}"),
                (step.table.key, f"UPDATE {t} SET {c} = :backfill"),
                (step.table.key, f"-- rebuild {t} with {c} NOT NULL (copy, drop, rename; "
                                 "indexes and triggers recreated)"),
                (step.table.key, f"CREATE INDEX {ix} ON {t} ({c})"),
            ]
        elif _is_mysql(plan.dialect):
            out += [
                (step.table.key, f"ALTER TABLE {t} ADD COLUMN {c} {step.sql_type} NOT NULL "
                                 f"DEFAULT {backfill}, ADD CONSTRAINT {fk} FOREIGN KEY ({c}) "
                                 f"REFERENCES {ref}, ADD INDEX {ix} ({c})"),
                (step.table.key, f"ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT"),
            ]
        else:
            out += [
                (step.table.key, f"ALTER TABLE {t} ADD COLUMN {c} {step.sql_type} NULL"),
                (step.table.key, f"UPDATE {t} SET {c} = :backfill"),
                (step.table.key, f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"),
                (step.table.key, f"ALTER TABLE {t} ADD CONSTRAINT {fk} "
                                 f"FOREIGN KEY ({c}) REFERENCES {ref}"),
                (step.table.key, f"CREATE INDEX {ix} ON {t} ({c})"),
            ]
    return out


def undo_statement(plan: Plan, step: Step) -> str:
    """MySQL: the one statement that takes a changed table back to how it was."""
    q = _quoter(plan.dialect)
    return (f"ALTER TABLE {_name(q, step.table)} "
            f"DROP FOREIGN KEY {q.quote(_short('fk', step.table, step.column))}, "
            f"DROP INDEX {q.quote(_short('ix', step.table, step.column))}, "
            f"DROP COLUMN {q.quote(step.column)}")


def _is_mysql(dialect_name: str) -> bool:
    return dialect_name in ("mysql", "mariadb")


def render(plan: Plan) -> str:
    """The plan as the operator reads it."""
    if not plan.steps:
        return "-- every scoped table has its tenant column; nothing to do\n"
    lines = [f"-- swain tenancy plan ({plan.dialect}); plan hash {plan.digest}",
             "-- :backfill is the tenant every existing row is given (apply --backfill)"]
    if _is_mysql(plan.dialect):
        lines += ["-- MySQL commits each DDL statement on its own: each table changes in one",
                  "-- atomic ALTER TABLE (MariaDB >= 10.6, MySQL 8), :backfill written as a literal.",
                  "-- If a table fails, the tables already changed are changed back, last first,",
                  "-- by their 'undo' statement: the database ends as it started."]
    elif plan.dialect == "sqlite":
        lines.append("-- runs in one transaction with foreign keys off, then "
                     "PRAGMA foreign_key_check")
    else:
        lines.append("-- runs in one transaction")
    steps = {step.table.key: step for step in plan.steps}
    current = None
    for key, sql in statements(plan):
        if key != current:
            if current is not None and _is_mysql(plan.dialect):
                lines.append(f"-- undo: {undo_statement(plan, steps[current])};")
            lines.append(f"\n-- {key}")
            current = key
        lines.append(sql if sql.startswith("--") else sql + ";")
    if current is not None and _is_mysql(plan.dialect):
        lines.append(f"-- undo: {undo_statement(plan, steps[current])};")
    return "\n".join(lines) + "\n"


async def apply(plan: Plan, dialect: Dialect, backfill: Any) -> int:
    """Run the plan, all or nothing; return the number of tables changed.

    Raises :class:`ConfigError` (naming the table and the database's reason)
    when the plan cannot run; the database is then as it was.
    """
    if not plan.steps:
        return 0
    if plan.dialect == "sqlite":
        _apply_sqlite(plan, dialect.url.database or "", backfill)
        return len(plan.steps)
    engine = create_async_engine(dialect.url, poolclass=sa.NullPool)
    try:
        if _is_mysql(plan.dialect):
            await _apply_mysql(plan, engine, backfill)
            return len(plan.steps)
        current = None
        try:
            async with engine.begin() as conn:
                await _check_backfill(conn, plan, backfill)
                for key, sql in statements(plan):
                    current = key
                    params = {"backfill": backfill} if ":backfill" in sql else {}
                    await conn.execute(sa.text(sql), params)
        except sa.exc.DBAPIError as exc:
            raise ConfigError(f"tenancy apply failed{_on(current)}: {_reason(exc)}; nothing "
                              "was changed (the plan ran in one transaction)") from exc
    finally:
        await engine.dispose()
    return len(plan.steps)


def _on(table_key: str | None) -> str:
    return f" on {table_key!r}" if table_key else ""


def _reason(exc: BaseException) -> str:
    """The database's own message, without the driver's wrapping."""
    orig = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):  # MySQL drivers: (code, message)
        return f"({args[0]}) {args[1]}"
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def literal(sa_dialect: sa.Dialect, value: Any) -> str:
    """``value`` as a SQL literal, rendered (quoted, escaped) by SQLAlchemy for
    ``sa_dialect``: an int stays a number, anything else becomes a string."""
    type_: sa.types.TypeEngine[Any] = sa.Integer() if isinstance(value, int) and \
        not isinstance(value, bool) else sa.String()
    return str(sa.literal(value, type_).compile(dialect=sa_dialect,
                                                compile_kwargs={"literal_binds": True}))


async def _apply_mysql(plan: Plan, engine: Any, backfill: Any) -> None:
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            await _check_backfill(conn, plan, backfill)
        except sa.exc.DBAPIError as exc:
            raise ConfigError(f"tenancy apply failed: {_reason(exc)}; nothing was changed"
                              ) from exc
        # The connection's own dialect knows the server's quoting rules (sql_mode).
        # Like the quoted names, the literal has any % doubled for the driver, which
        # exec_driver_sql always formats: what reaches the server is the printed plan.
        value = literal(conn.dialect, backfill)
        sql_by_table: dict[str, list[str]] = {}
        for key, sql in statements(plan, value):
            sql_by_table.setdefault(key, []).append(sql)
        changed: list[Step] = []
        for step in plan.steps:
            try:
                for sql in sql_by_table[step.table.key]:
                    await conn.exec_driver_sql(sql)
                    if not changed or changed[-1] is not step:
                        changed.append(step)
            except sa.exc.DBAPIError as exc:
                reason = _reason(exc)
                raise ConfigError(f"tenancy apply failed on {step.table.key!r}: {reason}; "
                                  + await _undo(conn, plan, changed)) from exc


async def _undo(conn: Any, plan: Plan, changed: list[Step]) -> str:
    """Change back every changed table, last first; say what happened."""
    if not changed:
        return "nothing was changed"
    stuck = []
    for step in reversed(changed):
        sql = undo_statement(plan, step)
        try:
            await conn.exec_driver_sql(sql)
        except sa.exc.DBAPIError as exc:
            stuck.append(f"{step.table.key!r} ({_reason(exc)}; run: {sql})")
    names = ", ".join(repr(step.table.key) for step in changed)
    if stuck:
        return (f"changing back the tables already changed ({names}) failed for "
                + "; ".join(stuck))
    return f"the tables already changed ({names}) were changed back: every table is as it was"


async def _check_backfill(conn: Any, plan: Plan, backfill: Any) -> None:
    q = _quoter(plan.dialect)
    found = await conn.execute(sa.text(
        f"SELECT count(*) FROM {_name(q, plan.tenant)} WHERE {q.quote(plan.tenant_key)} = :v"),
        {"v": backfill})
    if not found.scalar():
        raise ConfigError(f"backfill value {backfill!r} is no row of {plan.tenant.key!r}")


_HEADER = re.compile(r'^\s*CREATE\s+TABLE\s+("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[^\s(]+)',
                     re.IGNORECASE)


def _apply_sqlite(plan: Plan, path: str, backfill: Any) -> None:
    q = _quoter("sqlite")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            tenant = _name(q, plan.tenant)
            if not conn.execute(f"SELECT count(*) FROM {tenant} WHERE "
                                f"{q.quote(plan.tenant_key)} = ?", (backfill,)).fetchone()[0]:
                raise ConfigError(f"backfill value {backfill!r} is no row of "
                                  f"{plan.tenant.key!r}")
            for step in plan.steps:
                try:
                    _rebuild(conn, q, plan, step, backfill)
                except sqlite3.Error as exc:
                    raise ConfigError(f"tenancy apply failed on {step.table.key!r}: {exc}; "
                                      "nothing was changed (the plan ran in one transaction)"
                                      ) from exc
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise ConfigError(f"foreign key check failed after the rebuild: {problems[:5]}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.close()


def _rebuild(conn: sqlite3.Connection, q: Any, plan: Plan, step: Step, backfill: Any) -> None:
    name = step.table.name
    t, c = q.quote(name), q.quote(step.column)
    ref = f"{q.quote(plan.tenant.name)} ({q.quote(plan.tenant_key)})"
    before = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    added = f"{c} {step.sql_type} REFERENCES {ref}"
    # SQLite places the new column among the column definitions itself.
    conn.execute(f"ALTER TABLE {t} ADD COLUMN {added}")
    conn.execute(f"UPDATE {t} SET {c} = ?", (backfill,))
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                       (name,)).fetchone()[0]
    extras = [row[0] for row in conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, name", (name,))]
    if sql.count(added) != 1:
        raise ConfigError(f"cannot find the added column in {name!r}'s definition")
    temp = f"_swain_rebuild_{name}"[:60]
    new_sql = _HEADER.sub(f"CREATE TABLE {q.quote(temp)}",
                          sql.replace(added, f"{c} {step.sql_type} NOT NULL REFERENCES {ref}"),
                          count=1)
    columns = ", ".join(q.quote(row[1]) for row in conn.execute(f"PRAGMA table_info({t})"))
    conn.execute(new_sql)
    conn.execute(f"INSERT INTO {q.quote(temp)} ({columns}) SELECT {columns} FROM {t}")
    conn.execute(f"DROP TABLE {t}")
    # legacy renaming leaves views and other tables' references alone
    conn.execute("PRAGMA legacy_alter_table=ON")
    conn.execute(f"ALTER TABLE {q.quote(temp)} RENAME TO {t}")
    conn.execute("PRAGMA legacy_alter_table=OFF")
    for extra in extras:
        conn.execute(extra)
    conn.execute(f"CREATE INDEX {q.quote(_short('ix', step.table, step.column))} ON {t} ({c})")
    after = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    if after != before:
        raise ConfigError(f"{name!r}: {before} rows before the rebuild, {after} after")


POLICY = "swain_tenant"


def policy_statements(scope: Any, schema: Schema) -> list[str]:
    """PostgreSQL row-level security for every scoped table that has its column.

    A row is visible (and writable) when its tenant column, as text, equals
    ``current_setting('swain.tenant', true)``, or when that setting is ``*``
    (the API's own work outside a signed-in request, e.g. login).  Without the
    setting nothing is visible, so a connection that never set it sees no row.
    ``FORCE`` makes the policies apply to the tables' owner as well; superusers
    and roles with BYPASSRLS still bypass them.
    """
    q = _quoter("postgresql")
    out = []
    for table in sorted(schema.tables.values(), key=lambda t: t.key):
        name = scope.column_name(table)
        if not name or table.column(name) is None or table.kind != "table":
            continue
        t, c = _name(q, table), q.quote(name)
        rule = (f"(current_setting('swain.tenant', true) = '*' OR "
                f"{c}::text = current_setting('swain.tenant', true))")
        out += [f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
                f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
                f"DROP POLICY IF EXISTS {POLICY} ON {t}",
                f"CREATE POLICY {POLICY} ON {t} USING {rule} WITH CHECK {rule}"]
    return out


async def apply_policies(dialect: Dialect, sql: list[str]) -> None:
    """Install the policies in one transaction."""
    engine = create_async_engine(dialect.url, poolclass=sa.NullPool)
    try:
        async with engine.begin() as conn:
            for statement in sql:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()
