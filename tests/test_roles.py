"""Roles: a device may only send its role's messages, a kitchen screen only touches its own station's tickets, a
source only its own orders; the counter may cancel any order. A refused action changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kds.client import HubClient
from kds.config import Role, StoreConfig
from kds.protocol import (
    CLIENT_TYPES,
    ROLE_MESSAGES,
    Ack,
    ClosedOrders,
    Error,
    ErrorCode,
    OrderAccepted,
    OrderQuoted,
    OrderStatus,
    Pong,
    TicketState,
)
from kds.server import HubServer
from kds.wire import Answer
from tests.conftest import shelf_order
from tests.support import accepted, acked, status_of, until
from tests.test_bad_input import db_state, kiosk_order

THREE_STATIONS = [
    {"sku": "LOB-AUS", "weight_g": 800, "cook": "ginger_scallion", "tag": "T-1"},  # item 1: wok
    {"sku": "LOB-AUS", "weight_g": 700, "cook": "sashimi", "tag": "T-2"},  # item 2: cold
    {"sku": "CRAB-MUD", "weight_g": 600, "cook": "steamed", "tag": "T-3"},  # item 3: seafood
]
ITEM_AT = {"wok": "1", "cold": "2", "seafood": "3"}


@dataclass
class Floor:
    """The hub with orders in every state the role tests need, and a device per station."""

    hub: HubServer
    db_path: Path
    config: StoreConfig
    clients: dict[str, HubClient]
    fresh: str
    """A new shelf order with wok, cold and seafood tickets."""
    ready: str
    """A shelf order whose tickets are all bumped."""
    handed: str
    """A ready order the counter handed over."""

    def state(self) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
        """The hub's seq, the stored events and orders, and the hub's live orders."""
        events, docs = db_state(self.db_path, self.config)
        live = {oid: o.model_dump(mode="json") for oid, o in self.hub.hub.orders.items()}
        return self.hub.hub.seq, events, docs, live


async def ok(client: HubClient, msg: dict[str, Any]) -> Answer:
    answer = await client.request(msg)
    assert isinstance(answer, (Ack, OrderAccepted, OrderQuoted, Pong, ClosedOrders)), answer
    return answer


@pytest.fixture
async def floor(hub: HubServer, connect: Any, config: StoreConfig, db_path: Path) -> Floor:
    clients = {d: await connect(d) for d in ("shelf-1", "wok-1", "cold-1", "seafood-1", "counter-1", "monitor-1")}
    shelf = clients["shelf-1"]
    ids = []
    for key in ("fresh", "ready", "handed"):
        acc = accepted(await ok(shelf, {"type": "order.submit", "order": shelf_order(key, items=THREE_STATIONS)}))
        ids.append(acc.order_id)
    fresh, ready, handed = ids
    for oid in (ready, handed):
        for station, dev in (("wok", "wok-1"), ("cold", "cold-1"), ("seafood", "seafood-1")):
            await ok(clients[dev], {"type": "ticket.bump", "ticket_id": f"{oid}/{station}"})
    await ok(clients["counter-1"], {"type": "order.handover", "order_id": handed, "to": "runner"})
    monitor = clients["monitor-1"]
    await until(lambda: monitor.book.seq == hub.hub.seq)
    assert monitor.book.orders[ready].status is OrderStatus.READY
    assert monitor.book.orders[handed].status is OrderStatus.HANDED_OVER
    return Floor(hub, db_path, config, clients, fresh, ready, handed)


async def assert_refused(
    f: Floor, client: HubClient, msg: dict[str, Any], code: ErrorCode, loc: list[str | int]
) -> Error:
    """The hub answers with an error of this code and loc, and nothing at all changes."""
    before = f.state()
    msg.setdefault("ref", f"refused-{msg['type']}")
    err = await client.request(msg)
    assert isinstance(err, Error), err
    assert err.code is code, err
    assert err.ref == msg["ref"]
    assert err.message
    assert [e.loc for e in err.errors] == [loc], err
    after = f.state()
    assert after[0] == before[0], "the hub made an event"
    assert after[1] == before[1], "an event was stored"
    assert after[2] == before[2], "a stored order changed"
    assert after[3] == before[3], "a live order changed"
    return err


def frame_for(kind: str, f: Floor, device: str) -> dict[str, Any]:
    """A frame of this type that the hub would apply, were the device allowed to send it."""
    dev = f.config.device(device)
    assert dev is not None
    station = dev.station or "wok"
    frames: dict[str, dict[str, Any]] = {
        "order.submit": {"order": shelf_order(f"by-{device}")},
        "order.quote": {"order": shelf_order(f"quote-{device}")},
        "order.hold": {"order_id": f.fresh},
        "order.fire": {"order_id": f.fresh},
        "order.cancel": {"order_id": f.fresh, "reason": "customer left"},
        "order.amend": {"order_id": f.fresh, "note": "extra napkins"},
        "ticket.start": {"ticket_id": f"{f.fresh}/{station}"},
        "ticket.bump": {"ticket_id": f"{f.fresh}/{station}"},
        "item.bump": {"ticket_id": f"{f.fresh}/{station}", "item_id": ITEM_AT.get(station, "1")},
        "ticket.recall": {"ticket_id": f"{f.ready}/{station}"},
        "order.call": {"order_id": f.ready},
        "order.handover": {"order_id": f.ready, "to": "customer"},
        "order.recall": {"order_id": f.handed},
        "print.request": {"order_id": f.fresh, "layout": "expo"},
        "ping": {},
        "orders.closed": {"limit": 5},
    }
    return {"type": kind, **frames[kind]}


MATRIX_DEVICES = {"wok-1": Role.KITCHEN, "shelf-1": Role.SOURCE, "counter-1": Role.COUNTER, "monitor-1": Role.MONITOR}
TYPES = [t for t in CLIENT_TYPES if t != "hello"]


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("device", list(MATRIX_DEVICES))
async def test_role_matrix(device: str, kind: str, floor: Floor) -> None:
    """Every (role, message type): refused as forbidden with loc ['type'], or applied when the role may send it."""
    role = MATRIX_DEVICES[device]
    client = floor.clients[device]
    msg = frame_for(kind, floor, device)
    if kind in ROLE_MESSAGES[role]:
        answer = await ok(client, msg)
        if kind == "orders.closed":  # a read: the closed orders the role may see
            assert isinstance(answer, ClosedOrders) and isinstance(answer.orders, list), answer
        elif kind == "order.quote":  # a read: when the order would be ready
            assert isinstance(answer, OrderQuoted) and answer.stations, answer
        elif kind == "order.fire":  # the order's tickets are at their stations already: nothing to do
            assert isinstance(answer, Ack) and answer.seq is None, answer
        elif kind not in ("ping", "print.request"):  # a print request makes a print job, not an event
            assert isinstance(answer, OrderAccepted) or (isinstance(answer, Ack) and answer.seq is not None), answer
    else:
        await assert_refused(floor, client, msg, ErrorCode.FORBIDDEN, ["type"])
        await ok(client, {"type": "ping"})  # still connected


def test_matrix_matches_the_contract() -> None:
    """The matrix above really exercises the rules of the brief."""
    assert "order.submit" not in ROLE_MESSAGES[Role.KITCHEN]
    assert not {"ticket.bump", "ticket.start", "item.bump", "ticket.recall"} & ROLE_MESSAGES[Role.SOURCE]
    assert ROLE_MESSAGES[Role.MONITOR] == {"ping", "orders.closed"}
    assert {"order.call", "order.handover", "order.cancel"} <= ROLE_MESSAGES[Role.COUNTER]
    assert "ticket.bump" not in ROLE_MESSAGES[Role.COUNTER]


async def test_monitor_can_send_nothing_but_reads(floor: Floor) -> None:
    monitor = floor.clients["monitor-1"]
    for kind in TYPES:
        if kind in ("ping", "orders.closed"):
            continue
        await assert_refused(floor, monitor, frame_for(kind, floor, "monitor-1"), ErrorCode.FORBIDDEN, ["type"])
    pong = await ok(monitor, {"type": "ping", "ref": "m-ping"})
    assert pong == Pong(type="pong", ref="m-ping", seq=floor.hub.hub.seq)
    assert monitor.book.orders[floor.fresh].status is OrderStatus.ACCEPTED


# --------------------------------------------------------------------------------------------- stations


ACTIONS = ["ticket.start", "ticket.bump", "ticket.recall", "item.bump"]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(("station", "owner"), [("seafood", "seafood-1"), ("cold", "cold-1")])
async def test_wok_cannot_act_on_another_stations_ticket(action: str, station: str, owner: str, floor: Floor) -> None:
    wok, own = floor.clients["wok-1"], floor.clients[owner]
    oid = floor.ready if action == "ticket.recall" else floor.fresh  # recall needs a done ticket
    msg: dict[str, Any] = {"type": action, "ticket_id": f"{oid}/{station}"}
    if action == "item.bump":
        msg["item_id"] = ITEM_AT[station]
    ticket_before = next(t for t in floor.clients["monitor-1"].book.orders[oid].tickets if t.station == station)

    await assert_refused(floor, wok, dict(msg), ErrorCode.FORBIDDEN, ["ticket_id"])

    # The same frame from the station's own screen is applied: the refusal was about the station only.
    ack = acked(await ok(own, dict(msg)))
    assert ack.seq == floor.hub.hub.seq
    monitor = floor.clients["monitor-1"]
    await until(lambda: monitor.book.seq == ack.seq)
    ticket_after = next(t for t in monitor.book.orders[oid].tickets if t.station == station)
    assert ticket_after.state is not ticket_before.state or ticket_after.recalled_at is not None


async def test_wok_may_act_on_its_own_ticket(floor: Floor) -> None:
    wok = floor.clients["wok-1"]
    tid = f"{floor.fresh}/wok"
    assert acked(await ok(wok, {"type": "ticket.start", "ticket_id": tid})).seq is not None
    assert acked(await ok(wok, {"type": "ticket.bump", "ticket_id": tid})).seq is not None
    assert floor.hub.hub.orders[floor.fresh].by_station["wok"].state.value == "done"


# --------------------------------------------------------------------------------------------- sources' orders


@pytest.fixture
async def kiosks(floor: Floor, connect: Any) -> tuple[HubClient, HubClient, str]:
    k1, k2 = await connect("kiosk-1"), await connect("kiosk-2")
    acc = accepted(await ok(k1, {"type": "order.submit", "order": kiosk_order("k1-lunch")}))
    await until(lambda: acc.order_id in k1.book.statuses)
    return k1, k2, acc.order_id


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param({"type": "order.cancel", "reason": "not mine"}, id="cancel"),
        pytest.param({"type": "order.amend", "note": "make it spicy"}, id="amend-note"),
        pytest.param({"type": "order.amend", "add": [{"sku": "BAR-MILKTEA"}]}, id="amend-add"),
        pytest.param({"type": "order.amend", "remove": ["1"], "add": [{"sku": "WOK-GREENS"}]}, id="amend-remove"),
    ],
)
async def test_source_cannot_touch_another_sources_order(
    msg: dict[str, Any], floor: Floor, kiosks: tuple[HubClient, HubClient, str]
) -> None:
    k1, k2, oid = kiosks
    await assert_refused(floor, k2, {**msg, "order_id": oid}, ErrorCode.FORBIDDEN, ["order_id"])
    # kiosk-2 was told nothing about the order, and kiosk-1's order is as it was.
    assert oid not in k2.book.statuses
    assert k1.book.statuses[oid].status is OrderStatus.ACCEPTED
    assert floor.hub.hub.orders[oid].version == 1
    # Its own source may do exactly this.
    ack = acked(await ok(k1, {**msg, "order_id": oid}))
    assert ack.seq is not None


async def test_source_cannot_cancel_a_shelf_order_of_another_device(
    floor: Floor, kiosks: tuple[HubClient, HubClient, str]
) -> None:
    _k1, k2, _oid = kiosks
    await assert_refused(
        floor, k2, {"type": "order.cancel", "order_id": floor.fresh}, ErrorCode.FORBIDDEN, ["order_id"]
    )


def cancelled_on(client: HubClient, order_id: str) -> Callable[[], bool]:
    """Whether the client's book holds the order cancelled (a predicate for `until`)."""
    return lambda: order_id in client.book.orders and client.book.orders[order_id].status is OrderStatus.CANCELLED


