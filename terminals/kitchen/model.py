"""What one station's screen shows, worked out from the client's `OrderBook`. No Textual, no I/O.

`StationState` keeps what the book does not: which tickets this screen has already seen (to ring for new ones and
mark amended ones), which cancellations the cook has acknowledged, and the actions sent but not yet answered by the
hub (`Pending`), which the screen shows as done at once, online or not. `entries` gives the board's tickets in the
order a cook works them; `recall_list` and `all_day` give the two lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kds.protocol import (
    Ack,
    Delivery,
    Error,
    ItemView,
    OrderStatus,
    OrderView,
    Priority,
    StoreView,
    TicketState,
    TicketView,
)

Order = OrderView
Ticket = TicketView
Item = ItemView

ACTIVE = (TicketState.NEW, TicketState.STARTED)
CLOSED = (OrderStatus.CANCELLED, OrderStatus.HANDED_OVER)
FRESH_FOR = timedelta(seconds=60)
"""A ticket that just arrived stays highlighted this long, or until it is started."""
RECALL_WINDOW = timedelta(minutes=30)
"""Bumped tickets stay in the recall list this long (the hub keeps them in snapshots as long)."""
TICKET_ACTIONS = ("ticket.start", "ticket.bump", "item.bump", "ticket.recall")


# ------------------------------------------------------------------------------------------------ timers


@dataclass(frozen=True, slots=True)
class StationInfo:
    """A station as the hub's `welcome` describes it: names and timer thresholds."""

    id: str
    name: str
    name_zh: str = ""
    warn_after_s: int = 300
    late_after_s: int = 600

    @classmethod
    def from_store(cls, store: StoreView | None, station: str) -> StationInfo:
        """The station `station` of a welcome's `store` (defaults when the hub has not said yet)."""
        for s in store.stations if store is not None else ():
            if s.id == station:
                return cls(
                    id=station,
                    name=s.name or station,
                    name_zh=s.name_zh,
                    warn_after_s=s.warn_after_s or 300,
                    late_after_s=s.late_after_s or 600,
                )
        return cls(id=station, name=station)


class Timing(StrEnum):
    """How a ticket stands against its station's thresholds (and a delivery against its due time)."""

    ON_TIME = "on time"
    WARNING = "warning"
    LATE = "late"


@dataclass(frozen=True, slots=True)
class Clocked:
    """A ticket's timer at one moment."""

    timing: Timing
    age_s: float
    """Seconds since the ticket reached the station."""
    late_in_s: float | None
    """Seconds left before it turns late; None when it is late."""
    due_left_s: float | None
    """A delivery: seconds left before its due time (negative: past due). None for other orders."""


def clock(order: Order, ticket: Ticket, station: StationInfo, now: datetime) -> Clocked:
    """The ticket's timer: its age against the station's thresholds; a delivery is also late once past due.

    A delivery turns to warning when less time is left before its due time than the station's gap between its
    warning and late thresholds (the time the station reckons it needs to catch up).
    """
    age = (now - (ticket.fired_at or ticket.created_at)).total_seconds()  # since it reached the station
    timing = Timing.LATE if age >= station.late_after_s else Timing.WARNING if age >= station.warn_after_s else None
    late_in = station.late_after_s - age
    due_left: float | None = None
    if isinstance(order.fulfilment, Delivery):
        due_left = (order.fulfilment.due - now).total_seconds()
        late_in = min(late_in, due_left)
        if due_left <= 0:
            timing = Timing.LATE
        elif due_left <= station.late_after_s - station.warn_after_s and timing is None:
            timing = Timing.WARNING
    if timing is Timing.LATE or late_in <= 0:
        return Clocked(Timing.LATE, age, None, due_left)
    return Clocked(timing or Timing.ON_TIME, age, late_in, due_left)


def mmss(seconds: float) -> str:
    """'4:07', '72:30' (minutes:seconds, as kitchens count); '3h05' from 100 minutes on."""
    s = max(0, int(seconds))
    if s >= 6000:
        return f"{s // 3600}h{s % 3600 // 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


