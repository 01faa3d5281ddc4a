"""How the counter screen looks (pytest-textual-snapshot SVGs): a real hub with a fixed clock, fixed sizes.

Update after a deliberate change of the look with `pytest tests/terminals/test_counter_snapshots.py
--snapshot-update`, and look at the SVGs in `__snapshots__/` before committing them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion

from kds.client import HubClient
from kds.config import StoreConfig, parse_config
from kds.protocol import OrderAccepted
from kds.server import HubServer
from terminals.counter.app import CounterApp
from tests.conftest import SAMPLE_CONFIG, fixed_app_order, shelf_order
from tests.support import until
from tests.terminals.test_counter_support import (
    HUB_LABEL,
    Clock,
    counter_app,
    hub_server,
    key_item,
    no_blink,
    ready,
    type_text,
)

ClientFactory = Callable[..., Any]


@pytest.fixture
def snap(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots stored as SVG files, as pytest-textual-snapshot stores them."""
    return snapshot.use_extension(SVGImageExtension)


@pytest.fixture
async def noon(config: StoreConfig, tmp_path: Path) -> AsyncIterator[tuple[HubServer, Clock]]:
    """A real hub whose clock the test moves, starting at 12:00 in Shanghai."""
    clock = Clock()
    server = hub_server(config, tmp_path / "hub.sqlite3", clock=clock)
    await server.start()
    try:
        yield server, clock
    finally:
        await server.stop()


@pytest.fixture
async def zh_noon(tmp_path: Path) -> AsyncIterator[tuple[HubServer, Clock]]:
    """As `noon`, with counter-1's screen in Chinese."""
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    device = 'id = "counter-1"\ntoken = "dev-counter-1-token"\n'
    zh = parse_config(text.replace(device, device + 'language = "zh"\n'), base_dir=SAMPLE_CONFIG.parent)
    clock = Clock()
    server = hub_server(zh, tmp_path / "hub.sqlite3", clock=clock)
    await server.start()
    try:
        yield server, clock
    finally:
        await server.stop()


def _app(server: HubServer, clock: Clock, tmp_path: Path, view: str, config: StoreConfig | None = None) -> CounterApp:
    app: CounterApp = counter_app(
        server.url,
        tmp_path,
        now=clock,
        monotonic=lambda: app.client.last_event_at or 0.0,
        hub_label=HUB_LABEL,
        view=view,
        config=config,
    )
    return app


async def _shot(pilot: Any, app: CounterApp) -> str:
    no_blink(app)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    return str(app.export_screenshot(title="kds counter"))


async def test_intake_with_two_lines_and_an_error(
    noon: tuple[HubServer, Clock], tmp_path: Path, snap: SnapshotAssertion
) -> None:
    server, clock = noon
    app = _app(server, clock, tmp_path, "intake")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await key_item(pilot, app.intake, "LOB-AUS", weight=800, cook="sashimi")
        await key_item(pilot, app.intake, "OYSTER-FR", cook="cheese_baked", qty=6, allergens=["peanut"])
        await key_item(pilot, app.intake, "crab", add=False)
        await pilot.press("down", "enter")
        await type_text(pilot, "900")
        await pilot.press("enter", "f4")
        assert "outside" in app.intake._errors()["weight"]
        assert snap == await _shot(pilot, app)


async def test_intake_order_accepted_with_its_number_big(
    noon: tuple[HubServer, Clock], tmp_path: Path, snap: SnapshotAssertion
) -> None:
    server, clock = noon
    app = _app(server, clock, tmp_path, "intake")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await key_item(pilot, app.intake, "LOB-AUS", weight=800, cook="sashimi")
        await key_item(pilot, app.intake, "LOB-AUS", weight=1200, cook="steamed")
        await pilot.press("enter")
        await type_text(pilot, "12")
        await pilot.press("enter")
        await until(lambda: "sent to the printer" in str(app.intake.query_one("#tag-state").render()))
        assert app.intake.accepted is not None and app.intake.accepted.number == "S001"
        assert snap == await _shot(pilot, app)


async def test_intake_weighing_in_kilograms_with_the_price_and_allergies(
    noon: tuple[HubServer, Clock], config: StoreConfig, tmp_path: Path, snap: SnapshotAssertion
) -> None:
    server, clock = noon
    app = _app(server, clock, tmp_path, "intake", config)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await key_item(pilot, app.intake, "OYSTER-FR", cook="cheese_baked", qty=6)
        await key_item(pilot, app.intake, "LOB-AUS", weight="1.2kg", cook="steamed", add=False)
        app.intake.query_one("#allergens").focus()
        await type_text(pilot, "花生")
        await pilot.press("enter")
        await type_text(pilot, "cut in half")
        await pilot.press("enter")
        assert "not one of the store's allergens" in app.intake._errors()["allergens"]
        assert snap == await _shot(pilot, app)


