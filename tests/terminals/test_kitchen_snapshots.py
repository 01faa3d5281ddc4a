"""Snapshots (pytest-textual-snapshot) of a busy wok station at 80×24 and 160×48, with a fixed clock.

`snap_compare` runs the app in its own event loop, so these tests are synchronous and the real hub runs in a
thread of its own (on loopback, over a real SQLite file). The hub's clock is moved before each order, so every
ticket has a known age: late, warning, on time; plus a rush, an amended, a cancelled and a just-arrived ticket.
Update the pictures with `pytest tests/terminals/test_kitchen_snapshots.py --snapshot-update` and look at them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.pilot import Pilot

from kds.client import Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.server import HubServer
from kds.store import Store
from terminals.kitchen.app import KitchenApp, create_app

T = TypeVar("T")
T0 = datetime.fromisoformat("2026-11-25T12:00:00+08:00")
"""The screen's clock in every snapshot."""


class HubThread:
    """A real hub in a thread with its own event loop, and source clients to feed it; its clock is `self.now`."""

    def __init__(self, config: StoreConfig, db: Path) -> None:
        self.config = config
        self.now = T0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hub", daemon=True)
        self.thread.start()
        self.server: HubServer = self.run(self._start(db))
        self.clients: dict[str, HubClient] = {}

    async def _start(self, db: Path) -> HubServer:
        hub = OrderHub(self.config, clock=lambda: self.now)
        server = HubServer(hub, Store(db, store_id=self.config.store.id), host="127.0.0.1", port=0)
        await server.start()
        return server

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the hub's loop and wait for it (from the test's thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def request(self, device: str, msg: dict[str, Any]) -> dict[str, Any]:
        """Send a frame as a device of the sample config (connected on first use) and return the answer."""
        client = self.clients.get(device)
        if client is None:
            dev = self.config.device(device)
            assert dev is not None
            client = self.clients[device] = HubClient.for_device(self.server.url, dev)
            await client.connect()
        answer = await client.request(msg)
        assert answer["type"] in ("order.accepted", "ack"), answer
        return answer

    def at(self, minutes_before: float, device: str, msg: dict[str, Any]) -> dict[str, Any]:
        """Send a frame with the hub's clock `minutes_before` T0."""
        self.now = T0 - timedelta(minutes=minutes_before)
        try:
            return self.run(self.request(device, msg))
        finally:
            self.now = T0

    def stop(self) -> None:
        """Close the clients and the hub, end the thread."""

        async def stop() -> None:
            for c in self.clients.values():
                await c.close()
            await self.server.stop()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def submit(key: str, channel: str, fulfilment: dict[str, Any], items: list[dict[str, Any]], **extra: Any) -> Any:
    """An order.submit frame."""
    order = {"key": key, "channel": channel, "fulfilment": fulfilment, "items": items, **extra}
    return {"type": "order.submit", "order": order}