# ------------------------------------------------------------------------------------------------ pending actions


@dataclass(slots=True)
class PendingAction:
    """A kitchen action queued with the client and not yet answered (or answered, its event not yet in)."""

    ref: str
    kind: str
    ticket_id: str
    item_id: str | None
    at: datetime
    seq: int | None = None
    """Set from the hub's ack: the event that carries the change; the action is shown until the book has it."""


class Pending:
    """Actions this screen sent that the book does not show yet, in the order they were made."""

    def __init__(self) -> None:
        self.actions: list[PendingAction] = []

    def __len__(self) -> int:
        return len(self.actions)

    def add(self, msg: dict[str, Any], at: datetime) -> PendingAction | None:
        """Track a queued kitchen action (other messages are ignored)."""
        if msg.get("type") not in TICKET_ACTIONS or not msg.get("ref"):
            return None
        action = PendingAction(msg["ref"], msg["type"], msg["ticket_id"], msg.get("item_id"), at)
        self.actions.append(action)
        return action

    def answered(self, frame: Ack | Error, book_seq: int) -> PendingAction | None:
        """Take the hub's `ack` or `error` for one of our refs; returns the action it answered."""
        ref = frame.ref
        for k, a in enumerate(self.actions):
            if a.ref == ref:
                seq = frame.seq if isinstance(frame, Ack) else None
                if seq is not None and seq > book_seq:
                    a.seq = seq
                else:
                    del self.actions[k]
                return a
        return None

    def settle(self, book_seq: int) -> bool:
        """Drop the acknowledged actions whose event the book now holds; True when any was dropped."""
        before = len(self.actions)
        self.actions = [a for a in self.actions if a.seq is None or a.seq > book_seq]
        return len(self.actions) != before

    def for_ticket(self, ticket_id: str) -> list[PendingAction]:
        """This ticket's pending actions, oldest first."""
        return [a for a in self.actions if a.ticket_id == ticket_id]


def effective(
    order: Order, ticket: Ticket, actions: list[PendingAction]
) -> tuple[TicketState, frozenset[str], datetime | None]:
    """The ticket as it will be once the hub has applied `actions`: (state, ids of done items, done time)."""
    state = ticket.state
    items = {i.id: i for i in order.items}
    live = [iid for iid in ticket.items if iid in items and not items[iid].removed]
    done = {iid for iid in live if items[iid].done_at}
    done_at = ticket.done_at
    if state is TicketState.CANCELLED or order.status in CLOSED:
        return state, frozenset(done), done_at
    for a in actions:
        if a.kind == "ticket.start" and state is TicketState.NEW:
            state = TicketState.STARTED
        elif a.kind == "ticket.bump" and state in ACTIVE:
            state, done, done_at = TicketState.DONE, set(live), a.at
        elif a.kind == "item.bump" and state in ACTIVE and a.item_id in live:
            done.add(a.item_id)
            state = TicketState.STARTED
            if done >= set(live):
                state, done_at = TicketState.DONE, a.at
        elif a.kind == "ticket.recall" and state is TicketState.DONE:
            state, done, done_at = TicketState.STARTED, set(), None
    return state, frozenset(done), done_at


# ------------------------------------------------------------------------------------------------ entries


