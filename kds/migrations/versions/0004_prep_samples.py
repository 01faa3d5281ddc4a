"""Prep samples (tickets done: how long their slowest item took), stored with their events: kitchen timing (issue 14).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prep_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("station", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("cook", sa.String(length=40), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_prep_samples_store", "prep_samples", ["store_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_prep_samples_store", table_name="prep_samples")
    op.drop_table("prep_samples")
