"""OrderHub driven without sockets: frames in, Decisions out, an injected clock.

`Core` below is the harness the other core tests (routing, domain) share: it connects devices of the sample config
with real `hello` frames, sends real JSON frames through `handle_frame`, and keeps every Decision it got back.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import kds.store as store_module
from kds.config import StoreConfig
from kds.hub import Decision, EventRecord, OrderHub, Session, _event_head
from kds.protocol import Event, EventKind, OrderStatus, StatusChanged, Welcome
from kds.store import Store
from tests.conftest import fixed_app_order, shelf_order

T0 = datetime(2026, 11, 25, 2, 0, 0, tzinfo=UTC)
"""10:00 in Shanghai."""


class Clock:
    """A fixed clock the test moves by hand."""

    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float = 1.0) -> datetime:
        self.t += timedelta(seconds=seconds)
        return self.t


class Core:
    """An OrderHub with sessions for devices of the sample config, driven by JSON frames."""

    def __init__(self, config: StoreConfig, *, clock: Clock | None = None, replay_window: int = 20_000) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.hub = OrderHub(config, clock=self.clock, replay_window=replay_window)
        self.sessions: dict[str, Session] = {}
        self.decisions: list[Decision] = []
        self._refs = itertools.count(1)

    # -- connecting

    def hello(self, device: str, resume_from: int = 0) -> tuple[Session, dict[str, Any], list[dict[str, Any]]]:
        """Connect a device: its session, the welcome and the replayed frames."""
        dev = self.config.device(device)
        assert dev is not None, device
        frame: dict[str, Any] = {
            "type": "hello",
            "device": dev.id,
            "token": dev.token,
            "role": dev.role.value,
            "resume_from": resume_from,
        }
        if dev.station:
            frame["station"] = dev.station
        session, d = self.hub.connect(json.dumps(frame))
        assert not d.events
        assert all(s is session for s, _ in d.replies)
        welcome = json.loads(d.replies[0][1])
        Welcome.model_validate(welcome)
        return session, welcome, [json.loads(f) for _, f in d.replies[1:]]

    def session(self, device: str) -> Session:
        """The (first) session of a device, connected on first use."""
        if device not in self.sessions:
            self.sessions[device] = self.hello(device)[0]
        return self.sessions[device]

    # -- sending

    def send(self, device: str, msg: dict[str, Any]) -> Decision:
        """One frame from a device; the Decision."""
        msg.setdefault("ref", f"t-{next(self._refs)}")
        d = self.hub.handle_frame(self.session(device), json.dumps(msg, ensure_ascii=False))
        self.decisions.append(d)
        return d

    def ask(self, device: str, msg: dict[str, Any]) -> dict[str, Any]:
        """One frame from a device; its (single) reply, parsed."""
        d = self.send(device, msg)
        assert len(d.replies) == 1, d.replies
        session, frame = d.replies[0]
        assert session is self.session(device)
        reply: dict[str, Any] = json.loads(frame)
        assert reply.get("ref") == msg["ref"]
        return reply

    def submit(self, device: str, order: dict[str, Any]) -> dict[str, Any]:
        """Submit an order; the `order.accepted` reply (asserted)."""
        r = self.ask(device, {"type": "order.submit", "order": order})
        assert r["type"] == "order.accepted", r
        return r

    def act(self, device: str, kind: str, **fields: Any) -> dict[str, Any]:
        """Any other action; its reply."""
        return self.ask(device, {"type": kind, **fields})

    # -- looking

    @property
    def events(self) -> list[EventRecord]:
        return [r for d in self.decisions for r in d.events]

    def last_event(self) -> EventRecord:
        return self.events[-1]

    def order(self, order_id: str) -> dict[str, Any]:
        return self.hub.orders[order_id].model_dump(mode="json")

    def ticket(self, order_id: str, station: str) -> dict[str, Any]:
        return next(t for t in self.order(order_id)["tickets"] if t["station"] == station)

    def item(self, order_id: str, item_id: str) -> dict[str, Any]:
        return next(i for i in self.order(order_id)["items"] if i["id"] == item_id)


@pytest.fixture
def core(config: StoreConfig) -> Core:
    return Core(config)


def mixed_order(key: str, **over: Any) -> dict[str, Any]:
    """An app order touching wok (2 items), cold and bar."""
    order: dict[str, Any] = {
        "key": key,
        "channel": "app",
        "fulfilment": {"type": "pickup"},
        "items": [
            {"sku": "WOK-KUNGPAO", "qty": 1},
            {"sku": "WOK-MAPO", "qty": 1},
            {"sku": "COLD-CUCUMBER", "qty": 1},
            {"sku": "BAR-LEMONTEA", "qty": 2},
        ],
    }
    order.update(over)
    return order


def ack_seq(reply: dict[str, Any]) -> int | None:
    assert reply["type"] == "ack", reply
    seq = reply["seq"]
    assert seq is None or isinstance(seq, int), reply
    return seq


# ============================================================================================ submit and numbers


def test_submit_creates_one_event_and_tickets_per_station(core: Core) -> None:
    submitted = core.clock.t
    r = core.submit("app-backend", mixed_order("k1"))
    # An empty kitchen: ready when its slowest part is, the wok's (the config's prep time there, nothing learned yet).
    wok = core.config.station("wok")
    assert wok is not None
    assert r == {
        "type": "order.accepted",
        "ref": r["ref"],
        "order_id": "20261125-A001",
        "number": "A001",
        "duplicate": False,
        "ready_at_estimate": (submitted + timedelta(seconds=wok.prep_s)).isoformat(),
    }
    [d] = core.decisions
    [ev] = d.events
    assert ev.seq == 1 == core.hub.seq
    assert ev.kind is EventKind.ORDER_CREATED
    assert ev.stations == {"wok", "cold", "bar"}
    assert ev.status is OrderStatus.ACCEPTED
    frame = json.loads(ev.frame)
    assert (frame["type"], frame["seq"], frame["kind"], frame["order"]["id"]) == (
        "event",
        1,
        "order.created",
        "20261125-A001",
    )
    assert frame["stations"] == ["bar", "cold", "wok"] and frame["status_changed"] is True
    status = StatusChanged.model_validate_json(ev.status_frame or "")
    assert status.status is OrderStatus.ACCEPTED and status.number == "A001" and status.key == "k1"
    o = core.order(r["order_id"])
    assert {t["station"]: t["items"] for t in o["tickets"]} == {"wok": ["1", "2"], "cold": ["3"], "bar": ["4"]}
    assert all(t["state"] == "new" and t["id"] == f"{o['id']}/{t['station']}" for t in o["tickets"])
    assert o["status"] == "accepted" and o["source"] == "app-backend" and o["version"] == 1


def test_numbers_carry_the_channel_letter_and_count_across_channels(core: Core) -> None:
    numbers = [
        core.submit("app-backend", fixed_app_order("a1"))["number"],
        core.submit("kiosk-1", fixed_app_order("k1", channel="kiosk", fulfilment={"type": "dine_in", "table": "7"}))[
            "number"
        ],
        core.submit("shelf-1", shelf_order("s1"))["number"],
        core.submit("counter-1", fixed_app_order("c1", channel="kiosk", fulfilment={"type": "pickup"}))["number"],
        core.submit("app-backend", fixed_app_order("a2"))["number"],
    ]
    assert numbers == ["A001", "K002", "S003", "K004", "A005"]


def test_numbers_reset_at_midnight_in_the_store_timezone(config: StoreConfig) -> None:
    clock = Clock(datetime(2026, 11, 25, 15, 59, 58, tzinfo=UTC))  # 23:59:58 in Shanghai
    core = Core(config, clock=clock)
    assert core.submit("app-backend", fixed_app_order("n1"))["order_id"] == "20261125-A001"
    clock.t = datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)
    assert core.submit("shelf-1", shelf_order("n2"))["order_id"] == "20261125-S002"
    clock.t = datetime(2026, 11, 25, 16, 0, 1, tzinfo=UTC)  # 00:00:01 on the 26th in Shanghai, still the 25th in UTC
    r = core.submit("kiosk-1", fixed_app_order("n3", channel="kiosk", fulfilment={"type": "pickup"}))
    assert (r["order_id"], r["number"]) == ("20261126-K001", "K001")
    assert core.submit("app-backend", fixed_app_order("n4"))["number"] == "A002"
    # The old day's orders are still there, unchanged, with their own ids.
    assert {"20261125-A001", "20261125-S002", "20261126-K001", "20261126-A002"} == set(core.hub.orders)
    # The idempotency key still answers with yesterday's number.
    again = core.submit("app-backend", fixed_app_order("n1"))
    assert (again["order_id"], again["number"], again["duplicate"]) == ("20261125-A001", "A001", True)


def test_idempotent_resubmission_is_the_same_order_without_an_event(core: Core) -> None:
    first = core.submit("app-backend", fixed_app_order("same"))
    seq = core.hub.seq
    # The same order again (a different one under this key is a `conflict`: tests/test_contract_rules.py).
    again = core.send("app-backend", {"type": "order.submit", "order": fixed_app_order("same")})
    assert again.events == []
    reply = json.loads(again.replies[0][1])
    assert reply["type"] == "order.accepted" and reply["duplicate"] is True
    assert (reply["order_id"], reply["number"]) == (first["order_id"], first["number"])
    assert core.hub.seq == seq and len(core.hub.orders) == 1
    # The same key from another source is another order.
    other = core.submit("kiosk-1", fixed_app_order("same", channel="kiosk", fulfilment={"type": "pickup"}))
    assert other["duplicate"] is False and other["order_id"] != first["order_id"] and other["number"] == "K002"


def test_invalid_order_is_refused_with_the_field_and_nothing_is_used_up(core: Core) -> None:
    bad = shelf_order("bad")
    bad["items"][0]["weight_g"] = 30_000
    bad["items"][1]["cook"] = "steem"
    r = core.ask("shelf-1", {"type": "order.submit", "order": bad})
    assert r["type"] == "error" and r["code"] == "invalid_order"
    assert [e["loc"] for e in r["errors"]] == [["order", "items", 0, "weight_g"], ["order", "items", 1, "cook"]]
    assert core.hub.seq == 0 and core.hub.orders == {} and core.events == []
    # The number was not used up; a wrong channel is refused too.
    wrong = core.ask("shelf-1", {"type": "order.submit", "order": fixed_app_order("x")})
    assert wrong["type"] == "error" and wrong["code"] == "forbidden"
    assert wrong["errors"][0]["loc"] == ["order", "channel"]
    assert core.submit("shelf-1", shelf_order("good"))["number"] == "S001"


def test_every_frame_the_hub_sends_matches_the_published_protocol_models(core: Core) -> None:
    _traffic(core)
    assert len({rec.kind for rec in core.events}) >= 5, "the traffic must cover several kinds of event"
    statuses = 0
    for rec in core.events:
        Event.model_validate_json(rec.frame)
        if rec.status_frame is not None:
            StatusChanged.model_validate_json(rec.status_frame)
            statuses += 1
    assert statuses > 0


# ============================================================================================ kitchen


def test_ticket_start_bump_and_idempotent_second_bump(core: Core) -> None:
    oid = core.submit("shelf-1", shelf_order("t1"))["order_id"]
    core.clock.advance(30)
    assert ack_seq(core.act("wok-1", "ticket.start", ticket_id=f"{oid}/wok")) == 2
    assert core.last_event().kind is EventKind.TICKET_STARTED
    assert core.ticket(oid, "wok")["state"] == "started"
    assert core.order(oid)["status"] == "preparing"
    # Starting again changes nothing.
    n = len(core.events)
    assert ack_seq(core.act("wok-2", "ticket.start", ticket_id=f"{oid}/wok")) is None
    assert len(core.events) == n
    core.clock.advance(60)
    told = core.order(oid)["ready_at_estimate"]
    assert ack_seq(core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/wok")) == 3
    rec = core.last_event()
    assert rec.kind is EventKind.TICKET_BUMPED and rec.status is OrderStatus.PREPARING
    # Still preparing; the source hears of it only because the wok's part is done and its estimate moved.
    assert rec.status_frame is not None
    status = json.loads(rec.status_frame)
    assert status["status"] == "preparing" and status["ready_at_estimate"] != told
    assert core.ticket(oid, "wok")["state"] == "done"
    version = core.order(oid)["version"]
    # A second bump (a resend after a reconnect, or the other wok screen) is an ack without seq and no event.
    d = core.send("wok-2", {"type": "ticket.bump", "ticket_id": f"{oid}/wok"})
    assert d.events == [] and json.loads(d.replies[0][1])["seq"] is None
    assert core.order(oid)["version"] == version and core.hub.seq == 3


def test_item_bumps_complete_the_ticket_when_every_item_is_done(core: Core) -> None:
    oid = core.submit("app-backend", mixed_order("i1"))["order_id"]
    tid = f"{oid}/wok"
    assert ack_seq(core.act("wok-1", "item.bump", ticket_id=tid, item_id="1")) is not None
    assert core.last_event().kind is EventKind.ITEM_BUMPED
    frame = json.loads(core.last_event().frame)
    assert (frame["ticket_id"], frame["item_id"]) == (tid, "1")
    assert core.ticket(oid, "wok")["state"] == "started"
    assert core.item(oid, "1")["done_at"] is not None and core.item(oid, "2")["done_at"] is None
    assert ack_seq(core.act("wok-1", "item.bump", ticket_id=tid, item_id="1")) is None
    assert ack_seq(core.act("wok-1", "item.bump", ticket_id=tid, item_id="2")) is not None
    assert core.ticket(oid, "wok")["state"] == "done"
    # An item of another station's ticket, or no such item: not found.
    r = core.act("wok-1", "item.bump", ticket_id=tid, item_id="3")
    assert (r["type"], r["code"], r["errors"][0]["loc"]) == ("error", "not_found", ["item_id"])


def test_recall_reopens_a_done_ticket_and_the_order_is_preparing_again(core: Core) -> None:
    oid = core.submit("shelf-1", shelf_order("r1"))["order_id"]
    core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/wok")
    core.act("cold-1", "ticket.bump", ticket_id=f"{oid}/cold")
    assert core.order(oid)["status"] == "ready"
    assert core.last_event().status_frame is not None
    core.clock.advance(5)
    assert ack_seq(core.act("cold-1", "ticket.recall", ticket_id=f"{oid}/cold")) is not None
    rec = core.last_event()
    assert rec.kind is EventKind.TICKET_RECALLED and rec.status is OrderStatus.PREPARING
    assert json.loads(rec.status_frame or "{}")["status"] == "preparing"
    t = core.ticket(oid, "cold")
    assert t["state"] == "started" and t["done_at"] is None and t["recalled_at"] == core.clock.t.isoformat()
    assert core.item(oid, "2")["done_at"] is None
    # Recalling a ticket that is not done changes nothing.
    assert ack_seq(core.act("cold-1", "ticket.recall", ticket_id=f"{oid}/cold")) is None


def test_kitchen_may_only_touch_its_own_station_and_existing_tickets(core: Core) -> None:
    oid = core.submit("shelf-1", shelf_order("own"))["order_id"]
    r = core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/cold")
    assert (r["code"], r["errors"][0]["loc"]) == ("forbidden", ["ticket_id"])
    r = core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/bar")
    assert r["code"] == "not_found"
    r = core.act("wok-1", "order.call", order_id=oid)
    assert r["code"] == "forbidden"
    r = core.act("monitor-1", "ticket.bump", ticket_id=f"{oid}/wok")
    assert r["code"] == "forbidden"
    assert core.ticket(oid, "cold")["state"] == "new" and core.hub.seq == 1


# ============================================================================================ order status


def test_status_across_stations_accepted_preparing_ready_handed_over(core: Core) -> None:
    oid = core.submit("app-backend", mixed_order("s1"))["order_id"]
    seen = [core.order(oid)["status"]]

    def step(device: str, kind: str, **fields: Any) -> None:
        core.act(device, kind, **fields)
        seen.append(core.order(oid)["status"])

    step("cold-1", "ticket.start", ticket_id=f"{oid}/cold")
    step("cold-1", "ticket.bump", ticket_id=f"{oid}/cold")
    step("bar-1", "ticket.bump", ticket_id=f"{oid}/bar")
    step("wok-1", "item.bump", ticket_id=f"{oid}/wok", item_id="1")
    step("wok-1", "item.bump", ticket_id=f"{oid}/wok", item_id="2")
    step("counter-1", "order.call", order_id=oid)
    step("counter-1", "order.handover", order_id=oid, to="runner")
    assert seen == ["accepted", "preparing", "preparing", "preparing", "preparing", "ready", "ready", "handed_over"]
    o = core.order(oid)
    assert o["handed_over_to"] == "runner" and o["called_at"] is not None
    # The source (protocol 1: it stated no `protocols`) heard only the changes of status; protocol 2 is also told
    # of the call (tests/test_contract_versions.py).
    source = core.session("app-backend")
    statuses = [json.loads(f)["status"] for r in core.events if (f := r.frame_for(source))]
    assert statuses == ["accepted", "preparing", "ready", "handed_over"]


def test_call_and_handover_only_when_ready(core: Core) -> None:
    oid = core.submit("shelf-1", shelf_order("c1"))["order_id"]
    for kind in ("order.call", "order.handover"):
        r = core.act("counter-1", kind, order_id=oid)
        assert (r["type"], r["code"]) == ("error", "conflict"), r
        assert "not ready" in r["message"]
    core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/wok")
    assert core.act("counter-1", "order.call", order_id=oid)["code"] == "conflict"  # cold still cooking
    core.act("cold-1", "ticket.bump", ticket_id=f"{oid}/cold")
    assert ack_seq(core.act("counter-1", "order.call", order_id=oid)) is not None
    assert ack_seq(core.act("counter-1", "order.call", order_id=oid)) is None
    assert ack_seq(core.act("counter-1", "order.handover", order_id=oid)) is not None
    assert ack_seq(core.act("counter-1", "order.handover", order_id=oid)) is None
    # Kitchen actions on a handed-over order conflict.
    assert core.act("wok-1", "ticket.recall", ticket_id=f"{oid}/wok")["code"] == "conflict"
    assert core.act("counter-1", "order.call", order_id=oid)["code"] == "conflict"
    r = core.act("counter-1", "order.call", order_id="20261125-X999")
    assert (r["code"], r["errors"][0]["loc"]) == ("not_found", ["order_id"])


def test_counter_recall_of_a_handover(core: Core) -> None:
    oid = core.submit("shelf-1", shelf_order("h1"))["order_id"]
    core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/wok")
    core.act("cold-1", "ticket.bump", ticket_id=f"{oid}/cold")
    assert ack_seq(core.act("counter-1", "order.recall", order_id=oid)) is None  # not handed over yet
    core.act("counter-1", "order.handover", order_id=oid, to="rider")
    assert core.order(oid)["status"] == "handed_over"
    assert ack_seq(core.act("counter-1", "order.recall", order_id=oid)) is not None
    rec = core.last_event()
    assert rec.kind is EventKind.ORDER_RECALLED and rec.status is OrderStatus.READY
    assert json.loads(rec.status_frame or "{}")["status"] == "ready"
    o = core.order(oid)
    assert o["status"] == "ready" and o["handed_over_at"] is None and o["handed_over_to"] is None
    assert ack_seq(core.act("counter-1", "order.handover", order_id=oid)) is not None


# ============================================================================================ cancel


def test_cancel(core: Core) -> None:
    oid = core.submit("app-backend", mixed_order("x1"))["order_id"]
    core.act("wok-1", "ticket.start", ticket_id=f"{oid}/wok")
    core.clock.advance(10)
    assert ack_seq(core.act("app-backend", "order.cancel", order_id=oid, reason="customer left")) is not None
    rec = core.last_event()
    assert rec.kind is EventKind.ORDER_CANCELLED and rec.status is OrderStatus.CANCELLED
    assert rec.stations == {"wok", "cold", "bar"}
    assert json.loads(rec.status_frame or "{}")["status"] == "cancelled"
    o = core.order(oid)
    assert o["status"] == "cancelled" and o["cancel_reason"] == "customer left"
    assert o["cancelled_at"] == core.clock.t.isoformat()
    assert {t["state"] for t in o["tickets"]} == {"cancelled"}
    for device, kind, fields in [
        ("wok-1", "ticket.bump", {"ticket_id": f"{oid}/wok"}),
        ("bar-1", "ticket.start", {"ticket_id": f"{oid}/bar"}),
        ("wok-1", "item.bump", {"ticket_id": f"{oid}/wok", "item_id": "1"}),
        ("counter-1", "order.handover", {"order_id": oid}),
        ("app-backend", "order.amend", {"order_id": oid, "note": "hello?"}),
    ]:
        r = core.act(device, kind, **fields)
        assert (r["type"], r["code"]) == ("error", "conflict"), (kind, r)
    n = len(core.events)
    assert ack_seq(core.act("counter-1", "order.cancel", order_id=oid)) is None  # cancel twice
    assert len(core.events) == n


def test_cancel_after_handover_conflicts_and_sources_cancel_only_their_own(core: Core) -> None:
    oid = core.submit("app-backend", fixed_app_order("x2"))["order_id"]
    assert core.act("kiosk-1", "order.cancel", order_id=oid)["code"] == "forbidden"
    core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/wok")
    core.act("bar-1", "ticket.bump", ticket_id=f"{oid}/bar")
    core.act("counter-1", "order.handover", order_id=oid)
    r = core.act("app-backend", "order.cancel", order_id=oid)
    assert (r["code"], "handed over" in r["message"]) == ("conflict", True)
    assert core.order(oid)["status"] == "handed_over"


# ============================================================================================ amend


def test_amend_add_creates_a_station_ticket_and_reopens_a_done_one(core: Core) -> None:
    oid = core.submit("app-backend", fixed_app_order("am1"))["order_id"]  # wok + bar
    core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/wok")
    core.act("bar-1", "ticket.bump", ticket_id=f"{oid}/bar")
    assert core.order(oid)["status"] == "ready"
    core.clock.advance(20)
    r = core.act(
        "app-backend", "order.amend", order_id=oid, add=[{"sku": "WOK-GREENS"}, {"sku": "BAK-EGGTART", "qty": 4}]
    )
    assert ack_seq(r) is not None
    rec = core.last_event()
    assert rec.kind is EventKind.ORDER_AMENDED and rec.stations == {"wok", "bar", "bakery"}
    assert json.loads(rec.status_frame or "{}")["status"] == "preparing"
    o = core.order(oid)
    assert o["status"] == "preparing" and o["amended_at"] == core.clock.t.isoformat()
    added = [i for i in o["items"] if i["id"] in ("3", "4")]
    assert [(i["sku"], i["station"], i["change"]) for i in added] == [
        ("WOK-GREENS", "wok", "added"),
        ("BAK-EGGTART", "bakery", "added"),
    ]
    wok, bakery, bar = core.ticket(oid, "wok"), core.ticket(oid, "bakery"), core.ticket(oid, "bar")
    assert wok["state"] == "started" and wok["done_at"] is None and wok["items"] == ["1", "3"]
    assert wok["amended_at"] == core.clock.t.isoformat()
    assert bakery["state"] == "new" and bakery["id"] == f"{oid}/bakery" and bakery["items"] == ["4"]
    assert bar["state"] == "done" and bar["amended_at"] is None  # untouched
    # The bar screen still gets the event (it holds a ticket of the order); the grill does not.
    grill, bar_s = core.hello("grill-1")[0], core.hello("bar-1")[0]
    grill.floor = bar_s.floor = 0
    assert rec.frame_for(bar_s) is not None and rec.frame_for(grill) is None


def test_amend_remove_marks_items_and_cancels_an_emptied_ticket(core: Core) -> None:
    oid = core.submit("app-backend", mixed_order("am2"))["order_id"]  # wok 1,2; cold 3; bar 4
    cold = core.hello("cold-1")[0]
    assert ack_seq(core.act("app-backend", "order.amend", order_id=oid, remove=["2", "3"])) is not None
    rec = core.last_event()
    o = core.order(oid)
    assert [(i["id"], i["removed"], i["change"]) for i in o["items"]] == [
        ("1", False, None),
        ("2", True, "removed"),
        ("3", True, "removed"),
        ("4", False, None),
    ]
    assert core.ticket(oid, "cold")["state"] == "cancelled"
    assert core.ticket(oid, "wok")["state"] == "new"
    assert o["status"] == "accepted"
    # The cold station lost its ticket and still hears about it.
    assert "cold" in rec.stations and rec.frame_for(cold) is not None
    assert json.loads(rec.frame_for(cold) or "{}")["kind"] == "order.amended"
    # A removed item cannot be bumped, nor the cancelled ticket.
    assert core.act("wok-1", "item.bump", ticket_id=f"{oid}/wok", item_id="2")["code"] == "conflict"
    assert core.act("cold-1", "ticket.bump", ticket_id=f"{oid}/cold")["code"] == "conflict"
    # Removing what is left of a ticket whose other items are done finishes it.
    core.act("wok-1", "item.bump", ticket_id=f"{oid}/wok", item_id="1")
    core.act("app-backend", "order.amend", order_id=oid, add=[{"sku": "WOK-FRIEDRICE"}])
    assert core.ticket(oid, "wok")["state"] == "started"
    core.act("app-backend", "order.amend", order_id=oid, remove=["5"])
    assert core.ticket(oid, "wok")["state"] == "done"
    core.act("bar-1", "ticket.bump", ticket_id=f"{oid}/bar")
    assert core.order(oid)["status"] == "ready"


def test_amend_notes_are_marked(core: Core) -> None:
    oid = core.submit("shelf-1", shelf_order("am3"))["order_id"]
    assert ack_seq(core.act("shelf-1", "order.amend", order_id=oid, item_notes={"2": "no wasabi"})) is not None
    rec = core.last_event()
    assert rec.stations == {"wok", "cold"}  # the event goes to every station of the order
    assert core.item(oid, "2")["note"] == "no wasabi" and core.item(oid, "2")["change"] == "note"
    assert core.item(oid, "1")["change"] is None
    assert core.ticket(oid, "cold")["amended_at"] is not None and core.ticket(oid, "wok")["amended_at"] is None
    assert rec.status_frame is None  # still accepted
    core.act("shelf-1", "order.amend", order_id=oid, note="birthday, candles please")
    assert core.order(oid)["note"] == "birthday, candles please"
    assert core.ticket(oid, "wok")["amended_at"] is not None


def test_amend_refusals(core: Core) -> None:
    oid = core.submit("app-backend", fixed_app_order("am4"))["order_id"]
    seq = core.hub.seq
    r = core.act("app-backend", "order.amend", order_id=oid, remove=["1", "2"])
    assert (r["code"], r["errors"][0]["loc"]) == ("invalid_order", ["remove"])
    assert "cancel it instead" in r["message"]
    r = core.act("app-backend", "order.amend", order_id=oid, remove=["9"])
    assert r["errors"][0]["loc"] == ["remove", 0]
    r = core.act("app-backend", "order.amend", order_id=oid)
    assert r["code"] == "invalid_order"
    r = core.act("app-backend", "order.amend", order_id=oid, add=[{"sku": "LOB-AUS", "cook": "sashimi"}])
    assert r["errors"][0]["loc"] == ["add", 0, "weight_g"]
    assert core.act("kiosk-1", "order.amend", order_id=oid, note="x")["code"] == "forbidden"
    assert core.hub.seq == seq
    assert [i["removed"] for i in core.order(oid)["items"]] == [False, False]
    # Replacing every item at once is allowed: remove all and add one.
    assert (
        ack_seq(core.act("app-backend", "order.amend", order_id=oid, remove=["1", "2"], add=[{"sku": "GRL-WINGS"}]))
        is not None
    )
    assert {t["station"]: t["state"] for t in core.order(oid)["tickets"]} == {
        "wok": "cancelled",
        "bar": "cancelled",
        "grill": "new",
    }


def test_a_resent_amend_changes_nothing_the_second_time(core: Core) -> None:
    # A counter queues its amendments (HubClient.enqueue) and resends them after a reconnect when the ack was
    # lost; the client's contract is that a resend never applies anything twice.
    oid = core.submit("counter-1", shelf_order("resend"))["order_id"]
    amend = {"type": "order.amend", "ref": "counter-1-amend-1", "order_id": oid, "add": [{"sku": "BAR-COCONUT"}]}
    assert ack_seq(core.ask("counter-1", dict(amend))) == 2
    again = core.send("counter-1", dict(amend))
    assert json.loads(again.replies[0][1])["type"] == "ack"
    assert again.events == []
    assert [i["sku"] for i in core.order(oid)["items"]].count("BAR-COCONUT") == 1


# ============================================================================================ time and seq


def test_every_transition_is_stamped_by_the_injected_clock(core: Core) -> None:
    clock = core.clock
    oid = core.submit("shelf-1", shelf_order("ts"))["order_id"]
    t_created = clock.t
    t_start = clock.advance(61)
    core.act("wok-1", "ticket.start", ticket_id=f"{oid}/wok")
    t_item = clock.advance(62)
    core.act("cold-1", "item.bump", ticket_id=f"{oid}/cold", item_id="2")
    t_wok = clock.advance(63)
    core.act("wok-1", "ticket.bump", ticket_id=f"{oid}/wok")
    t_call = clock.advance(64)
    core.act("counter-1", "order.call", order_id=oid)
    t_hand = clock.advance(65)
    core.act("counter-1", "order.handover", order_id=oid)
    o = core.order(oid)
    wok, cold = core.ticket(oid, "wok"), core.ticket(oid, "cold")
    iso = datetime.isoformat
    assert (o["created_at"], wok["created_at"], cold["created_at"]) == (iso(t_created),) * 3
    assert (wok["started_at"], wok["done_at"]) == (iso(t_start), iso(t_wok))
    assert (cold["started_at"], cold["done_at"]) == (iso(t_item), iso(t_item))
    assert core.item(oid, "1")["done_at"] == iso(t_wok) and core.item(oid, "2")["done_at"] == iso(t_item)
    assert (o["called_at"], o["handed_over_at"], o["updated_at"]) == (iso(t_call), iso(t_hand), iso(t_hand))
    assert [r.at for r in core.events] == [t_created, t_start, t_item, t_wok, t_call, t_hand]
    assert [json.loads(r.frame)["at"] for r in core.events] == [iso(r.at) for r in core.events]


def test_seq_is_strictly_increasing_and_only_changes_make_events(core: Core) -> None:
    a = core.submit("app-backend", mixed_order("q1"))["order_id"]
    b = core.submit("shelf-1", shelf_order("q2"))["order_id"]
    core.act("wok-1", "ticket.bump", ticket_id=f"{a}/wok")
    core.act("wok-1", "ticket.bump", ticket_id=f"{a}/wok")  # no change
    core.act("cold-1", "ticket.start", ticket_id=f"{b}/cold")
    core.act("app-backend", "order.amend", order_id=a, remove=["3"])
    core.act("shelf-1", "order.cancel", order_id=b)
    core.act("shelf-1", "order.cancel", order_id=b)  # no change
    core.act("bar-1", "ticket.bump", ticket_id=f"{a}/bar")
    seqs = [r.seq for r in core.events]
    assert seqs == list(range(1, 8)) and core.hub.seq == 7
    assert [json.loads(r.frame)["seq"] for r in core.events] == seqs
    acks = [json.loads(f) for d in core.decisions for _, f in d.replies if json.loads(f)["type"] == "ack"]
    assert [a["seq"] for a in acks] == [3, None, 4, 5, 6, None, 7]


# ============================================================================================ audience


def test_event_audience_per_role(core: Core) -> None:
    s = {
        dev: core.hello(dev)[0]
        for dev in ("wok-1", "cold-1", "bar-1", "grill-1", "counter-1", "monitor-1", "shelf-1", "app-backend")
    }
    shelf = core.submit("shelf-1", shelf_order("au1"))["order_id"]  # wok + cold
    app = core.submit("app-backend", fixed_app_order("au2"))["order_id"]  # wok + bar

    def audience(rec: EventRecord) -> dict[str, str]:
        out = {}
        for dev, sess in s.items():
            f = rec.frame_for(sess)
            if f is not None:
                out[dev] = json.loads(f)["type"]
        return out

    created_shelf, created_app = core.events
    assert audience(created_shelf) == {
        "wok-1": "event",
        "cold-1": "event",
        "counter-1": "event",
        "monitor-1": "event",
        "shelf-1": "order.status",
    }
    assert audience(created_app) == {
        "wok-1": "event",
        "bar-1": "event",
        "counter-1": "event",
        "monitor-1": "event",
        "app-backend": "order.status",
    }
    core.act("cold-1", "ticket.start", ticket_id=f"{shelf}/cold")  # accepted → preparing
    assert audience(core.last_event())["shelf-1"] == "order.status"
    core.act("cold-1", "ticket.bump", ticket_id=f"{shelf}/cold")  # still preparing: nothing for the source
    assert audience(core.last_event()) == {
        "wok-1": "event",
        "cold-1": "event",
        "counter-1": "event",
        "monitor-1": "event",
    }
    core.act("bar-1", "ticket.bump", ticket_id=f"{app}/bar")
    assert set(audience(core.last_event())) == {"wok-1", "bar-1", "counter-1", "monitor-1", "app-backend"}
    # A session connected after an event does not get it (its floor is past it).
    late = core.hello("monitor-1")[0]
    assert all(r.frame_for(late) is None for r in core.events)


# ============================================================================================ welcome, resume


def _traffic(core: Core) -> None:
    """Orders from several sources and stations, with changes of every kind (one second apart)."""
    core.clock.advance()
    a = core.submit("app-backend", mixed_order("w1"))["order_id"]
    core.clock.advance()
    b = core.submit("shelf-1", shelf_order("w2"))["order_id"]
    core.clock.advance()
    c = core.submit("kiosk-1", fixed_app_order("w3", channel="kiosk", fulfilment={"type": "pickup"}))["order_id"]
    core.clock.advance()
    core.act("wok-1", "ticket.bump", ticket_id=f"{b}/wok")
    core.act("cold-1", "ticket.bump", ticket_id=f"{b}/cold")
    core.act("counter-1", "order.handover", order_id=b)
    core.act("app-backend", "order.amend", order_id=a, remove=["3"], add=[{"sku": "GRL-LAMB"}])
    core.act("kiosk-1", "order.cancel", order_id=c)
    core.act("wok-1", "item.bump", ticket_id=f"{a}/wok", item_id="1")
    core.act("counter-1", "order.recall", order_id=b)
    core.clock.advance()
    core.submit("app-backend", fixed_app_order("w4"))


def test_welcome_snapshot_per_role(core: Core) -> None:
    _traffic(core)
    seq = core.hub.seq
    _, w, replay = core.hello("wok-1")
    assert (w["resumed"], w["replay"], w["seq"], replay) == (False, 0, seq, [])
    assert {o["id"] for o in w["snapshot"]["orders"]} == {
        oid for oid, o in core.hub.orders.items() if "wok" in o.stations()
    }
    assert all(o == core.order(o["id"]) for o in w["snapshot"]["orders"])
    assert w["store"]["catalogue"] == []  # the kitchen does not need the catalogue
    _, w, _ = core.hello("grill-1")
    assert [o["number"] for o in w["snapshot"]["orders"]] == ["A001"]
    _, w, _ = core.hello("counter-1")
    assert len(w["snapshot"]["orders"]) == 4 and w["store"]["catalogue"]
    _, w, _ = core.hello("app-backend")
    assert w["snapshot"]["orders"] == []
    assert [(s["number"], s["status"]) for s in w["snapshot"]["statuses"]] == [
        ("A001", "preparing"),
        ("A004", "accepted"),
    ]


@pytest.mark.parametrize("device", ["wok-1", "cold-1", "grill-1", "counter-1", "monitor-1", "app-backend", "kiosk-1"])
def test_resume_within_the_window_replays_exactly_what_the_role_missed(core: Core, device: str) -> None:
    watcher = core.hello(device)[0]  # a session that never dropped
    core.submit("shelf-1", shelf_order("pre"))
    _traffic(core)
    seq = core.hub.seq
    for resume_from in (1, 4, seq - 1, seq):
        _, w, replay = core.hello(device, resume_from=resume_from)
        expected = [f for r in core.events if r.seq > resume_from and (f := r.frame_for(watcher)) is not None]
        assert w["resumed"] is True and w["snapshot"] is None and w["seq"] == seq
        assert w["replay"] == len(replay)
        assert [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in replay] == expected
    # A resume_from ahead of the hub (a hub restored from an older database) gets a snapshot.
    _, w, replay = core.hello(device, resume_from=seq + 1)
    assert (w["resumed"], replay) == (False, []) and w["snapshot"] is not None


def test_resume_older_than_the_window_gets_a_snapshot(config: StoreConfig) -> None:
    core = Core(config, replay_window=4)
    _traffic(core)
    seq = core.hub.seq
    first = core.hub.log[0].seq
    assert first == seq - 3
    _, w, replay = core.hello("counter-1", resume_from=first - 1)  # everything missed is still in the window
    assert w["resumed"] is True and len(replay) == 4
    _, w, replay = core.hello("counter-1", resume_from=first - 2)
    assert w["resumed"] is False and replay == [] and len(w["snapshot"]["orders"]) == 4
    _, w, _ = core.hello("counter-1", resume_from=0)
    assert w["resumed"] is False


# ============================================================================================ restore


def _stored(core: Core, path: Path) -> Store:
    """A store holding what the core decided, committed as the server does: each decision's events, in order."""
    store = Store(path, store_id=core.hub.config.store.id)
    store.create_schema()
    for d in core.decisions:
        store.commit(d.events)
        for r in d.events:
            r.committed()
    return store


