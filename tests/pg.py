"""Fresh PostgreSQL databases for tests, cloned from a migrated template (fast), dropped afterwards.

The server comes from KDS_TEST_POSTGRES_URL (`.ci/run` starts PostgreSQL and sets it); without it the PostgreSQL
half of the suite is skipped with a message saying how to run it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa

from kds.store import Store, database_url

ENV = "KDS_TEST_POSTGRES_URL"
SKIP_REASON = (
    f"PostgreSQL tests need a server: set {ENV}=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres "
    "(a role that may create databases), or run `bash .ci/run`, which starts one and sets it"
)
_template: str | None = None


def admin_url() -> str | None:
    """The server's URL from the environment, if any."""
    return os.environ.get(ENV) or None


def _with_database(url: str, name: str) -> str:
    return sa.make_url(database_url(url)).set(database=name).render_as_string(hide_password=False)


def _admin_engine() -> sa.Engine:
    url = admin_url()
    assert url is not None
    return sa.create_engine(database_url(url), isolation_level="AUTOCOMMIT")


def _ensure_template() -> str:
    global _template
    if _template is None:
        name = f"kds_template_{os.getpid()}"
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        store = Store(_with_database(admin_url() or "", name), store_id="template")
        store.upgrade()
        store.close()
        _template = name
    return _template


@contextmanager
def _database(prefix: str, template: str | None) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield _with_database(admin_url() or "", name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fresh_database() -> AbstractContextManager[str]:
    """A new, migrated, empty database; yields its URL and drops it at the end."""
    return _database("kds_t", _ensure_template())


def empty_database() -> AbstractContextManager[str]:
    """A new database with no tables at all (for migration tests); yields its URL and drops it at the end."""
    return _database("kds_e", None)


def drop_template() -> None:
    """At the end of the session."""
    global _template
    if _template is not None and admin_url():
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{_template}" WITH (FORCE)'))
        admin.dispose()
        _template = None
