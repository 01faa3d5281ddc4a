"""Tests that fail when a promise of the hub breaks (issue 13): each one was written against a fault put in by hand
(named in its docstring) that the rest of the suite let pass, or let pass only by chance.

- A key whose order has left the hub's memory (closed, then evicted) is answered by the database: the original
  order for the same order, `conflict` for another one; nothing new is stored.
- An order the database refused as a resubmission (`OrderHub.withdraw`) is a phantom: no screen ever gets its
  `order.created`, not live, not in a resume's replay.
- A hub that takes the lead of a shared store first takes in what the old leader committed, and only then decides.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect as ws_connect

from kds.client import HubClient
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import Ack, Error, ErrorCode, Event, OrderAccepted
from kds.server import HubServer
from kds.store import Store
from tests.conftest import Devices, app_order, fixed_app_order
from tests.support import db_rows, until


class Clock:
    """The hub's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _hub(config: StoreConfig, db: Path | str, clock: Clock) -> HubServer:
    server = HubServer(OrderHub(config, clock=clock), Store(db, store_id=config.store.id), port=0)
    await server.start()
    return server


async def _evicted(server: HubServer, clock: Clock, app: HubClient, key: str) -> OrderAccepted:
    """Submit an order with `key`, cancel it, and let it leave the hub's memory: only the database knows it then."""
    first = await app.request({"type": "order.submit", "order": fixed_app_order(key)}, expect=OrderAccepted)
    assert not first.duplicate, first
    cancel = await app.request(
        {"type": "order.cancel", "order_id": first.order_id, "reason": "customer left"}, expect=Ack
    )
    assert cancel.seq is not None, cancel
    clock.now += timedelta(seconds=server.hub.limits.closed_keep_s + 60)
    closed, stale = server.hub.evict()
    assert (closed, stale) == (1, []), "the cancelled order leaves memory"
    # The precondition of what follows: the hub's own key index cannot answer for this key any more.
    assert ("app-backend", key) not in server.hub.keys
    assert first.order_id not in server.hub.orders
    return first


async def test_a_key_whose_order_left_memory_is_answered_by_the_database(
    config: StoreConfig, db_path: Path | str, devices: Devices
) -> None:
    """Fault: the database-level idempotency check disabled (`Store._commit_on` takes `known = {}` instead of
    `self._known_keys(...)`, or `HubServer._withdraw` never calls `OrderHub.withdraw`): the resubmission of an
    evicted order's key is then refused `unavailable` (the unique index) or stored as a second order."""
    clock = Clock(datetime(2026, 11, 21, 4, 0, tzinfo=UTC))
    server = await _hub(config, db_path, clock)
    try:
        app = await devices.connect(server.url, "app-backend")
        first = await _evicted(server, clock, app, "evicted-1")

        again = await app.request({"type": "order.submit", "order": fixed_app_order("evicted-1")})
        assert isinstance(again, OrderAccepted), f"a resubmission of an evicted key must be accepted: {again}"
        assert again.duplicate is True, f"the database knows this key: the answer is a duplicate: {again}"
        assert (again.order_id, again.number) == (first.order_id, first.number)

        other = fixed_app_order("evicted-1", items=[{"sku": "WOK-MAPO"}])
        conflict = await app.request({"type": "order.submit", "order": other})
        assert isinstance(conflict, Error) and conflict.code is ErrorCode.CONFLICT, (
            f"another order under a key only the database holds is a conflict: {conflict}"
        )
        assert conflict.order_id == first.order_id

        rows = db_rows(db_path, "SELECT id FROM orders WHERE store_id = ? AND key = ?", config.store.id, "evicted-1")
        assert rows == [(first.order_id,)], "nothing new is stored under the key"
        assert ("app-backend", "evicted-1") in server.hub.keys, "the database's answer is remembered"
    finally:
        await server.stop()


async def _replay(url: str, config: StoreConfig, device_id: str, resume_from: int) -> tuple[dict[str, Any], list]:  # type: ignore[type-arg]
    """Connect a device resuming from `resume_from`: its welcome and the frames replayed."""
    dev = config.device(device_id)
    assert dev is not None and dev.secret is not None
    hello: dict[str, Any] = {
        "type": "hello",
        "device": dev.id,
        "token": dev.secret,
        "role": dev.role.value,
        "resume_from": resume_from,
    }
    if dev.station:
        hello["station"] = dev.station
    async with ws_connect(url, max_size=None, open_timeout=5, close_timeout=2) as conn:
        await conn.send(json.dumps(hello))
        async with asyncio.timeout(5):
            welcome = json.loads(await conn.recv())
            assert welcome["type"] == "welcome" and welcome["resumed"] is True, welcome
            frames = [json.loads(await conn.recv()) for _ in range(welcome["replay"])]
    return welcome, frames