@dataclass(slots=True)
class Entry:
    """One ticket of this station as the screen shows it."""

    order: Order
    ticket: Ticket
    state: TicketState
    """Effective state (pending actions applied): new, started, done or cancelled."""
    done_items: frozenset[str]
    done_at: datetime | None
    pending: bool
    """An action on it waits for the hub."""
    fresh: bool = False
    """Just arrived: highlighted."""
    needs_ack: bool = False
    """Cancelled and not yet acknowledged by the cook."""

    @property
    def id(self) -> str:
        """The ticket id (`order_id/station`)."""
        return self.ticket.id

    @property
    def number(self) -> str:
        """The order's number, as called at the counter (A023)."""
        return self.order.number

    @property
    def rush(self) -> bool:
        """A rush order."""
        return self.order.priority is Priority.RUSH

    @property
    def version(self) -> int:
        """The order's version (changes with every event)."""
        return self.order.version

    def items(self) -> list[Item]:
        """This station's items, in the order of the ticket."""
        by_id = {i.id: i for i in self.order.items}
        return [by_id[iid] for iid in self.ticket.items if iid in by_id]

    def open_items(self) -> list[Item]:
        """Items still to make: not removed, not done."""
        return [i for i in self.items() if not i.removed and i.id not in self.done_items]

    def others(self) -> list[tuple[str, int, bool]]:
        """Other stations' share of the order: (station, quantity of live items, their ticket is done)."""
        qty: dict[str, int] = {}
        for i in self.order.items:
            if not i.removed and i.station != self.ticket.station:
                qty[i.station] = qty.get(i.station, 0) + i.qty
        states = {t.station: t.state for t in self.order.tickets}
        return [(s, n, states.get(s) is TicketState.DONE) for s, n in qty.items()]


def board_order(e: Entry) -> tuple[int, int, float, str]:
    """Unacknowledged cancellations first (stop cooking!), then rush, then the longest at the station first (since
    it came, or was fired; a timestamp: floats sort faster than aware datetimes)."""
    came = e.ticket.fired_at or e.ticket.created_at
    return (0 if e.needs_ack else 1, 0 if e.rush else 1, came.timestamp(), e.number)


@dataclass(slots=True)
class Changes:
    """What an update brought to this station."""

    arrived: list[str] = field(default_factory=list)
    amended: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    recalled: list[str] = field(default_factory=list)

    @property
    def ring(self) -> bool:
        """Worth the bell: a new ticket, an amended one, a cancellation."""
        return bool(self.arrived or self.amended or self.cancelled)