@pytest.mark.parametrize("bound", ["bytes", "events"])
def test_a_restored_replay_log_keeps_what_the_live_one_kept(
    config: StoreConfig, tmp_path: Path, bound: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Restoring reads (a page at a time) and parses only the newest events that fit the replay log, and keeps
    # exactly what the live hub kept.
    monkeypatch.setattr(store_module, "_TAIL_PAGE", 40)
    limits = config.limits.model_copy(update={"replay_memory_bytes": 1024 * 1024})
    small = config.model_copy(update={"limits": limits})
    window = 20_000 if bound == "bytes" else 150
    core = Core(small, replay_window=window)
    for k in range(300):
        core.clock.advance(1)
        core.submit("app-backend", fixed_app_order(f"big-{k}", note="gate 3, " * 40))
    store = _stored(core, tmp_path / "tail.sqlite3")
    kept = [r.seq for r in core.hub.log]
    assert 1 < len(kept) < 300 and kept[-1] == 300
    docs, events, seq, keys = store.load(
        now=core.clock.t, replay_window=window, replay_bytes=limits.replay_memory_bytes
    )
    store.close()
    assert len(kept) <= len(events) < 300  # the older events were not even read
    again = Core(small, clock=Clock(core.clock.t), replay_window=window)
    again.hub.restore(docs, events, seq, keys)
    assert [r.seq for r in again.hub.log] == kept
    assert again.hub.log_bytes == core.hub.log_bytes


def test_restore_from_the_store_rebuilds_the_same_state(config: StoreConfig, tmp_path: Path) -> None:
    core = Core(config)
    _traffic(core)
    core.clock.advance(30)
    core.submit("shelf-1", shelf_order("r-last"))
    store = _stored(core, tmp_path / "restore.sqlite3")
    assert store.count_events() == core.hub.seq

    again = Core(config, clock=Clock(core.clock.t))
    docs, events, seq, keys = store.load(now=core.clock.t, replay_window=20_000)
    again.hub.restore(docs, events, seq, keys)
    store.close()
    h1, h2 = core.hub, again.hub
    assert h2.seq == h1.seq
    assert {k: o.model_dump_json() for k, o in h2.orders.items()} == {
        k: o.model_dump_json() for k, o in h1.orders.items()
    }
    assert h2.keys == h1.keys and h2.numbers == h1.numbers
    assert [
        (r.seq, r.at, r.kind, r.order_id, r.source, r.stations, r.status, r.frame, r.status_frame, r.order_json, r.size)
        for r in h2.log
    ] == [
        (r.seq, r.at, r.kind, r.order_id, r.source, r.stations, r.status, r.frame, r.status_frame, r.order_json, r.size)
        for r in h1.log
    ]
    assert h2.log_bytes == h1.log_bytes  # a restored event counts in the replay log as it did when it was new
    # Both hubs answer the same: a resume, a snapshot, a duplicate, the next number.
    for device in ("wok-1", "app-backend", "counter-1"):
        for resume_from in (0, 3):
            w1, r1 = core.hello(device, resume_from)[1:]
            w2, r2 = again.hello(device, resume_from)[1:]
            assert (w1, r1) == (w2, r2)
    dup1 = core.submit("app-backend", mixed_order("w1"))
    dup2 = again.submit("app-backend", mixed_order("w1"))
    assert dup1["duplicate"] and dup2["duplicate"] and dup1["number"] == dup2["number"] == "A001"
    assert (
        again.submit("kiosk-1", fixed_app_order("next", channel="kiosk", fulfilment={"type": "pickup"}))["number"]
        == "K006"
    )
    assert again.hub.seq == h1.seq + 1


def test_restored_orders_are_sent_as_stored_until_they_change(config: StoreConfig, tmp_path: Path) -> None:
    """A restored order goes into snapshots as the text read from the database (not made into JSON again) only
    while it is unchanged, and only when that text is what the hub writes; any change is sent as it is now."""
    core = Core(config)
    _traffic(core)
    store = _stored(core, tmp_path / "texts.sqlite3")
    docs, events, seq, keys = store.load(now=core.clock.t, replay_window=20_000)
    store.close()
    assert all(isinstance(d, str) for d in docs)
    # A document of an older version (without the fields added since) is not sent as stored.
    at, old = next(
        (k, d) for k, d in enumerate(map(json.loads, docs)) if d["channel"] == "app" and d["status"] != "cancelled"
    )
    del old["amend_refs"], old["items"][0]["declared_allergens"]
    docs[at] = json.dumps(old)
    again = Core(config, clock=Clock(core.clock.t))
    again.hub.restore(docs, events, seq, keys)
    assert set(again.hub._texts) == {json.loads(d)["id"] for d in docs} - {old["id"]}
    for device in ("counter-1", "wok-1", "monitor-1"):
        _, w, _ = again.hello(device)
        assert w["snapshot"]["orders"] and all(o == again.order(o["id"]) for o in w["snapshot"]["orders"])
    # Changed after the restore (the same object, a new version): the snapshot has the change.
    oid = next(o for o in again.hub.orders.values() if o.is_open and "wok" in o.stations()).id
    again.act("wok-1", "ticket.start", ticket_id=f"{oid}/wok")
    for device in ("counter-1", "wok-1"):
        _, w, _ = again.hello(device)
        shown = {o["id"]: o for o in w["snapshot"]["orders"]}
        assert shown[oid]["tickets"] == again.order(oid)["tickets"]
        assert shown[oid]["version"] == again.order(oid)["version"]
        assert all(o == again.order(o["id"]) for o in shown.values())


def test_a_stored_event_is_restored_the_same_whatever_its_layout(config: StoreConfig) -> None:
    """Restoring reads a stored event without its order's items and tickets when it is laid out as the hub writes
    it; any other layout (no stations, the order's fields in another order) is parsed whole, with the same result."""
    core = Core(config)
    _traffic(core)
    hub = OrderHub(config, clock=core.clock)
    for rec in core.events:
        ev = json.loads(rec.frame)
        assert _event_head(rec.frame) is not None
        again = hub._record_from_payload(rec.seq, rec.frame)
        whole = hub._record_from_payload(rec.seq, rec.frame, ev)
        reordered = json.dumps({**ev, "order": dict(reversed(list(ev["order"].items())))}, separators=(",", ":"))
        other = hub._record_from_payload(rec.seq, reordered)
        for r in (again, other):
            assert (r.seq, r.at, r.kind, r.order_id, r.source, r.stations, r.status, r.status_frame) == (
                whole.seq,
                whole.at,
                whole.kind,
                whole.order_id,
                whole.source,
                whole.stations,
                whole.status,
                whole.status_frame,
            )
        assert again.size == whole.size
        bare = hub._record_from_payload(rec.seq, json.dumps({**ev, "stations": []}, separators=(",", ":")))
        assert bare.stations == frozenset(t["station"] for t in ev["order"]["tickets"])


def test_the_welcome_lists_the_stores_allergens_and_language(core: Core) -> None:
    for device in ("kiosk-1", "wok-1", "counter-1"):
        _, welcome, _ = core.hello(device)
        store = welcome["store"]
        assert store["language"] == "en"
        by_id = {a["id"]: a for a in store["allergens"]}
        assert by_id["peanut"] == {"id": "peanut", "name": "Peanut", "name_zh": "花生"}
        assert set(by_id) == {a.id for a in core.config.allergens}
