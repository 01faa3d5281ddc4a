"""The counter's pure parts: catalogue lookup and item checks, the order draft, and how orders come together."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kds.config import Role, StoreConfig
from kds.hub import OrderHub, Session
from kds.protocol import OrderView, StoreView
from kds.routing import check_item
from terminals.counter.assembly import Level, assemble, clock, expo_list
from terminals.counter.catalogue import AllergenChoice, Catalogue, ean13_ok, find_allergens, money, parse_weight
from terminals.counter.draft import Draft, Line, Service
from terminals.counter.widgets import big_text
from tests.conftest import fixed_app_order, shelf_order

T0 = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(config: StoreConfig) -> StoreView:
    """`welcome.store` as the hub sends it to a counter."""
    return OrderHub(config).store_view(Role.COUNTER)


@pytest.fixture(scope="module")
def catalogue(store: StoreView) -> Catalogue:
    return Catalogue.from_store(store)


# ------------------------------------------------------------------------------------------- catalogue


def test_lookup_by_sku_barcode_and_scale_label(catalogue: Catalogue) -> None:
    lobster = catalogue.get("lob-aus")
    assert lobster is not None and lobster.weighed and lobster.from_the_tanks
    assert catalogue.scan("LOB-AUS") == catalogue.scan("2110001000003")
    label = catalogue.scan("2110001012501")  # 21 · 10001 · 01250 g · check digit
    assert ean13_ok("2110001012501") and label is not None
    assert (label.product.sku, label.weight_g) == ("LOB-AUS", 1250)
    assert catalogue.scan("2110001012502") is None, "bad check digit: not a label"
    tea = catalogue.scan("6927351000289")
    assert tea is not None and tea.product.sku == "BAR-MILKTEA"
    assert catalogue.scan("NOPE") is None and catalogue.scan("  ") is None


def test_search_by_name_in_english_or_chinese(catalogue: Catalogue) -> None:
    assert [p.sku for p in catalogue.search("lobster")] == ["LOB-AUS", "LOB-BOSTON"]
    assert [p.sku for p in catalogue.search("龙虾")] == ["LOB-AUS", "LOB-BOSTON"]
    assert catalogue.search("帝王蟹")[0].sku == "CRAB-KING"
    assert catalogue.search("crab")[0].sku.startswith("CRAB-")
    assert catalogue.search("wok-")[0].sku.startswith("WOK-")
    assert [p.barcode for p in catalogue.search("692735100021")] == ["6927351000210"]
    assert catalogue.search("") == [] and catalogue.search("zzz") == []


@pytest.mark.parametrize(
    ("sku", "weight", "cook"),
    [
        ("LOB-AUS", 800, "sashimi"),
        ("LOB-AUS", None, "sashimi"),
        ("LOB-AUS", 30000, "steamed"),
        ("LOB-AUS", 400, None),
        ("LOB-AUS", 800, "drunken"),
        ("WOK-KUNGPAO", 300, None),
        ("CRAB-HAIRY", None, None),
        ("OYSTER-FR", None, "cheese_baked"),
    ],
)
def test_line_checks_agree_with_the_hub(
    config: StoreConfig, catalogue: Catalogue, sku: str, weight: int | None, cook: str | None
) -> None:
    product = catalogue.get(sku)
    assert product is not None
    mine = {p.field for p in catalogue.check_line(product, weight, cook)}
    hubs = {str(p.loc[-1]) for p in check_item(config, (), sku, weight, cook)}
    assert mine == hubs


def test_money_and_allergens_from_the_stores_list(config: StoreConfig) -> None:
    assert money(7980) == "¥79.80" and money(5, "EUR") == "€0.05"
    declared = [AllergenChoice(a.id, a.name, a.name_zh) for a in config.allergens]
    assert [a.id for a in find_allergens(declared, "peanut")] == ["peanut"]
    assert [a.id for a in find_allergens(declared, "花生")] == ["peanut"]
    assert [a.id for a in find_allergens(declared, "tree nuts")] == ["tree_nuts"]
    assert find_allergens(declared, "cut in half") == [], "free text is no allergen"


@pytest.mark.parametrize(
    ("typed", "grams"),
    [
        ("1200", 1200),
        ("1200g", 1200),
        ("1200 g", 1200),
        ("1.2kg", 1200),
        ("1.2 kg", 1200),
        ("1,2kg", 1200),
        ("1.25KG", 1250),
        ("0.8 kg", 800),
        ("2公斤", 2000),
        ("850克", 850),
        (" 900 ", 900),
    ],
)
def test_weights_with_or_without_a_unit(typed: str, grams: int) -> None:
    assert parse_weight(typed) == (grams, None)


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("1.2", "a plain number is grams; for kilograms add the unit (1.2kg)"),
        ("1,2", "a plain number is grams; for kilograms add the unit (1.2kg)"),
        ("12 lb", "is not a weight"),
        ("abc", "is not a weight"),
        ("800.5g", "whole grams only"),
        ("1.2345kg", "3 decimals"),
        ("0", "more than 0 g"),
    ],
)
def test_what_is_not_a_weight_is_refused_in_words(typed: str, why: str) -> None:
    grams, problem = parse_weight(typed)
    assert grams is None and problem is not None and why in problem


# ------------------------------------------------------------------------------------------- draft


def test_channel_is_shelf_when_goods_come_from_the_tanks(catalogue: Catalogue) -> None:
    draft = Draft(key="k1")
    kungpao, oyster, lobster = (catalogue.get(s) for s in ("WOK-KUNGPAO", "OYSTER-FR", "LOB-AUS"))
    assert kungpao and oyster and lobster
    draft.add(Line(kungpao, qty=2), T0)
    assert draft.channel == "kiosk" and draft.lines[0].tag is None
    # An oyster sold each, cooked to order, is picked from the tanks too.
    added = draft.add(Line(oyster, cook="cheese_baked", fee_cents=1200), T0)
    assert draft.channel == "shelf" and added.tag == "040000-1"
    draft.add(Line(lobster, weight_g=800, cook="sashimi", fee_cents=5000), T0 + timedelta(minutes=3))
    assert [line.tag for line in draft.lines] == [None, "040000-1", "040000-2"]
    assert draft.fees_cents == 6200


def test_problems_before_sending_and_the_order_sent(catalogue: Catalogue) -> None:
    draft = Draft(key="k2")
    assert {p.field for p in draft.problems()} == {"lines", "table"}
    lobster = catalogue.get("LOB-AUS")
    assert lobster is not None
    draft.add(Line(lobster, weight_g=800, cook="steamed", allergens=("peanut",), note="no ginger"), T0)
    draft.table = " 12 "
    draft.note = "birthday"
    assert draft.problems() == []
    order = draft.to_order()
    assert order == {
        "key": "k2",
        "channel": "shelf",
        "fulfilment": {"type": "dine_in", "table": "12"},
        "items": [
            {
                "sku": "LOB-AUS",
                "qty": 1,
                "weight_g": 800,
                "cook": "steamed",
                "allergens": ["peanut"],
                "note": "no ginger",
                "tag": "040000-1",
            }
        ],
        "note": "birthday",
    }
    draft.service = Service.PICKUP
    assert draft.to_order()["fulfilment"] == {"type": "pickup"}
    draft.table = "x" * 17
    assert draft.problems() == [], "no table for pickup"
    draft.service = Service.DINE_IN
    assert [p.field for p in draft.problems()] == ["table"]
    assert draft.remove(0) is not None and draft.remove(5) is None


# ------------------------------------------------------------------------------------------- assembly


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class _Store:
    """A pure hub (no I/O) at 12:00 with a lobster order, an app delivery due 12:30, and a kiosk pickup."""

    def __init__(self, config: StoreConfig) -> None:
        self.clock = _Clock()
        self.hub = OrderHub(config, clock=self.clock)
        self.config = config
        self.ids = {
            "lobster": self.submit("shelf-1", shelf_order("m1")),
            "delivery": self.submit("app-backend", fixed_app_order("m2")),
            "pickup": self.submit(
                "kiosk-1",
                fixed_app_order("m3", channel="kiosk", fulfilment={"type": "pickup"}, items=[{"sku": "BAR-COCONUT"}]),
            ),
        }

    def _frame(self, device: str, msg: dict[str, Any]) -> dict[str, Any]:
        dev = self.config.device(device)
        assert dev is not None
        d = self.hub.handle_frame(Session(dev, self.hub.seq), json.dumps({"ref": "r", **msg}))
        answer: dict[str, Any] = json.loads(d.replies[0][1])
        return answer

    def submit(self, device: str, order: dict[str, Any]) -> str:
        return str(self._frame(device, {"type": "order.submit", "order": order})["order_id"])

    def do(self, device: str, msg: dict[str, Any]) -> None:
        answer = self._frame(device, msg)
        assert answer["type"] == "ack", answer

    def orders(self) -> list[OrderView]:
        """The hub's orders, as a client reads them."""
        return [OrderView.model_validate_json(o.model_dump_json()) for o in self.hub.orders.values()]

    def order(self, name: str) -> OrderView:
        return OrderView.model_validate_json(self.hub.orders[self.ids[name]].model_dump_json())