async def test_a_withdrawn_order_reaches_no_screen_live_or_in_a_replay(
    config: StoreConfig, db_path: Path | str, devices: Devices
) -> None:
    """Fault: `OrderHub.withdraw` no longer marks the withdrawn decision's events dropped (`rec.dropped = True`
    removed): the phantom `order.created` stays in the replay log, and a kitchen screen resuming gets an order
    the database never stored."""
    clock = Clock(datetime(2026, 11, 21, 4, 0, tzinfo=UTC))
    server = await _hub(config, db_path, clock)
    try:
        app = await devices.connect(server.url, "app-backend")
        first = await _evicted(server, clock, app, "evicted-2")
        monitor = await devices.connect(server.url, "monitor-1")
        live: list[Event] = []
        monitor.listeners.append(lambda f: live.append(f) if isinstance(f, Event) else None)
        before = server.hub.seq

        again = await app.request({"type": "order.submit", "order": fixed_app_order("evicted-2")}, expect=OrderAccepted)
        assert again.duplicate is True and again.order_id == first.order_id, again
        fresh = await app.request({"type": "order.submit", "order": fixed_app_order("fresh-2")}, expect=OrderAccepted)
        assert not fresh.duplicate, fresh
        await until(lambda: fresh.order_id in monitor.book.orders, 5, "the fresh order on the monitor")

        stored = {r[0] for r in db_rows(db_path, "SELECT id FROM orders WHERE store_id = ?", config.store.id)}
        assert stored == {first.order_id, fresh.order_id}
        assert [(f.kind, f.order.id) for f in live] == [("order.created", fresh.order_id)], "live: only the fresh order"
        for device in ("wok-1", "bar-1", "monitor-1", "counter-1"):
            _welcome, frames = await _replay(server.url, config, device, before)
            replayed = [(f["kind"], f["order"]["id"]) for f in frames]
            assert replayed == [("order.created", fresh.order_id)], (
                f"{device} resuming from seq {before} must get the fresh order only, never the withdrawn one "
                f"(the database has {sorted(stored)}): got {replayed}"
            )
    finally:
        await server.stop()


class LaggingStore(Store):
    """A follower's store whose reads of the events log see nothing new until it is granted the lead: the old
    leader's last commits landed just after this hub's last follow round (a race made to happen every time)."""

    lagging = False

    def events_after(self, seq: int, limit: int = 5000) -> list[tuple[int, str]]:
        if self.lagging:
            return []
        return super().events_after(seq, limit)

    def try_lead(self) -> bool:
        got = super().try_lead()
        if got:
            self.lagging = False
        return got


async def test_a_new_leader_takes_in_the_old_leaders_last_commits_before_it_decides(
    config: StoreConfig, pg_db: str, devices: Devices
) -> None:
    """Fault: `HubServer._do(Do.TAKE_OVER)` skips its `await self._follow()`: the new leader decides on a state
    without the old leader's last orders (its screens never get them, their tickets are `not_found`, and its
    next event takes a seq already stored)."""
    a = HubServer(OrderHub(config), Store(pg_db, store_id=config.store.id), port=0)
    await a.start()
    lagging = LaggingStore(pg_db, store_id=config.store.id)
    b = HubServer(OrderHub(config), lagging, port=0)
    stopped_a = False
    try:
        await b.start()
        assert a.leading and not b.leading
        wok_b = await devices.connect(b.url, "wok-1")
        lagging.lagging = True
        app = await devices.connect(a.url, "app-backend")
        last = await app.request({"type": "order.submit", "order": app_order("the-last-one")}, expect=OrderAccepted)
        oid = last.order_id
        assert oid not in b.hub.orders, "the follower has not taken in the leader's last order (the race)"

        await a.stop()  # the old leader goes; its lock goes with its connections
        stopped_a = True
        await until(lambda: b.leading, 10, "hub B takes the lead")
        assert oid in b.hub.orders, "a hub leads only after taking in what the old leader committed"
        await until(lambda: oid in wok_b.book.orders, 5, "the old leader's last order on B's wok screen")
        ack = await wok_b.request({"type": "ticket.start", "ticket_id": f"{oid}/wok"})
        assert isinstance(ack, Ack) and ack.seq is not None, f"the new leader decides on the newest state: {ack}"
        kiosk = await devices.connect(b.url, "kiosk-1")
        order = {
            "key": "after-takeover",
            "channel": "kiosk",
            "fulfilment": {"type": "pickup"},
            "items": [{"sku": "WOK-MAPO"}],
        }
        after = await kiosk.request({"type": "order.submit", "order": order})
        assert isinstance(after, OrderAccepted), f"the new leader's first order is stored: {after}"
        seqs = [r[0] for r in db_rows(pg_db, "SELECT seq FROM events WHERE store_id = ? ORDER BY seq", config.store.id)]
        assert seqs == list(range(1, len(seqs) + 1)), "one log, no seq twice or skipped"
    finally:
        await b.stop()
        if not stopped_a:
            await a.stop()
