"""Orders, items and station tickets, and the state machine that changes them. No I/O.

Every transition takes the time from the caller (the hub's injectable clock) and reports whether it changed
anything, so repeating an action (a bump resent after a reconnect) is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kds.protocol import HandoverTo, ItemChange, OrderStatus, Priority, TicketState


class DomainError(Exception):
    """An action that the order's state does not allow (answered as an `error` frame)."""

    def __init__(self, code: str, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.loc = loc


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s is not None else None


_fromiso = datetime.fromisoformat
_TICKET_STATES: dict[str, TicketState] = {s.value: s for s in TicketState}
_ITEM_CHANGES: dict[str, ItemChange] = {c.value: c for c in ItemChange}
_PRIORITIES: dict[str, Priority] = {p.value: p for p in Priority}
"""Enum members by value: a lookup, not an enum call, for each of the thousands of tickets and items restored."""


@dataclass(slots=True)
class Item:
    """One order line, routed to one station."""

    id: str
    sku: str
    name: str
    name_zh: str
    qty: int
    weight_g: int | None
    cook: str | None
    cook_name: str | None
    fee_cents: int
    modifiers: list[str]
    allergens: list[str]
    note: str | None
    tag: str | None
    station: str
    unrouted: bool
    removed: bool = False
    done_at: datetime | None = None
    change: ItemChange | None = None
    declared_allergens: list[str] = field(default_factory=list)
    """Allergies the customer declared for this line (`allergens` also lists the dish's own)."""

    def to_wire(self) -> dict[str, Any]:
        """The `ItemView` dict."""
        return {
            "id": self.id,
            "sku": self.sku,
            "name": self.name,
            "name_zh": self.name_zh,
            "qty": self.qty,
            "weight_g": self.weight_g,
            "cook": self.cook,
            "cook_name": self.cook_name,
            "fee_cents": self.fee_cents,
            "modifiers": self.modifiers,
            "allergens": self.allergens,
            "note": self.note,
            "tag": self.tag,
            "station": self.station,
            "unrouted": self.unrouted,
            "removed": self.removed,
            "done_at": _iso(self.done_at),
            "change": self.change.value if self.change else None,
            "declared_allergens": list(self.declared_allergens),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Item:
        """Rebuild from an `ItemView` dict (database restore, client views)."""
        # Positional, in the order of the fields: a restart rebuilds tens of thousands of items.
        done = d["done_at"]
        change = d["change"]
        return cls(
            d["id"],
            d["sku"],
            d["name"],
            d["name_zh"],
            d["qty"],
            d["weight_g"],
            d["cook"],
            d["cook_name"],
            d["fee_cents"],
            list(d["modifiers"]),
            list(d["allergens"]),
            d["note"],
            d["tag"],
            d["station"],
            d["unrouted"],
            d["removed"],
            _fromiso(done) if done is not None else None,
            (_ITEM_CHANGES.get(change) or ItemChange(change)) if change else None,
            list(d.get("declared_allergens", ())),
        )


@dataclass(slots=True)
class Ticket:
    """The part of one order that one station makes."""

    id: str
    station: str
    state: TicketState
    items: list[str]
    created_at: datetime
    started_at: datetime | None = None
    done_at: datetime | None = None
    recalled_at: datetime | None = None
    amended_at: datetime | None = None

    def to_wire(self) -> dict[str, Any]:
        """The `TicketView` dict."""
        return {
            "id": self.id,
            "station": self.station,
            "state": self.state.value,
            "items": list(self.items),
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "done_at": _iso(self.done_at),
            "recalled_at": _iso(self.recalled_at),
            "amended_at": _iso(self.amended_at),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Ticket:
        """Rebuild from a `TicketView` dict."""
        state = d["state"]
        started, done, recalled, amended = d["started_at"], d["done_at"], d["recalled_at"], d["amended_at"]
        return cls(
            d["id"],
            d["station"],
            _TICKET_STATES.get(state) or TicketState(state),
            list(d["items"]),
            _fromiso(d["created_at"]),
            _fromiso(started) if started is not None else None,
            _fromiso(done) if done is not None else None,
            _fromiso(recalled) if recalled is not None else None,
            _fromiso(amended) if amended is not None else None,
        )


def ticket_id(order_id: str, station: str) -> str:
    """Ticket ids name the order and the station: `20261125-A023/wok`."""
    return f"{order_id}/{station}"


@dataclass(slots=True)
class Order:
    """An order: its lines, one ticket per station that makes part of it, and the counter's progress."""

    id: str
    number: str
    key: str
    source: str
    channel: str
    fulfilment: dict[str, Any]
    customer: dict[str, Any] | None
    priority: Priority
    note: str | None
    created_at: datetime
    updated_at: datetime
    items: list[Item]
    tickets: dict[str, Ticket] = field(default_factory=dict)
    version: int = 1
    called_at: datetime | None = None
    handed_over_at: datetime | None = None
    handed_over_to: HandoverTo | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    amended_at: datetime | None = None
    status_seq: int = 0
    """The seq of the event that last changed the status (the source's last `order.status`)."""
    status_at: datetime | None = None
    status_ready: list[str] = field(default_factory=list)
    """Stations done at that moment (the `ready` of that `order.status`)."""
    amend_refs: list[str] = field(default_factory=list)
    """`device:ref` of the amendments applied, so a resent amendment is recognised (the last 50)."""
    digest: str | None = None
    """The digest of the order as submitted (`kds.protocol.order_digest`), to tell a resubmission with the same key
    from another order under that key; None for orders stored before it was kept."""
    progress: OrderStatus | None = None
    """The status as the source last heard it; not on the wire."""

    # ------------------------------------------------------------------ derived

    def stations_done(self) -> list[str]:
        """Stations whose ticket is done."""
        return [t.station for t in self.tickets.values() if t.state is TicketState.DONE]

    @property
    def status(self) -> OrderStatus:
        """Derived from the tickets and the counter's actions."""
        if self.cancelled_at is not None:
            return OrderStatus.CANCELLED
        if self.handed_over_at is not None:
            return OrderStatus.HANDED_OVER
        live = [t for t in self.tickets.values() if t.state is not TicketState.CANCELLED]
        if live and all(t.state is TicketState.DONE for t in live):
            return OrderStatus.READY
        if any(t.state is not TicketState.NEW for t in live) or any(
            i.done_at is not None for i in self.items if not i.removed
        ):
            return OrderStatus.PREPARING
        return OrderStatus.ACCEPTED

    @property
    def is_open(self) -> bool:
        """Not yet handed over nor cancelled."""
        return self.cancelled_at is None and self.handed_over_at is None

    def stations(self) -> frozenset[str]:
        """Stations that hold a ticket of this order (cancelled tickets included)."""
        return frozenset(self.tickets)

    def item(self, item_id: str) -> Item | None:
        """The item with this id, if any."""
        for it in self.items:
            if it.id == item_id:
                return it
        return None

    def next_item_id(self) -> int:
        """Item ids are small integers as strings, never reused within an order."""
        return 1 + max((int(i.id) for i in self.items), default=0)

    # ------------------------------------------------------------------ building

    def build_tickets(self, now: datetime) -> None:
        """Create one ticket per station from the items (on creation)."""
        for it in self.items:
            t = self.tickets.get(it.station)
            if t is None:
                t = Ticket(ticket_id(self.id, it.station), it.station, TicketState.NEW, [], now)
                self.tickets[it.station] = t
            t.items.append(it.id)

    def _touch(self, now: datetime) -> None:
        self.updated_at = now
        self.version += 1

    def _require_open(self, action: str) -> None:
        if self.cancelled_at is not None:
            raise DomainError("conflict", f"order {self.number} is cancelled: cannot {action}")
        if self.handed_over_at is not None:
            raise DomainError("conflict", f"order {self.number} was handed over: cannot {action}")

    def ticket(self, tid: str) -> Ticket:
        """The ticket with this id; DomainError when it is not one of this order's."""
        for t in self.tickets.values():
            if t.id == tid:
                return t
        raise DomainError("not_found", f"no ticket {tid!r}", ("ticket_id",))

    # ------------------------------------------------------------------ kitchen

    def start(self, t: Ticket, now: datetime) -> bool:
        """new → started. False when already started or done."""
        self._require_open("start a ticket")
        if t.state is TicketState.CANCELLED:
            raise DomainError("conflict", f"ticket {t.id} is cancelled")
        if t.state is not TicketState.NEW:
            return False
        t.state = TicketState.STARTED
        t.started_at = now
        self._touch(now)
        return True

    def bump(self, t: Ticket, now: datetime) -> bool:
        """→ done, with every live item. False when already done."""
        self._require_open("bump a ticket")
        if t.state is TicketState.CANCELLED:
            raise DomainError("conflict", f"ticket {t.id} is cancelled")
        if t.state is TicketState.DONE:
            return False
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
        for t in self.tickets.values():
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
            t = self.tickets.get(it.station)
            if t is None:
                t = Ticket(ticket_id(self.id, it.station), it.station, TicketState.NEW, [], now)
                self.tickets[it.station] = t
            elif t.state in (TicketState.DONE, TicketState.CANCELLED):
                # New work on a finished ticket reopens it.
                t.state = TicketState.STARTED if t.started_at else TicketState.NEW
                t.done_at = None
            t.items.append(it.id)
            touched.add(it.station)
        if note is not None:
            self.note = note or None
            touched.update(self.tickets)
        for st in touched:
            t = self.tickets[st]
            t.amended_at = now
            live = [x for x in (self.item(i) for i in t.items) if x is not None and not x.removed]
            if not live:
                t.state = TicketState.CANCELLED
            elif t.state is not TicketState.DONE and all(x.done_at is not None for x in live):
                self._finish(t, now)
        if self.status is not OrderStatus.READY:
            self.called_at = None  # reopened: its number must be called again when it is ready
        self.amended_at = now
        self._touch(now)
        return touched

    def live_items(self) -> list[Item]:
        """Items not removed by an amendment."""
        return [i for i in self.items if not i.removed]

    # ------------------------------------------------------------------ wire

    def to_wire(self) -> dict[str, Any]:
        """The `OrderView` dict (what events and snapshots carry)."""
        return {
            "id": self.id,
            "number": self.number,
            "key": self.key,
            "source": self.source,
            "channel": self.channel,
            "fulfilment": self.fulfilment,
            "customer": self.customer,
            "priority": self.priority.value,
            "note": self.note,
            "status": self.status.value,
            "version": self.version,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "called_at": _iso(self.called_at),
            "handed_over_at": _iso(self.handed_over_at),
            "handed_over_to": self.handed_over_to.value if self.handed_over_to else None,
            "cancelled_at": _iso(self.cancelled_at),
            "cancel_reason": self.cancel_reason,
            "amended_at": _iso(self.amended_at),
            "status_seq": self.status_seq,
            "status_at": _iso(self.status_at),
            "status_ready": list(self.status_ready),
            "amend_refs": list(self.amend_refs),
            "digest": self.digest,
            "items": [i.to_wire() for i in self.items],
            "tickets": [t.to_wire() for t in self.tickets.values()],
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Order:
        """Rebuild from an `OrderView` dict (database restore, client views)."""
        order = cls._from_wire(d)
        order.progress = order.status
        return order

    @classmethod
    def _from_wire(cls, d: dict[str, Any]) -> Order:
        created = _dt(d["created_at"])
        updated = _dt(d["updated_at"])
        assert created is not None and updated is not None
        ticket = Ticket.from_wire
        item = Item.from_wire
        priority = d["priority"]
        return cls(
            id=d["id"],
            number=d["number"],
            key=d["key"],
            source=d["source"],
            channel=d["channel"],
            fulfilment=d["fulfilment"],
            customer=d["customer"],
            priority=_PRIORITIES.get(priority) or Priority(priority),
            note=d["note"],
            created_at=created,
            updated_at=updated,
            items=[item(i) for i in d["items"]],
            tickets={t.station: t for t in map(ticket, d["tickets"])},
            version=d["version"],
            called_at=_dt(d["called_at"]),
            handed_over_at=_dt(d["handed_over_at"]),
            handed_over_to=HandoverTo(d["handed_over_to"]) if d["handed_over_to"] else None,
            cancelled_at=_dt(d["cancelled_at"]),
            cancel_reason=d["cancel_reason"],
            amended_at=_dt(d["amended_at"]),
            status_seq=d.get("status_seq", 0),
            status_at=_dt(d.get("status_at")),
            status_ready=list(d.get("status_ready", [])),
            amend_refs=list(d.get("amend_refs", [])),
            digest=d.get("digest"),
        )
