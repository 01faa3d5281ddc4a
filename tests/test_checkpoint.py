"""SQLite: the hub's commits never copy the WAL into the database file themselves (the commit that did was the
slowest of a rush); a thread of the hub does it each second, without holding a commit up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kds.config import StoreConfig
from kds.server import HubServer
from kds.store import Store
from tests.conftest import ClientFactory, app_order
from tests.support import until


async def test_commits_leave_checkpoints_to_the_hubs_own_thread(connect: ClientFactory, hub: HubServer) -> None:
    if hub.store.engine.dialect.name != "sqlite":
        assert hub.store.checkpoint_in_background() is False, "PostgreSQL has no WAL of SQLite's"
        return
    with hub.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2, "still FULL"
    kiosk = await connect("app-backend")
    for k in range(20):
        assert (await kiosk.request({"type": "order.submit", "order": app_order(f"ckpt-{k}")}))["type"] == (
            "order.accepted"
        )
    done = hub.checkpoints
    await until(lambda: hub.checkpoints > done, timeout=5, what="a checkpoint by the hub's thread")
    pages = hub.store.checkpoint()
    assert pages is not None and pages[0] == pages[1], "everything in the WAL is in the database file"


def test_a_store_without_a_hub_keeps_sqlites_own_checkpoints(config: StoreConfig, tmp_path: Path) -> None:
    store = Store(tmp_path / "kds.sqlite3", store_id=config.store.id)
    try:
        store.create_schema()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert store.checkpoint_in_background() is True
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "kds.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