def test_progress_per_station_ready_and_the_counter_timers(config: StoreConfig, store: StoreView) -> None:
    st = _Store(config)
    lobster = st.ids["lobster"]
    row = assemble(st.order("lobster"), store, st.clock.now)
    assert [s.label() for s in row.stations] == ["wok 0/1", "cold 0/1"] and row.destination == "table 12"
    st.clock.now += timedelta(minutes=6)  # cold's warn threshold is 5 min
    st.do("wok-1", {"type": "ticket.bump", "ticket_id": f"{lobster}/wok"})
    row = assemble(st.order("lobster"), store, st.clock.now)
    assert [s.label() for s in row.stations] == ["wok ✓", "cold 0/1"]
    assert row.alerts == ("cold slow",) and row.level is Level.WARN
    st.do("cold-1", {"type": "ticket.bump", "ticket_id": f"{lobster}/cold"})
    st.clock.now += timedelta(minutes=3)  # READY for 3 min: the counter's warn threshold is 2 min
    row = assemble(st.order("lobster"), store, st.clock.now)
    assert row.ready and not row.called and row.waiting == timedelta(minutes=3)
    assert row.alerts == ("waiting 3:00",) and row.level is Level.WARN
    st.clock.now += timedelta(minutes=3)
    assert assemble(st.order("lobster"), store, st.clock.now).level is Level.LATE


