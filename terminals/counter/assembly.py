"""How whole orders come together across the stations, as the expo / handover counter sees them. No I/O.

Warnings, from the store's own thresholds (`welcome.store`):
- a station is late on an order when its ticket has been open longer than the station's `late_after_s`
  (amber after `warn_after_s`);
- a READY order waits at the counter: amber after `counter_warn_after_s`, red after `counter_late_after_s`;
- a delivery the kitchen WILL MISS: not ready, and either a station is late on it, or its due time is less than
  `RIDER_MARGIN` away (the rider needs that long to reach the customer), or the hub's estimate of when it will be
  ready (`ready_at_estimate`, from the kitchen's load) leaves the rider less than that; LATE once the due time has
  passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from kds.protocol import (
    Delivery,
    DineIn,
    Fulfilment,
    OrderStatus,
    OrderView,
    Priority,
    StoreView,
    TicketState,
)
from kds.view import CLOSED

RIDER_MARGIN = timedelta(minutes=10)
"""A delivery must be with its rider this long before its due time."""
RECENTLY_CLOSED = timedelta(minutes=30)
"""Handed-over and cancelled orders stay listed (for recall) this long."""


class Level(IntEnum):
    """How urgent a row is."""

    OK = 0
    WARN = 1
    LATE = 2


def clock(delta: timedelta) -> str:
    """`m:ss` below an hour, `h:mm h` above (of the absolute value)."""
    s = abs(int(delta.total_seconds()))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s % 3600 // 60:02d} h"


@dataclass(frozen=True, slots=True)
class StationProgress:
    """One station's part of an order."""

    station: str
    done: int
    """Items of the ticket done."""
    total: int
    state: TicketState
    """The ticket's state: new, started, done."""
    level: Level
    """WARN / LATE when the ticket has been open longer than the station's thresholds."""
    fire_at: datetime | None = None
    """Not at its station yet: when it will be (an order for later, a part fired by prep time)."""
    held: bool = False
    """Not at its station yet: held until fired by hand."""

    @property
    def finished(self) -> bool:
        """The station's part is done."""
        return self.state is TicketState.DONE

    def label(self, local: Callable[[datetime], str] | None = None) -> str:
        """`seafood ✓` or `wok 1/2`; `wok ⏸ held`, or `wok ⏱ 18:22` (`local` writes the time) while it waits."""
        if self.held:
            return f"{self.station} ⏸ held"
        if self.fire_at is not None:
            return f"{self.station} ⏱ {local(self.fire_at) if local else self.fire_at.strftime('%H:%M')}"
        return f"{self.station} ✓" if self.finished else f"{self.station} {self.done}/{self.total}"


@dataclass(frozen=True, slots=True)
class Assembly:
    """One order on the expo list: progress per station, timing and warnings."""

    order: OrderView
    stations: list[StationProgress]
    destination: str
    """`table 12`, `pickup` or `delivery`."""
    age: timedelta
    due_in: timedelta | None
    """For deliveries: time left until the due time (negative when past)."""
    waiting: timedelta | None
    """For READY orders: how long they have waited at the counter."""
    alerts: tuple[str, ...]
    level: Level
    said: tuple[tuple[str, dict[str, str]], ...] = ()
    """The same alerts as English templates with their values (`("{station} late", {"station": "wok"})`), for a
    screen that says them in its own language."""

    @property
    def id(self) -> str:
        """The order id."""
        return self.order.id

    @property
    def number(self) -> str:
        """The order number (`S012`)."""
        return self.order.number

    @property
    def status(self) -> OrderStatus:
        """The order's status."""
        return self.order.status

    @property
    def ready(self) -> bool:
        """Every station's part is done and the order is still at the counter."""
        return self.status is OrderStatus.READY

    @property
    def called(self) -> bool:
        """The number was called and the customer has not come yet."""
        return self.ready and self.order.called_at is not None

    @property
    def closed(self) -> bool:
        """Handed over or cancelled."""
        return self.status in CLOSED

    @property
    def delivery(self) -> bool:
        """A rider takes it."""
        return isinstance(self.order.fulfilment, Delivery)

    def sort_key(self) -> tuple[Any, ...]:
        """READY first (not yet called before called), then the rest by urgency and age; closed last, newest first."""
        # Timestamps (floats) rather than the aware datetimes: they sort faster.
        created = self.order.created_at
        if self.closed:
            return (3, -self.order.updated_at.timestamp())
        if self.ready:
            return (0, 1 if self.called else 0, (self.order.status_at or created).timestamp())
        rush = 0 if self.order.priority is Priority.RUSH else 1
        return (1, -self.level, rush, created.timestamp())


