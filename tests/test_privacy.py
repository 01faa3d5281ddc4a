"""kds.privacy: what kitchens and monitors see of the customer, as a pure function, and the hub's frames built with it.

The over-the-wire checks (every path a kitchen screen gets an order by) are in tests/test_customer_privacy.py.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from kds.config import Role, StoreConfig
from kds.hub import Session
from kds.jsontext import dumps as _dumps
from kds.privacy import first_name, redact_customer, redact_order, redact_view, view_for
from kds.protocol import Event, OrderView
from kdsapp.simulate import OrderMix
from tests.conftest import fixed_app_order
from tests.test_hub_core import T0, Core


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Li Wei", "Li"),
        ("  Anna  Maria   Lopez ", "Anna"),
        ("Emma", "Emma"),
        ("Wang L.", "Wang"),
        ("Émile Zola", "Émile"),
        ("Smith, John", "John"),
        ("Smith,John Paul", "John"),
        ("Smith,", None),
        ("王芳", None),
        ("欧阳 娜娜", None),
        ("山田 太郎", None),
        ("김민수", None),
        ("李，雷", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_first_name(name: str | None, shown: str | None) -> None:
    assert first_name(name) == shown


def test_redact_customer() -> None:
    assert redact_customer({"name": "Li Wei", "phone": "13812345521"}) == {"name": "Li", "phone": None}
    assert redact_customer({"name": None, "phone": "13812345521"}) is None
    assert redact_customer({"name": "王芳", "phone": None}) is None
    assert redact_customer(None) is None


def delivery(**customer: Any) -> dict[str, Any]:
    return {
        "id": "20261125-A001",
        "fulfilment": {"type": "delivery", "due": "2026-11-25T12:40:00+08:00", "address": "Biyun Rd 199"},
        "customer": customer or None,
        "note": "call 13812345521 on arrival",
    }


def test_redact_order_cuts_phone_address_and_surname_and_keeps_the_rest() -> None:
    doc = delivery(name="Mei Zhangsun", phone="13812345521")
    before = copy.deepcopy(doc)
    shown = redact_order(doc)
    assert doc == before, "the order document given is not changed"
    assert shown == {
        "id": "20261125-A001",
        "fulfilment": {"type": "delivery", "due": "2026-11-25T12:40:00+08:00"},
        "customer": {"name": "Mei", "phone": None},
        "note": "call 13812345521 on arrival",  # free text reaches every role (docs/protocol.md says so)
    }
    assert list(shown) == list(doc), "same keys, same order"


def test_redact_order_returns_the_same_object_when_there_is_nothing_to_cut() -> None:
    for doc in (
        {"id": "x", "fulfilment": {"type": "pickup"}, "customer": None},
        {"id": "x", "fulfilment": {"type": "dine_in", "table": "3"}, "customer": {"name": "Emma", "phone": None}},
    ):
        assert redact_order(doc) is doc


def test_redact_view_returns_the_same_object_when_there_is_nothing_to_cut(config: StoreConfig) -> None:
    core = Core(config)
    for k, over in enumerate(
        [
            {"fulfilment": {"type": "pickup"}},
            {"fulfilment": {"type": "dine_in", "table": "3"}, "customer": {"name": "Emma"}},
            {"fulfilment": {"type": "delivery", "due": "2026-11-25T12:40:00+08:00"}, "customer": {"name": "Li"}},
        ]
    ):
        r = core.submit("app-backend", {**fixed_app_order(f"plain-{k}"), **over})
        order = core.hub.orders[r["order_id"]]
        assert redact_view(order) is order
        assert view_for(Role.KITCHEN, order) is order is view_for(Role.COUNTER, order)


def test_only_the_counter_sees_the_customer_as_sent(config: StoreConfig) -> None:
    core = Core(config)
    sent = delivery(name="Mei Zhangsun", phone="13812345521")
    r = core.submit(
        "app-backend", {**fixed_app_order("as-sent"), "fulfilment": sent["fulfilment"], "customer": sent["customer"]}
    )
    order = core.hub.orders[r["order_id"]]
    assert view_for(Role.COUNTER, order) is order
    for role in (Role.KITCHEN, Role.MONITOR, Role.SOURCE):
        shown = view_for(role, order)
        assert shown == redact_view(order) and shown != order


TRICKY: list[dict[str, Any]] = [
    # Strings that hold what the splice looks for: it must touch the order's own fields only.
    {"key": 'k-"fulfilment":{"type":"delivery"},"customer":null', "note": ',"customer":{"name":"Li Wei"}'},
    {"customer": {"name": 'Li "Big\\" Wei', "phone": '+86 "138"'}},
    {"customer": {"name": "Ana\tMaría\u3000López", "phone": "13812345521"}},
    {"customer": {"name": "王芳", "phone": "13812345521"}},
    {"customer": {"name": "Emma"}},
    {"customer": {"phone": "13812345521"}},
    {"fulfilment": {"type": "delivery", "due": "2026-11-25T12:40:00+08:00", "address": 'Rd 1 "A", \\ 2'}},
]


def shift(config: StoreConfig, seed: int) -> Core:
    """A core hub through which the simulator's order mix (and the tricky orders) went, with every kind of event."""
    core = Core(config)
    mix = OrderMix(config, rng=random.Random(seed), run_id=f"privacy-{seed}")
    for k in range(60):
        planned = mix.next(T0)
        order = planned.order
        if k % 3 == 0 and order.get("customer"):
            order["customer"]["name"] = random.Random(k).choice(["Li Wei", "Emma", "Smith, John", "Ana María"])
        r = core.submit(planned.source, order)
        if k % 4 == 0:
            o = core.order(r["order_id"])
            station = o["tickets"][0]["station"]
            dev = next(d.id for d in config.devices if d.station == station)
            core.act(dev, "ticket.bump", ticket_id=f"{r['order_id']}/{station}")
        if k % 5 == 0:
            core.act("counter-1", "order.amend", order_id=r["order_id"], note="no coriander")
    for k, over in enumerate(TRICKY):
        core.submit("app-backend", {**fixed_app_order(f"tricky-{k}"), **over})
    return core


