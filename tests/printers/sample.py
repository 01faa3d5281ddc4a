"""Sample orders for the printing tests, made by a real `OrderHub` (the pure core) with a fixed clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kds.config import StoreConfig
from kds.hub import OrderHub, Session
from kds.printing import PrintJob

START = datetime(2026, 11, 25, 4, 5, 0, tzinfo=UTC)
"""12:05 in Shanghai."""


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _session(hub: OrderHub, device: str) -> Session:
    dev = hub.config.device(device)
    assert dev is not None
    return Session(dev, hub.seq)


def _send(hub: OrderHub, device: str, msg: dict[str, Any]) -> tuple[dict[str, Any], list[PrintJob]]:
    d = hub.handle_frame(_session(hub, device), json.dumps(msg, ensure_ascii=False))
    return json.loads(d.replies[0][1]), d.jobs


def shift(config: StoreConfig) -> tuple[OrderHub, dict[str, list[PrintJob]]]:
    """A lunch rush on a pure hub: a shelf lobster order (amended, then a claim tag), an app delivery in Chinese
    and English with allergens and a long note, a kiosk pickup (cancelled). Returns the hub and its jobs by step."""
    clock = Clock()
    hub = OrderHub(config, clock=clock)
    jobs: dict[str, list[PrintJob]] = {}
    r, jobs["shelf.created"] = _send(
        hub,
        "shelf-1",
        {
            "type": "order.submit",
            "ref": "s1",
            "order": {
                "key": "shelf-0001",
                "channel": "shelf",
                "fulfilment": {"type": "dine_in", "table": "12"},
                "customer": {"name": "Mei Chen"},
                "items": [
                    {
                        "sku": "LOB-AUS",
                        "name": "Australian lobster",
                        "weight_g": 820,
                        "cook": "ginger_scallion",
                        "tag": "T-1001",
                        "modifiers": ["less oil"],
                    },
                    {
                        "sku": "LOB-AUS",
                        "weight_g": 700,
                        "cook": "sashimi",
                        "tag": "T-1002",
                        "note": "ice plate, shell as decoration, head kept for congee later",
                    },
                ],
            },
        },
    )
    shelf_id = r["order_id"]
    clock.now += timedelta(seconds=25)
    r, jobs["app.created"] = _send(
        hub,
        "app-backend",
        {
            "type": "order.submit",
            "ref": "a1",
            "order": {
                "key": "app-88412907",
                "channel": "app",
                "fulfilment": {"type": "delivery", "due": "2026-11-25T12:40:00+08:00", "address": "Biyun Rd 199"},
                "customer": {"name": "Wang L.", "phone": "138****5521"},
                "priority": "rush",
                "note": "Call on arrival — crème caramel and a café au lait for the kids please",
                "items": [
                    {"sku": "WOK-KUNGPAO", "qty": 2, "modifiers": ["extra chili"], "allergens": ["sesame"]},
                    {"sku": "BAR-MILKTEA", "modifiers": ["less sugar", "no ice"]},
                ],
            },
        },
    )
    app_id = r["order_id"]
    clock.now += timedelta(seconds=15)
    r, jobs["kiosk.created"] = _send(
        hub,
        "kiosk-1",
        {
            "type": "order.submit",
            "ref": "k1",
            "order": {
                "key": "kiosk-0057",
                "channel": "kiosk",
                "fulfilment": {"type": "pickup"},
                "items": [{"sku": "BAK-EGGTART", "qty": 2}, {"sku": "BAR-COCONUT"}],
            },
        },
    )
    kiosk_id = r["order_id"]
    clock.now += timedelta(seconds=60)
    _, jobs["app.amended"] = _send(
        hub,
        "app-backend",
        {
            "type": "order.amend",
            "ref": "a2",
            "order_id": app_id,
            "add": [{"sku": "WOK-MAPO"}],
            "remove": ["2"],
            "item_notes": {"1": "one of them without chili"},
        },
    )
    clock.now += timedelta(seconds=30)
    _, jobs["kiosk.cancelled"] = _send(
        hub, "kiosk-1", {"type": "order.cancel", "ref": "k2", "order_id": kiosk_id, "reason": "customer left"}
    )
    for layout in ("claim_tag", "pickup_slip", "expo"):
        target = kiosk_id if layout == "pickup_slip" else shelf_id
        if layout == "expo":
            target = app_id
        _, jobs[f"request.{layout}"] = _send(
            hub, "counter-1", {"type": "print.request", "ref": f"c-{layout}", "order_id": target, "layout": layout}
        )
    _, jobs["request.station"] = _send(
        hub, "counter-1", {"type": "print.request", "ref": "c-station", "order_id": shelf_id, "layout": "station"}
    )
    return hub, jobs
