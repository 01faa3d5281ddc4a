"""The order a clerk is keying in at the counter, and the `order.submit` it becomes. No I/O.

Channel rule: an order is `shelf` when one of its lines is goods from the tanks (sold by weight, or cooked to order
with a cooking method: the customer picked it and pays a processing fee); otherwise it is a walk-up `kiosk` order.
Each line from the tanks gets a claim-tag id (`<hhmmss>-<n>`: the store's local time when the order's first line was
keyed in, and the line's number), printed on the claim tag that travels with the product to the kitchen.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from kds.protocol import OrderIn
from terminals.counter.catalogue import MAX_NOTE_LEN, Problem, Product

MAX_TABLE_LEN = 16


class Service(StrEnum):
    """How the customer gets the order."""

    DINE_IN = "dine_in"
    PICKUP = "pickup"


def new_key(device: str, now: datetime) -> str:
    """An idempotency key unique for this counter: a resend with it can never create a second order."""
    return f"{device}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Line:
    """One order line as keyed in."""

    product: Product
    qty: int = 1
    weight_g: int | None = None
    cook: str | None = None
    fee_cents: int = 0
    note: str | None = None
    allergens: tuple[str, ...] = ()
    tag: str | None = None

    @property
    def price_cents(self) -> int:
        """The goods' price: the weight at the price per kg, or qty × the piece price (the fee not included)."""
        return self.product.price_of(self.qty, self.weight_g) or 0

    @property
    def total_cents(self) -> int:
        """Goods and processing fee."""
        return self.price_cents + self.fee_cents

    def to_item(self) -> dict[str, Any]:
        """The `ItemIn` dict."""
        item: dict[str, Any] = {"sku": self.product.sku, "qty": self.qty}
        if self.weight_g is not None:
            item["weight_g"] = self.weight_g
        if self.cook:
            item["cook"] = self.cook
        if self.allergens:
            item["allergens"] = list(self.allergens)
        if self.note:
            item["note"] = self.note
        if self.tag:
            item["tag"] = self.tag
        return item


@dataclass
class Draft:
    """An order being keyed in; its idempotency `key` stays the same until the hub accepts it."""

    key: str
    lines: list[Line] = field(default_factory=list)
    service: Service = Service.DINE_IN
    table: str = ""
    note: str = ""
    tag_code: str | None = None
    """`hhmmss` of the first line: the stem of this order's claim-tag ids."""
    tags_issued: int = 0

    @property
    def channel(self) -> str:
        """`shelf` when a line is goods from the tanks, else `kiosk`."""
        return "shelf" if any(line.product.from_the_tanks for line in self.lines) else "kiosk"

    @property
    def fees_cents(self) -> int:
        """Processing fees of all lines."""
        return sum(line.fee_cents for line in self.lines)

    @property
    def total_cents(self) -> int:
        """Goods and processing fees of all lines."""
        return sum(line.total_cents for line in self.lines)

    def add(self, line: Line, now: datetime) -> Line:
        """Append a line, giving goods from the tanks their claim-tag id; returns the line as added."""
        if line.product.from_the_tanks and line.tag is None:
            if self.tag_code is None:
                self.tag_code = f"{now:%H%M%S}"
            self.tags_issued += 1
            line = replace(line, tag=f"{self.tag_code}-{self.tags_issued}")
        self.lines.append(line)
        return line

    def remove(self, index: int) -> Line | None:
        """Take out the line at this position (0-based)."""
        if 0 <= index < len(self.lines):
            return self.lines.pop(index)
        return None

    def problems(self, w: Callable[[str], str] = str) -> list[Problem]:
        """What stops this order from being sent (field: `lines`, `table` or `note`), said by `w` (the screen's
        language; English by default; the wire protocol's own objections stay as it words them)."""
        problems: list[Problem] = []
        if not self.lines:
            problems.append(Problem("lines", w("the order has no items yet: add one with F4")))
        table = self.table.strip()
        if self.service is Service.DINE_IN:
            if not table:
                problems.append(Problem("table", w("enter the table number (or choose pickup)")))
            elif len(table) > MAX_TABLE_LEN:
                problems.append(Problem("table", w("at most {n} characters").format(n=MAX_TABLE_LEN)))
        if len(self.note) > MAX_NOTE_LEN:
            problems.append(Problem("note", w("at most {n} characters").format(n=MAX_NOTE_LEN)))
        if not problems:
            problems.extend(self._protocol_problems())
        return problems

    def to_order(self) -> dict[str, Any]:
        """The `OrderIn` dict (the `order` of an `order.submit`)."""
        fulfilment: dict[str, Any] = (
            {"type": "dine_in", "table": self.table.strip()} if self.service is Service.DINE_IN else {"type": "pickup"}
        )
        order: dict[str, Any] = {
            "key": self.key,
            "channel": self.channel,
            "fulfilment": fulfilment,
            "items": [line.to_item() for line in self.lines],
        }
        if self.note.strip():
            order["note"] = self.note.strip()
        return order

    def _protocol_problems(self) -> list[Problem]:
        """Anything else the wire protocol refuses (lengths, counts), named by form field."""
        try:
            OrderIn.model_validate(self.to_order())
        except ValidationError as exc:
            out = []
            for e in exc.errors(include_url=False):
                loc = [str(p) for p in e["loc"]]
                where = "table" if "table" in loc else "note" if loc[:1] == ["note"] else "lines"
                out.append(Problem(where, f"{'.'.join(loc)}: {e['msg']}"))
            return out
        return []
