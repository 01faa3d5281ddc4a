"""The simulator against a real hub: the order mix it makes, what the hub stored, follow-ups, the simulated kitchen."""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from kds.config import SoldBy, StoreConfig
from kds.protocol import Delivery, DineIn, OrderIn, OrderStatus, Pickup, TicketState
from kds.routing import check_item
from kds.server import HubServer
from kdsapp.simulate import OrderMix, SimulationError, SimulationOptions, run_kitchen_bots, run_simulation
from tests.support import until

ClientFactory = Callable[..., Any]


def quick(hub: HubServer, **over: Any) -> SimulationOptions:
    """Options for a fast run against the test hub: no progress line, summary into a buffer."""
    opts = SimulationOptions(
        hub=hub.url,
        rate=500,
        orders=60,
        seed=1234,
        cancel_share=0.1,
        amend_share=0.15,
        progress=False,
        followup_delay=(0.0, 0.05),
        out=io.StringIO(),
    )
    for k, v in over.items():
        setattr(opts, k, v)
    return opts


def test_the_mix_is_valid_and_shaped_like_a_hema_store(config: StoreConfig) -> None:
    mix = OrderMix(config, rng=random.Random(7), run_id="t")
    planned = [mix.next() for _ in range(2000)]
    shares = Counter(p.channel for p in planned)
    assert abs(shares["app"] / 2000 - 0.60) < 0.05
    assert abs(shares["kiosk"] / 2000 - 0.25) < 0.05
    assert abs(shares["shelf"] / 2000 - 0.15) < 0.05
    for p in planned:
        o = OrderIn.model_validate(p.order)  # the wire contract
        for k, it in enumerate(o.items):
            assert check_item(config, ("items", k), it.sku, it.weight_g, it.cook) == [], p.order
        dev = config.device(p.source)
        assert dev is not None and o.channel in dev.channels and dev.role.value == "source"
    assert len({p.order["key"] for p in planned}) == 2000
    assert {p.source for p in planned} == {"app-backend", "kiosk-1", "kiosk-2", "shelf-1"}
    orders = [p.order for p in planned]
    assert any(o.get("priority") == "rush" for o in orders)
    assert any(o.get("note") for o in orders)
    assert any(i.get("modifiers") for o in orders for i in o["items"])
    assert any(i.get("allergens") for o in orders for i in o["items"])
    zh = {i.name_zh for i in config.catalogue}
    assert any(i.get("name") in zh for o in orders for i in o["items"])
    assert {o["fulfilment"]["type"] for o in orders if o["channel"] == "app"} == {"delivery", "pickup"}
    assert {o["fulfilment"]["type"] for o in orders if o["channel"] == "kiosk"} == {"dine_in", "pickup"}
    assert {o["fulfilment"]["type"] for o in orders if o["channel"] == "shelf"} == {"dine_in"}


async def test_small_simulation_is_all_accepted_and_the_hub_holds_the_mix(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    opts = quick(hub)
    report = await run_simulation(config, opts)
    assert (report.sent, report.accepted, report.errors, report.duplicates) == (60, 60, 0, 0)
    assert len(report.latencies_ms) == 60 and 0 < report.p50_ms <= report.p99_ms
    assert report.cancels >= 1 and report.amends >= 1 and report.too_late == 0

    # The printed summary: counts, latency, and a JSON line that says the same.
    out = opts.out.getvalue()  # type: ignore[union-attr]
    assert "sent 60  accepted 60  errors 0" in out and "p50" in out and "p99" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["sent"] == summary["accepted"] == 60 and summary["errors"] == 0

    # What the hub stored, as the manager's monitor sees it.
    monitor = await connect("monitor-1")
    orders = {o.key: o for o in monitor.book.orders.values()}
    mine = {k: o for k, o in orders.items() if k.startswith(f"sim-{report.run_id}-")}
    assert len(mine) == 60 and {o.id for o in mine.values()} == set(report.orders.values())
    by_channel = Counter(o.channel.value for o in mine.values())
    assert by_channel == report.channels
    assert by_channel["app"] > by_channel["kiosk"] and by_channel["app"] > by_channel["shelf"] > 0

    for o in mine.values():
        f = o.fulfilment
        if o.channel == "shelf":
            assert isinstance(f, DineIn) and f.table
            assert o.source == "shelf-1"
            seafood = [i for i in o.items if i.tag]
            assert seafood
            for it in seafood:
                cat = config.item(it.sku)
                assert cat is not None and it.cook in cat.methods and it.cook_name
                assert it.tag is not None and re.fullmatch(r"T-\d{4}", it.tag)
                if cat.sold_by is SoldBy.WEIGHT:
                    assert cat.min_weight_g is not None and cat.max_weight_g is not None
                    assert it.weight_g is not None and cat.min_weight_g <= it.weight_g <= cat.max_weight_g
        elif o.channel == "app":
            assert o.source == "app-backend"
            if isinstance(f, Delivery):
                assert f.due.tzinfo is not None
                ahead = f.due - o.created_at
                assert timedelta(minutes=29) <= ahead <= timedelta(minutes=45)
        else:
            assert o.source in ("kiosk-1", "kiosk-2") and isinstance(f, (DineIn, Pickup))

    # The follow-ups reached the hub: cancelled and amended orders, as many as the report says.
    assert sum(o.status is OrderStatus.CANCELLED for o in mine.values()) == report.cancels
    assert sum(o.amended_at is not None for o in mine.values()) == report.amends


async def test_keys_are_unique_per_run_even_with_the_same_seed(config: StoreConfig, hub: HubServer) -> None:
    first = await run_simulation(config, quick(hub, orders=10, cancel_share=0, amend_share=0))
    second = await run_simulation(config, quick(hub, orders=10, cancel_share=0, amend_share=0))
    assert first.run_id != second.run_id
    assert second.accepted == 10 and second.duplicates == 0
    assert not set(first.orders.values()) & set(second.orders.values())


async def test_duration_and_rate_bound_the_run(config: StoreConfig, hub: HubServer) -> None:
    report = await run_simulation(config, quick(hub, orders=None, duration=0.5, rate=40))
    assert 18 <= report.sent <= 21 and report.accepted == report.sent and report.errors == 0


async def test_no_hub_is_a_clear_error(config: StoreConfig) -> None:
    with pytest.raises(SimulationError, match="no hub reachable"):
        await run_simulation(
            config, SimulationOptions(hub="ws://127.0.0.1:9", progress=False, summary=False, connect_timeout=0.5)
        )


async def test_kitchen_bots_cook_and_hand_over_what_the_simulator_sends(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    monitor = await connect("monitor-1")
    stop = asyncio.Event()
    bots = asyncio.create_task(run_kitchen_bots(config, hub.url, speed=50, stop=stop, seed=3))
    try:
        report = await run_simulation(config, quick(hub, orders=12, cancel_share=0, amend_share=0))
        assert report.accepted == 12
        ids = set(report.orders.values())

        def all_handed_over() -> bool:
            return all(i in monitor.book.orders and monitor.book.orders[i].status == "handed_over" for i in ids)

        await until(all_handed_over, timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(bots, 5)
    for i in ids:
        o = monitor.book.orders[i]
        assert all(t.state is TicketState.DONE and t.started_at for t in o.tickets)
        expected = {"delivery": "rider", "dine_in": "runner", "pickup": "customer"}[o.fulfilment.type]
        assert o.handed_over_to == expected
        if o.fulfilment.type == "pickup":
            assert o.called_at is not None
