"""Fresh PostgreSQL databases for tests, cloned from a migrated template (fast), dropped afterwards.

The server comes from KDS_TEST_POSTGRES_URL (`.ci/run` starts PostgreSQL and sets it); without it the PostgreSQL
half of the suite is skipped with a message saying how to run it, except where KDS_REQUIRE_POSTGRES=1 (`.ci/run` sets
it): there a missing or unreachable server fails the run, so that CI never passes with half the suite skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
import sqlalchemy as sa

from kds.store import Store, database_url

ENV = "KDS_TEST_POSTGRES_URL"
REQUIRE = "KDS_REQUIRE_POSTGRES"
SKIP_REASON = (
    f"PostgreSQL tests need a server: set {ENV}=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres "
    "(a role that may create databases), or run `bash .ci/run`, which starts one and sets it"
)
_template: str | None = None


def admin_url() -> str | None:
    """The server's URL from the environment, if any."""
    return os.environ.get(ENV) or None


def required() -> bool:
    """Whether the PostgreSQL half of the suite must run (CI): then no server is a failure, not a skip."""
    return os.environ.get(REQUIRE, "") not in ("", "0")


def need() -> None:
    """Skip the calling test when there is no server, or fail it where PostgreSQL is required."""
    if admin_url() is None:
        if required():
            pytest.fail(f"{REQUIRE}=1 but no PostgreSQL: {SKIP_REASON}", pytrace=False)
        pytest.skip(SKIP_REASON)


def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can (the server answers)."""
    url = admin_url()
    if url is None:
        return SKIP_REASON
    try:
        engine = _admin_engine()
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        return f"PostgreSQL at {sa.make_url(database_url(url)).render_as_string()} does not answer: {exc}"
    return None


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
