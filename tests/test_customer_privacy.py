"""Each role gets only the customer data it needs (docs/protocol.md, "What each role sees of the customer").

A source submits a delivery with the customer's full name, phone and address. Kitchen screens and the monitor get
it in live events, welcome snapshots (paged), replays on resume (also from a restarted hub, and from a following
hub) and closed-order lists: a first name, never the phone, the address or the surname. The counter gets all of it;
the source gets none back. Real hubs on 127.0.0.1, raw websocket connections, and the assertions are on the raw text
of every frame received.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import HubMessage
from kds.server import HubServer
from kds.store import Store
from tests.support import until
from tests.test_reliability import device_hello

FIRST, SURNAME = "Mei", "Zhangsun"
PHONE = "13812345521"
STREET = "Biyun Rd 199"
ADDRESS = f"{STREET}, Lane 12, Bldg 2-1203"
DUE = "2026-11-25T12:40:00+08:00"
DUE_UTC = "2026-11-25T04:40:00+00:00"
"""`DUE` as the hub keeps and echoes it: in UTC (docs/protocol.md, Times)."""
PRIVATE_ORDER = {
    "key": "private-1",
    "channel": "app",
    "fulfilment": {"type": "delivery", "due": DUE, "address": ADDRESS},
    "customer": {"name": f"{FIRST} {SURNAME}", "phone": PHONE},
    "items": [{"sku": "WOK-KUNGPAO", "qty": 2}, {"sku": "BAR-MILKTEA"}],
}
OTHER_ORDER = {
    "key": "plain-1",
    "channel": "app",
    "fulfilment": {"type": "pickup"},
    "items": [{"sku": "WOK-MAPO"}, {"sku": "BAR-LEMONTEA"}],
}
HUB_FRAME = TypeAdapter(HubMessage)
SECRETS = (PHONE, STREET, SURNAME)
KITCHEN_SIDE = ("wok-1", "bar-1", "monitor-1")


class Raw:
    """A device on a plain websocket: every text frame it receives, as received."""

    def __init__(self, conn: ClientConnection, device: str) -> None:
        self.conn = conn
        self.device = device
        self.frames: list[str] = []
        self._refs = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, config: StoreConfig, url: str, device: str, resume_from: int = 0) -> Raw:
        conn = await connect(url, max_size=None)
        await conn.send(json.dumps({**device_hello(config, device), "resume_from": resume_from}))
        raw = cls(conn, device)
        await raw.welcomed()
        return raw

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for f in self.conn:
                self.frames.append(str(f))

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(f) for f in self.frames]

    async def welcomed(self) -> dict[str, Any]:
        """The welcome, once it and all its replay frames and snapshot pages are in."""

        def whole() -> bool:
            if not self.frames:
                return False
            w = json.loads(self.frames[0])
            assert w["type"] == "welcome", w
            total: int = 1 + w["replay"] + w["pages"]
            return len(self.frames) >= total

        await until(whole, what=f"{self.device}'s welcome")
        return dict(json.loads(self.frames[0]))

    async def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        ref = f"{self.device}-{next(self._refs)}"
        await self.conn.send(json.dumps({**msg, "ref": ref}, ensure_ascii=False))
        await until(lambda: any(f.get("ref") == ref for f in self.parsed()), what=f"the answer to {ref}")
        answer = next(f for f in self.parsed() if f.get("ref") == ref)
        assert answer["type"] != "error", answer
        return answer

    def seq(self) -> int:
        """The highest event seq received."""
        return max((f["seq"] for f in self.parsed() if f["type"] == "event"), default=0)

    async def close(self) -> None:
        await self.conn.close()
        await self._reader


@pytest.fixture
async def raws() -> AsyncIterator[list[Raw]]:
    opened: list[Raw] = []
    try:
        yield opened
    finally:
        for r in opened:
            await r.close()


async def start_hub(config: StoreConfig, db: Path | str) -> HubServer:
    server = HubServer(OrderHub(config), Store(db, store_id=config.store.id), host="127.0.0.1", port=0)
    await server.start()
    return server


def orders_in(frames: list[str], order_id: str) -> list[dict[str, Any]]:
    """Every copy of the order carried by these frames (events, snapshots and their pages, closed lists)."""
    found = []
    for text in frames:
        f = json.loads(text)
        docs = [f["order"]] if f["type"] == "event" else list(f.get("orders") or [])
        docs += list((f.get("snapshot") or {}).get("orders") or [])
        found += [d for d in docs if d["id"] == order_id]
    return found


def assert_kitchen_view(frames: list[str], order_id: str, who: str, *, least: int) -> None:
    """No frame holds the phone, the address or the surname; each copy of the order has the first name and `due`."""
    for text in frames:
        HUB_FRAME.validate_json(text)
        for secret in SECRETS:
            assert secret not in text, f"{who} received {secret!r}: {text[:300]}"
    copies = orders_in(frames, order_id)
    assert len(copies) >= least, f"{who} got {len(copies)} copies of the order, expected at least {least}"
    for doc in copies:
        assert doc["customer"] == {"name": FIRST, "phone": None}, doc["customer"]
        assert doc["fulfilment"] == {"type": "delivery", "due": DUE_UTC}, doc["fulfilment"]


def assert_counter_view(frames: list[str], order_id: str, *, least: int) -> None:
    """Every copy of the order the counter got is as the source sent it."""
    copies = orders_in(frames, order_id)
    assert len(copies) >= least, f"the counter got {len(copies)} copies of the order, expected at least {least}"
    for doc in copies:
        assert doc["customer"] == {"name": f"{FIRST} {SURNAME}", "phone": PHONE}
        assert doc["fulfilment"] == {"type": "delivery", "due": DUE_UTC, "address": ADDRESS}


async def test_kitchens_and_the_monitor_never_see_the_phone_address_or_surname_the_counter_sees_all(
    config: StoreConfig, db_path: Path | str, raws: list[Raw]
) -> None:
    hub = await start_hub(config, db_path)
    try:
        url = hub.url
        live = {d: await Raw.open(config, url, d) for d in (*KITCHEN_SIDE, "counter-1", "app-backend")}
        raws.extend(live.values())
        app = live["app-backend"]
        other = (await app.request({"type": "order.submit", "order": OTHER_ORDER}))["order_id"]
        resume_point = hub.hub.seq
        oid = (await app.request({"type": "order.submit", "order": PRIVATE_ORDER}))["order_id"]
        # Its life: started and bumped at both stations, called, handed to the rider (closed).
        for station, dev in (("wok", "wok-1"), ("bar", "bar-1")):
            await live[dev].request({"type": "ticket.start", "ticket_id": f"{oid}/{station}"})
            await live[dev].request({"type": "ticket.bump", "ticket_id": f"{oid}/{station}"})
        await live["counter-1"].request({"type": "order.call", "order_id": oid})
        await live["counter-1"].request({"type": "order.handover", "order_id": oid, "to": "rider"})
        last = hub.hub.seq
        assert last == resume_point + 7
        for d in (*KITCHEN_SIDE, "counter-1"):

            def has_every_event(d: str = d) -> bool:
                return live[d].seq() == last

            await until(has_every_event, what=f"{d} has every event")
            await live[d].request({"type": "orders.closed", "limit": 10})

        # Fresh welcomes, in pages (made small: one order each), and resumes that replay the order's whole life.
        hub.hub.limits = hub.hub.limits.model_copy(update={"snapshot_page_bytes": 1000})
        fresh = {d: await Raw.open(config, url, d) for d in ("wok-2", "monitor-1", "counter-1")}
        resumed = {d: await Raw.open(config, url, d, resume_from=resume_point) for d in (*KITCHEN_SIDE, "counter-1")}
        raws.extend([*fresh.values(), *resumed.values()])
        for r in fresh.values():
            w = await r.welcomed()
            assert not w["resumed"] and w["pages"] >= 1, (r.device, w["pages"])
            assert {d["id"] for d in orders_in(r.frames, oid) + orders_in(r.frames, other)} == {oid, other}
        for r in resumed.values():
            w = await r.welcomed()
            assert w["resumed"] and w["replay"] == 7 and r.seq() == last, (r.device, w["replay"])

        for d in KITCHEN_SIDE:
            # live: 7 events and the closed list; resumed: the 7 again
            assert_kitchen_view(live[d].frames, oid, f"{d} (live)", least=7 + 1)
            assert_kitchen_view(resumed[d].frames, oid, f"{d} (resumed)", least=7)
        for d in ("wok-2", "monitor-1"):
            assert_kitchen_view(fresh[d].frames, oid, f"{d} (welcome)", least=1)
        assert_counter_view(live["counter-1"].frames, oid, least=7 + 1)
        assert_counter_view(resumed["counter-1"].frames, oid, least=7)
        assert_counter_view(fresh["counter-1"].frames, oid, least=1)
        # The source hears its order's status only: nothing of the customer comes back.
        assert any(f["type"] == "order.status" and f["order_id"] == oid for f in app.parsed())
        for text in app.frames:
            for secret in (*SECRETS, FIRST):
                assert secret not in text, f"the source received {secret!r}: {text}"
    finally:
        await hub.stop()


async def test_a_restarted_hub_replays_and_welcomes_kitchens_without_the_customer_data(
    config: StoreConfig, db_path: Path | str, raws: list[Raw]
) -> None:
    """After a restart the replay log comes from the database (the stored frames are the counter's, whole)."""
    hub = await start_hub(config, db_path)
    try:
        app = await Raw.open(config, hub.url, "app-backend")
        raws.append(app)
        await app.request({"type": "order.submit", "order": OTHER_ORDER})
        resume_point = hub.hub.seq
        oid = (await app.request({"type": "order.submit", "order": PRIVATE_ORDER}))["order_id"]
    finally:
        await hub.stop()
    hub = await start_hub(config, db_path)
    try:
        assert hub.hub.seq == resume_point + 1
        wok = await Raw.open(config, hub.url, "wok-1", resume_from=resume_point)
        monitor = await Raw.open(config, hub.url, "monitor-1", resume_from=resume_point)
        bar = await Raw.open(config, hub.url, "bar-1")
        counter = await Raw.open(config, hub.url, "counter-1", resume_from=resume_point)
        raws.extend([wok, monitor, bar, counter])
        for r in (wok, monitor, counter):
            assert (await r.welcomed())["replay"] == 1
        assert_kitchen_view(wok.frames, oid, "wok-1 (replay after restart)", least=1)
        assert_kitchen_view(monitor.frames, oid, "monitor-1 (replay after restart)", least=1)
        assert_kitchen_view(bar.frames, oid, "bar-1 (welcome after restart)", least=1)
        assert_counter_view(counter.frames, oid, least=1)
    finally:
        await hub.stop()


async def test_a_following_hub_sends_its_kitchens_the_same_cut_down_order(
    config: StoreConfig, pg_db: str, raws: list[Raw]
) -> None:
    """A follower builds its frames from the events the leader stored: the same policy holds there."""
    leader = await start_hub(config, pg_db)
    follower = await start_hub(config, pg_db)
    try:
        assert leader.leading and not follower.leading
        wok = await Raw.open(config, follower.url, "wok-2")
        monitor = await Raw.open(config, follower.url, "monitor-1")
        counter = await Raw.open(config, follower.url, "counter-1")
        app = await Raw.open(config, leader.url, "app-backend")
        raws.extend([wok, monitor, counter, app])
        oid = (await app.request({"type": "order.submit", "order": PRIVATE_ORDER}))["order_id"]
        for r in (wok, monitor, counter):

            def has_the_event(r: Raw = r) -> bool:
                return r.seq() == leader.hub.seq

            await until(has_the_event, what=f"{r.device} on the follower has the event")
        assert_kitchen_view(wok.frames, oid, "wok-2 (follower)", least=1)
        assert_kitchen_view(monitor.frames, oid, "monitor-1 (follower)", least=1)
        assert_counter_view(counter.frames, oid, least=1)
    finally:
        await follower.stop()
        await leader.stop()
