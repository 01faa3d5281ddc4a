"""The kitchen screen driven by keys (Pilot) against a real hub on loopback: every action reaches the hub and the
station's other screens; cancellations, amendments, rush, recall, all-day counts, paging, the bump bar key map, the
printer alert, and bumps made while the hub is away (kept on disk, sent once it is back).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kds.client import Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import Ack, OrderAccepted, PrinterState, PrinterStatus, Welcome
from kds.server import HubServer
from kds.store import Store
from terminals.kitchen.all_day_screen import AllDayScreen
from terminals.kitchen.app import KitchenApp, create_app
from terminals.kitchen.board import Board
from terminals.kitchen.help_screen import HelpScreen
from terminals.kitchen.recall_screen import RecallScreen
from terminals.kitchen.scheduled_screen import ScheduledScreen
from tests.conftest import app_order, shelf_order
from tests.support import until

ClientFactory = Callable[..., Any]
SIZE = (120, 40)


def kitchen(
    config: StoreConfig,
    url: str,
    device: str = "wok-1",
    *,
    keymap: dict[str, str] | None = None,
    replaces_defaults: bool | None = None,
    queue_path: Path | None = None,
    acks_path: Path | None = None,
) -> KitchenApp:
    """A kitchen screen for a device of the sample config (its own key map unless `keymap` is given), in the
    device's language."""
    dev = config.device(device)
    assert dev is not None and dev.station is not None
    client = HubClient.for_device(url, dev, backoff=Backoff(first=0.05, cap=0.3), queue_path=queue_path)
    return create_app(
        client,
        station=dev.station,
        keymap=dict(dev.keymap) if keymap is None else keymap,
        keymap_replaces_defaults=dev.keymap_replaces_defaults if replaces_defaults is None else replaces_defaults,
        acks_path=acks_path,
        close_client=True,
        language=config.language_of(device),
        config=config,
    )


def board(app: KitchenApp) -> str:
    """The board's text."""
    return app.query_one(Board).plain


def numbers(app: KitchenApp) -> list[str]:
    """Order numbers on the board, in order."""
    return [e.number for e in app.entries]


def ticket(hub: HubServer, order_id: str, station: str = "wok") -> Any:
    """The hub's own ticket."""
    return hub.hub.orders[order_id].by_station[station]


async def submit(client: HubClient, order: dict[str, Any]) -> OrderAccepted:
    """Submit an order and return the hub's answer (order_id, number)."""
    return await client.request({"type": "order.submit", "order": order}, expect=OrderAccepted)


def wok_order(key: str, **over: Any) -> dict[str, Any]:
    """A kiosk dine-in order with two wok dishes and a drink."""
    order: dict[str, Any] = {
        "key": key,
        "channel": "kiosk",
        "fulfilment": {"type": "dine_in", "table": "7"},
        "items": [
            {"sku": "WOK-KUNGPAO", "qty": 2, "modifiers": ["less spicy"]},
            {"sku": "WOK-MAPO", "qty": 1, "note": "tofu well done"},
            {"sku": "BAR-LEMONTEA", "qty": 1},
        ],
    }
    order.update(over)
    return order


@asynccontextmanager
async def running(app: KitchenApp, size: tuple[int, int] = SIZE) -> AsyncIterator[Any]:
    """Run the app headless until it is connected and has drawn the welcome."""
    async with app.run_test(size=size) as pilot:
        await until(lambda: app.client.state is LinkState.ONLINE and app._welcomed, what="kitchen screen online")
        yield pilot


