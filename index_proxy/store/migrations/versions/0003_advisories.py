"""Security advisories (OSV records) per package.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "advisories",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("package", sa.String(300), primary_key=True),
        sa.Column("modified", sa.Float(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("imported_at", sa.Float(), nullable=False),
        sa.Column("advisory", sa.Text(), nullable=False),
    )
    op.create_index("ix_advisories_package", "advisories", ["package"])


def downgrade() -> None:
    op.drop_index("ix_advisories_package", table_name="advisories")
    op.drop_table("advisories")
