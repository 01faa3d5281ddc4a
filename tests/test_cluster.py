"""Several hubs on one PostgreSQL database serve one store: one leads, the others follow through the database.

An order accepted through any hub reaches the screens of every hub; numbers stay unique and `seq` strictly
increasing; when the leading hub dies, another takes the lead and the terminals that were on the dead one fail over
(their `--hub` list) and resume with nothing lost or doubled.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import (
    Ack,
    ClosedOrders,
    Error,
    ErrorCode,
    Event,
    OrderAccepted,
    Pong,
    PrinterState,
    PrinterStatus,
    StatusChanged,
    TicketState,
)
from kds.server import HubServer
from kds.store import NotLeading, Store
from kds.wire import HubFrame
from tests.conftest import Devices, app_order, shelf_order
from tests.support import db_rows, free_port, status_of, until
from tests.test_durability import HubProcess


def seqs(frames: list[HubFrame]) -> list[int]:
    return [f.seq for f in frames if isinstance(f, (Event, StatusChanged))]


async def test_two_hubs_serve_one_store(config: StoreConfig, pg_db: str, devices: Devices) -> None:
    a = HubServer(OrderHub(config), Store(pg_db, store_id=config.store.id), port=0)
    await a.start()
    b = HubServer(OrderHub(config), Store(pg_db, store_id=config.store.id), port=0)
    await b.start()
    try:
        assert a.leading and not b.leading
        kiosk = await devices.connect(a.url, "kiosk-1")
        app = await devices.connect(b.url, "app-backend")
        wok_a, wok_b = await devices.connect(a.url, "wok-1"), await devices.connect(b.url, "wok-2")
        counter_b = await devices.connect(b.url, "counter-1")
        mon_a, mon_b = await devices.connect(a.url, "monitor-1"), await devices.connect(b.url, "monitor-1")
        seen_a: list[HubFrame] = []
        seen_b: list[HubFrame] = []
        mon_a.listeners.append(seen_a.append)
        mon_b.listeners.append(seen_b.append)

        kiosk_orders = [
            {"key": f"k-{n}", "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}
            for n in range(15)
        ]
        replies = await asyncio.gather(
            *(kiosk.request({"type": "order.submit", "order": o}, expect=OrderAccepted) for o in kiosk_orders),
            *(
                app.request({"type": "order.submit", "order": app_order(f"a-{n}")}, expect=OrderAccepted)
                for n in range(15)
            ),
        )
        numbers = [r.number for r in replies]
        assert len(set(int(n[1:]) for n in numbers)) == 30, "order numbers are unique across both hubs"
        ids = {r.order_id for r in replies}
        await until(lambda: ids <= set(wok_a.book.orders) and ids <= set(wok_b.book.orders), 10, "both woks")

        # A bump on the following hub is decided by the leader and reaches the other hub's screen.
        oid = replies[-1].order_id
        ack = await wok_b.request({"type": "ticket.bump", "ticket_id": f"{oid}/wok"}, expect=Ack)
        assert ack.seq is not None
        await until(
            lambda: {t.station: t.state for t in wok_a.book.orders[oid].tickets}.get("wok") is TicketState.DONE,
            10,
            "the bump on hub A's screen",
        )
        # The counter on the follower hands over; the app on the follower hears every status of its order.
        bar = await devices.connect(a.url, "bar-1")
        await bar.request({"type": "ticket.bump", "ticket_id": f"{oid}/bar"})
        await until(lambda: status_of(app, oid) == "ready", 10, "ready for the app")
        await counter_b.request({"type": "order.handover", "order_id": oid, "to": "rider"}, expect=Ack)
        await until(lambda: status_of(app, oid) == "handed_over", 10, "handed over")
        # A resubmission through the other hub is the same order.
        again = await kiosk.request({"type": "order.submit", "order": kiosk_orders[0]}, expect=OrderAccepted)
        assert again.duplicate and again.order_id == replies[0].order_id

        # Printer trouble seen by the leader's spooler reaches the screens of the other hub too.
        notices: list[PrinterStatus] = []
        wok_b.listeners.append(lambda f: notices.append(f) if isinstance(f, PrinterStatus) else None)
        a.printer_status("wok-printer", PrinterState.PAPER_OUT, "Wok station printer: out of paper")
        await until(lambda: any(n.printer == "wok-printer" and not n.ok for n in notices), 10, "paper out on B")
        a.printer_status("wok-printer", PrinterState.OK, "Wok station printer: printing again")
        await until(lambda: notices[-1].ok is True, 10, "the all-clear on B")

        await until(lambda: mon_a.seq == mon_b.seq == a.hub.seq == b.hub.seq, 10, "both hubs at the same seq")
        for frames in (seen_a, seen_b):
            s = seqs(frames)
            assert s == sorted(set(s)), "seq strictly increasing, nothing twice"
        assert seqs(seen_a) == seqs(seen_b)
        assert mon_a.book.orders == mon_b.book.orders
    finally:
        await b.stop()
        await a.stop()


async def test_when_the_leading_hub_dies_its_terminals_fail_over_and_miss_nothing(
    config: StoreConfig, pg_db: str, devices: Devices, tmp_path: Path
) -> None:
    a = HubProcess(pg_db, free_port(), tmp_path / "a.log")
    await a.start()
    b = HubProcess(pg_db, free_port(), tmp_path / "b.log")
    hubs = [a, b]
    try:
        await b.start()
        both = f"{a.url},{b.url}"
        wok = await devices.connect(both, "wok-1")  # on A, the leader, with B to fall back on
        assert wok.welcome is not None
        kiosk = await devices.connect(b.url, "shelf-1")
        frames: list[HubFrame] = []
        wok.listeners.append(frames.append)
        first = [
            await kiosk.request({"type": "order.submit", "order": shelf_order(f"s-{n}")}, expect=OrderAccepted)
            for n in range(5)
        ]
        await until(lambda: all(r.order_id in wok.book.orders for r in first), 10, "first orders on the wok")

        a.kill()  # SIGKILL: no goodbye, its database connections just vanish
        more: list[OrderAccepted] = []
        for n in range(5):
            # B takes the lead within a second or two; until then its answer waits in the relay.
            frame = {"type": "order.submit", "order": shelf_order(f"t-{n}")}
            more.append(await kiosk.request(frame, timeout=30, expect=OrderAccepted))
        await until(lambda: all(r.order_id in wok.book.orders for r in more), 20, "the wok resumed on B")
        assert wok.connections >= 2

        # A bump made now goes through B (the new leader), once.
        oid = more[0].order_id
        fut = wok.enqueue({"type": "ticket.bump", "ticket_id": f"{oid}/wok"})
        ack = await asyncio.wait_for(fut, 20)
        assert isinstance(ack, Ack) and ack.seq is not None

        fresh = await devices.connect(b.url, "wok-2")
        await until(lambda: fresh.book.orders == wok.book.orders, 10, "a fresh screen on B agrees with the wok")
        s = seqs(frames)
        assert s == sorted(set(s)), "nothing missed out of order, nothing twice"
        numbers = [r.number for r in first + more]
        assert len(set(numbers)) == 10
    finally:
        for h in hubs:
            h.kill()


def test_relayed_frames_and_answers_are_pruned_once_done_and_old(config: StoreConfig, pg_db: str) -> None:
    from datetime import timedelta

    store = Store(pg_db, store_id=config.store.id)
    try:
        old = store.relay_command("hub-x", "wok-1", '{"type":"ping"}')
        pending = store.relay_command("hub-x", "wok-1", '{"type":"ping"}')
        with pytest.raises(NotLeading):  # fencing: only the holder of the lead writes
            store.commit([], replies=[("hub-x", old, '{"type":"pong","seq":0}')], done=[old])
        assert store.try_lead()
        store.commit([], replies=[("hub-x", old, '{"type":"pong","seq":0}')], done=[old])
        store.prune_relay(older_than=timedelta(0))
        assert [c[0] for c in store.pending_commands()] == [pending], "an unanswered frame is kept"
        assert store.replies_for("hub-x", 0) == []
    finally:
        store.close()


@pytest.fixture
async def two_hubs(config: StoreConfig, pg_db: str) -> AsyncIterator[tuple[HubServer, HubServer]]:
    """Two hubs on one fresh PostgreSQL store: the first leads, the second follows (stopped at the end)."""
    a = HubServer(OrderHub(config), Store(pg_db, store_id=config.store.id), port=0)
    await a.start()
    b = HubServer(OrderHub(config), Store(pg_db, store_id=config.store.id), port=0)
    await b.start()
    try:
        yield a, b
    finally:
        await b.stop()
        await a.stop()


async def test_a_following_hub_answers_pings_and_bad_frames_itself(
    two_hubs: tuple[HubServer, HubServer], pg_db: str, devices: Devices
) -> None:
    """Only frames that need the leader's decision go through the database; a ping, a bad frame or a message the
    role may not send is answered by the hub the device is on."""
    a, b = two_hubs
    try:
        assert a.leading and not b.leading
        wok = await devices.connect(b.url, "wok-2")
        before = db_rows(pg_db, "SELECT count(*) FROM hub_commands")[0][0]
        await wok.request({"type": "ping", "ref": "p-1"}, expect=Pong)
        bad = await wok.request({"type": "ticket.bump", "ticket_id": 7}, expect=Error)
        assert bad.code is ErrorCode.INVALID_MESSAGE
        refused = await wok.request({"type": "order.cancel", "order_id": "x"}, expect=Error)
        assert refused.code is ErrorCode.FORBIDDEN
        await wok.request({"type": "orders.closed"}, expect=ClosedOrders)
        assert db_rows(pg_db, "SELECT count(*) FROM hub_commands")[0][0] == before, "answered here, not relayed"
        # A frame that needs the leader still goes to it, and the answer comes back.
        kiosk = await devices.connect(b.url, "kiosk-1")
        order = {"key": "via-b", "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}
        await kiosk.request({"type": "order.submit", "order": order}, expect=OrderAccepted)
        assert db_rows(pg_db, "SELECT count(*) FROM hub_commands")[0][0] == before + 1
    finally:
        await devices.close()


async def test_a_starting_hub_loads_one_consistent_view_of_the_store(
    config: StoreConfig, pg_db: str, devices: Devices
) -> None:
    """An order the leader commits while another hub is loading is either in what it loaded and counted in its
    `seq`, or in neither (then it follows the event): never counted in `seq` but missing from the orders."""
    a = HubServer(OrderHub(config), Store(pg_db, store_id=config.store.id), port=0)
    await a.start()
    loader = Store(pg_db, store_id=config.store.id)
    paused, go = threading.Event(), threading.Event()

    def after_first_read(conn: Any, clause: Any, *args: Any) -> None:
        if not paused.is_set() and "FROM orders" in str(clause):
            paused.set()
            go.wait(10)  # the leader commits an order now, between the reads of the load

    sa.event.listen(loader.engine, "after_execute", after_first_read)
    try:
        kiosk = await devices.connect(a.url, "kiosk-1")
        order = {"key": "k-0", "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}
        await kiosk.request({"type": "order.submit", "order": order}, expect=OrderAccepted)
        load = asyncio.ensure_future(asyncio.to_thread(lambda: loader.load(now=a.hub.clock())))
        await until(paused.is_set, what="the load to have read the orders")
        late = await kiosk.request({"type": "order.submit", "order": {**order, "key": "k-late"}}, expect=OrderAccepted)
        go.set()
        docs, events, seq, _keys = await asyncio.wait_for(load, 10)
        ids = {json.loads(d)["id"] for d in docs}
        assert (late.order_id in ids) == (seq >= a.hub.seq), (seq, a.hub.seq, late.order_id in ids)
        assert all(s <= seq for s, _ in events)
    finally:
        go.set()
        loader.close()
        await devices.close()
        await a.stop()


def test_a_leader_whose_lock_session_died_cannot_write(config: StoreConfig, pg_db: str) -> None:
    """Fencing: the leader commits through the session that holds the lock and checks it holds it, inside the
    transaction. Once that session is gone (terminated, the lock free for another hub), its commits are refused,
    even though SQLAlchemy would quietly reconnect the connection."""
    a, b = Store(pg_db, store_id=config.store.id), Store(pg_db, store_id=config.store.id)
    admin = sa.create_engine(sa.make_url(pg_db))
    try:
        assert a.try_lead() and not b.try_lead()
        with admin.connect() as conn:
            pid = a._lead_conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            a._lead_conn.commit()
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        with pytest.raises(sa.exc.DBAPIError):
            a.commit([], done=[1])  # the dead session
        assert b.try_lead(), "the lock is free: another hub takes the lead"
        with pytest.raises(NotLeading):
            a.commit([], done=[1])  # a new session, without the lock
        assert not a.still_leading()
        b.commit([], done=[1])  # the new leader writes
    finally:
        a.close()
        b.close()
        admin.dispose()


async def test_a_follower_whose_listen_connection_dies_listens_again(
    two_hubs: tuple[HubServer, HubServer], pg_db: str, devices: Devices
) -> None:
    """The LISTEN connection is terminated: the follower opens another (instead of falling back to polling every
    second for good) and its screens get the leader's events at notification speed again."""
    a, b = two_hubs
    admin = sa.create_engine(sa.make_url(pg_db))

    def listeners() -> list[int]:
        with admin.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' "
                    "AND pid <> pg_backend_pid()"
                )
            )
            return [int(r[0]) for r in rows]

    try:
        kiosk = await devices.connect(a.url, "kiosk-1")
        wok = await devices.connect(b.url, "wok-2")
        before = await asyncio.to_thread(listeners)
        assert len(before) == 2, before  # one per hub
        with admin.connect() as conn:
            for pid in before:
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        for _ in range(200):  # bounded: until both hubs listen again on new connections
            now = await asyncio.to_thread(listeners)
            if len(now) == 2 and not set(now) & set(before):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the hubs did not listen again: {before} -> {now}")
        # Notification speed: well under the 1 s poll, over a few orders.
        loop = asyncio.get_running_loop()
        delays = []
        for n in range(5):
            order = {
                "key": f"l-{n}",
                "channel": "kiosk",
                "fulfilment": {"type": "pickup"},
                "items": [{"sku": "WOK-MAPO"}],
            }
            t0 = loop.time()
            r = await kiosk.request({"type": "order.submit", "order": order}, expect=OrderAccepted)

            def on_screen(r: OrderAccepted = r) -> bool:
                return r.order_id in wok.book.orders

            await until(on_screen, 5, "the order on the follower's screen")
            delays.append(loop.time() - t0)
        assert sorted(delays)[len(delays) // 2] < 0.2, delays
    finally:
        admin.dispose()
        await devices.close()


def test_the_database_drops_a_vanished_hubs_sessions_within_seconds(config: StoreConfig, pg_db: str) -> None:
    """A hub whose host loses power or its network cannot close its sockets: the database would keep its lock
    session (and the lead of the store) for the kernel's two hours. Every session of a hub asks the server for TCP
    keepalive (and the hub's side keeps its own), so it is ended within idle + interval × count seconds."""
    from kds.store import PG_KEEPALIVE

    store = Store(pg_db, store_id=config.store.id)
    try:
        assert store.try_lead()
        lock = store._lead_conn
        server = {
            g: lock.execute(sa.text(f"SHOW {g}")).scalar()
            for g in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")
        }
        lock.commit()
        assert server == {
            "tcp_keepalives_idle": str(PG_KEEPALIVE["idle_s"]),
            "tcp_keepalives_interval": str(PG_KEEPALIVE["interval_s"]),
            "tcp_keepalives_count": str(PG_KEEPALIVE["count"]),
            "tcp_user_timeout": str(PG_KEEPALIVE["user_timeout_ms"]),
        }
        client = lock.connection.driver_connection.info.get_parameters()
        assert client["keepalives_idle"] == str(PG_KEEPALIVE["idle_s"])
        assert PG_KEEPALIVE["idle_s"] + PG_KEEPALIVE["interval_s"] * PG_KEEPALIVE["count"] <= 15
    finally:
        store.close()
