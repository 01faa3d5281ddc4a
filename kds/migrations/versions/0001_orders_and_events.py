"""Orders (latest state as JSON) and the event log: the hub of issue 2.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
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
        "orders",
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.Column("doc", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "id"),
        sa.UniqueConstraint("store_id", "source", "key", name="uq_orders_source_key"),
    )
    op.create_index("ix_orders_open", "orders", ["store_id", "status", "updated_at"])
    op.create_table(
        "events",
        sa.Column("store_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "seq"),
    )
    op.create_index("ix_events_order_id", "events", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_events_order_id", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_orders_open", table_name="orders")
    op.drop_table("orders")