def busy_wok(hub: HubThread) -> None:
    """A wok station in the middle of lunch: every kind of ticket a cook meets."""
    due = (T0 + timedelta(minutes=5)).isoformat()
    late = hub.at(
        14,
        "kiosk-1",
        submit(
            "b-1",
            "kiosk",
            {"type": "dine_in", "table": "12"},
            [
                {"sku": "WOK-KUNGPAO", "qty": 2, "modifiers": ["less spicy"]},
                {"sku": "WOK-MAPO", "note": "tofu well done"},
                {"sku": "BAR-LEMONTEA"},
            ],
        ),
    )
    hub.at(13, "wok-2", {"type": "ticket.start", "ticket_id": f"{late['order_id']}/wok"})
    hub.at(
        9,
        "app-backend",
        submit(
            "b-2",
            "app",
            {"type": "delivery", "due": due, "address": "碧云路199弄12号601"},
            [{"sku": "WOK-FRIEDRICE"}, {"sku": "NDL-BEEF", "name": "红烧牛肉面", "modifiers": ["不要葱"]}],
            customer={"name": "王芳"},
        ),
    )
    hub.at(
        7,
        "kiosk-2",
        submit("b-3", "kiosk", {"type": "pickup"}, [{"sku": "NDL-WONTON", "qty": 3}], customer={"name": "Emma"}),
    )
    hub.at(
        6,
        "shelf-1",
        submit(
            "b-4",
            "shelf",
            {"type": "dine_in", "table": "21"},
            [
                {"sku": "LOB-AUS", "weight_g": 1350, "cook": "ginger_scallion", "tag": "T-2041", "note": "cut in 8"},
                {"sku": "GEODUCK", "weight_g": 820, "cook": "sashimi", "tag": "T-2042"},
            ],
        ),
    )
    amended = hub.at(
        5,
        "kiosk-1",
        submit(
            "b-5",
            "kiosk",
            {"type": "dine_in", "table": "3"},
            [{"sku": "WOK-SWEETSOUR"}, {"sku": "WOK-GREENS"}],
        ),
    )
    cancelled = hub.at(
        4, "kiosk-2", submit("b-6", "kiosk", {"type": "dine_in", "table": "30"}, [{"sku": "WOK-BEEF-PEPPER"}])
    )
    hub.at(
        3,
        "shelf-1",
        submit(
            "b-7",
            "shelf",
            {"type": "dine_in", "table": "8"},
            [{"sku": "CRAB-MUD", "weight_g": 650, "cook": "typhoon_shelter", "tag": "T-2043", "allergens": ["peanut"]}],
        ),
    )
    hub.at(
        2,
        "app-backend",
        submit(
            "b-8",
            "app",
            {"type": "pickup", "at": (T0 + timedelta(minutes=20)).isoformat()},
            [{"sku": "NDL-DANDAN", "qty": 2, "allergens": ["peanut"]}],
            priority="rush",
            note="Customer is allergic to peanuts: clean wok",
            customer={"name": "Li Wei"},
        ),
    )
    hub.at(
        1,
        "kiosk-1",
        {
            "type": "order.amend",
            "order_id": amended["order_id"],
            "add": [{"sku": "WOK-EGGTOMATO"}],
            "remove": ["2"],
            "item_notes": {"1": "no sesame"},
        },
    )
    hub.at(0.5, "kiosk-2", {"type": "order.cancel", "order_id": cancelled["order_id"], "reason": "customer left"})


@pytest.fixture
def busy_hub(config: StoreConfig, tmp_path: Path) -> Iterator[HubThread]:
    """A hub thread holding a busy wok station."""
    hub = HubThread(config, tmp_path / "kds.sqlite3")
    try:
        busy_wok(hub)
        yield hub
    finally:
        hub.stop()


def wok_screen(config: StoreConfig, hub: HubThread) -> KitchenApp:
    """wok-1's screen at T0, its status bar naming the hub 'hub' and the last event 3 s old."""
    dev = config.device("wok-1")
    assert dev is not None
    client = HubClient.for_device(hub.server.url, dev, backoff=Backoff(first=0.05, cap=0.3))
    return create_app(
        client,
        station="wok",
        keymap=dict(dev.keymap),
        now=lambda: T0,
        monotonic=lambda: (client.last_event_at or 0.0) + 3.0,
        hub_label="hub",
        close_client=True,
    )


def ready(app: KitchenApp, hub: HubThread, tickets: int) -> Callable[[Pilot[Any]], Coroutine[Any, Any, None]]:
    """Before the picture: wait (bounded) for the board, then a new order arrives and the cook moves on."""

    async def run_before(pilot: Pilot[Any]) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while not (app.client.state is LinkState.ONLINE and len(app.entries) == tickets):
            assert loop.time() < end, "the board did not fill"
            await pilot.pause(0.02)
        fresh = submit("b-9", "kiosk", {"type": "dine_in", "table": "5"}, [{"sku": "WOK-GREENS", "qty": 2}])
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hub.request("kiosk-1", fresh), hub.loop))
        while len(app.entries) != tickets + 1:
            assert loop.time() < end, "the new order did not arrive"
            await pilot.pause(0.02)
        await pilot.press("right", "right", "down")

    return run_before


BUSY_TICKETS = 8
"""Open wok tickets of `busy_wok` (the cancelled one included, not yet acknowledged)."""


def test_busy_wok_station_at_160x48(config: StoreConfig, busy_hub: HubThread, snap_compare: Any) -> None:
    app = wok_screen(config, busy_hub)
    assert snap_compare(app, terminal_size=(160, 48), run_before=ready(app, busy_hub, BUSY_TICKETS))


def test_busy_wok_station_at_80x24(config: StoreConfig, busy_hub: HubThread, snap_compare: Any) -> None:
    app = wok_screen(config, busy_hub)
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready(app, busy_hub, BUSY_TICKETS))


def test_all_day_view_at_80x24(config: StoreConfig, busy_hub: HubThread, snap_compare: Any) -> None:
    app = wok_screen(config, busy_hub)
    before = ready(app, busy_hub, BUSY_TICKETS)

    async def run_before(pilot: Pilot[Any]) -> None:
        await before(pilot)
        await pilot.press("a")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
