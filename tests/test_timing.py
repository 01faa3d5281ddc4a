"""Kitchen timing (`kds.timing`): prep times configured and learned from bumps, the kitchen's load, and the ready-time
estimates the hub gives (`order.accepted`, `order.status`, `order.quote`), also after a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kds.config import StoreConfig
from kds.protocol import Error, OrderAccepted, OrderQuoted
from kds.server import HubServer
from kds.timing import PrepBook, PrepSample, trimmed_median
from tests.conftest import Devices, clocked_hub
from tests.test_hub_core import Clock, Core

NOON = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
"""12:00 in Shanghai (the store's time zone)."""


def drinks(key: str, sku: str = "BAR-MILKTEA", qty: int = 1) -> dict[str, Any]:
    return {"key": key, "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": sku, "qty": qty}]}


def wok_dish(key: str) -> dict[str, Any]:
    return {"key": key, "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-KUNGPAO"}]}


def seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def quote(core: Core, order: dict[str, Any]) -> dict[str, Any]:
    r = core.ask("kiosk-1", {"type": "order.quote", "order": order})
    assert r["type"] == "order.quoted", r
    return r


# --------------------------------------------------------------------------------------------- prep times


def test_the_most_precise_configured_prep_time_wins(config: StoreConfig) -> None:
    book = PrepBook(config)
    grouper, steamed, lobster = config.item("FISH-GROUPER"), config.method("steamed"), config.item("LOB-AUS")
    tea, wok = config.item("BAR-MILKTEA"), config.station("wok")
    assert grouper and steamed and lobster and tea and wok
    assert steamed.prep_s is not None and tea.prep_s is not None
    # The item's own time for the method, over the method's.
    assert book.configured("seafood", "FISH-GROUPER", "steamed") == grouper.method_prep_s["steamed"] != steamed.prep_s
    # The method's, for an item that does not override it.
    assert "steamed" not in config.item("CRAB-MUD").method_prep_s  # type: ignore[union-attr]
    assert book.configured("seafood", "CRAB-MUD", "steamed") == steamed.prep_s
    # The item's own, then the station's.
    assert book.configured("bar", "BAR-MILKTEA", None) == tea.prep_s
    assert config.item("WOK-KUNGPAO").prep_s is None  # type: ignore[union-attr]
    assert book.configured("wok", "WOK-KUNGPAO", None) == wok.prep_s


def test_a_learned_prep_time_is_used_once_it_rests_on_enough_bumps(config: StoreConfig) -> None:
    book = PrepBook(config)
    need = config.timing.learn_min_samples
    configured = book.configured("bar", "BAR-MILKTEA", None)
    lunch = [PrepSample("bar", "BAR-MILKTEA", None, 200.0 + k, NOON + timedelta(minutes=k)) for k in range(need - 1)]
    book.learn(lunch)
    assert book.seconds("bar", "BAR-MILKTEA", None, NOON) == configured  # not enough yet
    # One more, and an outlier (a ticket left on the screen): the trimmed median does not follow the outlier.
    book.learn(
        [PrepSample("bar", "BAR-MILKTEA", None, 204.0, NOON), PrepSample("bar", "BAR-MILKTEA", None, 5000.0, NOON)]
    )
    learned = book.seconds("bar", "BAR-MILKTEA", None, NOON)
    assert 200.0 <= learned <= 204.0
    assert learned == trimmed_median([200.0, 201.0, 202.0, 203.0, 204.0, 5000.0][: need + 1])
    # Another hour of the day with no samples of its own takes all hours'; once it has its own, those.
    evening = NOON + timedelta(hours=7)
    assert book.seconds("bar", "BAR-MILKTEA", None, evening) == learned
    book.learn([PrepSample("bar", "BAR-MILKTEA", None, 90.0, evening) for _ in range(need)])
    assert book.seconds("bar", "BAR-MILKTEA", None, evening) == 90.0
    assert book.seconds("bar", "BAR-MILKTEA", None, NOON) == learned
    # Another item or cooking method learns nothing from these.
    assert book.seconds("bar", "BAR-LEMONTEA", None, NOON) == book.configured("bar", "BAR-LEMONTEA", None)


