"""A client's copy of the hub's state, kept by applying `welcome` and event frames. No I/O.

Because every `event` carries the whole order after the change, applying is an upsert; a client that applies
every frame it gets holds the same orders as the hub shows it. Terminals, the demo, the simulator and the tests
all keep their state with `OrderBook`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OrderBook:
    """Orders (as `OrderView` dicts) and, for sources, order statuses, by order id."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0
    store: dict[str, Any] = field(default_factory=dict)

    def reset(self, welcome: dict[str, Any]) -> None:
        """Take a `welcome` carrying a snapshot: drop everything, keep the snapshot."""
        snap = welcome.get("snapshot") or {}
        self.orders = {o["id"]: o for o in snap.get("orders", [])}
        self.statuses = {s["order_id"]: s for s in snap.get("statuses", [])}
        self.seq = int(welcome["seq"])
        self.store = welcome.get("store") or {}

    def apply(self, frame: dict[str, Any]) -> bool:
        """Apply an `event` or `order.status` frame; False for frames that are not state."""
        kind = frame.get("type")
        if kind == "event":
            order = frame["order"]
            current = self.orders.get(order["id"])
            if current is None or current["version"] <= order["version"]:
                self.orders[order["id"]] = order
        elif kind == "order.status":
            self.statuses[frame["order_id"]] = frame
        else:
            return False
        self.seq = max(self.seq, int(frame["seq"]))
        return True

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders not handed over nor cancelled, oldest first."""
        return sorted(
            (o for o in self.orders.values() if o["status"] not in ("handed_over", "cancelled")),
            key=lambda o: o["created_at"],
        )

    def tickets(self, station: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(order, ticket) pairs of one station, oldest order first."""
        out = []
        for o in sorted(self.orders.values(), key=lambda o: o["created_at"]):
            for t in o["tickets"]:
                if t["station"] == station:
                    out.append((o, t))
        return out
