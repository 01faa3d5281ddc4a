"""Print jobs, stored with the events that caused them: the spooler of issue 5.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
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
        "print_jobs",
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("printer", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=40), nullable=False),
        sa.Column("layout", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("station", sa.String(length=40), nullable=True),
        sa.Column("banner", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reprint", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.Column("printed_at", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("order_doc", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "id"),
    )
    op.create_index("ix_print_jobs_pending", "print_jobs", ["store_id", "state", "id"])
    op.create_index("ix_print_jobs_order_id", "print_jobs", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_print_jobs_order_id", table_name="print_jobs")
    op.drop_index("ix_print_jobs_pending", table_name="print_jobs")
    op.drop_table("print_jobs")
