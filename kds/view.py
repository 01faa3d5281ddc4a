"""A client's copy of the hub's state, kept by applying `welcome` and event frames. No I/O.

Because every `event` carries the whole order after the change, applying is an upsert; a client that applies
every frame it gets holds the same orders as the hub shows it. Terminals, the demo, the simulator and the tests
all keep their state with `OrderBook`. It holds the frames' models as parsed (`kds.wire`), never re-validated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kds.protocol import Event, OrderStatus, OrderView, StatusChanged, StoreView, TicketView, Welcome
from kds.wire import HubFrame

CLOSED = (OrderStatus.HANDED_OVER, OrderStatus.CANCELLED)


@dataclass
class OrderBook:
    """Orders (`OrderView`) and, for sources, order statuses (`StatusChanged`), by order id."""

    orders: dict[str, OrderView] = field(default_factory=dict)
    statuses: dict[str, StatusChanged] = field(default_factory=dict)
    seq: int = 0
    store: StoreView | None = None
    """The store as the last welcome described it (None until the first)."""

    def reset(self, welcome: Welcome) -> None:
        """Take a `welcome` carrying a snapshot: drop everything, keep the snapshot."""
        snap = welcome.snapshot
        self.orders = {o.id: o for o in snap.orders} if snap is not None else {}
        self.statuses = {s.order_id: s for s in snap.statuses} if snap is not None else {}
        self.seq = welcome.seq
        self.store = welcome.store

    def apply(self, frame: HubFrame) -> bool:
        """Apply an `event` or `order.status` frame; False for frames that are not state."""
        if isinstance(frame, Event):
            order = frame.order
            current = self.orders.get(order.id)
            if current is None or current.version <= order.version:
                self.orders[order.id] = order
        elif isinstance(frame, StatusChanged):
            self.statuses[frame.order_id] = frame
        else:
            return False
        self.seq = max(self.seq, frame.seq)
        return True

    def keep(self, orders: Iterable[OrderView]) -> None:
        """Add orders fetched apart from the events (`orders.closed`): a known order is replaced only by a newer
        version."""
        for o in orders:
            known = self.orders.get(o.id)
            if known is None or known.version < o.version:
                self.orders[o.id] = o

    def open_orders(self) -> list[OrderView]:
        """Orders not handed over nor cancelled, oldest first."""
        return sorted((o for o in self.orders.values() if o.status not in CLOSED), key=lambda o: o.created_at)

    def tickets(self, station: str) -> list[tuple[OrderView, TicketView]]:
        """(order, ticket) pairs of one station, oldest order first."""
        out = []
        for o in sorted(self.orders.values(), key=lambda o: o.created_at):
            for t in o.tickets:
                if t.station == station:
                    out.append((o, t))
        return out
