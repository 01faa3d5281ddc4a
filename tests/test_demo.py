"""The live view (Textual, driven by Pilot) against a real hub, and the whole demo in one process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from kds.client import Backoff, HubClient
from kds.config import StoreConfig
from kds.protocol import OrderAccepted
from kds.server import HubServer
from kdsapp.demo import demo
from terminals.live_view import LiveView
from tests.conftest import app_order, shelf_order

ClientFactory = Callable[..., Any]


async def until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run (bounded) until predicate() is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not met in time"
        await pilot.pause(0.05)


def monitor(config: StoreConfig, url: str) -> HubClient:
    dev = config.device("monitor-1")
    assert dev is not None and dev.token is not None
    return HubClient(url, device=dev.id, token=dev.token, role="monitor", backoff=Backoff(first=0.05, cap=0.5))


async def test_live_view_shows_an_order_in_its_station_columns(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    client = monitor(config, hub.url)
    app = LiveView(client)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: "connected" in app.header_text and len(app.columns) == 6)
            assert hub.url in app.header_text and "0 orders accepted" in app.header_text
            shelf = await connect("shelf-1")
            kiosk = await connect("kiosk-1")
            lobster = await shelf.request(
                {"type": "order.submit", "order": shelf_order("demo-1")}, expect=OrderAccepted
            )
            drinks = await kiosk.request(
                {
                    "type": "order.submit",
                    "order": app_order("demo-2", channel="kiosk", fulfilment={"type": "dine_in", "table": "7"}),
                },
                expect=OrderAccepted,
            )
            s, k = lobster.number, drinks.number
            cols = app.columns
            await until(pilot, lambda: s in cols["wok"].plain and k in cols["bar"].plain)
            # The lobster goes to wok (ginger-scallion) and cold (sashimi), with weight, method and claim tag.
            assert s in cols["cold"].plain and s not in cols["bar"].plain and s not in cols["seafood"].plain
            assert "800 g" in cols["wok"].plain and "#T-1001" in cols["wok"].plain
            assert "Sashimi" in cols["cold"].plain and "table 12" in cols["cold"].plain
            assert k in cols["wok"].plain and "table 7" in cols["bar"].plain and "less sugar" in cols["bar"].plain
            assert "2 orders accepted" in app.header_text
            # Visible on the screen itself, not only in the widgets' text.
            assert s in app.export_screenshot()

            # A bump shows as done; a cancellation takes the order off the columns.
            wok = await connect("wok-1")
            await wok.request({"type": "ticket.bump", "ticket_id": f"{lobster.order_id}/wok"})
            await until(pilot, lambda: f"{s} shelf" in cols["wok"].plain and "done" in cols["wok"].plain)
            await shelf.request({"type": "order.cancel", "order_id": lobster.order_id})
            await until(pilot, lambda: s not in cols["wok"].plain and s not in cols["cold"].plain)

            await pilot.press("q")
        assert app.return_code in (None, 0)
    finally:
        await client.close()


async def test_demo_shows_simulated_orders_within_five_seconds_and_stops_cleanly(
    config: StoreConfig, tmp_path: Path
) -> None:
    seen: list[str] = []

    async def drive(app: LiveView) -> None:
        async with app.run_test(size=(120, 36)) as pilot:

            def some_ticket() -> bool:
                return any(c.plain and "no open tickets" not in c.plain for c in app.columns.values())

            await until(pilot, some_ticket, timeout=5)
            seen.append(app.header_text)
            await pilot.press("ctrl+c")

    code = await demo(config, rate=20, port=0, speed=20, workdir=tmp_path, drive=drive, view="live")
    assert code == 0
    assert seen and "connected" in seen[0] and "simulator 20/s" in seen[0]


async def test_demo_opens_a_kitchen_screen_on_a_live_station_within_five_seconds(
    config: StoreConfig, tmp_path: Path
) -> None:
    from terminals.kitchen.app import KitchenApp

    seen: list[str] = []

    async def drive(app: KitchenApp) -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: bool(getattr(app, "entries", None)), timeout=5)
            seen.extend(e.ticket.id for e in app.entries)
            await pilot.press("ctrl+q")

    code = await demo(config, rate=20, port=0, speed=20, workdir=tmp_path, drive=drive, station="wok")
    assert code == 0
    assert seen and all(t.endswith("/wok") for t in seen)