async def test_start_and_bump_reach_the_hub_and_the_other_screen_of_the_station(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    wok1, wok2 = kitchen(config, hub.url, "wok-1"), kitchen(config, hub.url, "wok-2")
    async with running(wok1) as pilot, running(wok2):
        a = await submit(kiosk, wok_order("k-1"))
        b = await submit(kiosk, wok_order("k-2", fulfilment={"type": "dine_in", "table": "9"}))
        await until(lambda: numbers(wok1) == [a.number, b.number] and len(wok2.entries) == 2)
        # A new ticket rings the bell and is highlighted.
        assert wok1.bells >= 1 and all(e.fresh for e in wok1.entries)
        assert "★ NEW" in board(wok1) and "TABLE" in board(wok1)

        await pilot.press("s")  # wok-1's bump bar: start = s
        await until(lambda: ticket(hub, a.order_id).state.value == "started", what="start reached the hub")
        await until(lambda: "COOKING" in board(wok2))
        assert wok1.entries[0].state == "started" and not wok1.entries[0].fresh

        await pilot.press("b")  # bump = b
        await until(lambda: ticket(hub, a.order_id).state.value == "done", what="bump reached the hub")
        await until(lambda: numbers(wok2) == [b.number] and numbers(wok1) == [b.number])
        assert wok1.selected == wok1.entries[0].id, "the next ticket takes the selection"
        assert not wok1.state.pending and len(wok1.client.queue) == 0


async def test_bump_one_item_then_the_other(config: StoreConfig, hub: HubServer, connect: ClientFactory) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url)
    async with running(app) as pilot:
        a = await submit(kiosk, wok_order("k-1"))
        await until(lambda: len(app.entries) == 1)
        assert app.cursor == "1"
        await pilot.press("down")
        assert app.cursor == "2" and "▸ 1× Mapo tofu" in board(app)
        await pilot.press("space")
        order = hub.hub.orders[a.order_id]
        kungpao, tofu = order.items[0], order.items[1]
        await until(lambda: tofu.done_at is not None, what="item bump reached the hub")
        assert kungpao.done_at is None and order.by_station["wok"].state.value == "started"
        await until(lambda: "✓ 1× Mapo tofu" in board(app))
        assert app.cursor == "1"
        await pilot.press("space")
        await until(lambda: order.by_station["wok"].state.value == "done", what="last item bumps the ticket")
        await until(lambda: not app.entries)
        assert "No open tickets" in board(app)


