"""SQLite commits go straight to the driver, and the write-ahead log is copied into the database file on a thread
of the hub's own (issue 11: the commit that filled the log used to do it, some milliseconds that every order behind
it waited for). Real hubs on loopback, real SQLite files.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kds import server as server_module
from kds.config import StoreConfig
from kds.hub import Decision, OrderHub, Session
from kds.server import HubServer
from kds.store import SQLITE_AUTOCHECKPOINT, SQLITE_CHECKPOINT_BACKSTOP, Store
from tests.conftest import Devices, shelf_order
from tests.support import accepted, until


async def start_hub(servers: list[HubServer], config: StoreConfig, db: Path) -> HubServer:
    server = HubServer(OrderHub(config), Store(db, store_id=config.store.id), host="127.0.0.1", port=0)
    servers.append(server)
    await server.start()
    return server


def stored_keys(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {k for (k,) in conn.execute("select key from orders")}


def log_pages(db: Path) -> tuple[int, int]:
    """(pages in the write-ahead log, pages of it already copied into the database file), read from the log's
    index (the `-shm` file, https://sqlite.org/walformat.html: `mxFrame` at byte 16 of its header, `nBackfill` at
    byte 96), as a query would change what it looks at (`wal_checkpoint` copies, opening and closing may too)."""
    head = Path(f"{db}-shm").read_bytes()[:100]
    (log,) = struct.unpack_from("=I", head, 16)
    (done,) = struct.unpack_from("=I", head, 96)
    return log, done


async def test_orders_reach_the_database_file_from_the_checkpoint_thread(
    config: StoreConfig, tmp_path: Path, servers: list[HubServer], devices: Devices
) -> None:
    """A few orders fill far less of the log than SQLite's own checkpoint waits for (a thousand pages); the hub's
    checkpoint thread copies them into the database file all the same, soon after they were committed."""
    db = tmp_path / "kds.sqlite3"
    server = await start_hub(servers, config, db)
    shelf = await devices.connect(server.url, "shelf-1")
    keys = {f"ckpt-{n}" for n in range(5)}
    for key in sorted(keys):
        accepted(await shelf.request({"type": "order.submit", "order": shelf_order(key)}))
    seen = server.checkpoints
    await until(lambda: server.checkpoints > seen, what="a checkpoint after the last commit")

    log, done = log_pages(db)
    assert 0 < log < SQLITE_AUTOCHECKPOINT, f"{log} pages: a commit could have checkpointed them"
    assert done == log, f"{log - done} pages of the log are not in the database file"
    # The database file alone (no log beside it) holds every order.
    alone = tmp_path / "alone.sqlite3"
    shutil.copyfile(db, alone)
    assert stored_keys(alone) == keys


async def test_commits_leave_the_log_to_the_checkpoint_thread(
    config: StoreConfig,
    tmp_path: Path,
    servers: list[HubServer],
    devices: Devices,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the checkpoint thread held off, the log grows past the thousand pages at which a commit would have
    copied it (and made the orders behind it wait): no commit did."""
    monkeypatch.setattr(server_module, "CHECKPOINT_EVERY_S", 3600.0)
    db = tmp_path / "kds.sqlite3"
    server = await start_hub(servers, config, db)
    shelf = await devices.connect(server.url, "shelf-1")
    n = 0
    while log_pages(db)[0] <= SQLITE_AUTOCHECKPOINT + 100:
        assert n < 400, f"{n} orders and the log still holds {log_pages(db)[0]} pages: did a commit checkpoint it?"
        accepted(await shelf.request({"type": "order.submit", "order": shelf_order(f"grow-{n}")}))
        n += 1
    log, done = log_pages(db)
    assert done == 0, "a commit copied the log into the database file"
    assert log < SQLITE_CHECKPOINT_BACKSTOP
    assert server.checkpoints == 0
    assert len(stored_keys(db)) == n


def submitted(hub: OrderHub, session: Session, keys: list[str]) -> list[Decision]:
    """The hub's decisions on an `order.submit` of a shelf order for each key (not stored yet)."""
    out = []
    for k, key in enumerate(keys):
        frame = {"type": "order.submit", "ref": f"r{k}", "order": shelf_order(key)}
        out.append(hub.handle_frame(session, json.dumps(frame)))
    hub.seal()
    return out


def test_a_batch_with_an_order_the_database_holds_stores_the_rest_and_names_it(
    config: StoreConfig, tmp_path: Path
) -> None:
    """The commit does not look its keys up first: the database's unique keys refuse a batch holding an order it
    already has (a resubmission older than the hub's key index), and the batch is then stored the careful way:
    nothing of that order, all of the rest, and the stored order named for the hub to answer with."""
    db = tmp_path / "kds.sqlite3"
    store = Store(db, store_id=config.store.id)
    store.create_schema()
    try:
        shelf = config.device("shelf-1")
        assert shelf is not None
        clock = lambda: datetime(2026, 12, 5, 11, 0, tzinfo=UTC)  # noqa: E731
        first = OrderHub(config, clock=clock)
        first.restore([], [], 0, [])
        [old] = submitted(first, Session(shelf, 0), ["old-key"])
        assert store.commit(old.events, old.jobs) == {}
        assert old.created is not None
        stored_old = first.orders[old.created]

        # A hub days later, which no longer remembers the key (its index keeps the last day and a half).
        later = OrderHub(config, clock=lambda: datetime(2026, 12, 8, 11, 0, tzinfo=UTC))
        later.restore([], [], first.seq, [], last_job=max(j.id for j in old.jobs))
        again, fresh = submitted(later, Session(shelf, 0), ["old-key", "new-key"])
        assert again.created is not None and fresh.created is not None
        assert again.created != old.created, "the later hub numbered the resubmission as a new order"
        known = store.commit([*again.events, *fresh.events], [*again.jobs, *fresh.jobs])

        assert known == {again.created: (old.created, stored_old.number, stored_old.digest)}
        with sqlite3.connect(db) as conn:
            orders = dict(conn.execute("select id, key from orders"))
            events = [oid for (oid,) in conn.execute("select order_id from events order by seq")]
            jobs = {oid for (oid,) in conn.execute("select order_id from print_jobs")}
        assert orders == {old.created: "old-key", fresh.created: "new-key"}
        assert events == [old.created, fresh.created]
        assert jobs == {old.created, fresh.created}
    finally:
        store.close()
