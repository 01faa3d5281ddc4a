"""Alembic environment: always run from kds.store with a connection in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import kds.store  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `kds db upgrade` (kds.store.Store.upgrade), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