def test_the_kitchen_frame_of_every_event_is_the_event_with_the_order_redacted(config: StoreConfig) -> None:
    core = shift(config, seed=7)
    cut = 0
    for rec in core.events:
        ev = json.loads(rec.frame)
        kitchen = rec.kitchen_frame()
        assert kitchen == _dumps({**ev, "order": redact_order(ev["order"])}), "exactly what a second dump gives"
        Event.model_validate_json(kitchen)
        if redact_order(ev["order"]) is ev["order"]:
            assert kitchen is rec.frame, "no second frame for an order without customer data"
        else:
            cut += 1
            assert kitchen is not rec.frame
    assert cut >= 40, f"only {cut} events had anything to cut: the mix does not test much"


def test_redact_view_is_the_policy_of_redact_order_over_the_model(config: StoreConfig) -> None:
    """The typed policy (`redact_view`, what the hub uses) cuts exactly what the document policy (`redact_order`)
    cuts, to the byte; the order given is not changed."""
    core = shift(config, seed=3)
    cut = 0
    for rec in core.events:
        doc = json.loads(rec.order_json)
        view = OrderView.model_validate_json(rec.order_json)
        shown = redact_view(view)
        assert view.model_dump_json() == rec.order_json, "redact_view changed the order it was given"
        if redact_order(doc) is doc:
            assert shown is view
            continue
        cut += 1
        assert shown is not view
        assert shown.model_dump_json() == _dumps(redact_order(doc))
        assert view_for(Role.MONITOR, view) == shown and view_for(Role.COUNTER, view) is view
    assert cut >= 40


def test_two_hubs_with_the_same_order_ids_and_other_customers_each_get_their_own_redaction(
    config: StoreConfig,
) -> None:
    # Two hubs' orders of the same id (tests run several): each frame is made from its own order.
    frames = []
    for name, phone in (("Li Wei", "13800000001"), ("Emma Stone", "13800000002")):
        core = Core(config)
        r = core.submit("app-backend", fixed_app_order("same-key", customer={"name": name, "phone": phone}))
        assert r["number"] == "A001"
        frames.append(core.last_event().kitchen_frame())
    first, second = (json.loads(f)["order"]["customer"] for f in frames)
    assert (first, second) == ({"name": "Li", "phone": None}, {"name": "Emma", "phone": None})


def test_kitchen_and_monitor_sessions_share_one_frame_object_per_event(config: StoreConfig) -> None:
    core = Core(config)
    core.submit("app-backend", fixed_app_order("shared", customer={"name": "Li Wei", "phone": "13812345521"}))
    rec = core.last_event()

    def seen_by(device_id: str) -> str | None:
        dev = config.device(device_id)
        assert dev is not None
        return rec.frame_for(Session(dev, floor=0))

    wok, bar, monitor, counter = (seen_by(d) for d in ("wok-1", "bar-1", "monitor-1", "counter-1"))
    assert wok is bar is monitor is rec.kitchen_frame(), "one redacted frame, encoded once by the server"
    assert counter is rec.frame
    assert monitor is not None and counter is not None
    assert "13812345521" in counter and "13812345521" not in monitor
    assert seen_by("cold-1") is None, "no ticket at the cold station"


def test_redact_view_is_redact_order_on_typed_orders(config: StoreConfig) -> None:
    core = shift(config, seed=11)
    cut = kept = 0
    for rec in core.events:
        doc = json.loads(rec.order_json)
        order = OrderView.model_validate(doc)
        before = order.model_dump()
        shown = redact_view(order)
        expected = OrderView.model_validate(redact_order(doc))
        assert shown == expected, rec.order_json
        assert order.model_dump() == before, "the order given is not changed"
        if expected == order:
            kept += 1
            assert shown is order, "the same object when there is nothing to cut"
        else:
            cut += 1
            assert shown is not order
            assert shown.customer is None or (shown.customer.phone is None and shown.customer.name)
            assert getattr(shown.fulfilment, "address", None) is None
            private = {"customer", "fulfilment"}
            assert shown.model_dump(exclude=private) == order.model_dump(exclude=private), "the rest as it was"
    assert cut >= 40 and kept >= 10, (cut, kept)
