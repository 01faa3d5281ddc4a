"""The welcome is small and the same size whatever the day's history: closed orders beyond the last few stay out of
snapshots (`orders.closed` fetches them), and a large snapshot comes in pages no client's 1 MiB limit refuses."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import OrderAccepted, OrderStatus
from kds.server import HubServer
from kds.store import Store
from tests.conftest import Devices, app_order, fixed_app_order, shelf_order
from tests.support import db_rows
from tests.test_hub_core import Clock, Core

MIB = 1024 * 1024
OPEN = 500
ROLES = ("wok-1", "cold-1", "seafood-1", "counter-1", "monitor-1", "app-backend", "shelf-1")


def busy(config: StoreConfig, closed: int) -> Core:
    """A store with OPEN open orders and `closed` cancelled ones, spread over the last 30 minutes."""
    core = Core(config)
    for k in range(closed):
        r = core.submit("app-backend", fixed_app_order(f"gone-{k}", note="ring twice " * 5))
        core.act("app-backend", "order.cancel", order_id=r["order_id"], reason="customer left")
        core.clock.advance(1800 / max(closed, 1) / 2)
    for k in range(OPEN):
        if k % 2:
            core.submit("shelf-1", shelf_order(f"open-{k}", note="birthday, no rush " * 3))
        else:
            core.submit("app-backend", fixed_app_order(f"open-{k}"))
    return core


def welcome_frames(core: Core, device: str) -> list[str]:
    """Every frame a fresh hello gets: the welcome, its snapshot pages, then anything else."""
    dev = core.config.device(device)
    assert dev is not None
    hello = {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value, "resume_from": 0}
    _session, d = core.hub.connect(json.dumps(hello))
    return [f for _s, f in d.replies]


def assemble(frames: list[str]) -> tuple[dict[str, Any], int]:
    """The welcome with its pages put together, as HubClient does; and the largest frame in bytes."""
    welcome = json.loads(frames[0])
    for k, raw in enumerate(frames[1 : 1 + welcome["pages"]], start=1):
        page = json.loads(raw)
        assert page["type"] == "snapshot.page" and page["page"] == k and page["pages"] == welcome["pages"]
        assert page["seq"] == welcome["seq"]
        for key in ("orders", "statuses"):
            welcome["snapshot"][key].extend(page["snapshot"][key])
    return welcome, max(len(f.encode("utf-8")) for f in frames)


def test_every_role_is_welcomed_in_frames_under_1_mib_with_500_open_and_30_minutes_closed(config: StoreConfig) -> None:
    quiet, day = busy(config, closed=0), busy(config, closed=1200)
    limit = config.limits.snapshot_page_bytes
    for device in ROLES:
        frames = welcome_frames(day, device)
        welcome, largest = assemble(frames)
        assert largest < MIB, f"{device}: a {largest}-byte frame"
        assert largest < limit + 64 * 1024, f"{device}: a page of {largest} bytes for pages of {limit}"
        snap = welcome["snapshot"]
        held = snap["statuses"] if device in ("app-backend", "shelf-1") else snap["orders"]
        closed = [x for x in held if x["status"] in ("cancelled", "handed_over")]
        assert len(closed) <= config.limits.snapshot_closed, f"{device}: {len(closed)} closed orders in its snapshot"
        if device in ("counter-1", "monitor-1"):
            open_ids = {o["id"] for o in held if o["status"] not in ("cancelled", "handed_over")}
            assert len(open_ids) == OPEN, f"{device} sees {len(open_ids)} open orders of {OPEN}"
            assert welcome["pages"] >= 1, "500 orders fit one page? the paging is not exercised"
        # The same size whatever the day's history: 1,200 closed orders add at most the last few.
        total_day = sum(len(f) for f in frames)
        total_quiet = sum(len(f) for f in welcome_frames(quiet, device))
        assert total_day <= total_quiet + config.limits.snapshot_closed * 4000, (device, total_day, total_quiet)


def test_orders_closed_pages_back_through_the_recall_list(config: StoreConfig) -> None:
    core = busy(config, closed=120)
    seen: list[str] = []
    before = None
    for _ in range(10):  # bounded: 120 orders at 50 a page
        msg: dict[str, Any] = {"type": "orders.closed", "limit": 50}
        if before:
            msg["before"] = before
        r = core.ask("counter-1", msg)
        assert r["type"] == "orders.closed.list"
        times = [o["updated_at"] for o in r["orders"]]
        assert times == sorted(times, reverse=True), "newest first"
        assert all(o["status"] == "cancelled" for o in r["orders"])
        seen += [o["id"] for o in r["orders"]]
        if not r["more"]:
            break
        before = r["orders"][-1]["updated_at"]
    assert len(seen) == len(set(seen)) == 120


def test_a_resume_too_large_to_replay_gets_a_snapshot(config: StoreConfig) -> None:
    small = config.model_copy(update={"limits": config.limits.model_copy(update={"replay_max_bytes": 64 * 1024})})
    core = Core(small)
    _s, w, _ = core.hello("monitor-1")
    for k in range(200):
        core.submit("shelf-1", shelf_order(f"rush-{k}"))
    _s, again, replay = core.hello("monitor-1", resume_from=w["seq"])
    assert again["resumed"] is False and again["snapshot"] is not None
    assert [f["type"] for f in replay] == ["snapshot.page"] * again["pages"], "a snapshot, not a 200-event replay"
    _s, near, replay = core.hello("monitor-1", resume_from=again["seq"] - 3)
    assert near["resumed"] is True and len(replay) == 3


async def test_a_client_with_a_1_mib_limit_connects_to_a_busy_hub(hub: HubServer, connect: Any) -> None:
    src = await connect("app-backend")
    answers = await asyncio.gather(
        *(src.request({"type": "order.submit", "order": app_order(f"busy-{k}")}) for k in range(OPEN))
    )
    assert all(isinstance(a, OrderAccepted) for a in answers)
    dev = hub.hub.config.device("counter-1")
    assert dev is not None
    async with ws_connect(hub.url, max_size=MIB) as conn:
        hello = {"type": "hello", "device": dev.id, "token": dev.token, "role": "counter", "resume_from": 0}
        await conn.send(json.dumps(hello))
        async with asyncio.timeout(10):
            first = json.loads(await conn.recv())
            frames = [json.dumps(first)] + [str(await conn.recv()) for _ in range(first["pages"])]
    welcome, largest = assemble(frames)
    assert largest < MIB
    assert len(welcome["snapshot"]["orders"]) == OPEN
    counter = await connect("counter-1")  # HubClient puts the pages together before it is online
    assert len([o for o in counter.book.orders.values() if o.status is OrderStatus.ACCEPTED]) == OPEN


def test_orders_leave_memory_on_schedule(config: StoreConfig) -> None:
    """Closed orders leave memory `closed_keep_s` after they closed; open ones past `open_max_age_h` are returned
    (the server logs them by number) and leave too; their keys go with them, so memory does not grow with the day."""
    core = Core(config)
    gone = core.submit("app-backend", fixed_app_order("closes"))
    core.act("app-backend", "order.cancel", order_id=gone["order_id"], reason="customer left")
    forgotten = core.submit("shelf-1", shelf_order("forgotten"))
    core.clock.advance(config.limits.closed_keep_s - 5)
    fresh = core.submit("shelf-1", shelf_order("fresh"))
    assert core.hub.evict() == (0, []), "nothing is due yet"
    core.clock.advance(10)
    closed, stale = core.hub.evict()
    assert closed == 1 and stale == []
    assert gone["order_id"] not in core.hub.orders and ("app-backend", "closes") not in core.hub.keys
    core.clock.advance(config.limits.open_max_age_h * 3600)
    closed, stale = core.hub.evict()
    assert closed == 0 and {o.id for o in stale} == {forgotten["order_id"], fresh["order_id"]}
    assert core.hub.orders == {} and core.hub.keys == {}


async def test_a_forgotten_open_order_is_logged_and_leaves_memory_but_not_the_database(
    config: StoreConfig, db_path: Path, devices: Devices, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(datetime.now(UTC))
    server = HubServer(OrderHub(config, clock=clock), Store(db_path, store_id=config.store.id), port=0)
    await server.start()
    try:
        src = await devices.connect(server.url, "shelf-1")
        r = await src.request({"type": "order.submit", "order": shelf_order("left-behind")}, expect=OrderAccepted)
        clock.advance(config.limits.open_max_age_h * 3600 + 60)
        with caplog.at_level(logging.WARNING, logger="kds.server"):
            await server._evict(time.monotonic())
        assert any(r.number in m and "open_max_age_h" in m for m in caplog.messages), caplog.messages
        assert r.order_id not in server.hub.orders
        assert db_rows(db_path, "SELECT status FROM orders WHERE id = ?", r.order_id) == [("accepted",)]
        # The manager finds it with `kds db stale` (this query).
        age = timedelta(hours=config.limits.open_max_age_h)
        assert [o["id"] for o in server.store.stale_orders(now=clock(), older_than=age)] == [r.order_id]
        counter = await devices.connect(server.url, "counter-1")
        assert r.order_id not in counter.book.orders, "a fresh welcome no longer carries it"
    finally:
        await devices.close()
        await server.stop()