class StationState:
    """One screen's view of its station beyond the book: seen tickets, acknowledgements, pending actions."""

    def __init__(self, station: str, *, acknowledged: Iterable[str] = ()) -> None:
        self.station = station
        self.seen: dict[str, tuple[TicketState, datetime | None, bool]] = {}
        """Ticket id → (state, amended_at, waiting to be fired) as last observed."""
        self.arrived: dict[str, datetime] = {}
        self.acknowledged: set[str] = set(acknowledged)
        self.pending = Pending()

    def tickets(self, orders: Iterable[Order]) -> Iterable[tuple[Order, Ticket]]:
        """(order, ticket) pairs of this station."""
        for o in orders:
            for t in o.tickets:
                if t.station == self.station:
                    yield o, t

    def observe(self, orders: Iterable[Order], now: datetime, *, quiet: bool = False) -> Changes:
        """Compare these orders' tickets with what was seen before; `quiet` (the first snapshot) marks nothing."""
        ch = Changes()
        for _o, t in self.tickets(orders):
            tid, state, amended, waiting = t.id, t.state, t.amended_at, t.waiting
            prev = self.seen.get(tid)
            self.seen[tid] = (state, amended, waiting)
            if quiet or prev == (state, amended, waiting):
                continue
            if waiting:
                continue  # not at this station yet (scheduled, or held): it rings when it is fired
            was_active = prev is not None and prev[0] in ACTIVE
            if state in ACTIVE:
                if prev is None or prev[2]:  # new here, or fired now
                    ch.arrived.append(tid)
                    self.arrived[tid] = now
                elif amended != prev[1]:
                    ch.amended.append(tid)
                elif not was_active:
                    ch.recalled.append(tid)
            elif state is TicketState.CANCELLED and prev is not None and prev[0] is not TicketState.CANCELLED:
                ch.cancelled.append(tid)
                self.acknowledged.discard(tid)
            elif state is TicketState.CANCELLED and prev is None:
                ch.cancelled.append(tid)
        return ch

    def forget_missing(self, orders: Iterable[Order]) -> None:
        """Drop what is kept about tickets the book no longer holds (after a fresh snapshot)."""
        present = {t.id for _o, t in self.tickets(orders)}
        self.seen = {k: v for k, v in self.seen.items() if k in present}
        self.arrived = {k: v for k, v in self.arrived.items() if k in present}
        self.acknowledged &= present

    def entry(self, order: Order, ticket: Ticket, now: datetime) -> Entry:
        """One ticket with pending actions applied."""
        actions = self.pending.for_ticket(ticket.id) if self.pending.actions else []
        state, done, done_at = effective(order, ticket, actions)
        arrived = self.arrived.get(ticket.id)
        return Entry(
            order,
            ticket,
            state,
            done,
            done_at,
            pending=bool(actions),
            fresh=state is TicketState.NEW and arrived is not None and now - arrived < FRESH_FOR,
            needs_ack=state is TicketState.CANCELLED and ticket.id not in self.acknowledged,
        )

    def entries(self, orders: Iterable[Order], now: datetime) -> list[Entry]:
        """The board: tickets to make and cancellations to acknowledge, in working order."""
        out = []
        for o, t in self.tickets(orders):
            if t.state is TicketState.CANCELLED and t.id in self.acknowledged:
                continue
            if t.state is TicketState.DONE and not self.pending.actions:
                continue
            if t.state is TicketState.NEW and t.waiting:
                continue  # waiting to be fired: in `scheduled`, not on the board
            e = self.entry(o, t, now)
            if e.state in ACTIVE or e.needs_ack:
                out.append(e)
        out.sort(key=board_order)
        return out

    def scheduled(self, orders: Iterable[Order]) -> list[tuple[Order, Ticket]]:
        """This station's tickets waiting to be fired (orders for later, parts fired by prep time, held ones): the
        next to fire first, the held ones last."""
        waiting = [
            (o, t)
            for o, t in self.tickets(orders)
            if t.state is TicketState.NEW and t.waiting and o.cancelled_at is None
        ]
        waiting.sort(key=lambda p: (p[1].held, p[1].fire_at or p[0].created_at, p[0].number))
        return waiting

    def recall_list(self, orders: Iterable[Order], now: datetime) -> list[Entry]:
        """Tickets bumped in the last `RECALL_WINDOW`, the latest first."""
        out = []
        for o, t in self.tickets(orders):
            if t.state not in (TicketState.DONE, *ACTIVE):
                continue
            e = self.entry(o, t, now)
            if e.state is TicketState.DONE and e.done_at is not None and now - e.done_at <= RECALL_WINDOW:
                out.append(e)
        out.sort(key=lambda e: e.done_at or now, reverse=True)
        return out

    def acknowledge(self, ticket_id: str) -> bool:
        """The cook has seen this cancellation; False when there was nothing to acknowledge."""
        seen = self.seen.get(ticket_id)
        if seen is None or seen[0] is not TicketState.CANCELLED or ticket_id in self.acknowledged:
            return False
        self.acknowledged.add(ticket_id)
        return True


def recallable(e: Entry) -> bool:
    """The hub reopens a bumped ticket only while its order is open."""
    return e.order.status not in CLOSED


# ------------------------------------------------------------------------------------------------ all-day totals


@dataclass(slots=True)
class Total:
    """All of one dish (item and cooking method) still to make across the station's open tickets."""

    sku: str
    name: str
    name_zh: str
    cook: str | None
    qty: int = 0
    weight_g: int = 0
    tickets: int = 0


def all_day(entries: Iterable[Entry]) -> list[Total]:
    """Totals per item and cooking method of what is still to make, the largest first."""
    totals: dict[tuple[str, str | None], Total] = {}
    for e in entries:
        if e.state not in ACTIVE:
            continue
        seen: set[tuple[str, str | None]] = set()
        for it in e.open_items():
            key = (it.sku, it.cook_name or it.cook)
            t = totals.get(key)
            if t is None:
                t = totals[key] = Total(it.sku, it.name, it.name_zh, key[1])
            elif t.name == t.name_zh and it.name != it.name_zh:
                t.name = it.name  # prefer a name the other language does not already show
            t.qty += it.qty
            t.weight_g += it.weight_g or 0
            if key not in seen:
                t.tickets += 1
                seen.add(key)
    return sorted(totals.values(), key=lambda t: (-t.qty, t.name, t.cook or ""))
