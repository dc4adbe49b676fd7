"""Analysis jobs (a leased queue) and analysis facts per file content.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("file_id", sa.String(100), nullable=False, unique=True),
        sa.Column("reason", sa.String(50), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_analysis_jobs_state", "analysis_jobs", ["state", "id"])
    op.create_table(
        "analysis_facts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("schema", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(500), nullable=False),
        sa.Column("analyzed_at", sa.Float(), nullable=False),
        sa.Column("broken", sa.Boolean(), nullable=False),
        sa.Column("mis_tagged", sa.Boolean(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("analysis_facts")
    op.drop_index("ix_analysis_jobs_state", table_name="analysis_jobs")
    op.drop_table("analysis_jobs")
