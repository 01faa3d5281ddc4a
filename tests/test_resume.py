"""A client that drops and resumes ends where a client that never dropped is; the durable action queue.

Real hubs on 127.0.0.1 over real SQLite files; the clients reconnect by themselves (HubClient's backoff).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from kds.client import ActionQueue, Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.server import HubServer
from kds.store import Store
from tests.conftest import Devices, app_order, shelf_order
from tests.support import db_rows, until

SLOW = Backoff(first=1.0, cap=1.0)
"""For the client we drop: it stays away ≥ 0.75 s, long enough for the traffic it must miss (asserted)."""


async def synced(*clients: HubClient) -> None:
    """Every frame the hub decided before now has reached these clients (a ping goes through the same pipeline)."""
    for c in clients:
        assert (await c.request({"type": "ping"}))["type"] == "pong"


async def start_hub(config: StoreConfig, db: Path, port: int = 0, replay_window: int = 20_000) -> HubServer:
    server = HubServer(
        OrderHub(config, replay_window=replay_window), Store(db, store_id=config.store.id), host="127.0.0.1", port=port
    )
    await server.start()
    return server


async def ok(client: HubClient, msg: dict[str, Any]) -> dict[str, Any]:
    r = await client.request(msg)
    assert r["type"] in ("ack", "order.accepted"), r
    return r


def mixed(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "channel": "app",
        "fulfilment": {"type": "pickup"},
        "items": [{"sku": "WOK-KUNGPAO"}, {"sku": "COLD-CUCUMBER"}, {"sku": "BAR-LEMONTEA"}],
    }


async def traffic_while_away(d: dict[str, HubClient], o1: str, o2: str) -> None:
    """Submit, start, bump (ticket and item), amend, cancel, hand over, recall: every kind of change."""
    app, shelf, wok, cold, bar, counter = (d[k] for k in ("app", "shelf", "wok", "cold", "bar", "counter"))
    o3 = (await ok(app, {"type": "order.submit", "order": app_order("away-3")}))["order_id"]
    await ok(wok, {"type": "ticket.bump", "ticket_id": f"{o1}/wok"})
    await ok(cold, {"type": "item.bump", "ticket_id": f"{o1}/cold", "item_id": "2"})
    await ok(bar, {"type": "ticket.bump", "ticket_id": f"{o1}/bar"})
    await ok(counter, {"type": "order.handover", "order_id": o1, "to": "runner"})
    await ok(app, {"type": "order.amend", "order_id": o3, "remove": ["2"], "add": [{"sku": "COLD-SALMON"}]})
    await ok(wok, {"type": "ticket.start", "ticket_id": f"{o3}/wok"})
    await ok(shelf, {"type": "order.cancel", "order_id": o2})
    await ok(app, {"type": "order.submit", "order": mixed("away-4")})
    await ok(counter, {"type": "order.recall", "order_id": o1})
    await ok(app, {"type": "order.amend", "order_id": o3, "note": "ring the bell"})


async def before_the_drop(d: dict[str, HubClient]) -> tuple[str, str]:
    o1 = (await ok(d["app"], {"type": "order.submit", "order": mixed("pre-1")}))["order_id"]
    o2 = (await ok(d["shelf"], {"type": "order.submit", "order": shelf_order("pre-2")}))["order_id"]
    await ok(d["wok"], {"type": "ticket.start", "ticket_id": f"{o2}/wok"})
    return o1, o2


async def drivers(devices: Devices, url: str) -> dict[str, HubClient]:
    return {
        "app": await devices.connect(url, "app-backend"),
        "shelf": await devices.connect(url, "shelf-1"),
        "wok": await devices.connect(url, "wok-2"),
        "cold": await devices.connect(url, "cold-1"),
        "bar": await devices.connect(url, "bar-1"),
        "counter": await devices.connect(url, "counter-1"),
    }


# ============================================================================================ resume


async def test_dropped_clients_resume_to_the_same_state(config: StoreConfig, db_path: Path, devices: Devices) -> None:
    server = await start_hub(config, db_path)
    try:
        d = await drivers(devices, server.url)
        # Pairs of the same role: the first drops, the second (also a driver) never does.
        wok_a = await devices.connect(server.url, "wok-1", backoff=SLOW)
        counter_a = await devices.connect(server.url, "counter-1", backoff=SLOW)
        app_a = await devices.connect(server.url, "app-backend", backoff=SLOW)
        pairs = [(wok_a, d["wok"]), (counter_a, d["counter"]), (app_a, d["app"])]
        o1, o2 = await before_the_drop(d)
        await synced(*(c for pair in pairs for c in pair))
        assert all(a.seq > 0 for a, _ in pairs)
        for a, _ in pairs:
            await a.drop()
        await traffic_while_away(d, o1, o2)
        assert all(a.connections == 1 for a, _ in pairs), "a dropped client came back before the traffic ended"
        for a, b in pairs:
            await until(lambda a=a: a.connections == 2 and a.state is LinkState.ONLINE, what=f"{a.device} back")
            await synced(a, b)
            assert a.welcome is not None
            assert (a.welcome["resumed"], a.welcome["snapshot"]) == (True, None), a.device
            assert a.welcome["replay"] > 0
            assert a.book.orders == b.book.orders, a.device
            assert a.book.statuses == b.book.statuses, a.device
        assert wok_a.welcome is not None and counter_a.welcome is not None and app_a.welcome is not None
        assert counter_a.welcome["replay"] == 11  # every change while away
        assert app_a.welcome["replay"] == 7  # only the status changes of its own orders
        assert len(counter_a.book.orders) == 4 and len(wok_a.book.orders) == 4
        assert {s["number"]: s["status"] for s in app_a.book.statuses.values()} == {
            "A001": "ready",
            "A003": "preparing",
            "A004": "accepted",
        }
        assert counter_a.book.orders[o2]["status"] == "cancelled"
    finally:
        await devices.close()
        await server.stop()


async def test_resume_older_than_the_replay_window_gets_a_snapshot(
    config: StoreConfig, db_path: Path, devices: Devices
) -> None:
    server = await start_hub(config, db_path, replay_window=3)
    try:
        d = await drivers(devices, server.url)
        wok_a = await devices.connect(server.url, "wok-1", backoff=SLOW)
        counter_a = await devices.connect(server.url, "counter-1", backoff=SLOW)
        app_a = await devices.connect(server.url, "app-backend", backoff=SLOW)
        pairs = [(wok_a, d["wok"]), (counter_a, d["counter"]), (app_a, d["app"])]
        o1, o2 = await before_the_drop(d)
        await synced(*(c for pair in pairs for c in pair))
        for a, _ in pairs:
            await a.drop()
        await traffic_while_away(d, o1, o2)
        assert all(a.connections == 1 for a, _ in pairs), "a dropped client came back before the traffic ended"
        for a, b in pairs:
            await until(lambda a=a: a.connections == 2 and a.state is LinkState.ONLINE, what=f"{a.device} back")
            await synced(a, b)
            assert a.welcome is not None
            assert (a.welcome["resumed"], a.welcome["replay"]) == (False, 0), a.device
            assert a.welcome["snapshot"] is not None
            assert a.book.orders == b.book.orders, a.device
        # For a source, the snapshot restates each order's status.
        assert {k: s["status"] for k, s in app_a.book.statuses.items()} == {
            k: s["status"] for k, s in d["app"].book.statuses.items()
        }
    finally:
        await devices.close()
        await server.stop()


async def test_a_source_snapshot_equals_the_statuses_it_would_have_followed(
    config: StoreConfig, db_path: Path, devices: Devices
) -> None:
    server = await start_hub(config, db_path)
    try:
        d = await drivers(devices, server.url)
        o1, o2 = await before_the_drop(d)
        await traffic_while_away(d, o1, o2)
        late = await devices.connect(server.url, "app-backend")
        await synced(d["app"], late)
        assert late.book.statuses == d["app"].book.statuses
    finally:
        await devices.close()
        await server.stop()


# ============================================================================================ the durable queue


def events_in(db: Path | str) -> list[tuple[int, str, str]]:
    return [(int(s), k, p) for s, k, p in db_rows(db, "select seq, kind, payload from events order by seq")]


async def test_bumps_queued_while_the_hub_is_down_are_applied_once(
    config: StoreConfig, db_path: Path, tmp_path: Path, devices: Devices
) -> None:
    queue_file = tmp_path / "wok-1.queue.jsonl"
    server = await start_hub(config, db_path)
    port = server.port
    second: HubServer | None = None
    try:
        app = await devices.connect(server.url, "app-backend")
        oids = [(await ok(app, {"type": "order.submit", "order": app_order(f"q-{n}")}))["order_id"] for n in range(3)]
        wok = await devices.connect(server.url, "wok-1", queue_path=queue_file)
        await until(lambda: set(oids) <= set(wok.book.orders), what="orders on the wok screen")
        before = events_in(db_path)
        assert [s for s, _, _ in before] == [1, 2, 3]

        await server.stop()  # the hub goes down; its database stays
        await until(lambda: wok.state is not LinkState.ONLINE, what="the wok screen noticing")
        futures = [wok.enqueue({"type": "ticket.bump", "ticket_id": f"{oid}/wok"}) for oid in oids]
        # The bumps are on disk, in order, before anything is sent.
        on_disk = ActionQueue(queue_file)
        assert [m["ticket_id"] for m in on_disk.items] == [f"{oid}/wok" for oid in oids]
        assert len({m["ref"] for m in on_disk.items}) == 3
        assert len(wok.queue) == 3 and not any(f.done() for f in futures)
        assert events_in(db_path) == before

        second = await start_hub(config, db_path, port=port)  # same database, same port
        assert second.hub.seq == 3
        answers = await asyncio.wait_for(asyncio.gather(*futures), timeout=10)
        assert [(a["type"], a["seq"]) for a in answers] == [("ack", 4), ("ack", 5), ("ack", 6)]
        assert len(wok.queue) == 0 and queue_file.read_text(encoding="utf-8") == ""
        after = events_in(db_path)
        assert [(s, k) for s, k, _ in after[3:]] == [(4, "ticket.bumped"), (5, "ticket.bumped"), (6, "ticket.bumped")]
        assert [json.loads(p)["ticket_id"] for _, _, p in after[3:]] == [f"{oid}/wok" for oid in oids]
        await synced(wok)
        assert wok.welcome is not None and wok.welcome["resumed"] is True  # it resumed across the restart
        assert all(wok.book.orders[oid]["tickets"][0]["state"] == "done" for oid in oids)
        assert wok.seq == 6

        # The ack of a bump was lost (the screen died after sending it): the bump is still in the queue
        # and is sent again on the next connection. It changes nothing.
        lost = dict(on_disk.items[0])
        answers_seen: list[dict[str, Any]] = []
        wok.listeners.append(lambda f: answers_seen.append(f) if f.get("ref") == lost["ref"] else None)
        wok.queue.push(lost)
        assert ActionQueue(queue_file).items == [lost]
        await wok.drop()
        await until(lambda: len(wok.queue) == 0 and wok.connections == 3, what="the resent bump answered")
        assert [(a["type"], a["seq"]) for a in answers_seen] == [("ack", None)]
        assert ActionQueue(queue_file).items == []
        assert events_in(db_path) == after and second.hub.seq == 6
    finally:
        await devices.close()
        if second is not None:
            await second.stop()
        elif not server.stopped.is_set():
            await server.stop()
