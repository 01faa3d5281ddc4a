"""Orders over the wire: a real hub on 127.0.0.1 with a real SQLite file, real HubClients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kds.client import HubClient
from kds.protocol import (
    Ack,
    Error,
    ErrorCode,
    Event,
    ItemChange,
    OrderAccepted,
    OrderStatus,
    Pong,
    StatusChanged,
    TicketState,
)
from kds.server import HubServer
from tests.conftest import app_order, shelf_order
from tests.support import db_rows, until


async def synced(*clients: HubClient) -> None:
    """Every frame the hub decided before now has reached these clients (a ping goes through the same pipeline)."""
    for c in clients:
        await c.request({"type": "ping"}, expect=Pong)


def record(client: HubClient) -> list[Event | StatusChanged]:
    """Every state frame (event / order.status) the client receives from now on."""
    frames: list[Event | StatusChanged] = []
    client.listeners.append(lambda f: frames.append(f) if isinstance(f, (Event, StatusChanged)) else None)
    return frames


async def submit(client: HubClient, order: dict[str, Any]) -> OrderAccepted:
    return await client.request({"type": "order.submit", "order": order}, expect=OrderAccepted)


# ============================================================================================ idempotency


async def test_same_key_twice_is_one_order(connect, hub: HubServer, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    monitor = await connect("monitor-1")
    seen = record(monitor)
    app = await connect("app-backend")
    first = await submit(app, app_order("idem-1"))
    again = await submit(app, app_order("idem-1"))
    assert (again.order_id, again.number, again.duplicate) == (first.order_id, first.number, True)
    assert first.duplicate is False
    await synced(monitor)
    assert [(f.kind, f.order.id) for f in seen if isinstance(f, Event)] == [("order.created", first.order_id)]
    assert [f for f in seen if not isinstance(f, Event)] == []
    assert db_rows(db_path, "select id, number from orders") == [(first.order_id, first.number)]
    assert db_rows(db_path, "select count(*) from events") == [(1,)]


async def test_same_key_concurrently_is_one_order(connect, hub: HubServer, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    monitor = await connect("monitor-1")
    seen = record(monitor)
    app = await connect("app-backend")
    app2 = await connect("app-backend")  # the backend's second worker, same device
    answers = await asyncio.gather(
        *(
            c.request({"type": "order.submit", "order": app_order("race-1")}, expect=OrderAccepted)
            for c in (app, app2) * 5
        )
    )
    assert {(a.order_id, a.number) for a in answers} == {(answers[0].order_id, "A001")}
    assert sorted(a.duplicate for a in answers) == [False] + [True] * 9
    await synced(monitor, app, app2)
    assert [f.kind if isinstance(f, Event) else f.type for f in seen] == ["order.created"]
    # The source hears the status once (on both connections of the device).
    assert list(app.book.statuses) == list(app2.book.statuses) == [answers[0].order_id]
    assert db_rows(db_path, "select count(*) from orders") == [(1,)]
    assert db_rows(db_path, "select count(*) from events") == [(1,)]


async def test_same_key_from_another_source_is_another_order(connect, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    k1, k2 = await connect("kiosk-1"), await connect("kiosk-2")
    order = app_order("kiosk-key-7", channel="kiosk", fulfilment={"type": "dine_in", "table": "4"})
    a, b = await asyncio.gather(submit(k1, dict(order)), submit(k2, dict(order)))
    assert a.order_id != b.order_id and {a.number, b.number} == {"K001", "K002"}
    assert not a.duplicate and not b.duplicate
    await synced(k1, k2)
    assert list(k1.book.statuses) == [a.order_id] and list(k2.book.statuses) == [b.order_id]


# ============================================================================================ cancel and amend


async def test_amend_reaches_the_stations_as_marked_changes(connect, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    wok = await connect("wok-1")
    cold = await connect("cold-1")
    bar = await connect("bar-1")
    grill = await connect("grill-1")
    app = await connect("app-backend")
    oid = (
        await submit(
            app,
            {
                "key": "am-1",
                "channel": "app",
                "fulfilment": {"type": "pickup"},
                "items": [
                    {"sku": "WOK-KUNGPAO"},
                    {"sku": "WOK-MAPO", "note": "extra numbing"},
                    {"sku": "COLD-CUCUMBER"},
                ],
            },
        )
    ).order_id
    await until(lambda: oid in wok.book.orders and oid in cold.book.orders, what="order on wok and cold")
    assert oid not in bar.book.orders
    r = await app.request(
        {
            "type": "order.amend",
            "order_id": oid,
            "remove": ["2", "3"],
            "add": [{"sku": "BAR-MILKTEA", "modifiers": ["less ice"]}],
            "item_notes": {"1": "no peanuts"},
        }
    )
    assert isinstance(r, Ack) and isinstance(r.seq, int)
    await synced(wok, cold, bar, grill)
    w = wok.book.orders[oid]
    items = {i.id: i for i in w.items}
    assert (items["2"].removed, items["2"].change) == (True, ItemChange.REMOVED)
    assert (items["1"].removed, items["1"].change, items["1"].note) == (False, ItemChange.NOTE, "no peanuts")
    assert (items["4"].sku, items["4"].station, items["4"].change) == ("BAR-MILKTEA", "bar", ItemChange.ADDED)
    [(_, wok_ticket)] = wok.book.tickets("wok")
    assert wok_ticket.state is TicketState.NEW and wok_ticket.amended_at is not None
    # The bar had nothing of this order; now it has a ticket with the added item.
    [(bo, bar_ticket)] = bar.book.tickets("bar")
    assert bo.id == oid and bar_ticket.items == ["4"] and bar_ticket.state is TicketState.NEW
    # The cold station lost its only item: its ticket shows cancelled, the item removed.
    [(co, cold_ticket)] = cold.book.tickets("cold")
    assert cold_ticket.state is TicketState.CANCELLED
    assert next(i for i in co.items if i.id == "3").change is ItemChange.REMOVED
    assert co.status is OrderStatus.ACCEPTED  # the order itself goes on
    assert grill.book.orders == {}
    # Every screen holds the same version of the order.
    assert wok.book.orders[oid] == cold.book.orders[oid] == bar.book.orders[oid]


async def test_cancel_reaches_every_station_and_the_source(connect, hub: HubServer, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    wok, cold = await connect("wok-1"), await connect("cold-1")
    shelf = await connect("shelf-1")
    oid = (await submit(shelf, shelf_order("cx-1"))).order_id
    await wok.request({"type": "ticket.start", "ticket_id": f"{oid}/wok"}, expect=Ack)
    r = await shelf.request({"type": "order.cancel", "order_id": oid, "reason": "customer changed mind"})
    assert isinstance(r, Ack) and r.seq == 3
    await synced(wok, cold, shelf)
    for screen in (wok, cold):
        o = screen.book.orders[oid]
        assert o.status is OrderStatus.CANCELLED and {t.state for t in o.tickets} == {TicketState.CANCELLED}
    assert shelf.book.statuses[oid].status is OrderStatus.CANCELLED
    # The kitchen can no longer bump it; a second cancel changes nothing.
    r = await wok.request({"type": "ticket.bump", "ticket_id": f"{oid}/wok"})
    assert isinstance(r, Error) and r.code is ErrorCode.CONFLICT
    assert (await shelf.request({"type": "order.cancel", "order_id": oid}, expect=Ack)).seq is None
    assert db_rows(db_path, "select status from orders where id = ?", oid) == [("cancelled",)]
    assert [k for (k,) in db_rows(db_path, "select kind from events order by seq")] == [
        "order.created",
        "ticket.started",
        "order.cancelled",
    ]


async def test_unrouted_item_over_the_wire(connect, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    wok = await connect("wok-2")
    kiosk = await connect("kiosk-1")
    oid = (
        await submit(
            kiosk,
            {
                "key": "ss-1",
                "channel": "kiosk",
                "fulfilment": {"type": "pickup"},
                "items": [{"sku": "SPECIAL-SEASONAL", "qty": 2}],
            },
        )
    ).order_id
    await until(lambda: oid in wok.book.orders, what="seasonal special on the wok screen")
    [it] = wok.book.orders[oid].items
    assert (it.station, it.unrouted, it.qty) == ("wok", True, 2)


# ============================================================================================ counter and source


async def test_counter_call_handover_recall_and_the_source_status_sequence(connect, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    app = await connect("app-backend")
    statuses = record(app)
    counter = await connect("counter-1")
    wok, bar = await connect("wok-1"), await connect("bar-1")
    oid = (await submit(app, app_order("st-1"))).order_id
    await until(lambda: oid in wok.book.orders and oid in bar.book.orders, what="order on wok and bar")
    r = await counter.request({"type": "order.call", "order_id": oid})
    assert isinstance(r, Error) and r.code is ErrorCode.CONFLICT
    await wok.request({"type": "ticket.start", "ticket_id": f"{oid}/wok"})
    await wok.request({"type": "ticket.bump", "ticket_id": f"{oid}/wok"})
    await bar.request({"type": "item.bump", "ticket_id": f"{oid}/bar", "item_id": "2"})
    await until(
        lambda: oid in counter.book.orders and counter.book.orders[oid].status is OrderStatus.READY,
        what="ready on the counter",
    )
    await counter.request({"type": "order.call", "order_id": oid}, expect=Ack)
    await counter.request({"type": "order.handover", "order_id": oid, "to": "rider"}, expect=Ack)
    await synced(app, counter)
    assert counter.book.orders[oid].handed_over_to == "rider"
    sc = [f for f in statuses if isinstance(f, StatusChanged)]
    assert sc == statuses, "a source gets order.status frames only"
    # The wok's part (the slowest) done, the bar's left: the app hears the order's earlier estimate, still preparing.
    assert [(f.type, f.order_id, f.status) for f in sc] == [
        ("order.status", oid, s) for s in ("accepted", "preparing", "preparing", "ready", "called", "handed_over")
    ]
    assert sc[1].ready_at_estimate is not None and sc[2].ready_at_estimate is not None
    assert sc[2].ready == ["wok"] and sc[2].ready_at_estimate < sc[1].ready_at_estimate
    assert sc[3].ready == ["wok", "bar"]
    seqs = [f.seq for f in sc]
    assert seqs == sorted(set(seqs))
    # Handed over by mistake: the counter takes it back, the app is told it is ready again.
    await counter.request({"type": "order.recall", "order_id": oid}, expect=Ack)
    await synced(app)
    last = statuses[-1]
    assert isinstance(last, StatusChanged) and last.status == "ready" and len(statuses) == 7
    assert counter.book.open_orders()[0].id == oid
    # A source may not call or hand over.
    r = await app.request({"type": "order.handover", "order_id": oid})
    assert isinstance(r, Error) and r.code is ErrorCode.FORBIDDEN


async def test_monitor_sees_everything(connect, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    monitor = await connect("monitor-1")
    frames = record(monitor)
    counter = await connect("counter-1")
    app, shelf, kiosk = await connect("app-backend"), await connect("shelf-1"), await connect("kiosk-2")
    cold, bar = await connect("cold-1"), await connect("bar-1")
    a = (await submit(app, app_order("m-1"))).order_id
    s = (await submit(shelf, shelf_order("m-2"))).order_id
    k = (await submit(kiosk, app_order("m-3", channel="kiosk", fulfilment={"type": "pickup"}))).order_id
    c = (await submit(counter, shelf_order("m-4"))).order_id  # the counter keys in a shelf order
    await until(lambda: a in bar.book.orders and s in cold.book.orders, what="orders at the stations")
    await cold.request({"type": "ticket.bump", "ticket_id": f"{s}/cold"})
    await bar.request({"type": "ticket.bump", "ticket_id": f"{a}/bar"})
    await kiosk.request({"type": "order.cancel", "order_id": k})
    await counter.request({"type": "order.amend", "order_id": c, "note": "VIP"})
    await synced(monitor, counter)
    events = [f for f in frames if isinstance(f, Event)]
    assert events == frames, "a monitor gets events only"
    assert [f.seq for f in events] == list(range(1, hub.hub.seq + 1))
    assert {f.order.id for f in events} == {a, s, k, c}
    assert monitor.book.orders == counter.book.orders
    assert {o.id: o.status for o in monitor.book.orders.values()} == {
        a: "preparing",
        s: "preparing",
        k: "cancelled",
        c: "accepted",
    }
    # It is read-only.
    r = await monitor.request({"type": "order.cancel", "order_id": a})
    assert isinstance(r, Error) and r.code is ErrorCode.FORBIDDEN
    # A monitor connecting now gets the same state as a snapshot.
    late = await connect("monitor-1")
    assert late.welcome is not None and late.welcome.resumed is False
    assert late.book.orders == monitor.book.orders
