"""Upstream pages, files and guard events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_pages",
        sa.Column("index_name", sa.String(200), primary_key=True),
        sa.Column("project", sa.String(300), primary_key=True),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(500), nullable=True),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("file_id", sa.String(100), primary_key=True),
        sa.Column("index_name", sa.String(200), nullable=False),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("filename", sa.String(500), nullable=False),
        sa.Column("upstream_url", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("upstream_metadata", sa.Text(), nullable=True),
        sa.Column("metadata_sha256", sa.String(64), nullable=True),
        sa.Column("stored", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_files_project", "files", ["project"])
    op.create_table(
        "guard_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("project", sa.String(300), nullable=False),
        sa.Column("filename", sa.String(500), nullable=False),
        sa.Column("index_name", sa.String(200), nullable=False),
        sa.Column("kept_index", sa.String(200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.UniqueConstraint("kind", "project", "filename", "index_name", name="uq_guard_event"),
    )
    op.create_index("ix_guard_events_at", "guard_events", ["at"])


def downgrade() -> None:
    op.drop_table("guard_events")
    op.drop_index("ix_files_project", table_name="files")
    op.drop_table("files")
    op.drop_table("upstream_pages")
