"""The console's first tables: users, sessions, setup token, projects and their
secrets, connections, schema snapshots, deployments.

Revision ID: c0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("console_users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "console_setup_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_table(
        "console_projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "console_project_secrets",
        sa.Column("project_id", sa.Integer,
                  sa.ForeignKey("console_projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("sealed", sa.Text, nullable=False),
    )
    op.create_table(
        "console_connections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer,
                  sa.ForeignKey("console_projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("dialect", sa.String(40), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("port", sa.Integer),
        sa.Column("database", sa.Text),
        sa.Column("username", sa.String(255)),
        sa.Column("password_sealed", sa.Text),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("project_id", "stage", name="uq_console_connections_stage"),
    )
    op.create_table(
        "console_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("connection_id", sa.Integer,
                  sa.ForeignKey("console_connections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("taken_at", TZ, nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
    )
    op.create_index("ix_console_snapshots_connection", "console_snapshots", ["connection_id"])
    op.create_table(
        "console_deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("connection_id", sa.Integer,
                  sa.ForeignKey("console_connections.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("desired", sa.String(10), nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("env_sealed", sa.Text),
        sa.Column("started_at", TZ),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("console_deployments", "console_snapshots", "console_connections",
                  "console_project_secrets", "console_projects", "console_setup_tokens",
                  "console_sessions", "console_users"):
        op.drop_table(table)
