"""Several hubs on one store (PostgreSQL): frames relayed to the leading hub, and its answers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
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
        "hub_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("hub", sa.String(length=40), nullable=False),
        sa.Column("device", sa.String(length=40), nullable=False),
        sa.Column("frame", sa.String(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_commands_pending", "hub_commands", ["store_id", "done", "id"])
    op.create_table(
        "hub_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("hub", sa.String(length=40), nullable=False),
        sa.Column("command_id", sa.Integer(), nullable=False),
        sa.Column("frame", sa.String(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_replies_hub", "hub_replies", ["store_id", "hub", "id"])


def downgrade() -> None:
    op.drop_index("ix_hub_replies_hub", table_name="hub_replies")
    op.drop_table("hub_replies")
    op.drop_index("ix_hub_commands_pending", table_name="hub_commands")
    op.drop_table("hub_commands")
