"""Alembic migrations of the hub's database (SQLite and PostgreSQL). Run by `kds db upgrade` and `kds serve`."""
