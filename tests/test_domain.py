"""The order/ticket state machine (`kds.domain`) on its own: no hub, no I/O, times given by the test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from kds.domain import DomainError, Item, Order, Ticket, ticket_id
from kds.protocol import Customer, HandoverTo, ItemChange, OrderStatus, OrderView, Priority, TicketState

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def item(iid: str, station: str, sku: str = "WOK-KUNGPAO") -> Item:
    return Item(
        id=iid,
        sku=sku,
        name=sku.title(),
        name_zh="",
        qty=1,
        weight_g=None,
        cook=None,
        cook_name=None,
        fee_cents=0,
        modifiers=[],
        allergens=[],
        note=None,
        tag=None,
        station=station,
        unrouted=False,
    )


def order(*stations: str) -> Order:
    """An order with one item per given station (repeat a station for several items)."""
    o = Order(
        id="20261125-A001",
        number="A001",
        key="k",
        source="app-backend",
        channel="app",
        fulfilment={"type": "pickup"},
        customer=None,
        priority=Priority.NORMAL,
        note=None,
        created_at=T0,
        updated_at=T0,
        items=[item(str(k), st) for k, st in enumerate(stations, start=1)],
    )
    o.build_tickets(T0)
    return o


def states(o: Order) -> dict[str, str]:
    return {st: t.state.value for st, t in o.by_station.items()}


def status(o: Order) -> OrderStatus:
    """The order's status read afresh: mypy would carry `assert o.status is X` past the next change to the order."""
    return o.status


def conflict(fn: Callable[..., object], *args: object) -> DomainError:
    with pytest.raises(DomainError) as exc:
        fn(*args)
    assert exc.value.code == "conflict"
    return exc.value


def test_tickets_are_built_per_station() -> None:
    o = order("wok", "cold", "wok", "bar")
    assert {st: t.items for st, t in o.by_station.items()} == {"wok": ["1", "3"], "cold": ["2"], "bar": ["4"]}
    assert o.by_station["wok"].id == ticket_id(o.id, "wok") == "20261125-A001/wok"
    assert o.stations() == {"wok", "cold", "bar"}
    assert status(o) is OrderStatus.ACCEPTED and o.next_item_id() == 5 and o.is_open


def test_ticket_new_started_done() -> None:
    o = order("wok", "wok")
    t = o.by_station["wok"]
    assert o.start(t, at(10)) is True
    assert (t.state, t.started_at, o.version, o.updated_at) == (TicketState.STARTED, at(10), 2, at(10))
    assert o.start(t, at(11)) is False and o.version == 2  # idempotent
    assert o.bump(t, at(20)) is True
    assert (t.state, t.started_at, t.done_at) == (TicketState.DONE, at(10), at(20))
    assert [i.done_at for i in o.items] == [at(20), at(20)]
    assert o.bump(t, at(21)) is False and o.version == 3 and t.done_at == at(20)
    assert o.start(t, at(22)) is False


def test_bump_without_start_sets_both_times() -> None:
    o = order("bar")
    t = o.by_station["bar"]
    o.bump(t, at(5))
    assert (t.started_at, t.done_at) == (at(5), at(5))


def test_item_bumps_finish_the_ticket() -> None:
    o = order("wok", "wok", "cold")
    t = o.by_station["wok"]
    assert o.bump_item(t, "1", at(3)) is True
    assert t.state is TicketState.STARTED and t.started_at == at(3) and status(o) is OrderStatus.PREPARING
    assert o.bump_item(t, "1", at(4)) is False
    assert o.bump_item(t, "2", at(5)) is True
    assert (t.state, t.done_at) == (TicketState.DONE, at(5))
    assert o.items[0].done_at == at(3)  # the first item keeps its own time
    with pytest.raises(DomainError) as exc:
        o.bump_item(t, "3", at(6))  # an item of another ticket
    assert (exc.value.code, exc.value.loc) == ("not_found", ("item_id",))
    with pytest.raises(DomainError):
        o.bump_item(t, "99", at(6))


def test_recall_reopens() -> None:
    o = order("wok", "cold")
    wok = o.by_station["wok"]
    assert o.recall_ticket(wok, at(1)) is False  # not done
    o.bump(wok, at(2))
    o.bump(o.by_station["cold"], at(3))
    assert status(o) is OrderStatus.READY
    assert o.recall_ticket(wok, at(4)) is True
    assert (wok.state, wok.done_at, wok.recalled_at) == (TicketState.STARTED, None, at(4))
    assert o.items[0].done_at is None and o.items[1].done_at == at(3)
    assert status(o) is OrderStatus.PREPARING


