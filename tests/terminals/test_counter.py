"""The counter screen (Textual, driven by Pilot from the keys alone) against a real hub on loopback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Static

from kds.config import StoreConfig
from kds.protocol import DineIn, OrderAccepted, Pickup
from kds.server import HubServer
from terminals.counter.widgets import BigNumber, FieldError, WeightInput
from tests.conftest import app_order, shelf_order
from tests.support import free_port, status_of, until
from tests.terminals.test_counter_support import counter_app, hub_server, key_item, ready, type_text

ClientFactory = Callable[..., Any]


def _error(app: Any, field: str) -> str:
    return str(app.intake.query_one(f"#{field}-error", FieldError).text)


# ---------------------------------------------------------------------------------------------------- intake


async def test_a_shelf_order_keyed_in_reaches_the_right_stations(
    hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    cold = await connect("cold-1")
    seafood = await connect("seafood-1")
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        await key_item(pilot, intake, "lobster", weight=800, cook="sashimi")
        await key_item(
            pilot, intake, "LOB-AUS", weight=1250, cook="steamed", note="less salt", allergens=["peanut", "tree nuts"]
        )
        assert [line.product.sku for line in intake.draft.lines] == ["LOB-AUS", "LOB-AUS"]
        assert intake.draft.channel == "shelf"
        # Enter on the empty item field goes on to the table; Enter there sends.
        await pilot.press("enter")
        await type_text(pilot, "12")
        await pilot.press("enter")
        await until(lambda: intake.accepted is not None, what="order accepted")
        assert intake.accepted is not None
        number, order_id = intake.accepted.number, intake.accepted.order_id
        assert number.startswith("S")
        assert app.intake.query_one("#accepted-number", BigNumber).number == number
        assert intake.draft.lines == [], "a fresh order is ready for the next customer"

        # The cold kitchen gets the sashimi, the seafood station the steamed lobster, with weight and claim tag.
        await until(lambda: order_id in cold.book.orders and order_id in seafood.book.orders, what="stations")
        order = cold.book.orders[order_id]
        assert order.channel == "shelf" and order.fulfilment == DineIn(type="dine_in", table="12")
        by_station = {it.station: it for it in order.items}
        assert set(by_station) == {"cold", "seafood"}
        assert by_station["cold"].cook == "sashimi" and by_station["cold"].weight_g == 800
        steamed = by_station["seafood"]
        assert (steamed.cook, steamed.weight_g, steamed.note) == ("steamed", 1250, "less salt")
        assert {"peanut", "tree_nuts", "shellfish"} <= set(steamed.allergens)
        assert by_station["cold"].tag and steamed.tag and by_station["cold"].tag != steamed.tag
        assert [t.station for t in seafood.book.orders[order_id].tickets] == ["cold", "seafood"]
        info = str(intake.query_one("#accepted-info", Static).render())
        assert f"Order {number} accepted · DINE-IN · table 12 · 2 items" in info
        # The claim tag went to the hub's printing (print.request answered).
        await until(lambda: "Claim tags" in str(intake.query_one("#tag-state").render()), what="claim tag state")


async def test_scanner_scale_label_chinese_name_and_a_walk_up_pickup(hub: HubServer, tmp_path: Path) -> None:
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        # A barcode typed by a scanner (digits and Enter) finds the item.
        await key_item(pilot, intake, "6927351000289", add=False)
        assert intake.product is not None and intake.product.sku == "BAR-MILKTEA"
        await pilot.press("escape")
        # A scale label carries the weight: 21 + item 10001 + 00700 g + check digit.
        await key_item(pilot, intake, "2110001007002", add=False)
        assert intake.product is not None and intake.product.sku == "LOB-AUS"
        weight = intake.query_one("#weight", WeightInput)
        assert weight.grams == 700 and weight.has_class("-from-scale")
        assert app.focused is not None and app.focused.id == "cook", "weight known: on to the cooking method"
        await pilot.press("escape")
        # Names in Chinese or English, anywhere in the name.
        await type_text(pilot, "宫保")
        await pilot.pause()
        assert [p.sku for p in intake.matches] == ["WOK-KUNGPAO"]
        await pilot.press("enter")
        await type_text(pilot, "2")
        await pilot.press("f4")
        await key_item(pilot, intake, "milk tea")
        assert [(line.product.sku, line.qty) for line in intake.draft.lines] == [("WOK-KUNGPAO", 2), ("BAR-MILKTEA", 1)]
        assert intake.draft.channel == "kiosk" and all(line.tag is None for line in intake.draft.lines)
        await pilot.press("f8")  # pickup: no table needed
        await pilot.press("f5")
        await until(lambda: intake.accepted is not None, what="order accepted")
        assert intake.accepted is not None and intake.accepted.number.startswith("K")
        order = hub.hub.orders[intake.accepted.order_id]
        assert order.channel == "kiosk" and order.fulfilment == Pickup(type="pickup", at=None)
        assert [(i.sku, i.qty) for i in order.items] == [("WOK-KUNGPAO", 2), ("BAR-MILKTEA", 1)]


async def test_bad_entries_are_shown_next_to_their_field_and_nothing_is_sent(hub: HubServer, tmp_path: Path) -> None:
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        await key_item(pilot, intake, "XYZ-404", add=False)
        assert _error(app, "find") == "unknown SKU or barcode 'XYZ-404'"
        await pilot.press("escape")
        await key_item(pilot, intake, "2110001000000", add=False)  # a scale label with a bad check digit
        assert "unknown SKU or barcode" in _error(app, "find")
        await pilot.press("escape")

        # A 30 kg lobster typed by mistake, and no cooking method chosen.
        await key_item(pilot, intake, "LOB-AUS", weight=30000)
        assert _error(app, "weight") == "30000 g is outside 500–3000 g for Australian rock lobster"
        assert _error(app, "cook") == "choose a cooking method for Australian rock lobster"
        assert intake.draft.lines == [] and app.focused is not None and app.focused.id == "weight"
        # F5 with that item in the form sends nothing either.
        await pilot.press("f5")
        assert "Not sent" in str(intake.query_one("#send-state").render())

        # Fixed: the errors go; the line is added. Then dine-in without a table is refused before sending.
        intake.query_one("#weight", WeightInput).value = ""
        await type_text(pilot, "900")
        await pilot.press("enter", "enter", "f4")
        await pilot.pause()
        assert _error(app, "weight") == "" and _error(app, "cook") == ""
        assert len(intake.draft.lines) == 1
        await pilot.press("f5")
        assert _error(app, "table") == "enter the table number (or choose pickup)"
        assert app.focused is not None and app.focused.id == "table"

        # An empty order cannot be sent.
        await pilot.press("f6", "f6")
        assert intake.draft.lines == []
        await pilot.press("f5")
        assert "no items" in _error(app, "lines")

        await pilot.pause()
        assert intake.refs == set() and len(app.client.queue) == 0
        assert hub.hub.orders == {}, "nothing reached the hub"


async def test_a_double_press_and_a_resend_after_a_dropped_link_make_one_order(hub: HubServer, tmp_path: Path) -> None:
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        await key_item(pilot, intake, "CRAB-MUD", weight=600, cook="spicy")
        await pilot.press("enter")
        await type_text(pilot, "8")
        await pilot.press("f5", "f5")
        await until(lambda: intake.accepted is not None, what="accepted")
        assert len(hub.hub.orders) == 1 and len(intake.refs) == 1

        # Sent, then the link drops before the answer: the durable queue resends with the same key.
        await key_item(pilot, intake, "GEODUCK", weight=700, cook="sashimi")
        await pilot.press("f8", "f5")
        await app.client.drop()
        await until(lambda: intake.accepted is not None and intake.accepted.draft.lines[0].product.sku == "GEODUCK")
        await until(lambda: len(app.client.queue) == 0, what="queue drained")
        assert len(hub.hub.orders) == 2
        assert sorted(o.items[0].sku for o in hub.hub.orders.values()) == ["CRAB-MUD", "GEODUCK"]


async def test_offline_the_order_and_the_call_are_queued_and_sent_when_the_hub_is_back(
    config: StoreConfig, connect: ClientFactory, tmp_path: Path
) -> None:
    port = free_port()
    first = hub_server(config, tmp_path / "hub.sqlite3", port=port)
    await first.start()
    kiosk = await connect("kiosk-1", first.url)
    bar = await connect("bar-1", first.url)
    tea = await kiosk.request(
        {
            "type": "order.submit",
            "order": app_order("t-off", channel="kiosk", fulfilment={"type": "pickup"}, items=[{"sku": "BAR-MILKTEA"}]),
        },
        expect=OrderAccepted,
    )
    await bar.request({"type": "ticket.bump", "ticket_id": f"{tea.order_id}/bar"})
    app = counter_app(first.url, tmp_path, view="expo")
    second: HubServer | None = None
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(pilot, app)
            await until(lambda: bool(app.expo.rows) and app.expo.rows[0].ready, what="ready order listed")
            await first.stop()
            await until(lambda: app.client.state.value == "offline", what="offline")
            # The expo keeps the last state it had; a call made now waits in the queue, marked on its row.
            await pilot.press("c")
            assert "OFFLINE" in app.expo.last_message and app.expo.pending == {tea.order_id: "call"}
            assert "⧗ call" in str(app.expo.query_one("#orders", DataTable).get_row_at(0)[2])

            await pilot.press("f2")
            intake = app.intake
            await key_item(pilot, intake, "FISH-GROUPER", weight=1200, cook="steamed")
            await pilot.press("enter")
            await type_text(pilot, "21")
            await pilot.press("enter")
            assert "OFFLINE" in str(intake.query_one("#send-state").render())
            banner = app.screen.query_one("OfflineBanner")
            await until(lambda: "2 actions queued" in str(banner.render()), what="banner counts the queue")
            assert intake.accepted is None

            second = hub_server(config, tmp_path / "hub.sqlite3", port=port)
            await second.start()
            await until(lambda: intake.accepted is not None, timeout=10, what="accepted after reconnect")
            await until(lambda: app.client.book.orders[tea.order_id].called_at is not None, what="called")
            assert len(second.hub.orders) == 2 and len(app.client.queue) == 0
            await until(lambda: any("resynced" in n for n in app.notices), what="resync said")
            await pilot.press("f3")
            await until(lambda: app.expo.pending == {} and app.expo.rows[0].called, what="call answered")
            assert app.bells == 1
    finally:
        if second is not None:
            await second.stop()


# ---------------------------------------------------------------------------------------------------- expo


async def test_an_order_turns_ready_when_its_stations_bump_and_its_source_is_told(
    hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    shelf = await connect("shelf-1")
    app_backend = await connect("app-backend")
    wok = await connect("wok-1")
    cold = await connect("cold-1")
    bar = await connect("bar-1")
    app = counter_app(hub.url, tmp_path, view="expo")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        lobster = await shelf.request(
            {"type": "order.submit", "order": shelf_order("counter-t1")}, expect=OrderAccepted
        )
        delivery = await app_backend.request(
            {"type": "order.submit", "order": app_order("counter-t2")}, expect=OrderAccepted
        )
        expo = app.expo
        await until(lambda: {r.number for r in expo.rows} == {lobster.number, delivery.number}, what="listed")
        row = next(r for r in expo.rows if r.number == lobster.number)
        assert [s.label() for s in row.stations] == ["wok 0/1", "cold 0/1"] and not row.ready

        await wok.request({"type": "ticket.bump", "ticket_id": f"{lobster.order_id}/wok"})
        await until(lambda: "wok ✓" in [s.label() for s in expo.rows[-1].stations + expo.rows[0].stations])
        await cold.request({"type": "ticket.bump", "ticket_id": f"{lobster.order_id}/cold"})
        # READY, and moved to the top above the older-looking delivery.
        await until(lambda: expo.rows[0].number == lobster.number and expo.rows[0].ready, what="ready on top")
        assert [s.label() for s in expo.rows[0].stations] == ["wok ✓", "cold ✓"]
        assert "READY" in str(expo.query_one("#orders", DataTable).get_row_at(0)[2])
        await until(lambda: status_of(shelf, lobster.order_id) == "ready", what="source told")
        assert set(shelf.book.statuses[lobster.order_id].ready) == {"wok", "cold"}

        # The app's delivery: progress per station, then READY; the app backend hears it too.
        await bar.request({"type": "item.bump", "ticket_id": f"{delivery.order_id}/bar", "item_id": "2"})
        await until(
            lambda: any(r.number == delivery.number and "bar ✓" in [s.label() for s in r.stations] for r in expo.rows)
        )
        await wok.request({"type": "ticket.bump", "ticket_id": f"{delivery.order_id}/wok"})
        await until(lambda: status_of(app_backend, delivery.order_id) == "ready")
        await until(lambda: all(r.ready for r in expo.rows), what="both ready")


async def test_call_hand_over_recall_and_print_from_the_keys(
    hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    shelf = await connect("shelf-1")
    wok = await connect("wok-1")
    cold = await connect("cold-1")
    lobster = await shelf.request({"type": "order.submit", "order": shelf_order("counter-t3")}, expect=OrderAccepted)
    for station in ("wok", "cold"):
        client = wok if station == "wok" else cold
        await client.request({"type": "ticket.bump", "ticket_id": f"{lobster.order_id}/{station}"})
    app = counter_app(hub.url, tmp_path, view="expo")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        expo = app.expo
        await until(lambda: bool(expo.rows) and expo.rows[0].ready, what="ready order listed")
        order_id, number = lobster.order_id, lobster.number

        await pilot.press("c")
        await until(lambda: expo.rows[0].called, what="called")
        assert app.bells == 1 and f"{number} called" in expo.last_message
        assert app.client.book.orders[order_id].called_at is not None

        # h asks to whom (a table order: the runner is the default choice).
        await pilot.press("h")
        await until(lambda: app.screen.__class__.__name__ == "ChoiceDialog", what="dialog")
        await pilot.press("enter")
        await until(lambda: app.client.book.orders[order_id].status == "handed_over", what="handed over")
        assert app.client.book.orders[order_id].handed_over_to == "runner"
        await until(lambda: status_of(shelf, order_id) == "handed_over", what="source told")
        table = expo.query_one("#orders", DataTable)
        await until(lambda: expo.rows[-1].closed and "→ runner" in str(table.get_row_at(table.row_count - 1)[2]))

        # Handed over by mistake: r takes it back (READY again, at the top).
        await pilot.press("r")
        await until(lambda: expo.rows[0].ready and expo.rows[0].number == number, what="recalled")
        assert "recalled" in expo.last_message

        # p prints again: the expo slip by default.
        await pilot.press("p")
        await until(lambda: app.screen.__class__.__name__ == "ChoiceDialog", what="dialog")
        await pilot.press("enter")
        await until(lambda: "printer" in expo.last_message, what="printed")
        assert expo.last_message.endswith(f"expo slip of {number} sent to the printer")

        # Hand over to a rider by its letter, from the dialog.
        await pilot.press("h")
        await until(lambda: app.screen.__class__.__name__ == "ChoiceDialog", what="dialog")
        await pilot.press("d")
        await until(lambda: app.client.book.orders[order_id].handed_over_to == "rider", what="rider")


async def test_refusals_are_said_in_words_next_to_the_action(
    hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    shelf = await connect("shelf-1")
    accepted = await shelf.request({"type": "order.submit", "order": shelf_order("counter-t4")}, expect=OrderAccepted)
    app = counter_app(hub.url, tmp_path, view="expo")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        expo = app.expo
        await until(lambda: len(expo.rows) == 1, what="listed")
        number = accepted.number
        # Not ready: call and hand over are refused before anything is sent.
        await pilot.press("c")
        assert expo.last_message.endswith(f"call {number}: it is not ready (accepted).")
        await pilot.press("h")
        assert "not ready" in expo.last_message and app.screen is expo
        assert len(app.client.queue) == 0

        # The hub's own refusal: station tickets of a cancelled order cannot be printed again.
        await shelf.request({"type": "order.cancel", "order_id": accepted.order_id})
        await until(lambda: expo.rows[0].status == "cancelled", what="cancelled")
        await pilot.press("p")
        await until(lambda: app.screen.__class__.__name__ == "ChoiceDialog", what="dialog")
        await pilot.press("k")
        await until(lambda: "not printed" in expo.last_message, what="refusal shown")
        assert f"station tickets of {number} not printed: order {number} has no live station ticket" in (
            expo.last_message
        )


async def test_after_a_fresh_welcome_the_expo_fetches_the_closed_orders_its_snapshot_left_out(
    hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    src = await connect("app-backend")
    closed = []
    for k in range(hub.limits.snapshot_closed + 5):
        r = await src.request({"type": "order.submit", "order": app_order(f"recall-{k}")}, expect=OrderAccepted)
        await src.request({"type": "order.cancel", "order_id": r.order_id, "reason": "customer left"})
        closed.append(r.order_id)
    app = counter_app(hub.url, tmp_path, view="expo")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot, app)
        welcome = app.client.welcome
        snapshot = welcome.snapshot.orders if welcome is not None and welcome.snapshot is not None else []
        assert len(snapshot) == hub.limits.snapshot_closed, "the snapshot holds only the last few closed orders"
        await until(lambda: set(closed) <= set(app.client.book.orders), what="the closed orders fetched")
        await until(lambda: len([r for r in app.expo.rows if r.closed]) == len(closed), what="listed as closed")


async def test_an_order_for_later_is_held_and_fired_from_the_keys(
    hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    kiosk = await connect("kiosk-1")
    at = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0).isoformat()
    order = {
        "key": "counter-later",
        "channel": "kiosk",
        "fulfilment": {"type": "pickup", "at": at},
        "items": [{"sku": "WOK-FRIEDRICE"}, {"sku": "BAR-MILKTEA"}],
    }
    later = await kiosk.request({"type": "order.submit", "order": order}, expect=OrderAccepted)
    app = counter_app(hub.url, tmp_path, view="expo")
    async with app.run_test(size=(160, 36)) as pilot:
        await ready(pilot, app)
        expo = app.expo
        await until(lambda: [r.number for r in expo.rows] == [later.number], what="the order for later listed")
        table = expo.query_one("#orders", DataTable)
        assert str(table.get_row_at(0)[2]) == "scheduled"
        assert all(s.fire_at is not None for s in expo.rows[0].stations)

        await pilot.press("w")
        await until(lambda: all(s.held for s in expo.rows[0].stations), what="held")
        assert "held until fired" in expo.last_message
        assert all(t.held for t in hub.hub.orders[later.order_id].tickets)

        await pilot.press("f")
        await until(lambda: not any(s.held or s.fire_at for s in expo.rows[0].stations), what="fired")
        assert "fired" in expo.last_message
        await until(lambda: str(table.get_row_at(0)[2]) == "fired", what="fired, not started yet")
        assert all(t.fired_at is not None and not t.waiting for t in hub.hub.orders[later.order_id].tickets)
        await pilot.press("f")  # nothing waits any more: said, nothing sent
        await until(lambda: "nothing of it waits" in expo.last_message, what="said")