def test_deliveries_count_down_and_warn_when_the_kitchen_will_miss_them(config: StoreConfig, store: StoreView) -> None:
    st = _Store(config)
    doc, now = st.order("delivery"), st.clock.now  # due 12:30 Shanghai; now 12:00
    row = assemble(doc, store, now)
    assert row.due_in == timedelta(minutes=30) and row.alerts == () and row.level is Level.OK
    # 12:21: nine minutes left, less than a rider needs, and not ready.
    row = assemble(doc, store, now + timedelta(minutes=21))
    assert "WILL MISS DUE" in row.alerts and row.level is Level.LATE
    # 12:13: the wok (late after 12 min) is late on it, though the due time is 17 min away (the bar made its part).
    st.clock.now += timedelta(minutes=2)
    st.do("bar-1", {"type": "ticket.bump", "ticket_id": f"{st.ids['delivery']}/bar"})
    row = assemble(st.order("delivery"), store, now + timedelta(minutes=13))
    assert [s.label() for s in row.stations] == ["wok 0/1", "bar ✓"]
    assert row.alerts == ("WILL MISS DUE", "wok late")
    # 12:02, nothing late yet, but the hub predicts the order ready at 12:25: too late for the rider.
    early = now + timedelta(minutes=2)
    predicted = doc.model_copy(update={"ready_at_estimate": now + timedelta(minutes=25)})
    assert assemble(predicted, store, early).alerts == ("WILL MISS DUE",)
    assert (
        assemble(doc.model_copy(update={"ready_at_estimate": now + timedelta(minutes=15)}), store, early).alerts == ()
    )
    # Past due.
    assert "LATE 2:00" in assemble(doc, store, now + timedelta(minutes=32)).alerts
    assert clock(timedelta(seconds=-75)) == "1:15" and clock(timedelta(hours=1, minutes=5)) == "1:05 h"


def test_a_part_waiting_to_be_fired_shows_when_it_fires_and_is_never_late(
    config: StoreConfig, store: StoreView
) -> None:
    st = _Store(config)
    doc, now = st.order("lobster"), st.clock.now
    fire_at = now + timedelta(hours=2)
    tickets = [t.model_copy(update={"fire_at": fire_at} if t.station == "wok" else {"held": True}) for t in doc.tickets]
    waiting = doc.model_copy(update={"tickets": tickets})
    row = assemble(waiting, store, now + timedelta(hours=1))  # an hour: late for any station at work
    assert [s.label(lambda t: f"{t:%H:%M}") for s in row.stations] == [f"wok ⏱ {fire_at:%H:%M}", "cold ⏸ held"]
    assert row.alerts == () and all(s.level is Level.OK for s in row.stations)


def test_ready_orders_on_top_closed_ones_at_the_bottom_for_half_an_hour(config: StoreConfig, store: StoreView) -> None:
    st = _Store(config)
    ids = st.ids
    st.clock.now += timedelta(minutes=1)
    st.do("bar-1", {"type": "ticket.bump", "ticket_id": f"{ids['pickup']}/bar"})
    st.do("wok-1", {"type": "ticket.bump", "ticket_id": f"{ids['lobster']}/wok"})
    st.do("cold-1", {"type": "ticket.bump", "ticket_id": f"{ids['lobster']}/cold"})
    st.do("counter-1", {"type": "order.call", "order_id": ids["pickup"]})
    rows = expo_list(st.orders(), store, st.clock.now)
    # Ready and not yet called first, then called, then the rest.
    assert [r.id for r in rows] == [ids["lobster"], ids["pickup"], ids["delivery"]]
    st.do("counter-1", {"type": "order.handover", "order_id": ids["lobster"], "to": "runner"})
    rows = expo_list(st.orders(), store, st.clock.now)
    assert [r.id for r in rows] == [ids["pickup"], ids["delivery"], ids["lobster"]] and rows[-1].closed
    later = st.clock.now + timedelta(minutes=31)
    assert ids["lobster"] not in [r.id for r in expo_list(st.orders(), store, later)]


def test_big_numbers() -> None:
    rows = big_text("S01")
    assert len(rows) == 3 and len({len(r) for r in rows}) == 1 and len(rows[0]) == 3 * 6 + 2 * 2
    assert big_text("S") != big_text("5")