def _destination(fulfilment: Fulfilment) -> str:
    if isinstance(fulfilment, DineIn):
        return f"table {fulfilment.table}"
    return "delivery" if isinstance(fulfilment, Delivery) else "pickup"


def station_progress(order: OrderView, store: StoreView | None, now: datetime) -> list[StationProgress]:
    """Each live ticket's progress, in the order the hub lists the tickets."""
    limits = {s.id: (s.warn_after_s, s.late_after_s) for s in (store.stations if store is not None else ())}
    items = {i.id: i for i in order.items}
    out = []
    for t in order.tickets:
        if t.state is TicketState.CANCELLED:
            continue
        live = [items[i] for i in t.items if i in items and not items[i].removed]
        done = sum(1 for i in live if i.done_at is not None)
        level = Level.OK
        waiting = t.state is TicketState.NEW and t.waiting
        if t.state is not TicketState.DONE and order.status not in CLOSED and not waiting:
            warn_s, late_s = limits.get(t.station, (None, None))
            open_s = (now - (t.fired_at or t.created_at)).total_seconds()
            if late_s is not None and open_s > late_s:
                level = Level.LATE
            elif warn_s is not None and open_s > warn_s:
                level = Level.WARN
        out.append(
            StationProgress(
                t.station,
                done,
                len(live),
                t.state,
                level,
                fire_at=t.fire_at if waiting else None,
                held=t.held and waiting,
            )
        )
    return out


def assemble(order: OrderView, store: StoreView | None, now: datetime) -> Assembly:
    """The expo view of one order at `now`."""
    stations = station_progress(order, store, now)
    status = order.status
    closed = status in CLOSED
    fulfilment = order.fulfilment
    created = order.created_at
    alerts: list[str] = []
    said: list[tuple[str, dict[str, str]]] = []
    level = Level.OK

    def alert(template: str, lvl: Level, **values: str) -> None:
        nonlocal level
        alerts.append(template.format(**values))
        said.append((template, values))
        level = max(level, lvl)

    # The most important alert first: a narrow screen shows only that one in the list.
    late_stations = [s.station for s in stations if s.level is Level.LATE]
    due_in: timedelta | None = None
    if isinstance(fulfilment, Delivery):
        due_in = fulfilment.due - now
        if not closed:
            if due_in.total_seconds() < 0:
                alert("LATE {clock}", Level.LATE, clock=clock(due_in))
            elif status is not OrderStatus.READY and (
                due_in <= RIDER_MARGIN
                or late_stations
                or (order.ready_at_estimate is not None and fulfilment.due - order.ready_at_estimate < RIDER_MARGIN)
            ):
                alert("WILL MISS DUE", Level.LATE)
    if not closed:
        for s in stations:
            if s.level is not Level.OK:
                alert("{station} late" if s.level is Level.LATE else "{station} slow", s.level, station=s.station)
    waiting: timedelta | None = None
    if status is OrderStatus.READY:
        since = order.status_at or order.updated_at or created
        waiting = now - since
        secs = waiting.total_seconds()
        if secs > ((store.counter_late_after_s if store is not None else 0) or 300):
            alert("waiting {clock}", Level.LATE, clock=clock(waiting))
        elif secs > ((store.counter_warn_after_s if store is not None else 0) or 120):
            alert("waiting {clock}", Level.WARN, clock=clock(waiting))
    return Assembly(
        order=order,
        stations=stations,
        destination=_destination(fulfilment),
        age=now - created,
        due_in=due_in,
        waiting=waiting,
        alerts=tuple(alerts),
        level=level if not closed else Level.OK,
        said=tuple(said),
    )


def expo_list(orders: list[OrderView], store: StoreView | None, now: datetime) -> list[Assembly]:
    """Open orders and recently closed ones, READY at the top, closed at the bottom."""
    rows = []
    for o in orders:
        if o.status in CLOSED and now - o.updated_at > RECENTLY_CLOSED:
            continue
        rows.append(assemble(o, store, now))
    rows.sort(key=Assembly.sort_key)
    return rows