def test_status_derivation_across_stations() -> None:
    o = order("wok", "cold", "bar")
    assert status(o) is OrderStatus.ACCEPTED
    o.start(o.by_station["bar"], at(1))
    assert status(o) is OrderStatus.PREPARING
    o.bump(o.by_station["bar"], at(2))
    o.bump(o.by_station["wok"], at(3))
    assert status(o) is OrderStatus.PREPARING
    o.bump(o.by_station["cold"], at(4))
    assert status(o) is OrderStatus.READY
    o.handover(HandoverTo.CUSTOMER, at(5))
    assert status(o) is OrderStatus.HANDED_OVER and not o.is_open
    o.recall_handover(at(6))
    assert status(o) is OrderStatus.READY and o.is_open


def test_call_and_handover_only_when_ready() -> None:
    o = order("wok", "cold")
    assert "not ready (it is accepted)" in conflict(o.call, at(1)).message
    conflict(o.handover, HandoverTo.RIDER, at(1))
    o.bump(o.by_station["wok"], at(2))
    assert "not ready (it is preparing)" in conflict(o.call, at(3)).message
    o.bump(o.by_station["cold"], at(4))
    assert o.call(at(5)) is True and o.called_at == at(5)
    assert o.call(at(6)) is False and o.called_at == at(5)
    assert o.handover(HandoverTo.RIDER, at(7)) is True
    assert (o.handed_over_at, o.handed_over_to) == (at(7), HandoverTo.RIDER)
    assert o.handover(HandoverTo.CUSTOMER, at(8)) is False and o.handed_over_to is HandoverTo.RIDER
    conflict(o.call, at(9))
    conflict(o.bump, o.by_station["wok"], at(9))
    assert o.recall_handover(at(10)) is True
    assert o.recall_handover(at(11)) is False
    assert status(o) is OrderStatus.READY


def test_cancel() -> None:
    o = order("wok", "cold")
    o.start(o.by_station["wok"], at(1))
    assert o.cancel("out of lobster", at(2)) is True
    assert status(o) is OrderStatus.CANCELLED and (o.cancelled_at, o.cancel_reason) == (at(2), "out of lobster")
    assert states(o) == {"wok": "cancelled", "cold": "cancelled"}
    assert o.cancel(None, at(3)) is False and o.cancelled_at == at(2)
    calls: list[tuple[Callable[..., object], tuple[object, ...]]] = [
        (o.bump, (o.by_station["wok"], at(4))),
        (o.start, (o.by_station["cold"], at(4))),
        (o.bump_item, (o.by_station["wok"], "1", at(4))),
        (o.recall_ticket, (o.by_station["wok"], at(4))),
        (o.call, (at(4),)),
        (o.handover, (HandoverTo.CUSTOMER, at(4))),
        (o.recall_handover, (at(4),)),
        (o.amend, ([], [], "x", {}, at(4))),
    ]
    for fn, args in calls:
        conflict(fn, *args)


def test_cancel_after_handover_conflicts() -> None:
    o = order("bar")
    o.bump(o.by_station["bar"], at(1))
    o.handover(HandoverTo.CUSTOMER, at(2))
    assert "handed over" in conflict(o.cancel, None, at(3)).message
    assert status(o) is OrderStatus.HANDED_OVER


def test_amend_add_creates_and_reopens_tickets() -> None:
    o = order("wok", "bar")
    o.bump(o.by_station["wok"], at(1))
    o.bump(o.by_station["bar"], at(2))
    touched = o.amend([item("3", "wok", "WOK-GREENS"), item("4", "bakery", "BAK-EGGTART")], [], None, {}, at(3))
    assert touched == {"wok", "bakery"}
    assert states(o) == {"wok": "started", "bar": "done", "bakery": "new"}
    assert o.by_station["wok"].items == ["1", "3"] and o.by_station["wok"].done_at is None
    assert o.by_station["wok"].amended_at == at(3) and o.by_station["bar"].amended_at is None
    assert [i.change for i in o.items] == [None, None, ItemChange.ADDED, ItemChange.ADDED]
    assert o.items[0].done_at == at(1)  # work already done stays done
    assert status(o) is OrderStatus.PREPARING and o.amended_at == at(3)