def test_trimmed_median() -> None:
    assert trimmed_median([5.0]) == 5.0
    assert trimmed_median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert trimmed_median([1.0, 2.0, 3.0, 4.0, 1000.0]) == 3.0
    with pytest.raises(ValueError):
        trimmed_median([])


def test_bumps_teach_prep_times_once_stored_and_a_forgotten_ticket_teaches_nothing(config: StoreConfig) -> None:
    core = Core(config, clock=Clock(NOON))
    need = config.timing.learn_min_samples
    for k in range(need):
        oid = core.submit("kiosk-1", drinks(f"tea-{k}"))["order_id"]
        core.act("bar-1", "ticket.start", ticket_id=f"{oid}/bar")
        core.clock.advance(95)
        core.act("bar-1", "ticket.bump", ticket_id=f"{oid}/bar")
        [sample] = core.last_event().samples
        assert (sample.station, sample.sku, sample.cook, sample.seconds) == ("bar", "BAR-MILKTEA", None, 95.0)
    assert core.hub.prep.seconds("bar", "BAR-MILKTEA", None, core.clock.t) != 95.0  # not stored yet
    core.hub.stored(core.events)
    assert core.hub.prep.seconds("bar", "BAR-MILKTEA", None, core.clock.t) == 95.0
    # Not started by hand: from when a cook became free (the station's bump before it), not from when it came.
    a = core.submit("kiosk-1", drinks("tea-a"))["order_id"]
    b = core.submit("kiosk-1", drinks("tea-b"))["order_id"]
    core.clock.advance(100)
    core.act("bar-1", "ticket.bump", ticket_id=f"{a}/bar")
    core.clock.advance(80)
    core.act("bar-1", "ticket.bump", ticket_id=f"{b}/bar")
    assert [s.seconds for s in core.last_event().samples] == [80.0]
    # Bumped hours after it came: forgotten on the screen, not a prep time.
    late = core.submit("kiosk-1", drinks("tea-late"))["order_id"]
    core.clock.advance(config.timing.learn_max_s + 1)
    core.act("bar-1", "ticket.bump", ticket_id=f"{late}/bar")
    assert core.last_event().samples == []


# --------------------------------------------------------------------------------------------- estimates


def test_the_estimate_grows_with_the_station_queue_and_shrinks_with_its_cooks(config: StoreConfig) -> None:
    core = Core(config, clock=Clock(NOON))
    wok = config.station("wok")
    assert wok is not None and wok.cooks is None
    empty = quote(core, wok_dish("q"))
    assert seconds(NOON.isoformat(), empty["ready_at_estimate"]) == wok.prep_s
    first = core.submit("kiosk-1", wok_dish("w-1"))
    assert first["ready_at_estimate"] == empty["ready_at_estimate"]  # the quote was the promise
    for k in range(2, 4):
        core.submit("kiosk-1", wok_dish(f"w-{k}"))
    # Three dishes ahead, one cook (no wok screen connected): the fourth is ready after all four.
    busy = quote(core, wok_dish("q"))
    assert seconds(NOON.isoformat(), busy["ready_at_estimate"]) == 4 * wok.prep_s
    # Three screens at the wok: three cooks share the work ahead.
    core.hub.load.screens = {"wok": 3}
    shared = quote(core, wok_dish("q"))
    assert seconds(NOON.isoformat(), shared["ready_at_estimate"]) == wok.prep_s + 3 * wok.prep_s / 3
    # A quote stores nothing and uses no number.
    assert core.hub.seq == 3
    assert core.submit("kiosk-1", wok_dish("w-4"))["number"] == "K004"


