"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kds.store import database_url


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait until `predicate()` holds, yielding to the event loop; fail after `timeout` seconds (bounded)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"{what} not met within {timeout}s"
        await asyncio.sleep(0.005)


def db_rows(db: str | Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a query (`?` placeholders) on a test's database: a SQLite file or a PostgreSQL URL."""
    parts = sql.split("?")
    text = parts[0] + "".join(f":p{k}{rest}" for k, rest in enumerate(parts[1:]))
    engine = sa.create_engine(database_url(db))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(text), {f"p{k}": a for k, a in enumerate(args)})]
    finally:
        engine.dispose()