async def test_recall_reopens_a_bumped_ticket_but_not_a_handed_over_order(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk, counter = await connect("kiosk-1"), await connect("counter-1")
    app = kitchen(config, hub.url)
    drinks = await connect("bar-1")
    async with running(app) as pilot:
        a = await submit(kiosk, wok_order("k-1"))
        b = await submit(kiosk, wok_order("k-2"))
        await until(lambda: len(app.entries) == 2)
        await pilot.press("b", "b")
        await until(lambda: not app.entries and ticket(hub, b.order_id).state.value == "done")
        # b is handed over: bar bumps its part, the counter hands it over.
        await drinks.request({"type": "ticket.bump", "ticket_id": f"{b.order_id}/bar"})
        await counter.request({"type": "order.handover", "order_id": b.order_id})

        await pilot.press("r")
        recall = app.screen
        assert isinstance(recall, RecallScreen)
        await until(lambda: "handed over" in recall.plain)
        lines = recall.plain.splitlines()
        assert [ln[2:].split()[0] for ln in lines] == [b.number, a.number], "latest bump first"
        await pilot.press("r")  # the highlighted one: b, handed over
        assert isinstance(app.screen, RecallScreen) and "cannot be recalled" in app.screen.message
        assert ticket(hub, b.order_id).state.value == "done"
        await pilot.press("down", "r")
        assert not isinstance(app.screen, RecallScreen)
        await until(lambda: ticket(hub, a.order_id).state.value == "started", what="recall reached the hub")
        await until(lambda: numbers(app) == [a.number] and "RECALLED" in board(app))
        assert app.selected == app.entries[0].id


async def test_a_cancelled_ticket_is_struck_through_until_acknowledged(
    config: StoreConfig, hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    kiosk = await connect("kiosk-1")
    acks = tmp_path / "acks.json"
    app = kitchen(config, hub.url, acks_path=acks)
    async with running(app) as pilot:
        a = await submit(kiosk, wok_order("k-1"))
        b = await submit(kiosk, wok_order("k-2"))
        await until(lambda: len(app.entries) == 2)
        await pilot.press("right")  # the cook is on b
        rang = app.bells
        await kiosk.request({"type": "order.cancel", "order_id": b.order_id, "reason": "customer left"})
        await until(lambda: app.entries[0].needs_ack, what="cancellation shown")
        assert app.bells > rang
        assert numbers(app) == [b.number, a.number], "a cancellation goes first: stop cooking it"
        assert "CANCELLED" in board(app) and "customer left" in board(app)
        assert app.selected == app.entries[0].id, "still the same ticket under the cook's hand"
        await pilot.press("s")  # neither start nor bump sends anything for a cancelled ticket: they clear it
        await until(lambda: numbers(app) == [a.number])
        assert json.loads(acks.read_text()) == [f"{b.order_id}/wok"]
    # A restarted screen does not ask again.
    again = kitchen(config, hub.url, acks_path=acks)
    async with running(again):
        await until(lambda: len(again.entries) == 1)
        assert numbers(again) == [a.number]


async def test_an_amended_ticket_marks_the_changed_lines(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url)
    async with running(app):
        a = await submit(kiosk, wok_order("k-1"))
        await until(lambda: len(app.entries) == 1)
        rang = app.bells
        answer = await kiosk.request(
            {
                "type": "order.amend",
                "order_id": a.order_id,
                "add": [{"sku": "WOK-GREENS", "qty": 1}],
                "remove": ["1"],
                "item_notes": {"2": "no pork"},
            }
        )
        assert isinstance(answer, Ack), answer
        await until(lambda: "ADDED" in board(app), what="amendment shown")
        text = board(app)
        assert "AMENDED" in text and "REMOVED" in text and "NOTE CHANGED" in text and "no pork" in text
        assert "✗ 2× Kung pao chicken" in text and "+ 1× Stir-fried seasonal greens" in text
        assert app.bells > rang
        # The removed dish is not counted any more.
        await until(lambda: [i.id for i in app.entries[0].open_items()] == ["2", "4"])


async def test_rush_jumps_ahead(config: StoreConfig, hub: HubServer, connect: ClientFactory) -> None:
    kiosk, appb = await connect("kiosk-1"), await connect("app-backend")
    app = kitchen(config, hub.url)
    async with running(app):
        a = await submit(kiosk, wok_order("k-1"))
        b = await submit(kiosk, wok_order("k-2"))
        r = await submit(appb, app_order("a-1", priority="rush"))
        await until(lambda: len(app.entries) == 3)
        assert numbers(app) == [r.number, a.number, b.number]
        assert "RUSH" in board(app).splitlines()[0]


async def test_all_day_counts_what_is_left_to_make(config: StoreConfig, hub: HubServer, connect: ClientFactory) -> None:
    kiosk, shelf = await connect("kiosk-1"), await connect("shelf-1")
    app = kitchen(config, hub.url)
    async with running(app) as pilot:
        await submit(kiosk, wok_order("k-1"))
        await submit(kiosk, wok_order("k-2", items=[{"sku": "WOK-KUNGPAO", "qty": 3}]))
        await submit(shelf, shelf_order("s-1"))
        await submit(shelf, shelf_order("s-2", items=[{"sku": "LOB-AUS", "weight_g": 1200, "cook": "ginger_scallion"}]))
        await until(lambda: len(app.entries) == 4)
        await pilot.press("a")
        assert isinstance(app.screen, AllDayScreen)
        rows = app.screen.plain.splitlines()
        assert rows[1].split()[:4] == ["5", "Kung", "pao", "chicken"]
        lobster = next(r for r in rows if "lobster" in r)
        assert lobster.split()[0] == "2" and "Wok-fried with ginger and scallion" in lobster and "2.00 kg" in lobster
        assert any(r.split()[0] == "1" and "Mapo tofu" in r for r in rows[1:])
        # Bumping the first ticket (2 kung pao, 1 mapo tofu) changes the totals while the view is open.
        await pilot.press("a")
        assert not isinstance(app.screen, AllDayScreen)
        await pilot.press("b", "a")
        screen = app.screen
        assert isinstance(screen, AllDayScreen)
        await until(lambda: screen.plain.splitlines()[1].split()[0] == "3")
        assert "Mapo tofu" not in screen.plain
        await pilot.press("escape")
        assert not isinstance(app.screen, AllDayScreen)


async def test_more_tickets_than_fit_are_paged_with_a_count(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url)
    async with running(app, size=(80, 24)) as pilot:
        for k in range(9):
            await submit(kiosk, wok_order(f"k-{k}", items=[{"sku": "WOK-MAPO", "qty": 1}]))
        await until(lambda: len(app.entries) == 9)
        b = app.query_one(Board)
        shown = len(b.page_entries())
        assert 0 < shown < 9 and len(b.pages) > 1
        header = str(app.query_one("#header").render())
        assert f"+{9 - shown} more" in header and f"page 1/{len(b.pages)}" in header
        await pilot.press("n")  # next page
        assert b.page_index == 1 and app.selected == b.page_entries()[0].id
        assert "before" in str(app.query_one("#header").render())
        await pilot.press("1")  # first ticket of this page
        assert app.selected == b.page_entries()[0].id
        await pilot.press("home")
        assert b.page_index == 0 and app.selected == app.entries[0].id
        assert shown >= 2, "80×24 shows at least two cards"
        await pilot.press("2")  # second ticket of the page
        assert app.selected == b.page_entries()[1].id
        await pilot.press("home")
        await pilot.press(*["right"] * shown)  # walking past the last card of a page turns the page
        assert b.page_index == 1


async def test_a_bump_bar_key_map_adds_keys_to_the_defaults(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    dev = config.device("wok-1")
    assert dev is not None and dev.keymap and not dev.keymap_replaces_defaults
    app = kitchen(config, hub.url, "wok-1")  # the sample config's wok-1, with its bump bar keymap
    async with running(app) as pilot:
        a = await submit(kiosk, wok_order("k-1"))
        b = await submit(kiosk, wok_order("k-2"))
        await until(lambda: len(app.entries) == 2)
        await pilot.press("enter")  # the default bump key still bumps
        await until(lambda: ticket(hub, a.order_id).state.value == "done", what="Enter bumped")
        await pilot.press("b")  # and the device's own
        await until(lambda: ticket(hub, b.order_id).state.value == "done", what="B bumped")
    app = kitchen(config, hub.url, "wok-2", keymap={"bump": "5", "help": "0"})
    async with running(app) as pilot:
        c = await submit(kiosk, wok_order("k-3"))
        d = await submit(kiosk, wok_order("k-4"))
        await until(lambda: len(app.entries) == 2)
        await pilot.press("5")  # 5 bumps on this device (it no longer picks ticket 5)
        await until(lambda: ticket(hub, c.order_id).state.value == "done", what="5 bumped")
        await pilot.press("enter")
        await until(lambda: ticket(hub, d.order_id).state.value == "done", what="Enter bumped")
        await pilot.press("0")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        assert "Enter/B/5  bump the selected ticket" in text and "?/F1/0  this help" in text
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)


async def test_a_bump_bar_key_map_replaces_the_default_keys_when_the_device_says_so(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url, "wok-2", keymap={"bump": "5", "next": "6", "help": "0"}, replaces_defaults=True)
    async with running(app) as pilot:
        a = await submit(kiosk, wok_order("k-1"))
        b = await submit(kiosk, wok_order("k-2"))
        await until(lambda: len(app.entries) == 2)
        await pilot.press("enter", "b")  # the default bump keys do nothing on this device
        assert not app.state.pending and ticket(hub, a.order_id).state.value == "new"
        await pilot.press("6", "5")
        await until(lambda: ticket(hub, b.order_id).state.value == "done")
        assert ticket(hub, a.order_id).state.value == "new"
        await pilot.press("0")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        assert "5  bump the selected ticket" in text and "6  select the next ticket" in text
        assert "Enter" not in text and "—  close the list or overlay" in text, "the defaults are gone"
        await pilot.press("escape")  # no key closes it but the device's own help key
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("0")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_help_overlay_lists_the_device_keys(config: StoreConfig, hub: HubServer) -> None:
    app = kitchen(config, hub.url, "wok-1")
    async with running(app) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        assert "Enter/B  bump the selected ticket" in text  # wok-1: bump = b, added to the defaults
        assert "Space  bump the item" in text and "R  recall list" in text
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)


async def test_printer_trouble_shows_a_loud_line_until_the_printer_is_back(config: StoreConfig, hub: HubServer) -> None:
    app = kitchen(config, hub.url)
    async with running(app) as pilot:
        alert = app.query_one("#printer-alert")
        frame = {
            "type": "printer.status",
            "printer": "wok-printer",
            "stations": ["wok"],
            "ok": False,
            "state": "paper_out",
            "message": "load a new roll",
            "at": "2026-11-25T12:00:00+08:00",
        }
        app.show_printer_status(PrinterStatus.model_validate({**frame, "printer": "bar-printer", "stations": ["bar"]}))
        assert not alert.display
        app.show_printer_status(PrinterStatus.model_validate(frame))
        await pilot.pause()
        assert alert.display and "PRINTER wok-printer: paper out — load a new roll" in str(alert.render())
        assert app.bells == 1
        app.show_printer_status(PrinterStatus.model_validate({**frame, "ok": True, "state": "ok", "message": ""}))
        await pilot.pause()
        assert not alert.display


async def test_bumps_made_while_the_hub_is_down_are_sent_once_it_is_back(
    config: StoreConfig, db_path: Path, tmp_path: Path
) -> None:
    first = HubServer(OrderHub(config), Store(db_path, store_id=config.store.id), host="127.0.0.1", port=0)
    await first.start()
    port = first.port
    kiosk = HubClient.for_device(first.url, config.device("kiosk-1"), backoff=Backoff(first=0.05, cap=0.3))  # type: ignore[arg-type]
    await kiosk.connect()
    queue = tmp_path / "queue-wok-1.jsonl"
    app = kitchen(config, first.url, queue_path=queue)
    second: HubServer | None = None
    try:
        async with running(app) as pilot:
            a = await submit(kiosk, wok_order("k-1"))
            b = await submit(kiosk, wok_order("k-2"))
            await until(lambda: len(app.entries) == 2)
            await kiosk.close()
            await first.stop()
            await until(lambda: app.client.state is not LinkState.ONLINE, what="link down")
            await until(lambda: bool(app.query_one("#offline").display), what="OFFLINE banner")
            assert "OFFLINE" in str(app.query_one("#offline").render())
            assert numbers(app) == [a.number, b.number], "the last state stays on the screen"

            await pilot.press("b")  # bump a while the hub is down
            assert numbers(app) == [b.number], "shown bumped at once"
            assert [m["type"] for m in map(json.loads, queue.read_text().splitlines())] == ["ticket.bump"]
            await until(lambda: "1 action" in str(app.query_one("#status").render()))

            second = HubServer(OrderHub(config), Store(db_path, store_id=config.store.id), host="127.0.0.1", port=port)
            await second.start()
            await until(lambda: app.client.state is LinkState.ONLINE, timeout=10, what="reconnected")
            await until(lambda: ticket(second, a.order_id).state.value == "done", what="queued bump applied")
            await until(lambda: len(app.client.queue) == 0 and not app.state.pending)
            assert queue.read_text() == ""
            bumps = [r for r in second.hub.log if r.kind.value == "ticket.bumped" and r.order_id == a.order_id]
            assert len(bumps) == 1, "applied once"
            assert numbers(app) == [b.number]
            assert not app.query_one("#offline").display
    finally:
        await app.client.close()
        if second is not None:
            await second.stop()


async def test_after_a_dropped_link_the_screen_catches_up_with_resume_from(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    dev = config.device("wok-1")
    assert dev is not None
    # A slow first retry leaves time to change things while the screen is away.
    client = HubClient.for_device(hub.url, dev, backoff=Backoff(first=0.6, cap=0.6))
    app = create_app(client, station="wok", keymap=dict(dev.keymap), close_client=True)
    async with running(app):
        a = await submit(kiosk, wok_order("k-1"))
        b = await submit(kiosk, wok_order("k-2"))
        await until(lambda: len(app.entries) == 2)
        welcomes: list[Welcome] = []
        client.listeners.append(lambda f: welcomes.append(f) if isinstance(f, Welcome) else None)
        rang = app.bells
        await client.drop()
        c = await submit(kiosk, wok_order("k-3"))
        await kiosk.request({"type": "order.cancel", "order_id": a.order_id})
        await until(lambda: client.connections == 2 and client.state is LinkState.ONLINE, what="reconnected")
        assert welcomes and welcomes[0].resumed and welcomes[0].replay == 2, "resumed, not a new snapshot"
        await until(lambda: numbers(app) == [a.number, b.number, c.number])
        assert app.entries[0].needs_ack and app.entries[2].fresh and app.bells > rang


async def test_a_screen_that_never_reached_its_hub_says_where_it_looked(config: StoreConfig) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))  # bound, not listening: nobody answers there, and nobody takes the port
        url = f"ws://127.0.0.1:{held.getsockname()[1]}"
        app = kitchen(config, url)
        async with app.run_test(size=SIZE):
            await until(lambda: app.client.state is LinkState.OFFLINE, what="the first attempt failed")
            await until(lambda: bool(app.query_one("#offline").display), what="OFFLINE banner")
            banner = str(app.query_one("#offline").render())
            assert f"no hub answers at {url}" in banner and "kds serve" in banner and "--hub" in banner


