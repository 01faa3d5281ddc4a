"""Orders, items and station tickets, and the state machine that changes them. No I/O.

Every transition takes the time from the caller (the hub's injectable clock) and reports whether it changed
anything, so repeating an action (a bump resent after a reconnect) is harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from kds.protocol import (
    HandoverTo,
    HubTime,
    ItemChange,
    ItemView,
    OrderStatus,
    OrderView,
    TicketState,
    TicketView,
)


class DomainError(Exception):
    """An action that the order's state does not allow (answered as an `error` frame)."""

    def __init__(self, code: str, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.loc = loc


class Item(ItemView):
    """One order line, routed to one station: the `ItemView` of the wire, which the hub changes in place."""

    model_config = ConfigDict(frozen=False)  # changed in place, unlike the frozen frames of `kds.protocol`

    removed: bool = False
    done_at: HubTime | None = None
    change: ItemChange | None = None


class Ticket(TicketView):
    """The part of one order that one station makes (its `TicketView`)."""

    model_config = ConfigDict(frozen=False)  # changed in place, unlike the frozen frames of `kds.protocol`

    started_at: HubTime | None = None
    done_at: HubTime | None = None
    recalled_at: HubTime | None = None
    amended_at: HubTime | None = None


def ticket_id(order_id: str, station: str) -> str:
    """Ticket ids name the order and the station: `20261125-A023/wok`."""
    return f"{order_id}/{station}"


class Order(OrderView):
    """An order: its lines, one ticket per station that makes part of it, and the counter's progress.

    It is the `OrderView` of the wire (events, snapshots and the database carry it as it is), changed in place by
    the state machine below; `status` is kept in step with what the tickets and the counter's actions make it.
    Fields that stored documents of older versions lack have their defaults here (`OrderView` requires them).
    """

    model_config = ConfigDict(frozen=False)  # changed in place, unlike the frozen frames of `kds.protocol`
    __slots__ = ("_kds_progress", "_kds_told")
    # The hub's own state, not on the wire: a plain slot, not a pydantic private attribute (those are set up in
    # Python for every order built, and written through `BaseModel.__setattr__`; a restart builds thousands).

    status: OrderStatus = OrderStatus.ACCEPTED
    version: int = 1
    called_at: HubTime | None = None
    handed_over_at: HubTime | None = None
    handed_over_to: HandoverTo | None = None
    cancelled_at: HubTime | None = None
    cancel_reason: str | None = None
    amended_at: HubTime | None = None
    status_seq: int = 0
    status_at: HubTime | None = None
    status_ready: list[str] = Field(default_factory=list)
    amend_refs: list[str] = Field(default_factory=list)
    items: list[Item]
    tickets: list[Ticket] = Field(default_factory=list)

    @property
    def progress(self) -> OrderStatus | None:
        """The status as the source last heard it; not on the wire (nor copied by `model_copy`)."""
        status: OrderStatus | None = getattr(self, "_kds_progress", None)
        return status

    @progress.setter
    def progress(self, status: OrderStatus | None) -> None:
        object.__setattr__(self, "_kds_progress", status)

    @property
    def told_schedule(self) -> OrderStatus | None:
        """The `schedule_status` as the source last heard it; not on the wire."""
        status: OrderStatus | None = getattr(self, "_kds_told", None)
        return status

    @told_schedule.setter
    def told_schedule(self, status: OrderStatus | None) -> None:
        object.__setattr__(self, "_kds_told", status)

    # ------------------------------------------------------------------ derived

    def stations_done(self) -> list[str]:
        """Stations whose ticket is done."""
        return [t.station for t in self.tickets if t.state is TicketState.DONE]

    def derived_status(self) -> OrderStatus:
        """The status the tickets and the counter's actions make (what `status` is set to on every change)."""
        if self.cancelled_at is not None:
            return OrderStatus.CANCELLED
        if self.handed_over_at is not None:
            return OrderStatus.HANDED_OVER
        # One pass over the tickets (every change and every restored order works it out).
        live = done = started = 0
        for t in self.tickets:
            state = t.state
            if state is TicketState.CANCELLED:
                continue
            live += 1
            if state is TicketState.DONE:
                done += 1
            elif state is TicketState.STARTED:
                started += 1
        if live and done == live:
            return OrderStatus.READY
        if done or started:
            return OrderStatus.PREPARING
        for i in self.items:
            if i.done_at is not None and not i.removed:
                return OrderStatus.PREPARING
        return OrderStatus.ACCEPTED

    @property
    def is_open(self) -> bool:
        """Not yet handed over nor cancelled."""
        return self.cancelled_at is None and self.handed_over_at is None

    def stations(self) -> frozenset[str]:
        """Stations that hold a ticket of this order (cancelled tickets included)."""
        return frozenset(t.station for t in self.tickets)

    @property
    def by_station(self) -> dict[str, Ticket]:
        """The order's tickets by station (a new dict: the tickets themselves are the order's)."""
        return {t.station: t for t in self.tickets}

    def ticket_at(self, station: str) -> Ticket | None:
        """This order's ticket for a station, if it has one."""
        for t in self.tickets:
            if t.station == station:
                return t
        return None

    def item(self, item_id: str) -> Item | None:
        """The item with this id, if any."""
        # Item k is `items[k - 1]` (ids are 1, 2, 3... in the order of the lines, never reused, and removed lines
        # stay): found at once, without a scan per lookup (a bump looks up every item of its ticket).
        k = int(item_id) if item_id.isdecimal() else 0
        if 0 < k <= len(self.items) and (hit := self.items[k - 1]).id == item_id:
            return hit
        for it in self.items:
            if it.id == item_id:
                return it
        return None

    def next_item_id(self) -> int:
        """Item ids are small integers as strings, never reused within an order."""
        return 1 + max((int(i.id) for i in self.items), default=0)

    # ------------------------------------------------------------------ building

    @classmethod
    def create(cls, now: datetime, items: list[dict[str, Any]], **fields: Any) -> Order:
        """A new order, created `now`, from its fields and its items' (`Item`'s fields), with one ticket per station
        (as `build_tickets` makes them): validated by pydantic in one call, which builds its items and tickets."""
        order_id: str = fields["id"]
        tickets: dict[str, dict[str, Any]] = {}
        for it in items:
            station: str = it["station"]
            t = tickets.get(station)
            if t is None:
                t = tickets[station] = {
                    "id": ticket_id(order_id, station),
                    "station": station,
                    "state": TicketState.NEW,
                    "items": [],
                    "created_at": now,
                }
            t["items"].append(it["id"])
        return cls(**fields, created_at=now, updated_at=now, items=items, tickets=list(tickets.values()))

    def build_tickets(self, now: datetime) -> None:
        """Create one ticket per station from the items (on creation)."""
        for it in self.items:
            self._ticket_for(it.station, now).items.append(it.id)

    def _ticket_for(self, station: str, now: datetime) -> Ticket:
        t = self.ticket_at(station)
        if t is None:
            t = Ticket(id=ticket_id(self.id, station), station=station, state=TicketState.NEW, items=[], created_at=now)
            self.tickets.append(t)
        return t

    def _touch(self, now: datetime) -> None:
        self.updated_at = now
        self.version += 1
        self.status = self.derived_status()

    def _require_open(self, action: str) -> None:
        if self.cancelled_at is not None:
            raise DomainError("conflict", f"order {self.number} is cancelled: cannot {action}")
        if self.handed_over_at is not None:
            raise DomainError("conflict", f"order {self.number} was handed over: cannot {action}")

    def ticket(self, tid: str) -> Ticket:
        """The ticket with this id; DomainError when it is not one of this order's."""
        for t in self.tickets:
            if t.id == tid:
                return t
        raise DomainError("not_found", f"no ticket {tid!r}", ("ticket_id",))

    # ------------------------------------------------------------------ kitchen

    def fire(self, t: Ticket, now: datetime) -> bool:
        """A waiting ticket goes to its station now. False when it was there already."""
        self._require_open("fire it")
        if not t.waiting or t.state is TicketState.CANCELLED:
            return False
        self._taken(t, now)
        self._touch(now)
        return True

    def hold(self, t: Ticket, now: datetime) -> bool:
        """A ticket not started yet waits until it is fired by hand. False when it was held already."""
        self._require_open("hold it")
        if t.state is not TicketState.NEW:
            raise DomainError("conflict", f"ticket {t.id} is {t.state.value}: only a new ticket can be held")
        if t.held:
            return False
        t.held = True
        self._touch(now)
        return True

    def schedule_status(self) -> OrderStatus | None:
        """What its source is told besides `status` for an order scheduled for later: `scheduled` while every ticket
        waits, `fired` once they went to the kitchen until a station starts (None otherwise)."""
        if self.schedule is None or self.status is not OrderStatus.ACCEPTED:
            return None
        if self.schedule.fired_at is None:
            return OrderStatus.SCHEDULED
        return OrderStatus.FIRED

    def start(self, t: Ticket, now: datetime) -> bool:
        """new → started. False when already started or done."""
        self._require_open("start a ticket")
        if t.state is TicketState.CANCELLED:
            raise DomainError("conflict", f"ticket {t.id} is cancelled")
        if t.state is not TicketState.NEW:
            return False
        self._taken(t, now)
        t.state = TicketState.STARTED
        t.started_at = now
        self._touch(now)
        return True

    def _taken(self, t: Ticket, now: datetime) -> None:
        """A station acts on a ticket that was waiting (it saw it scheduled): it is fired now."""
        if t.waiting:
            t.fire_at = None
            t.held = False
            t.fired_at = now
            if self.schedule is not None and self.schedule.fired_at is None:
                self.schedule = self.schedule.model_copy(update={"fired_at": now})

    def bump(self, t: Ticket, now: datetime) -> bool:
        """→ done, with every live item. False when already done."""
        self._require_open("bump a ticket")
        if t.state is TicketState.CANCELLED:
            raise DomainError("conflict", f"ticket {t.id} is cancelled")
        if t.state is TicketState.DONE:
            return False
        self._taken(t, now)
        self._finish(t, now)
        self._touch(now)
        return True

    def _finish(self, t: Ticket, now: datetime) -> None:
        t.state = TicketState.DONE
        t.started_at = t.started_at or now
        t.done_at = now
        for iid in t.items:
            it = self.item(iid)
            if it is not None and not it.removed and it.done_at is None:
                it.done_at = now

    def bump_item(self, t: Ticket, item_id: str, now: datetime) -> bool:
        """Mark one item done; the ticket is done when all its live items are. False when already done."""
        self._require_open("bump an item")
        if t.state is TicketState.CANCELLED:
            raise DomainError("conflict", f"ticket {t.id} is cancelled")
        it = self.item(item_id)
        if it is None or item_id not in t.items:
            raise DomainError("not_found", f"no item {item_id!r} on ticket {t.id}", ("item_id",))
        if it.removed:
            raise DomainError("conflict", f"item {item_id} was removed from the order", ("item_id",))
        if it.done_at is not None:
            return False
        self._taken(t, now)
        it.done_at = now
        if t.state is TicketState.NEW:
            t.state = TicketState.STARTED
            t.started_at = now
        live = [self.item(i) for i in t.items]
        if all(x is None or x.removed or x.done_at is not None for x in live):
            self._finish(t, now)
        self._touch(now)
        return True

    def recall_ticket(self, t: Ticket, now: datetime) -> bool:
        """done → started again, items reopened. False when the ticket is not done."""
        self._require_open("recall a ticket")
        if t.state is not TicketState.DONE:
            return False
        t.state = TicketState.STARTED
        t.done_at = None
        t.recalled_at = now
        self.called_at = None  # not ready any more: the number must be called again when it is
        for iid in t.items:
            it = self.item(iid)
            if it is not None:
                it.done_at = None
        self._touch(now)
        return True

    # ------------------------------------------------------------------ counter

    def call(self, now: datetime) -> bool:
        """Call the number of a ready order. False when already called."""
        self._require_open("call it")
        if self.status is not OrderStatus.READY:
            raise DomainError("conflict", f"order {self.number} is not ready (it is {self.status.value})")
        if self.called_at is not None:
            return False
        self.called_at = now
        self._touch(now)
        return True

    def handover(self, to: HandoverTo, now: datetime) -> bool:
        """Hand a ready order over. False when already handed over."""
        if self.handed_over_at is not None:
            return False
        self._require_open("hand it over")
        if self.status is not OrderStatus.READY:
            raise DomainError("conflict", f"order {self.number} is not ready (it is {self.status.value})")
        self.handed_over_at = now
        self.handed_over_to = to
        self._touch(now)
        return True

    def recall_handover(self, now: datetime) -> bool:
        """Take back a handed-over order: ready again. False when it was not handed over."""
        if self.cancelled_at is not None:
            raise DomainError("conflict", f"order {self.number} is cancelled")
        if self.handed_over_at is None:
            return False
        self.handed_over_at = None
        self.handed_over_to = None
        self.called_at = None
        self._touch(now)
        return True

    # ------------------------------------------------------------------ source

    def cancel(self, reason: str | None, now: datetime) -> bool:
        """Cancel the order and all its tickets. False when already cancelled."""
        if self.cancelled_at is not None:
            return False
        if self.handed_over_at is not None:
            raise DomainError("conflict", f"order {self.number} was handed over: cannot cancel it")
        self.cancelled_at = now
        self.cancel_reason = reason
        for t in self.tickets:
            t.state = TicketState.CANCELLED
        self._touch(now)
        return True

    def amend(
        self,
        add: list[Item],
        remove: list[str],
        note: str | None,
        item_notes: dict[str, str],
        now: datetime,
    ) -> set[str]:
        """Apply an amendment (already validated by the hub); returns the stations it touched."""
        self._require_open("amend it")
        touched: set[str] = set()
        for iid, text in item_notes.items():
            it = self.item(iid)
            assert it is not None and not it.removed
            it.note = text or None
            it.change = it.change or ItemChange.NOTE
            touched.add(it.station)
        for iid in remove:
            it = self.item(iid)
            assert it is not None
            if it.removed:
                continue
            it.removed = True
            it.change = ItemChange.REMOVED
            touched.add(it.station)
        for it in add:
            it.change = ItemChange.ADDED
            self.items.append(it)
            t = self._ticket_for(it.station, now)
            if t.state in (TicketState.DONE, TicketState.CANCELLED):
                # New work on a finished ticket reopens it.
                t.state = TicketState.STARTED if t.started_at else TicketState.NEW
                t.done_at = None
            t.items.append(it.id)
            touched.add(it.station)
        if note is not None:
            self.note = note or None
            touched.update(self.stations())
        for t in self.tickets:
            if t.station not in touched:
                continue
            t.amended_at = now
            live = [x for x in (self.item(i) for i in t.items) if x is not None and not x.removed]
            if not live:
                t.state = TicketState.CANCELLED
            elif t.state is not TicketState.DONE and all(x.done_at is not None for x in live):
                self._finish(t, now)
        if self.derived_status() is not OrderStatus.READY:
            self.called_at = None  # reopened: its number must be called again when it is ready
        self.amended_at = now
        self._touch(now)
        return touched

    def live_items(self) -> list[Item]:
        """Items not removed by an amendment."""
        return [i for i in self.items if not i.removed]
