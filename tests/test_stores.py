"""Many stores in one database (a chain): each hub sees and touches only its own store's orders, events and jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kds.client import HubClient
from kds.config import StoreConfig, parse_config
from kds.hub import OrderHub
from kds.protocol import Error, ErrorCode, OrderAccepted
from kds.server import HubServer
from kds.store import Store
from tests.conftest import SAMPLE_CONFIG, app_order, shelf_order
from tests.support import db_rows, until


def other_store() -> StoreConfig:
    """The sample store under another id (same devices and tokens, on purpose: isolation must not rest on them)."""
    text = SAMPLE_CONFIG.read_text(encoding="utf-8").replace('id = "sh-jinqiao"', 'id = "sh-xuhui"', 1)
    cfg = parse_config(text)
    assert cfg.store.id == "sh-xuhui"
    return cfg


async def _hub(config: StoreConfig, db: Path | str) -> HubServer:
    server = HubServer(OrderHub(config), Store(db, store_id=config.store.id), port=0)
    await server.start()
    return server


async def test_two_stores_in_one_database_stay_isolated(config: StoreConfig, db_path: Path | str) -> None:
    xuhui = other_store()
    a, b = await _hub(config, db_path), await _hub(xuhui, db_path)
    clients: list[HubClient] = []

    async def client(server: HubServer, cfg: StoreConfig, device: str) -> HubClient:
        dev = cfg.device(device)
        assert dev is not None
        c = HubClient.for_device(server.url, dev)
        clients.append(c)
        await c.connect()
        return c

    try:
        shelf_a, app_b = await client(a, config, "shelf-1"), await client(b, xuhui, "app-backend")
        monitor_a, monitor_b = await client(a, config, "monitor-1"), await client(b, xuhui, "monitor-1")
        ra = await shelf_a.request({"type": "order.submit", "order": shelf_order("same-key")}, expect=OrderAccepted)
        rb = await app_b.request({"type": "order.submit", "order": app_order("same-key")}, expect=OrderAccepted)
        # Each store counts its own day: both start at 001, and the same key in two stores is two orders.
        assert (ra.number, rb.number) == ("S001", "A001")
        await until(lambda: ra.order_id in monitor_a.book.orders and rb.order_id in monitor_b.book.orders)
        assert set(monitor_a.book.orders) == {ra.order_id}
        assert set(monitor_b.book.orders) == {rb.order_id}
        assert monitor_a.book.seq == monitor_b.book.seq == 1, "each store has its own seq"

        # A device of one store cannot touch the other's order, even knowing its id (and with the same token).
        wok_b = await client(b, xuhui, "wok-1")
        r = await wok_b.request({"type": "ticket.bump", "ticket_id": f"{ra.order_id}/wok"})
        assert isinstance(r, Error) and r.code is ErrorCode.NOT_FOUND, r
        counter_b = await client(b, xuhui, "counter-1")
        r = await counter_b.request({"type": "order.cancel", "order_id": ra.order_id})
        assert isinstance(r, Error) and r.code is ErrorCode.NOT_FOUND, r
    finally:
        for c in clients:
            await c.close()
        await a.stop()
        await b.stop()

    stores = db_rows(db_path, "select store_id, id from orders order by store_id")
    assert stores == [("sh-jinqiao", ra.order_id), ("sh-xuhui", rb.order_id)]
    assert db_rows(db_path, "select store_id, count(*) from events group by store_id order by store_id") == [
        ("sh-jinqiao", 1),
        ("sh-xuhui", 1),
    ]
    jobs = db_rows(db_path, "select distinct store_id, order_id from print_jobs order by store_id")
    assert jobs == [("sh-jinqiao", ra.order_id), ("sh-xuhui", rb.order_id)]

    # A restarted hub rebuilds its own store only.
    again = await _hub(xuhui, db_path)
    try:
        assert set(again.hub.orders) == {rb.order_id}
        assert again.hub.seq == 1
    finally:
        await again.stop()


async def test_a_second_hub_on_one_sqlite_file_is_refused(config: StoreConfig, tmp_path: Path) -> None:
    from kds.store import StoreBusy

    db = tmp_path / "one.sqlite3"
    first = await _hub(config, db)
    second = HubServer(OrderHub(config), Store(db, store_id=config.store.id), port=0)
    try:
        with pytest.raises(StoreBusy, match="need PostgreSQL"):
            await second.start()
    finally:
        second.store.close()
        await first.stop()
    # Once the first hub is gone, the file is free again.
    again = await _hub(config, db)
    await again.stop()
