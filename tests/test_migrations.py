"""Schema migrations (Alembic) on SQLite and PostgreSQL: from empty, from the previous version, and refusals."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from kds.client import HubClient
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import Ack, OrderAccepted, OrderStatus, Pickup, Pong
from kds.server import HubServer
from kds.store import SCHEMA_HEAD, SchemaError, Store
from tests.conftest import ROOT, SAMPLE_CONFIG, Devices
from tests.support import db_rows


def _tables(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_an_empty_database_is_migrated_to_the_newest_schema(config: StoreConfig, empty_db: Path | str) -> None:
    store = Store(empty_db, store_id=config.store.id)
    try:
        assert store.schema_state().current is None
        store.create_schema()
        state = store.schema_state()
        assert state.current == state.head
        assert {"orders", "events", "print_jobs", "hub_commands", "prep_samples", "alembic_version"} <= _tables(store)
    finally:
        store.close()


def test_schema_head_names_the_newest_migration(config: StoreConfig, tmp_path: Path) -> None:
    # A database at SCHEMA_HEAD is used without loading alembic: a new migration must move it.
    store = Store(tmp_path / "head.sqlite3", store_id=config.store.id)
    try:
        assert store.schema_state().head == SCHEMA_HEAD
    finally:
        store.close()


def test_the_migrations_build_exactly_the_tables_the_code_uses(config: StoreConfig, empty_db: Path | str) -> None:
    store = Store(empty_db, store_id=config.store.id)
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        store.close()


OLD_DOC = (
    '{"id":"20261101-K001","number":"K001","key":"old-1","source":"kiosk-1","channel":"kiosk",'
    '"fulfilment":{"type":"pickup"},"customer":null,"priority":"normal","note":null,"status":"accepted",'
    '"version":1,"created_at":"2026-11-01T04:00:00+00:00","updated_at":"2026-11-01T04:00:00+00:00",'
    '"called_at":null,"handed_over_at":null,"handed_over_to":null,"cancelled_at":null,"cancel_reason":null,'
    '"amended_at":null,"items":[],"tickets":[]}'
)
"""An order as the hub of revision 0001 stored it (fields added since are missing)."""


def _old_database(config: StoreConfig, db: Path | str) -> Store:
    """A database at revision 0001 (the hub of issue 2: orders and events, no print jobs) holding OLD_DOC, open."""
    store = Store(db, store_id=config.store.id)
    store.upgrade("0001")
    assert "print_jobs" not in _tables(store)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into orders (store_id, id, number, source, key, channel, status, created_at, updated_at, doc)"
                " values (:s, '20261101-K001', 'K001', 'kiosk-1', 'old-1', 'kiosk', 'accepted',"
                " '2026-11-01T04:00:00+00:00', '2026-11-01T04:00:00+00:00', :doc)"
            ),
            {"s": config.store.id, "doc": OLD_DOC},
        )
    return store


def test_an_order_stored_under_the_previous_schema_survives_the_upgrade(
    config: StoreConfig, empty_db: Path | str
) -> None:
    store = _old_database(config, empty_db)
    with pytest.raises(SchemaError, match="kds db upgrade"):
        store.create_schema()
    before, after = store.upgrade()
    assert (before, after) == ("0001", store.schema_state().head)
    assert {"print_jobs", "hub_commands", "prep_samples"} <= _tables(store)
    assert db_rows(empty_db, "select id, number from orders") == [("20261101-K001", "K001")]
    store.close()


async def test_a_hub_serves_the_orders_of_an_upgraded_database(
    config: StoreConfig, empty_db: Path | str, devices: Devices
) -> None:
    # `kds db upgrade` on an old database, then `kds serve` on it: the old order is on the screens as it was, and
    # the hub takes new orders and actions on the old one.
    store = _old_database(config, empty_db)
    store.upgrade()
    noon = datetime.fromisoformat("2026-11-01T04:30:00+00:00")  # the day the old order was taken, half an hour on
    server = HubServer(OrderHub(config, clock=lambda: noon), store, host="127.0.0.1", port=0)
    await server.start()
    try:
        counter, kiosk, monitor = [await devices.connect(server.url, d) for d in ("counter-1", "kiosk-1", "monitor-1")]
        for c in (counter, monitor):
            assert c.welcome is not None and c.welcome.snapshot is not None
            old = c.book.orders["20261101-K001"]
            assert (old.number, old.key, old.source, old.status) == ("K001", "old-1", "kiosk-1", "accepted")
            assert (old.channel, old.fulfilment, old.items, old.tickets) == ("kiosk", Pickup(type="pickup"), [], [])
        # Its source follows it: the welcome restates its status.
        assert {k: s.status for k, s in kiosk.book.statuses.items()} == {"20261101-K001": "accepted"}

        new = await kiosk.request(
            {
                "type": "order.submit",
                "order": {
                    "key": "new-1",
                    "channel": "kiosk",
                    "fulfilment": {"type": "pickup"},
                    "items": [{"sku": "WOK-KUNGPAO"}],
                },
            },
            expect=OrderAccepted,
        )
        assert (new.order_id, new.number) == ("20261101-K002", "K002")  # numbering goes on after the old one
        # The same key again is the old order's duplicate, not a new order: the key index came through the upgrade.
        again = await kiosk.request(
            {
                "type": "order.submit",
                "order": {
                    "key": "old-1",
                    "channel": "kiosk",
                    "fulfilment": {"type": "pickup"},
                    "items": [{"sku": "WOK-KUNGPAO"}],
                },
            },
            expect=OrderAccepted,
        )
        assert again.order_id == "20261101-K001", again
        await counter.request({"type": "order.cancel", "order_id": "20261101-K001", "reason": "old"}, expect=Ack)
        for c in (counter, monitor, kiosk):
            await c.request({"type": "ping"}, expect=Pong)  # every event before it has arrived
        assert counter.book.orders["20261101-K001"].status is OrderStatus.CANCELLED
        assert counter.book.orders["20261101-K001"].cancel_reason == "old"
        assert monitor.book.orders[new.order_id].status is OrderStatus.ACCEPTED
        assert kiosk.book.statuses["20261101-K001"].status is OrderStatus.CANCELLED
    finally:
        await devices.close()
        await server.stop()
    rows = db_rows(empty_db, "select id, status from orders order by id")
    assert rows == [("20261101-K001", "cancelled"), (new.order_id, "accepted")]


def test_a_schema_newer_than_the_hub_is_refused(config: StoreConfig, empty_db: Path | str) -> None:
    store = Store(empty_db, store_id=config.store.id)
    store.upgrade()
    with store.engine.begin() as conn:
        conn.execute(sa.text("update alembic_version set version_num = '9999'"))
    with pytest.raises(SchemaError, match="newer than this hub knows"):
        store.create_schema()
    store.close()
    # And `kds serve` says so and stops, without touching the database.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kdsapp.cli",
            "serve",
            "--db",
            str(empty_db),
            "--port",
            "0",
            "--config",
            str(SAMPLE_CONFIG),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "newer than this hub knows" in out.stderr
    assert db_rows(empty_db, "select version_num from alembic_version") == [("9999",)]


def test_kds_db_upgrade_and_current(config: StoreConfig, empty_db: Path | str) -> None:
    def kds(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "kdsapp.cli", "db", *args, "--db", str(empty_db), "--config", str(SAMPLE_CONFIG)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return out.stdout

    assert "schema empty" in kds("current")
    assert "→" in kds("upgrade")
    assert "up to date" in kds("current")


def test_a_database_made_before_migrations_is_recognised(config: StoreConfig, tmp_path: Path) -> None:
    # Databases of the first hub were made with create_all and carry no revision: they are stamped, not recreated.
    path = tmp_path / "legacy.sqlite3"
    store = Store(path, store_id=config.store.id)
    SQLModel.metadata.create_all(store.engine, tables=[SQLModel.metadata.tables[t] for t in ("orders", "events")])
    state = store.schema_state()
    assert state.current == "0001"
    with pytest.raises(SchemaError, match="kds db upgrade"):
        store.create_schema()
    store.upgrade()
    assert store.schema_state().current == store.schema_state().head
    store.close()


async def test_a_hub_serves_from_a_freshly_upgraded_database(config: StoreConfig, empty_db: Path | str) -> None:
    store = Store(empty_db, store_id=config.store.id)
    server = HubServer(OrderHub(config), store, port=0)
    await server.start()  # migrates the empty database itself
    dev = config.device("kiosk-1")
    assert dev is not None
    client = HubClient.for_device(server.url, dev)
    try:
        await client.connect()
        r = await client.request(
            {
                "type": "order.submit",
                "order": {
                    "key": "m-1",
                    "channel": "kiosk",
                    "fulfilment": {"type": "pickup"},
                    "items": [{"sku": "WOK-KUNGPAO"}],
                },
            },
            expect=OrderAccepted,
        )
    finally:
        await client.close()
        await server.stop()
    assert db_rows(empty_db, "select number from orders") == [(r.number,)]