def printer_status(printer: str, stations: list[str], *, ok: bool, state: str) -> PrinterStatus:
    return PrinterStatus(
        type="printer.status",
        printer=printer,
        stations=stations,
        ok=ok,
        state=PrinterState(state),
        message="",
        at=datetime(2026, 11, 25, 4, 0, tzinfo=UTC),
    )


def test_printer_alerts_take_at_most_three_lines_the_stations_own_printer_first() -> None:
    from terminals.kitchen.printer_alert import PrinterAlert

    alert = PrinterAlert("wok", language="zh")
    others = ["bar-printer", "cold-printer", "grill-printer", "seafood-printer"]
    for p in others:  # printers whose backup is the wok printer: their tickets come out here
        assert alert.apply(printer_status(p, [p.split("-")[0], "wok"], ok=False, state="offline"))
    assert alert.apply(printer_status("wok-printer", ["wok"], ok=False, state="paper_out"))
    lines = alert.text.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("⚠ 打印机 wok-printer: 缺纸"), "the station's own printer first, in Chinese"
    assert lines[2].startswith("⚠ 另有 3 台打印机") and all(p in lines[2] for p in others[1:])
    assert not alert.apply(printer_status("bar-printer", ["bar"], ok=True, state="ok"))


async def test_an_order_for_later_waits_off_the_board_until_the_counter_fires_it(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk, counter = await connect("kiosk-1"), await connect("counter-1")
    wok = kitchen(config, hub.url, "wok-1")
    async with running(wok) as pilot:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
        later = await submit(kiosk, wok_order("k-later", fulfilment={"type": "pickup", "at": at.isoformat()}))
        now = await submit(kiosk, wok_order("k-now"))
        await until(lambda: numbers(wok) == [now.number], what="only the order for now on the board")
        header = str(wok.query_one("#header").render())
        fire_at = hub.hub.orders[later.order_id].by_station["wok"].fire_at
        assert fire_at is not None
        assert f"1 scheduled (next {later.number} at {fire_at.astimezone(wok.tz):%H:%M}, in " in header, header
        bells = wok.bells
        await counter.request({"type": "order.fire", "order_id": later.order_id}, expect=Ack)
        await until(lambda: numbers(wok) == [now.number, later.number], what="the fired order on the board")
        assert wok.bells > bells and "scheduled" not in str(wok.query_one("#header").render())
        # The cook holds the selected one (the order for now, first), then fires it again (F: the next waiting).
        await pilot.press("h")
        await until(lambda: numbers(wok) == [later.number], what="held off the board")
        assert "1 held" in str(wok.query_one("#header").render())
        assert hub.hub.orders[now.order_id].by_station["wok"].held
        await pilot.press("f")  # the list of what waits: the held one, then fire it
        await until(lambda: isinstance(wok.screen, ScheduledScreen), what="the list for later")
        assert isinstance(wok.screen, ScheduledScreen) and now.number in wok.screen.plain and "held" in wok.screen.plain
        await pilot.press("enter")
        await until(lambda: set(numbers(wok)) == {now.number, later.number}, what="fired again")
        assert not hub.hub.orders[now.order_id].by_station["wok"].waiting
