"""Idempotency beyond the hub's in-memory key window: the database has the last word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kds.client import HubClient
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import OrderAccepted
from kds.server import HubServer
from kds.store import Store
from kds.wire import Answer
from tests.conftest import fixed_app_order


async def _submit(
    config: StoreConfig, db: Path | str, now: datetime, order: dict[str, Any]
) -> tuple[Answer, list[str]]:
    """Submit `order` as app-backend to a hub over `db` whose clock says `now`; the reply and the stored order ids."""
    server = HubServer(
        OrderHub(config, clock=lambda: now), Store(db, store_id=config.store.id), host="127.0.0.1", port=0
    )
    await server.start()
    dev = config.device("app-backend")
    assert dev is not None and dev.token is not None
    client = HubClient(server.url, device=dev.id, token=dev.token, role="source")
    try:
        await client.connect()
        reply = await client.request({"type": "order.submit", "order": order})
    finally:
        await client.close()
        await server.stop()
    store = Store(db, store_id=config.store.id)
    try:
        return reply, [d["id"] for d in store.order_docs()]
    finally:
        store.close()


async def test_resubmission_of_a_key_older_than_the_window_gets_the_original_answer(
    config: StoreConfig, db_path: Path
) -> None:
    long_ago = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    first, ids = await _submit(config, db_path, long_ago, fixed_app_order("old-key-1"))
    assert isinstance(first, OrderAccepted) and not first.duplicate, first
    assert ids == [first.order_id]

    later = long_ago + timedelta(days=20)  # far beyond the 7 days of keys the hub loads on start
    again, ids = await _submit(config, db_path, later, fixed_app_order("old-key-1"))
    assert isinstance(again, OrderAccepted), again
    assert again.duplicate is True
    assert (again.order_id, again.number) == (first.order_id, first.number)
    assert ids == [first.order_id], "nothing new is stored"

    fresh, ids = await _submit(config, db_path, later, fixed_app_order("new-key-1"))
    assert isinstance(fresh, OrderAccepted) and not fresh.duplicate, fresh
    assert len(ids) == 2