async def test_counter_can_cancel_any_order(floor: Floor, kiosks: tuple[HubClient, HubClient, str]) -> None:
    k1, _k2, oid = kiosks
    counter, monitor, wok = floor.clients["counter-1"], floor.clients["monitor-1"], floor.clients["wok-1"]
    for order_id in (oid, floor.fresh):  # a kiosk's order and a shelf order, neither the counter's
        ack = acked(await ok(counter, {"type": "order.cancel", "order_id": order_id, "reason": "kitchen out of stock"}))
        assert ack.seq is not None
        await until(cancelled_on(monitor, order_id))
        assert monitor.book.orders[order_id].cancel_reason == "kitchen out of stock"
        await until(cancelled_on(wok, order_id))
        assert {t.state for t in wok.book.orders[order_id].tickets} == {TicketState.CANCELLED}
    await until(lambda: status_of(k1, oid) is OrderStatus.CANCELLED)
    _events, docs = db_state(floor.db_path, floor.config)
    assert docs[oid]["status"] == docs[floor.fresh]["status"] == "cancelled"


async def test_counter_calls_and_hands_over_but_cannot_bump(
    floor: Floor, kiosks: tuple[HubClient, HubClient, str]
) -> None:
    k1, _k2, oid = kiosks
    counter, wok = floor.clients["counter-1"], floor.clients["wok-1"]
    for kind in ("ticket.bump", "ticket.start", "item.bump", "ticket.recall"):
        msg: dict[str, Any] = {"type": kind, "ticket_id": f"{oid}/wok"}
        if kind == "item.bump":
            msg["item_id"] = "1"
        await assert_refused(floor, counter, msg, ErrorCode.FORBIDDEN, ["type"])
    assert floor.hub.hub.orders[oid].status.value == "accepted"

    await ok(wok, {"type": "ticket.bump", "ticket_id": f"{oid}/wok"})
    assert acked(await ok(counter, {"type": "order.call", "order_id": oid})).seq is not None
    assert acked(await ok(counter, {"type": "order.handover", "order_id": oid, "to": "customer"})).seq is not None
    await until(lambda: status_of(k1, oid) is OrderStatus.HANDED_OVER)
    _events, docs = db_state(floor.db_path, floor.config)
    assert docs[oid]["status"] == "handed_over" and docs[oid]["handed_over_to"] == "customer"
    assert docs[oid]["called_at"] is not None


async def test_kitchen_cannot_submit_even_a_perfect_order(floor: Floor) -> None:
    for device in ("wok-1", "cold-1", "seafood-1"):
        await assert_refused(
            floor,
            floor.clients[device],
            {"type": "order.submit", "order": shelf_order(f"from-{device}")},
            ErrorCode.FORBIDDEN,
            ["type"],
        )
