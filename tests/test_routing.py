"""Routing of items to stations, and item checks, against the shipped sample config."""

from __future__ import annotations

import pytest

from kds.config import StoreConfig
from kds.routing import Problem, Route, check_item, route_item
from tests.test_hub_core import Core

# (sku, cook) → (station, rule, unrouted)
ROUTES = [
    # The cooking method decides for live seafood.
    ("LOB-AUS", "sashimi", "cold", "method", False),
    ("LOB-AUS", "steamed", "seafood", "method", False),
    ("LOB-AUS", "ginger_scallion", "wok", "method", False),
    ("LOB-AUS", "cheese_baked", "grill", "method", False),
    ("LOB-AUS", "congee", "seafood", "method", False),
    ("CRAB-HAIRY", "drunken", "cold", "method", False),
    ("FISH-TURBOT", "grilled", "grill", "method", False),
    ("PRAWN-TIGER", "typhoon_shelter", "wok", "method", False),
    ("SCALLOP-LIVE", "garlic_butter_grilled", "grill", "method", False),
    # A SKU's own station overrides its category (noodles_congee → wok).
    ("NDL-COLD-SICHUAN", None, "cold", "sku", False),
    ("CONGEE-PORK-EGG", None, "seafood", "sku", False),
    # Category routing, one per station that has categories.
    ("NDL-BEEF", None, "wok", "category", False),
    ("WOK-KUNGPAO", None, "wok", "category", False),
    ("GRL-LAMB", None, "grill", "category", False),
    ("COLD-SALMON", None, "cold", "category", False),
    ("BAR-MILKTEA", None, "bar", "category", False),
    ("BAK-EGGTART", None, "bakery", "category", False),
    # An unknown cooking method does not route; the category still does.
    ("WOK-MAPO", "steem", "wok", "category", False),
    # Nothing routes: the default station, flagged.
    ("SPECIAL-SEASONAL", None, "wok", "default", True),
    ("LOB-AUS", None, "wok", "default", True),  # live seafood without a method: its category has no station
    ("NOT-IN-CATALOGUE", None, "wok", "default", True),
]


@pytest.mark.parametrize(("sku", "cook", "station", "rule", "unrouted"), ROUTES, ids=[f"{r[0]}:{r[1]}" for r in ROUTES])
def test_route_item(config: StoreConfig, sku: str, cook: str | None, station: str, rule: str, unrouted: bool) -> None:
    route = route_item(config, sku, cook)
    assert route == Route(station, rule)
    assert (route.station, route.rule, route.unrouted) == (station, rule, unrouted)


def test_the_table_covers_every_station_and_rule(config: StoreConfig) -> None:
    assert {r[2] for r in ROUTES} == {s.id for s in config.stations}
    assert {r[3] for r in ROUTES} == {"method", "sku", "category", "default"}
    assert config.store.default_station == "wok"


def test_every_catalogue_item_routes_to_a_configured_station(config: StoreConfig) -> None:
    stations = {s.id for s in config.stations}
    for item in config.catalogue:
        for cook in (*item.methods, None):
            assert route_item(config, item.sku, cook).station in stations
    unrouted = sorted(i.sku for i in config.catalogue if not i.methods and route_item(config, i.sku, None).unrouted)
    assert unrouted == ["SPECIAL-SEASONAL"]


# (sku, weight_g, cook) → [(loc tail, words in the message)]
CHECKS = [
    ("LOB-AUS", 800, "sashimi", []),
    ("LOB-AUS", 500, "steamed", []),  # bounds are inclusive
    ("LOB-AUS", 3000, "steamed", []),
    ("CRAB-HAIRY", None, "drunken", []),  # sold each, with methods
    ("WOK-KUNGPAO", None, None, []),
    ("SPECIAL-SEASONAL", None, None, []),  # unrouted is not a problem: it still gets cooked
    ("LOB-AUS", None, "sashimi", [("weight_g", "weight_g is required")]),
    ("LOB-AUS", 30_000, "sashimi", [("weight_g", "30000 g is outside 500–3000 g")]),
    ("LOB-AUS", 499, "sashimi", [("weight_g", "outside")]),
    ("WOK-KUNGPAO", 300, None, [("weight_g", "not sold by weight")]),
    ("LOB-AUS", 800, "steem", [("cook", "unknown cooking method 'steem'")]),
    ("LOB-AUS", 800, "salt_pepper", [("cook", "allowed: sashimi, steamed, ginger_scallion, cheese_baked, congee")]),
    ("LOB-AUS", 800, None, [("cook", "choose a cooking method")]),
    ("WOK-KUNGPAO", None, "steamed", [("cook", "allowed: none")]),
    ("LOB-AUS", None, None, [("weight_g", "required"), ("cook", "choose a cooking method")]),
    ("NOPE-1", 800, "steem", [("sku", "unknown SKU 'NOPE-1'")]),  # an unknown SKU says only that
]


@pytest.mark.parametrize(("sku", "weight_g", "cook", "expected"), CHECKS, ids=[f"{c[0]}:{c[1]}:{c[2]}" for c in CHECKS])
def test_check_item(
    config: StoreConfig, sku: str, weight_g: int | None, cook: str | None, expected: list[tuple[str, str]]
) -> None:
    problems = check_item(config, ("order", "items", 3), sku, weight_g, cook)
    assert [p.loc for p in problems] == [("order", "items", 3, field) for field, _ in expected]
    for p, (_, words) in zip(problems, expected, strict=True):
        assert words in p.msg
        assert p.as_dict() == {"loc": ["order", "items", 3, p.loc[-1]], "msg": p.msg}


def test_problem_wire_form() -> None:
    assert Problem(("add", 0, "cook"), "x").as_dict() == {"loc": ["add", 0, "cook"], "msg": "x"}


def test_unrouted_item_through_the_hub_is_flagged_and_not_dropped(config: StoreConfig) -> None:
    core = Core(config)
    r = core.submit(
        "kiosk-1",
        {
            "key": "season-1",
            "channel": "kiosk",
            "fulfilment": {"type": "dine_in", "table": "3"},
            "items": [{"sku": "SPECIAL-SEASONAL"}, {"sku": "BAR-COCONUT"}, {"sku": "NDL-COLD-SICHUAN"}],
        },
    )
    o = core.order(r["order_id"])
    assert [(i["sku"], i["station"], i["unrouted"]) for i in o["items"]] == [
        ("SPECIAL-SEASONAL", "wok", True),
        ("BAR-COCONUT", "bar", False),
        ("NDL-COLD-SICHUAN", "cold", False),
    ]
    assert {t["station"]: t["items"] for t in o["tickets"]} == {"wok": ["1"], "bar": ["2"], "cold": ["3"]}
    wok = core.hello("wok-1")[1]
    [seen] = wok["snapshot"]["orders"]
    assert seen["items"][0]["unrouted"] is True and seen["id"] == r["order_id"]
    # A shelf order routes each lobster by its method and carries the processing fee of that method.
    s = core.submit(
        "shelf-1",
        {
            "key": "lob-1",
            "channel": "shelf",
            "fulfilment": {"type": "dine_in", "table": "8"},
            "items": [
                {"sku": "LOB-AUS", "weight_g": 900, "cook": m} for m in ("sashimi", "steamed", "ginger_scallion")
            ],
        },
    )
    items = core.order(s["order_id"])["items"]
    assert [(i["station"], i["fee_cents"], i["cook_name"], i["unrouted"]) for i in items] == [
        ("cold", 5000, "Sashimi", False),
        ("seafood", 1500, "Steamed", False),
        ("wok", 2500, "Wok-fried with ginger and scallion", False),
    ]