def test_amend_remove_cancels_an_emptied_ticket_and_finishes_a_completed_one() -> None:
    o = order("wok", "wok", "cold")
    o.bump_item(o.by_station["wok"], "1", at(1))
    touched = o.amend([], ["2", "3"], None, {}, at(2))
    assert touched == {"wok", "cold"}
    assert [(i.removed, i.change) for i in o.items] == [
        (False, None),
        (True, ItemChange.REMOVED),
        (True, ItemChange.REMOVED),
    ]
    # cold has nothing left; the wok's only live item is done, so the wok ticket is done.
    assert states(o) == {"wok": "done", "cold": "cancelled"}
    assert status(o) is OrderStatus.READY
    assert o.stations() == {"wok", "cold"}  # the cancelled ticket is kept (its station still sees the order)
    assert [i.id for i in o.live_items()] == ["1"]
    with pytest.raises(DomainError) as exc:
        o.bump_item(o.by_station["wok"], "2", at(3))
    assert exc.value.code == "conflict"
    conflict(o.bump, o.by_station["cold"], at(3))
    # Adding to the cancelled station brings its ticket back.
    o.amend([item("4", "cold", "COLD-SALMON")], [], None, {}, at(4))
    assert states(o) == {"wok": "done", "cold": "new"} and o.by_station["cold"].items == ["3", "4"]


def test_amend_notes() -> None:
    o = order("wok", "cold")
    assert o.amend([], [], None, {"2": "no coriander"}, at(1)) == {"cold"}
    assert (o.items[1].note, o.items[1].change, o.items[0].change) == ("no coriander", ItemChange.NOTE, None)
    assert o.amend([], [], "allergic to peanuts", {}, at(2)) == {"wok", "cold"}
    assert o.note == "allergic to peanuts"
    assert o.amend([], [], "", {}, at(3)) == {"wok", "cold"}
    assert o.note is None
    # A note on an added item keeps it marked as added.
    o.amend([item("3", "wok")], [], None, {}, at(4))
    o.amend([], [], None, {"3": "extra spicy"}, at(5))
    assert o.items[2].change is ItemChange.ADDED and o.items[2].note == "extra spicy"


def test_wire_round_trip() -> None:
    """The domain's order is the wire's `OrderView`: its JSON validates as one and loads back into the same order."""
    o = order("wok", "cold", "bar")
    o.customer = Customer(name="李雷", phone=None)
    o.bump_item(o.by_station["wok"], "1", at(1))
    o.bump(o.by_station["bar"], at(2))
    o.amend([item("4", "grill", "GRL-LAMB")], ["2"], "for table 5", {"1": "mild"}, at(3))
    o.bump(o.by_station["grill"], at(4))
    o.recall_ticket(o.by_station["bar"], at(5))
    text = o.model_dump_json()
    assert OrderView.model_validate_json(text).model_dump_json() == text
    again = Order.model_validate_json(text)
    assert again.model_dump_json() == text and again == o
    assert again.status is o.status is o.derived_status() and again.by_station["cold"].state is TicketState.CANCELLED
    assert isinstance(again.items[0], Item) and isinstance(again.tickets[0], Ticket)
    assert Ticket.model_validate_json(o.by_station["grill"].model_dump_json()) == o.by_station["grill"]
    assert Item.model_validate_json(o.items[0].model_dump_json()) == o.items[0]


def test_the_status_field_follows_every_change() -> None:
    """`status` is a field of the wire's order: every transition keeps it what the tickets make it."""
    o = order("wok", "bar")
    seen = [o.status]
    o.start(o.by_station["wok"], at(1))
    seen.append(o.status)
    o.bump(o.by_station["wok"], at(2))
    o.bump(o.by_station["bar"], at(3))
    seen.append(o.status)
    o.handover(HandoverTo.CUSTOMER, at(4))
    seen.append(o.status)
    o.recall_handover(at(5))
    seen.append(o.status)
    o.amend([item("3", "wok")], [], None, {}, at(6))
    seen.append(o.status)
    assert seen == ["accepted", "preparing", "ready", "handed_over", "ready", "preparing"]
    assert o.status is o.derived_status()
