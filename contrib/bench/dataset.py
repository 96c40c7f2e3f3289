"""Fresh PostgreSQL databases with generated data sets.

:func:`create_reference` loads ``schema.sql`` (beside this module): the data set
the side-by-side benchmark serves with swain, the raw handler and Platformatic
DB (``users``, 10,000 rows; ``orders``, 100,000 rows with indexes on
``user_id`` and ``status``).  :func:`create` makes the data set of the capacity
figures (:mod:`.scale`):
``customers`` (one per ten orders) and ``orders`` (``rows`` of them, with an
indexed ``status`` and ``customer_id``, a numeric total, a timestamp with time
zone and a sometimes-null note).  Values come from ``generate_series`` with
fixed formulas, so every run has the same data and loading 100k rows takes a
second or two.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa

#: every status appears on a fifth of the orders
STATUSES: tuple[str, ...] = ("pending", "paid", "shipped", "delivered", "cancelled")

_SCHEMA = """
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    country char(2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL,
    total numeric(12, 2) NOT NULL,
    items integer NOT NULL,
    created_at timestamptz NOT NULL,
    note text
);
"""

_LOAD = (
    """INSERT INTO customers (name, email, country, created_at)
       SELECT 'Customer ' || g, 'customer' || g || '@example.com',
              (ARRAY['DE', 'FR', 'US', 'GB', 'JP'])[1 + g %% 5],
              timestamptz '2023-01-01 00:00:00+00' + g * interval '17 minutes'
       FROM generate_series(1, %(customers)s) AS g""",
    """INSERT INTO orders (customer_id, status, total, items, created_at, note)
       SELECT 1 + (g * 7919) %% %(customers)s,
              (ARRAY['pending', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + g %% 5],
              ((g * 3163) %% 100000) / 100.0,
              1 + g %% 9,
              timestamptz '2024-01-01 00:00:00+00' + g * interval '5 minutes',
              CASE WHEN g %% 4 = 0 THEN 'gift wrap, deliver after 6pm' END
       FROM generate_series(1, %(rows)s) AS g""",
    "CREATE INDEX orders_status_idx ON orders (status)",
    "CREATE INDEX orders_customer_idx ON orders (customer_id)",
)


@dataclass
class BenchDatabase:
    """A database made for one run; :meth:`drop` removes it."""

    server_url: str
    name: str
    rows: int

    @property
    def url(self) -> str:
        """The database's URL, as written in ``swain.toml``."""
        return sa.make_url(self.server_url).set(drivername="postgresql", database=self.name) \
            .render_as_string(hide_password=False)

    @property
    def dsn(self) -> str:
        """A libpq connection string for psycopg."""
        return _dsn(self.server_url, self.name)

    def drop(self) -> None:
        with psycopg.connect(_dsn(self.server_url, None), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def server_dsn(server_url: str) -> str:
    """A libpq connection string to the server's own database (not a bench one)."""
    return _dsn(server_url, None)


def _dsn(server_url: str, database: str | None) -> str:
    url = sa.make_url(server_url)
    return psycopg.conninfo.make_conninfo(
        host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
        password=url.password or "", dbname=database or url.database or "postgres")


#: the reference data set, as the peers' measurements used it
REFERENCE_SCHEMA = Path(__file__).with_name("schema.sql")
#: rows of the reference data set's ``orders`` (ids 1 to this)
REFERENCE_ORDERS = 100_000
REFERENCE_USERS = 10_000


def _new(server_url: str, rows: int) -> BenchDatabase:
    database = BenchDatabase(server_url, f"swain_bench_{uuid.uuid4().hex[:10]}", rows)
    with psycopg.connect(_dsn(server_url, None), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database.name}"')
    return database


def create_reference(server_url: str) -> BenchDatabase:
    """A ``swain_bench_<random>`` database holding :data:`REFERENCE_SCHEMA`."""
    database = _new(server_url, REFERENCE_ORDERS)
    try:
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            # one statement at a time: VACUUM may not run inside a transaction
            for statement in REFERENCE_SCHEMA.read_text(encoding="utf-8").split(";"):
                if statement.strip():
                    conn.execute(statement)
    except BaseException:
        database.drop()
        raise
    return database


def create(server_url: str, rows: int) -> BenchDatabase:
    """Create a database named ``swain_bench_<random>`` on the server and fill it."""
    if rows < 1:
        raise ValueError("rows: at least 1")
    database = _new(server_url, rows)
    try:
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            conn.execute(_SCHEMA)
            params = {"rows": rows, "customers": max(1, rows // 10)}
            with conn.transaction():
                for statement in _LOAD:
                    conn.execute(statement, params if "%(" in statement else None)
            # VACUUM sets the visibility map so counts can use index-only scans,
            # as they would on a settled production table.
            conn.execute("VACUUM ANALYZE")
    except BaseException:
        database.drop()
        raise
    return database
