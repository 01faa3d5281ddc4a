"""The hub's shortcuts to the texts of its models are the same texts pydantic writes for them.

An event's order is written once for both audiences (`kds.hub._order_texts`: its parts written by pydantic, joined by
orjson, the kitchens' cut made on its JSON data), a snapshot's cut order from the counter's text
(`kds.privacy.redact_text`), a new order validated in one call (`Order.create`), and a fulfilment's JSON data worked
out once: each must give exactly what writing the model (or the cut copy, `redact_view`) gives, whatever the strings
hold (quotes, backslashes, control characters, line separators, characters past the BMP, CJK names).
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

import pytest

from kds.config import StoreConfig
from kds.domain import Order, ticket_id
from kds.hub import Decision, _order_texts
from kds.privacy import redact_text, redact_view
from kds.protocol import Delivery, Event, OrderView, Pickup, TicketState
from tests.conftest import fixed_app_order, shelf_order
from tests.test_domain import item, order
from tests.test_hub_core import Clock, Core, mixed_order

ODD = 'a "quoted" back\\slash\u0001\u001f\x7f\u2028\u2029 tab\tnew\nline 😀 é 王'
CUSTOMERS: list[dict[str, Any] | None] = [
    None,
    {},
    {"name": "Li Wei", "phone": "+86 138 0000 0000"},
    {"name": "Li"},
    {"name": "王芳", "phone": "1"},
    {"name": "Smith, John"},
    {"name": ODD[:80], "phone": ODD[:32]},
]
FULFILMENTS: list[dict[str, Any]] = [
    {"type": "delivery", "due": "2026-11-25T12:30:00+08:00", "address": "88 Century Ave, " + ODD[:60]},
    {"type": "delivery", "due": "2026-11-25T04:30:00Z"},
    {"type": "delivery", "due": "2026-11-25T04:30:00Z", "address": None},
    {"type": "pickup", "at": "2026-11-25T04:30:00.123456Z"},
    {"type": "pickup"},
    {"type": "dine_in", "table": "7"},
]


def _check(d: Decision) -> int:
    """Each event's texts are what pydantic writes for its order and the kitchens' copy of it."""
    assert len(d.events) == 1, d.replies
    for rec in d.events:
        assert rec.order is not None
        shown = redact_view(rec.order)
        assert rec.order_json == rec.order.model_dump_json()
        counter, kitchen = _order_texts(rec.order)
        assert counter.decode() == rec.order_json
        assert kitchen.decode() == shown.model_dump_json()
        assert (kitchen is counter) is (shown is rec.order)
        assert redact_text(rec.order, rec.order_json) == shown.model_dump_json()
        assert Event.model_validate_json(rec.kitchen_frame()).order.model_dump_json() == shown.model_dump_json()
        assert Event.model_validate_json(rec.frame).model_dump_json() == rec.frame
        assert Event.model_validate_json(rec.kitchen_frame()).model_dump_json() == rec.kitchen_frame()
    return len(d.events)


def test_an_events_texts_are_its_models_written_by_pydantic(config: StoreConfig) -> None:
    core = Core(config)
    events = 0
    for k, (customer, fulfilment) in enumerate((c, f) for c in CUSTOMERS for f in FULFILMENTS):
        over: dict[str, Any] = {"fulfilment": fulfilment, "note": ODD if k % 2 else None}
        if customer is not None:
            over["customer"] = customer
        events += _check(core.send("app-backend", {"type": "order.submit", "order": fixed_app_order(f"t{k}", **over)}))
    events += _check(core.send("shelf-1", {"type": "order.submit", "order": shelf_order("s1")}))
    events += _check(
        core.send("app-backend", {"type": "order.submit", "order": mixed_order("m1", customer=CUSTOMERS[2])})
    )
    orders = list(core.hub.orders)
    core.clock.advance(3)
    for oid in orders[:6]:
        events += _check(core.send("wok-1", {"type": "ticket.bump", "ticket_id": f"{oid}/wok"}))
    mixed = orders[-1]
    events += _check(core.send("wok-1", {"type": "item.bump", "ticket_id": f"{mixed}/wok", "item_id": "1"}))
    amend = {"type": "order.amend", "order_id": mixed, "remove": ["2"], "add": [{"sku": "GRL-LAMB", "note": ODD}]}
    events += _check(core.send("app-backend", amend))
    events += _check(core.send("app-backend", {"type": "order.amend", "order_id": mixed, "item_notes": {"1": ODD}}))
    events += _check(core.send("app-backend", {"type": "order.cancel", "order_id": orders[1], "reason": ODD}))
    assert events == len(CUSTOMERS) * len(FULFILMENTS) + 12


def test_a_new_order_is_the_order_its_constructor_and_build_tickets_make() -> None:
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": "20261125-A001",
        "number": "A001",
        "key": "k",
        "source": "app-backend",
        "channel": "app",
        "fulfilment": Pickup(type="pickup"),
        "customer": None,
        "priority": "normal",
        "note": None,
        "digest": "d" * 32,
    }
    items = [item("1", "wok"), item("2", "bar"), item("3", "wok"), item("4", "cold")]
    made = Order.create(now, [i.model_dump() for i in items], **fields)
    built = Order(**fields, created_at=now, updated_at=now, items=items)
    built.build_tickets(now)
    assert made == built
    assert made.model_dump_json() == built.model_dump_json()
    assert [t.id for t in made.tickets] == [ticket_id(made.id, s) for s in ("wok", "bar", "cold")]
    assert [t.items for t in made.tickets] == [["1", "3"], ["2"], ["4"]]
    assert all(t.state is TicketState.NEW for t in made.tickets)


def test_a_fulfilments_json_data_is_a_copy_each_time() -> None:
    f = Delivery.model_validate({"type": "delivery", "due": "2026-11-25T04:30:00Z", "address": "88 Road"})
    order = OrderView.model_validate(
        {
            **{k: None for k in ("note", "called_at", "handed_over_at", "handed_over_to", "cancelled_at")},
            **{k: None for k in ("cancel_reason", "amended_at", "status_at", "customer")},
            "id": "20261125-A001",
            "number": "A001",
            "key": "k",
            "source": "app-backend",
            "channel": "app",
            "fulfilment": f,
            "priority": "normal",
            "status": "accepted",
            "version": 1,
            "created_at": "2026-11-25T02:00:00+00:00",
            "updated_at": "2026-11-25T02:00:00+00:00",
            "status_seq": 0,
            "status_ready": [],
            "amend_refs": [],
            "items": [],
            "tickets": [],
        }
    )
    first = order.model_dump(mode="json")
    first["fulfilment"]["address"] = "changed"
    assert order.model_dump(mode="json")["fulfilment"] == {
        "type": "delivery",
        "due": "2026-11-25T04:30:00+00:00",
        "address": "88 Road",
    }
    assert '"address":"88 Road"' in order.model_dump_json()
    assert order.model_dump(mode="json", exclude={"fulfilment": {"address"}})["fulfilment"] == {
        "type": "delivery",
        "due": "2026-11-25T04:30:00+00:00",
    }


@pytest.mark.parametrize("enabled", [True, False])
def test_restore_freezes_what_it_built(config: StoreConfig, enabled: bool) -> None:
    core = Core(config)
    for k in range(20):
        core.submit("app-backend", fixed_app_order(f"r{k}"))
    docs = [o.model_dump_json() for o in core.hub.orders.values()]
    fresh = Core(config, clock=Clock(datetime(2026, 11, 25, 3, 0, tzinfo=UTC)))
    was = gc.isenabled()
    if not enabled:
        gc.disable()
    before = gc.get_freeze_count()
    try:
        fresh.hub.restore(docs, [], core.hub.seq, [])
        assert gc.get_freeze_count() > before
        assert gc.isenabled() is enabled, "the collector is left as it was"
        assert [o.model_dump_json() for o in fresh.hub.orders.values()] == docs
    finally:
        gc.unfreeze()
        if was:
            gc.enable()


def test_an_item_is_found_by_its_id_and_only_by_it() -> None:
    o = order(*["wok"] * 5)
    items = list(o.items)
    assert [o.item(str(k)) for k in range(1, 6)] == items
    for other in ("0", "6", "01", " 1", "-1", "²", "٣", "1.0", "", "x"):
        assert o.item(other) is None, other
    o.items.insert(0, item("9", "bar"))  # (not as the hub numbers them: still found, by a scan)
    assert o.item("9") is o.items[0] and o.item("1") is items[0]
