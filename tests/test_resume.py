"""A client that drops and resumes ends where it must be; the durable action queue.

Real hubs on 127.0.0.1 over real SQLite files; the clients reconnect by themselves (HubClient's backoff). What each
dropped client must hold afterwards is written out by hand (`EXPECTED`, from the orders below and the routing rules of
config/store.toml), not taken from another client or from `kds.routing`, which would share the hub's mistakes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from kds.client import ActionQueue, Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import Ack, OrderAccepted, Pong, TicketState
from kds.server import HubServer
from kds.store import Store
from kds.wire import HubFrame
from tests.conftest import Devices, app_order, shelf_order
from tests.support import db_rows, until

SLOW = Backoff(first=1.0, cap=1.0)
"""For the client we drop: it stays away ≥ 0.75 s, long enough for the traffic it must miss (asserted)."""


async def synced(*clients: HubClient) -> None:
    """Every frame the hub decided before now has reached these clients (a ping goes through the same pipeline)."""
    for c in clients:
        await c.request({"type": "ping"}, expect=Pong)


async def start_hub(config: StoreConfig, db: Path, port: int = 0, replay_window: int = 20_000) -> HubServer:
    server = HubServer(
        OrderHub(config, replay_window=replay_window), Store(db, store_id=config.store.id), host="127.0.0.1", port=port
    )
    await server.start()
    return server


async def ok(client: HubClient, msg: dict[str, Any]) -> Ack | OrderAccepted:
    r = await client.request(msg)
    assert isinstance(r, (Ack, OrderAccepted)), r
    return r


async def submitted(client: HubClient, order: dict[str, Any]) -> str:
    """Submit an order; its id (it must be accepted)."""
    return (await client.request({"type": "order.submit", "order": order}, expect=OrderAccepted)).order_id


def mixed(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "channel": "app",
        "fulfilment": {"type": "pickup"},
        "items": [{"sku": "WOK-KUNGPAO"}, {"sku": "COLD-CUCUMBER"}, {"sku": "BAR-LEMONTEA"}],
    }


LI_WEI = {"name": "Li Wei", "phone": "+86 138 0000 0000"}
ADDRESS = "碧云路199弄12号601"
AWAY_3 = {
    "customer": LI_WEI,
    "fulfilment": {"type": "delivery", "due": "2026-11-25T12:30:00+08:00", "address": ADDRESS},
}
"""The delivery submitted while the clients are away carries a customer and an address (what each role may see)."""


async def traffic_while_away(d: dict[str, HubClient], o1: str, o2: str) -> None:
    """Submit, start, bump (ticket and item), amend, cancel, hand over, recall: every kind of change."""
    app, shelf, wok, cold, bar, counter = (d[k] for k in ("app", "shelf", "wok", "cold", "bar", "counter"))
    o3 = await submitted(app, {**app_order("away-3"), **AWAY_3})
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
    o1 = await submitted(d["app"], mixed("pre-1"))
    o2 = await submitted(d["shelf"], shelf_order("pre-2"))
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

# What the orders of `before_the_drop` and `traffic_while_away` must be, by hand. Routing (config/store.toml):
# WOK-KUNGPAO is a hot dish (category station wok), COLD-CUCUMBER and COLD-SALMON are cold dishes (cold),
# BAR-LEMONTEA and BAR-MILKTEA drinks (bar); LOB-AUS is live seafood, routed by its method: ginger_scallion → wok,
# sashimi → cold. Ticket: (state, its items); item: (sku, removed).
EXPECTED: dict[str, dict[str, Any]] = {
    "A001": {  # pre-1: bumped at every station, handed over, recalled: ready again
        "status": "ready",
        "note": None,
        "tickets": {"wok": ("done", ["1"]), "cold": ("done", ["2"]), "bar": ("done", ["3"])},
        "items": {"1": ("WOK-KUNGPAO", False), "2": ("COLD-CUCUMBER", False), "3": ("BAR-LEMONTEA", False)},
        "customer": None,
        "fulfilment": {"type": "pickup"},
    },
    "S002": {  # pre-2: started at wok, then cancelled by the shelf
        "status": "cancelled",
        "note": None,
        "tickets": {"wok": ("cancelled", ["1"]), "cold": ("cancelled", ["2"])},
        "items": {"1": ("LOB-AUS", False), "2": ("LOB-AUS", False)},
        "customer": None,
        "fulfilment": {"type": "dine_in", "table": "12"},
    },
    "A003": {  # away-3: the milk tea removed (its bar ticket cancelled), a salmon added (a new cold ticket), started
        "status": "preparing",
        "note": "ring the bell",
        "tickets": {"wok": ("started", ["1"]), "bar": ("cancelled", ["2"]), "cold": ("new", ["3"])},
        "items": {"1": ("WOK-KUNGPAO", False), "2": ("BAR-MILKTEA", True), "3": ("COLD-SALMON", False)},
        "customer": LI_WEI,
        "fulfilment": {"type": "delivery", "due": "2026-11-25T04:30:00+00:00", "address": ADDRESS},
    },
    "A004": {  # away-4: untouched
        "status": "accepted",
        "note": None,
        "tickets": {"wok": ("new", ["1"]), "cold": ("new", ["2"]), "bar": ("new", ["3"])},
        "items": {"1": ("WOK-KUNGPAO", False), "2": ("COLD-CUCUMBER", False), "3": ("BAR-LEMONTEA", False)},
        "customer": None,
        "fulfilment": {"type": "pickup"},
    },
}
APP_STATUSES = {"A001": ("ready", {"wok", "cold", "bar"}), "A003": ("preparing", set()), "A004": ("accepted", set())}
"""What app-backend, a source, must follow: the statuses of its own orders (S002 is the shelf's), nothing more."""


def expected_orders(role: str, station: str | None = None) -> dict[str, dict[str, Any]]:
    """EXPECTED as a device of this role (and station) must hold it: a kitchen screen the orders with a ticket at
    its station (the whole order, every station's tickets); the counter and monitors every order; the customer as
    sent for the counter only, kitchens and monitors a first name and no phone or address (docs/protocol.md)."""
    out = {}
    for number, o in EXPECTED.items():
        if role == "kitchen" and station not in o["tickets"]:
            continue
        o = dict(o)
        if role in ("kitchen", "monitor"):
            o["customer"] = {"name": "Li", "phone": None} if o["customer"] else None
            o["fulfilment"] = {k: v for k, v in o["fulfilment"].items() if k != "address"}
        out[number] = o
    return out


def held(client: HubClient) -> dict[str, dict[str, Any]]:
    """The client's book in EXPECTED's terms."""
    return {
        o.number: {
            "status": o.status,
            "note": o.note,
            "tickets": {t.station: (t.state, t.items) for t in o.tickets},
            "items": {i.id: (i.sku, i.removed) for i in o.items},
            "customer": o.customer.model_dump(mode="json", exclude_unset=True) if o.customer else None,
            "fulfilment": o.fulfilment.model_dump(mode="json", exclude_unset=True),
        }
        for o in client.book.orders.values()
    }


def statuses(client: HubClient) -> dict[str, tuple[str, set[str]]]:
    """A source's followed statuses: number → (status, stations ready)."""
    return {s.number: (s.status, set(s.ready)) for s in client.book.statuses.values()}


def check_holds_what_it_must(client: HubClient, role: str, station: str | None = None) -> None:
    """The client holds what a device of its role must, and nothing else."""
    if role == "source":
        assert client.book.orders == {}, client.device
        assert statuses(client) == APP_STATUSES, client.device
        return
    assert held(client) == expected_orders(role, station), client.device
    assert client.book.statuses == {}, client.device


async def dropped(devices: Devices, url: str) -> dict[str, HubClient]:
    """One client of each role to drop: two kitchen screens (a second wok screen, a second connection of bar-1), the
    counter, the app backend (a source) and the manager's monitor."""
    return {
        "wok": await devices.connect(url, "wok-1", backoff=SLOW),
        "bar": await devices.connect(url, "bar-1", backoff=SLOW),
        "counter": await devices.connect(url, "counter-1", backoff=SLOW),
        "app": await devices.connect(url, "app-backend", backoff=SLOW),
        "monitor": await devices.connect(url, "monitor-1", backoff=SLOW),
    }


ROLES = {"wok": ("kitchen", "wok"), "bar": ("kitchen", "bar"), "counter": ("counter", None), "app": ("source", None)}
ROLES["monitor"] = ("monitor", None)


async def drop_and_come_back(devices: Devices, url: str) -> tuple[dict[str, HubClient], dict[str, HubClient]]:
    """Drivers and clients to drop; the orders before the drop, the drop, the traffic while away, the return."""
    d = await drivers(devices, url)
    away = await dropped(devices, url)
    o1, o2 = await before_the_drop(d)
    await synced(*away.values(), *d.values())
    assert all(a.seq > 0 for a in away.values())
    for a in away.values():
        await a.drop()
    await traffic_while_away(d, o1, o2)
    assert all(a.connections == 1 for a in away.values()), "a dropped client came back before the traffic ended"
    for a in away.values():

        def back(a: HubClient = a) -> bool:
            return a.connections == 2 and a.state is LinkState.ONLINE

        await until(back, what=f"{a.device} back")
    await synced(*away.values(), *d.values())
    return d, away


async def test_dropped_clients_resume_to_the_same_state(config: StoreConfig, db_path: Path, devices: Devices) -> None:
    server = await start_hub(config, db_path)
    try:
        d, away = await drop_and_come_back(devices, server.url)
        for name, a in away.items():
            assert a.welcome is not None
            assert (a.welcome.resumed, a.welcome.snapshot) == (True, None), a.device
            check_holds_what_it_must(a, *ROLES[name])
        # Every change while away reaches the counter and the monitor; the wok all but none (every order has a wok
        # ticket); the bar all but the shelf order's cancel (no bar ticket); the source only the statuses of its own
        # orders: A003 accepted, preparing; A001 ready, handed over, ready; A004 accepted; A003 amended (7), and the
        # two that only move A003's ready-time estimate by a minute or more (at both amendments: its lines and the
        # kitchen's queues changed).
        assert {n: a.welcome.replay for n, a in away.items() if a.welcome} == {
            "wok": 11,
            "bar": 10,
            "counter": 11,
            "monitor": 11,
            "app": 9,
        }
        # And the same documents as the clients that never dropped.
        for name in ("wok", "counter", "app"):
            assert away[name].book.orders == d[name].book.orders, name
            assert away[name].book.statuses == d[name].book.statuses, name
    finally:
        await devices.close()
        await server.stop()


async def test_resume_older_than_the_replay_window_gets_a_snapshot(
    config: StoreConfig, db_path: Path, devices: Devices
) -> None:
    server = await start_hub(config, db_path, replay_window=3)
    try:
        d, away = await drop_and_come_back(devices, server.url)
        for name, a in away.items():
            assert a.welcome is not None
            assert (a.welcome.resumed, a.welcome.replay) == (False, 0), a.device
            assert a.welcome.snapshot is not None
            # For a source, the snapshot restates each order's status.
            check_holds_what_it_must(a, *ROLES[name])
        for name in ("wok", "counter"):
            assert away[name].book.orders == d[name].book.orders, name
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
        check_holds_what_it_must(late, "source")
        check_holds_what_it_must(d["app"], "source")
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
        oids = [await submitted(app, app_order(f"q-{n}")) for n in range(3)]
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
        assert [(a.type, a.seq) for a in answers if isinstance(a, Ack)] == [("ack", 4), ("ack", 5), ("ack", 6)]
        assert len(wok.queue) == 0 and queue_file.read_text(encoding="utf-8") == ""
        after = events_in(db_path)
        assert [(s, k) for s, k, _ in after[3:]] == [(4, "ticket.bumped"), (5, "ticket.bumped"), (6, "ticket.bumped")]
        assert [json.loads(p)["ticket_id"] for _, _, p in after[3:]] == [f"{oid}/wok" for oid in oids]
        await synced(wok)
        assert wok.welcome is not None and wok.welcome.resumed is True  # it resumed across the restart
        assert all(wok.book.orders[oid].tickets[0].state is TicketState.DONE for oid in oids)
        assert wok.seq == 6

        # The ack of a bump was lost (the screen died after sending it): the bump is still in the queue
        # and is sent again on the next connection. It changes nothing.
        lost = dict(on_disk.items[0])
        answers_seen: list[HubFrame] = []
        wok.listeners.append(lambda f: answers_seen.append(f) if getattr(f, "ref", None) == lost["ref"] else None)
        wok.queue.push(lost)
        assert ActionQueue(queue_file).items == [lost]
        await wok.drop()
        await until(lambda: len(wok.queue) == 0 and wok.connections == 3, what="the resent bump answered")
        assert answers_seen == [Ack(type="ack", ref=lost["ref"], seq=None)]
        assert ActionQueue(queue_file).items == []
        assert events_in(db_path) == after and second.hub.seq == 6
    finally:
        await devices.close()
        if second is not None:
            await second.stop()
        elif not server.stopped.is_set():
            await server.stop()