def test_a_three_station_order_is_ready_when_its_slowest_part_is(config: StoreConfig) -> None:
    core = Core(config, clock=Clock(NOON))
    order = {
        "key": "three",
        "channel": "kiosk",
        "fulfilment": {"type": "pickup"},
        "items": [{"sku": "WOK-FRIEDRICE"}, {"sku": "BAR-MILKTEA"}, {"sku": "COLD-SUSHI-PLATTER"}],
    }
    book = core.hub.prep
    want = {
        "wok": book.configured("wok", "WOK-FRIEDRICE", None),
        "bar": book.configured("bar", "BAR-MILKTEA", None),
        "cold": book.configured("cold", "COLD-SUSHI-PLATTER", None),
    }
    assert len(set(want.values())) == 3
    q = quote(core, order)
    assert {k: seconds(NOON.isoformat(), v) for k, v in q["stations"].items()} == want
    assert seconds(NOON.isoformat(), q["ready_at_estimate"]) == max(want.values())
    accepted = core.submit("kiosk-1", order)
    assert accepted["ready_at_estimate"] == q["ready_at_estimate"]
    [status] = core.hello("kiosk-1")[1]["snapshot"]["statuses"]
    assert status["ready_at_estimate"] == q["ready_at_estimate"]
    # The slowest part done first: the order is then ready when the next slowest is, and the source is told.
    core.clock.advance(60)
    core.act("cold-1", "ticket.bump", ticket_id=f"{accepted['order_id']}/cold")
    told = core.last_event().status_frame
    assert told is not None
    expected = NOON + timedelta(seconds=want["wok"])
    assert datetime.fromisoformat(json.loads(told)["ready_at_estimate"]) == expected


def test_a_quote_is_checked_as_a_submit_is(config: StoreConfig) -> None:
    core = Core(config, clock=Clock(NOON))
    r = core.ask("kiosk-1", {"type": "order.quote", "order": drinks("x", sku="NOPE")})
    assert (r["type"], r["code"], r["errors"][0]["loc"]) == ("error", "invalid_order", ["order", "items", 0, "sku"])
    r = core.ask("kiosk-1", {"type": "order.quote", "order": {**drinks("x"), "channel": "shelf"}})
    assert (r["type"], r["code"], r["errors"][0]["loc"]) == ("error", "forbidden", ["order", "channel"])
    assert core.hub.seq == 0 and not core.hub.orders


# --------------------------------------------------------------------------------------------- through a restart


async def test_learned_prep_times_and_estimates_survive_a_restart(
    config: StoreConfig, db_path: Path | str, devices: Devices, servers: list[HubServer]
) -> None:
    clock = Clock(NOON)

    server = await clocked_hub(config, db_path, servers, clock)
    kiosk, bar = await devices.connect(server.url, "kiosk-1"), await devices.connect(server.url, "bar-1")
    for k in range(config.timing.learn_min_samples):
        acc = await kiosk.request({"type": "order.submit", "order": drinks(f"t-{k}")}, expect=OrderAccepted)
        await bar.request({"type": "ticket.start", "ticket_id": f"{acc.order_id}/bar"})
        clock.advance(70)
        await bar.request({"type": "ticket.bump", "ticket_id": f"{acc.order_id}/bar"})
    pending = await kiosk.request({"type": "order.submit", "order": drinks("waiting", qty=2)}, expect=OrderAccepted)
    before = await kiosk.request({"type": "order.quote", "order": drinks("q")}, expect=OrderQuoted)
    # Learned: 70 s a milk tea (not the config's), one waiting ahead (the bar screen is its one cook).
    assert (before.ready_at_estimate - clock.t).total_seconds() == 140.0
    await server.stop()

    again = await clocked_hub(config, db_path, servers, clock)
    kiosk2 = await devices.connect(again.url, "kiosk-1")
    after = await kiosk2.request({"type": "order.quote", "order": drinks("q")}, expect=OrderQuoted)
    # The same: 70 s learned (the config's 120 s would make it 240), the waiting order counted again.
    assert (after.ready_at_estimate - clock.t).total_seconds() == 140.0
    dup = await kiosk2.request({"type": "order.submit", "order": drinks("waiting", qty=2)}, expect=OrderAccepted)
    assert dup.duplicate and dup.ready_at_estimate == pending.ready_at_estimate
    bad = await kiosk2.request({"type": "order.quote", "order": drinks("q", sku="NOPE")})
    assert isinstance(bad, Error) and bad.code == "invalid_order"
