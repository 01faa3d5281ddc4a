"""One wire model: every text the hub writes is one of the protocol's models, written by pydantic.

The domain's order is the wire's `OrderView` (a subclass that changes in place), and every frame the hub sends (and
every order document it stores) validates into its model in `kds.protocol` and writes back to the same bytes. A
second shape (a hand-written dict, a spliced string, a serialiser of its own) would show here as a text the model
does not reproduce.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter

from kds.config import StoreConfig
from kds.domain import Item, Order, Ticket
from kds.hub import Decision, OrderHub
from kds.protocol import HubMessage, ItemView, OrderView, PrinterState, TicketView
from tests.conftest import app_order, shelf_order
from tests.test_hub_core import Core, mixed_order

FRAMES: TypeAdapter[Any] = TypeAdapter(HubMessage)

PRIVATE = {"name": "Li Wei", "phone": "+86 138 0000 0000"}
ADDRESS = {"type": "delivery", "due": "2026-11-25T12:30:00+08:00", "address": "88 Century Ave, Pudong"}


def texts_of(d: Decision) -> list[str]:
    """Every text a decision carries: replies, each audience's event frame, the source's status, the stored order."""
    out = [f for _, f in d.replies]
    for rec in d.events:
        out += [rec.frame, rec.kitchen_frame()]
        out += [rec.status_frame] if rec.status_frame is not None else []
    return out


def session(core: Core) -> tuple[list[str], list[str]]:
    """A scripted shift touching every kind of frame: (the frames sent, the order documents stored)."""
    frames: list[str] = []
    docs: list[str] = []

    def send(device: str, msg: dict[str, Any]) -> None:
        d = core.send(device, msg)
        frames.extend(texts_of(d))
        docs.extend(r.order_json for r in d.events)

    for device in ("counter-1", "wok-1", "monitor-1"):
        frames.extend(f for _, f in core.hub.connect(hello(core, device))[1].replies)
    send("app-backend", {"type": "order.submit", "order": app_order("w1", customer=PRIVATE, fulfilment=ADDRESS)})
    send("app-backend", {"type": "order.submit", "order": app_order("w1", customer=PRIVATE, fulfilment=ADDRESS)})
    send("app-backend", {"type": "order.submit", "order": app_order("w1")})  # conflict: another order, same key
    send("app-backend", {"type": "order.submit", "order": mixed_order("w2", customer={"name": "王芳"})})
    send("kiosk-1", {"type": "order.submit", "order": app_order("w3", channel="kiosk", fulfilment={"type": "pickup"})})
    send("shelf-1", {"type": "order.submit", "order": shelf_order("w4")})
    send("app-backend", {"type": "order.submit", "order": {"key": "bad", "channel": "app", "items": []}})
    a, b, c, s = list(core.hub.orders)
    core.clock.advance(2)
    send("wok-1", {"type": "ticket.start", "ref": "  spaced  ", "ticket_id": f"{a}/wok"})
    send("wok-1", {"type": "item.bump", "ticket_id": f"{b}/wok", "item_id": "1"})
    send("wok-1", {"type": "ticket.bump", "ticket_id": f"{a}/wok"})
    send("bar-1", {"type": "ticket.bump", "ticket_id": f"{a}/bar"})
    send("counter-1", {"type": "order.call", "order_id": a})
    send("counter-1", {"type": "order.handover", "order_id": a, "to": "rider"})
    send("counter-1", {"type": "order.recall", "order_id": a})
    send("wok-1", {"type": "ticket.recall", "ticket_id": f"{a}/wok"})
    send("app-backend", {"type": "order.amend", "order_id": b, "remove": ["2"], "add": [{"sku": "GRL-LAMB"}]})
    send("app-backend", {"type": "order.amend", "order_id": b, "note": "no coriander", "item_notes": {"1": "mild"}})
    send("kiosk-1", {"type": "order.cancel", "order_id": c, "reason": "changed mind"})
    send("counter-1", {"type": "order.cancel", "order_id": s})
    send("counter-1", {"type": "print.request", "order_id": b, "layout": "expo"})
    send("counter-1", {"type": "ping"})
    send("wok-1", {"type": "ticket.bump", "ticket_id": "nope/wok"})
    for device in ("counter-1", "monitor-1", "wok-1"):
        send(device, {"type": "orders.closed", "limit": 10})
    frames.append(core.hub.printer_status("wok-printer", PrinterState.PAPER_OUT, "wok printer: paper out").frame)
    for device in ("counter-1", "wok-1", "monitor-1", "app-backend", "kiosk-1"):
        for resume_from in (0, 3):
            frames.extend(f for _, f in core.hub.connect(hello(core, device, resume_from))[1].replies)
    return frames, docs


def hello(core: Core, device: str, resume_from: int = 0) -> str:
    dev = core.config.device(device)
    assert dev is not None
    return json.dumps(
        {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value, "resume_from": resume_from}
    )


def test_every_frame_the_hub_sends_is_its_protocol_model_to_the_byte(config: StoreConfig) -> None:
    small = config.limits.model_copy(update={"snapshot_page_bytes": 4096})
    core = Core(config.model_copy(update={"limits": small}))
    frames, docs = session(core)
    kinds: set[str] = set()
    for text in frames:
        model = FRAMES.validate_json(text)
        assert isinstance(model, BaseModel)
        assert model.model_dump_json() == text, f"not what its model writes: {text[:200]}"
        kinds.add(json.loads(text)["type"])
    assert kinds == {
        *("welcome", "snapshot.page", "event", "order.status", "order.accepted", "ack", "error", "pong"),
        *("orders.closed.list", "printer.status"),
    }, "the session does not reach every kind of frame"
    for text in docs:
        assert OrderView.model_validate_json(text).model_dump_json() == text
        assert Order.model_validate_json(text).model_dump_json() == text


def test_the_domain_order_is_the_wire_order(config: StoreConfig) -> None:
    """No second shape: the hub's orders are `OrderView`s, with no mirror to keep in step."""
    core = Core(config)
    session(core)
    for order in core.hub.orders.values():
        assert isinstance(order, OrderView) and order.status is order.derived_status()
        assert all(isinstance(i, ItemView) and isinstance(i, Item) for i in order.items)
        assert all(isinstance(t, TicketView) and isinstance(t, Ticket) for t in order.tickets)
        assert set(type(order).model_fields) == set(OrderView.model_fields)
        assert set(Item.model_fields) == set(ItemView.model_fields)
        assert set(Ticket.model_fields) == set(TicketView.model_fields)
        for name in ("to_wire", "from_wire"):
            assert not hasattr(order, name) and not hasattr(order.items[0], name)


def test_an_order_document_of_an_older_version_still_loads(config: StoreConfig) -> None:
    """Restoring validates the stored JSON into the domain's order; fields added since have their old meaning."""
    core = Core(config)
    session(core)
    order = next(o for o in core.hub.orders.values() if o.is_open)
    doc = json.loads(order.model_dump_json())
    for field in ("status_seq", "status_at", "status_ready", "amend_refs", "digest"):
        del doc[field]
    for item in doc["items"]:
        del item["declared_allergens"]
    again = OrderHub(config, clock=core.clock)
    again.restore([json.dumps(doc)], [], core.hub.seq, [])
    old = again.orders[order.id]
    assert (old.status_seq, old.status_at, old.status_ready, old.amend_refs, old.digest) == (0, None, [], [], None)
    assert all(i.declared_allergens == [] for i in old.items)
    assert old.status is order.status and old.progress is order.status
    assert old.model_dump(exclude={"status_seq", "status_at", "status_ready", "amend_refs", "digest", "items"}) == (
        order.model_dump(exclude={"status_seq", "status_at", "status_ready", "amend_refs", "digest", "items"})
    )
    assert order.id not in again._texts, "an older document is written again, not sent as stored"