async def test_intake_in_chinese(zh_noon: tuple[HubServer, Clock], tmp_path: Path, snap: SnapshotAssertion) -> None:
    server, clock = zh_noon
    app = _app(server, clock, tmp_path, "intake", server.hub.config)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        await key_item(pilot, app.intake, "LOB-AUS", weight="0.8kg", cook="sashimi", allergens=["sesame"])
        await key_item(pilot, app.intake, "crab", add=False)
        await pilot.press("down", "enter")
        assert snap == await _shot(pilot, app)


async def _busy_noon(server: HubServer, clock: Clock, connect: ClientFactory) -> dict[str, OrderAccepted]:
    """Five orders between 12:00 and 12:14: READY, called, cooking, a delivery the kitchen will miss, handed over."""
    shelf, app_backend, kiosk = [await connect(d, server.url) for d in ("shelf-1", "app-backend", "kiosk-1")]
    cooks = {s: await connect(f"{s}-1", server.url) for s in ("wok", "cold", "bar", "seafood")}
    counter = await connect("counter-1", server.url)

    async def submit(client: HubClient, order: dict[str, Any]) -> OrderAccepted:
        return await client.request({"type": "order.submit", "order": order}, expect=OrderAccepted)

    async def kitchen(station: str, kind: str, order: OrderAccepted) -> None:
        await cooks[station].request({"type": f"ticket.{kind}", "ticket_id": f"{order.order_id}/{station}"})

    o: dict[str, OrderAccepted] = {}
    o["lobster"] = await submit(shelf, shelf_order("snap-1"))
    o["delivery"] = await submit(app_backend, fixed_app_order("snap-2"))
    clock.advance(minutes=1)
    o["coconut"] = await submit(
        kiosk, fixed_app_order("snap-3", channel="kiosk", fulfilment={"type": "pickup"}, items=[{"sku": "BAR-COCONUT"}])
    )
    clock.advance(minutes=1)
    steamed = {"sku": "FISH-GROUPER", "weight_g": 900, "cook": "steamed", "tag": "120200-1", "note": "light soy"}
    o["grouper"] = await submit(
        shelf, shelf_order("snap-4", fulfilment={"type": "dine_in", "table": "5"}, items=[steamed])
    )
    clock.advance(minutes=1)
    o["noodles"] = await submit(
        kiosk,
        fixed_app_order(
            "snap-5", channel="kiosk", fulfilment={"type": "dine_in", "table": "7"}, items=[{"sku": "NDL-BEEF"}]
        ),
    )
    clock.advance(minutes=1)  # 12:04
    await kitchen("bar", "bump", o["coconut"])
    await counter.request({"type": "order.call", "order_id": o["coconut"].order_id})
    clock.advance(minutes=1)
    await kitchen("seafood", "start", o["grouper"])
    await kitchen("wok", "bump", o["noodles"])
    clock.advance(minutes=1)  # 12:06
    await cooks["bar"].request({"type": "ticket.bump", "ticket_id": f"{o['delivery'].order_id}/bar"})
    clock.advance(minutes=2)
    await kitchen("wok", "bump", o["lobster"])
    clock.advance(minutes=2)  # 12:10
    await counter.request({"type": "order.handover", "order_id": o["noodles"].order_id, "to": "runner"})
    clock.advance(minutes=2)
    await kitchen("cold", "bump", o["lobster"])
    clock.advance(minutes=2)  # 12:14
    return o


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
async def test_expo_orders_coming_together(
    noon: tuple[HubServer, Clock],
    connect: ClientFactory,
    tmp_path: Path,
    snap: SnapshotAssertion,
    size: tuple[int, int],
) -> None:
    server, clock = noon
    orders = await _busy_noon(server, clock, connect)
    app = _app(server, clock, tmp_path, "expo")
    async with app.run_test(size=size) as pilot:
        await ready(pilot, app)
        await until(lambda: len(app.expo.rows) == 5, what="five orders listed")
        rows = {r.number: r for r in app.expo.rows}
        assert app.expo.rows[0].id == orders["lobster"].order_id
        assert "WILL MISS DUE" in rows[orders["delivery"].number].alerts
        assert snap == await _shot(pilot, app)
