"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kds.store import database_url

_PORTS_PER_WORKER = 2000
_next_port = itertools.count()


def free_port() -> int:
    """A TCP port free on loopback right now, for a server a test must start (and maybe restart) on a known port.

    Taken from a range of its own per pytest-xdist worker (20000 + 2000 × worker), below the kernel's ephemeral range
    (32768-60999, where port-0 servers land) and in turn within it: two workers never pick the same port, and a port
    is not reused after a test let it go (with port 0 the kernel could hand one worker the port another worker's hub
    was about to bind, and that test's clients would talk to the other hub)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 20000 + _PORTS_PER_WORKER * (int(worker) if worker.isdigit() else 0)
    for _ in range(_PORTS_PER_WORKER):  # bounded: every port of the worker's range once
        port = base + next(_next_port) % _PORTS_PER_WORKER
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {base}-{base + _PORTS_PER_WORKER - 1}")


async def until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait until `predicate()` holds, yielding to the event loop; fail after `timeout` seconds (bounded). The
    default is generous: `make test` runs two workers on two cores, beside hubs, printer emulators and the niced
    ticket renderer, and a wait that returns as soon as the condition holds costs nothing when all is well."""
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
