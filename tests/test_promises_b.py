"""Issue 13 (b): tests that fail when a promise breaks. Each was checked by putting its fault into the product by hand
(never committed): the test fails with the fault and passes without it.

- SQLite runs WAL with synchronous=FULL on every connection of the hub's engine (fault: synchronous=OFF).
- Eviction lets closed orders leave memory, never open ones (fault: open orders evicted with the closed).
- A device that stops reading is closed 4011 when its outbox passes the cap, at once, not only by the stall timer
  (fault: the cap ignored; the old tests' stall limit of 1 s closed the connection within their tolerance anyway).
- The client's durable action queue is fsync'd (file, and folder when the file is made or renamed) before an
  action counts as queued (fault: the fsync removed).
- An order is acknowledged only once the database holds it, checked at the moment the frame is written to the socket
  (fault: replies delivered before the commit); deterministic, unlike the SIGKILL test.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kds.client import ActionQueue, HubClient
from kds.config import StoreConfig
from kds.hub import EventRecord, OrderHub
from kds.protocol import Ack, CloseCode, Event, EventKind, OrderAccepted, Pong
from kds.server import HubServer
from kds.store import Store, database_url
from tests.conftest import Devices, app_order, shelf_order
from tests.support import accepted, until
from tests.test_hub_core import Clock
from tests.test_reliability import (  # noqa: F401 (make_hub and silent are fixtures)
    SLACK,
    Latency,
    MakeHub,
    MakeSilent,
    OutboxWatch,
    device_hello,
    make_hub,
    silent,
)

# ------------------------------------------------------------------------------- 6. SQLite durability pragmas

SYNCHRONOUS_FULL = 2
"""`PRAGMA synchronous` answers a number: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA."""


async def test_every_sqlite_connection_of_the_hub_runs_wal_and_synchronous_full(
    config: StoreConfig, tmp_path: Path, devices: Devices
) -> None:
    """Every connection the hub's engine opens (recorded as the engine opens it, read on the hub's own database
    thread) runs journal_mode=WAL and synchronous=FULL: an acknowledged order survives a power cut, not only a crash.
    Connections the engine opens side by side are checked too (a pragma set on the first connection only fails)."""
    store = Store(tmp_path / "kds.sqlite3", store_id=config.store.id)
    opened: list[Any] = []
    sa.event.listen(store.engine, "connect", lambda dbapi_conn, _record: opened.append(dbapi_conn))
    server = HubServer(OrderHub(config), store, host="127.0.0.1", port=0)
    await server.start()
    try:
        src = await devices.connect(server.url, "shelf-1")
        answers = await asyncio.gather(
            *(src.request({"type": "order.submit", "order": shelf_order(f"sync-{k}")}) for k in range(20))
        )
        assert all(isinstance(a, OrderAccepted) for a in answers)

        def side_by_side() -> None:
            # Three of the engine's connections out of its pool at once: it opens new ones (the hub's connect path).
            with store.engine.connect() as a, store.engine.connect() as b, store.engine.connect() as c:
                for conn in (a, b, c):
                    conn.execute(sa.text("SELECT 1"))

        await server.run_db(side_by_side)

        def pragmas() -> list[tuple[str, int]]:
            found = []
            for dbapi_conn in opened:
                mode = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]
                sync = dbapi_conn.execute("PRAGMA synchronous").fetchone()[0]
                found.append((str(mode).lower(), int(sync)))
            return found

        seen = await server.run_db(pragmas)
        assert len(seen) >= 3, f"the hub's engine opened {len(seen)} connections"
        assert seen == [("wal", SYNCHRONOUS_FULL)] * len(seen), f"(journal_mode, synchronous) per connection: {seen}"
    finally:
        await devices.close()
        await server.stop()


# ------------------------------------------------------------------------------- 7. eviction keeps open orders


async def test_eviction_lets_closed_orders_go_and_keeps_every_open_one(
    config: StoreConfig, db_path: Path | str, devices: Devices
) -> None:
    """Past `closed_keep_s` (and well within `open_max_age_h`), the hub's eviction (the housekeeping step) drops the
    orders handed over or cancelled, and keeps every open one whatever its status and however long since it last
    changed: still in memory, in a fresh welcome, acted on, and its key still answered as a duplicate."""
    clock = Clock(datetime.now(UTC))
    server = HubServer(OrderHub(config, clock=clock), Store(db_path, store_id=config.store.id), port=0)
    await server.start()
    try:
        shelf = await devices.connect(server.url, "shelf-1")
        app = await devices.connect(server.url, "app-backend")
        wok = await devices.connect(server.url, "wok-1")
        cold = await devices.connect(server.url, "cold-1")
        bar = await devices.connect(server.url, "bar-1")
        counter = await devices.connect(server.url, "counter-1")

        async def submit(src: HubClient, order: dict[str, Any]) -> str:
            r = await src.request({"type": "order.submit", "order": order})
            assert isinstance(r, OrderAccepted), r
            return r.order_id

        async def ok(client: HubClient, msg: dict[str, Any]) -> None:
            r = await client.request(msg)
            assert isinstance(r, Ack), (msg, r)

        accepted = await submit(shelf, shelf_order("open-accepted"))
        preparing = await submit(shelf, shelf_order("open-preparing"))
        await ok(wok, {"type": "ticket.bump", "ticket_id": f"{preparing}/wok"})
        ready = await submit(shelf, shelf_order("open-ready"))
        for station, screen in (("wok", wok), ("cold", cold)):
            await ok(screen, {"type": "ticket.bump", "ticket_id": f"{ready}/{station}"})
        called = await submit(app, app_order("open-called"))
        for station, screen in (("wok", wok), ("bar", bar)):
            await ok(screen, {"type": "ticket.bump", "ticket_id": f"{called}/{station}"})
        await ok(counter, {"type": "order.call", "order_id": called})
        handed = await submit(app, app_order("closed-handed"))
        for station, screen in (("wok", wok), ("bar", bar)):
            await ok(screen, {"type": "ticket.bump", "ticket_id": f"{handed}/{station}"})
        await ok(counter, {"type": "order.call", "order_id": handed})
        await ok(counter, {"type": "order.handover", "order_id": handed, "to": "rider"})
        cancelled = await submit(app, app_order("closed-cancelled"))
        await ok(app, {"type": "order.cancel", "order_id": cancelled, "reason": "customer left"})

        # (an order called stays "ready" in status, with its call recorded)
        statuses = {o: server.hub.orders[o].status.value for o in (accepted, preparing, ready, called)}
        assert statuses == {accepted: "accepted", preparing: "preparing", ready: "ready", called: "ready"}
        assert not server.hub.orders[handed].is_open and not server.hub.orders[cancelled].is_open

        lim = server.limits
        clock.advance(lim.closed_keep_s + 60)
        assert lim.closed_keep_s + 60 < lim.open_max_age_h * 3600, "the open ones are not stale"
        await server._evict(time.monotonic())

        open_ids = {accepted, preparing, ready, called}
        assert set(server.hub.orders) == open_ids, "closed orders leave memory, every open one stays"
        fresh = await devices.connect(server.url, "monitor-1")
        assert open_ids <= set(fresh.book.orders), "a fresh welcome still carries every open order"
        again = await shelf.request({"type": "order.submit", "order": shelf_order("open-ready")})
        assert isinstance(again, OrderAccepted) and (again.order_id, again.duplicate) == (ready, True), again
        await ok(cold, {"type": "ticket.bump", "ticket_id": f"{preparing}/cold"})
        await ok(counter, {"type": "order.handover", "order_id": called, "to": "rider"})
    finally:
        await devices.close()
        await server.stop()


# ------------------------------------------------------------------------------- 8. a device that stops reading


@pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)
async def test_a_device_that_stops_reading_is_closed_4011_by_the_cap_alone(
    make_hub: MakeHub,  # noqa: F811
    silent: MakeSilent,  # noqa: F811
    devices: Devices,
    config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stall timer and the keepalive out of the way (60 s): a counter that never reads is closed 4011 as its
    outbox reaches `outbox_max_bytes`, during the rush, never holding more than the cap; nobody else is closed.

    Why the old tests missed a hub that ignores the cap: they ran with `outbox_stall_s=1`, and the stall timer closed
    the connection within their tolerance, while the frames past the cap were dropped without a close."""
    server = await make_hub(
        outbox_max_bytes=512 * 1024,
        snapshot_page_bytes=32 * 1024,
        outbox_stall_s=60.0,
        keepalive_interval_s=60.0,
        keepalive_timeout_s=60.0,
    )
    lim = server.limits
    watch = OutboxWatch(server, monkeypatch)
    kiosk = await devices.connect(server.url, "kiosk-1")
    lat = Latency(await devices.connect(server.url, "wok-1"))
    slow = await silent(server)
    await slow.send(device_hello(config, "counter-1"))
    link = slow.link
    await until(lambda: link.session is not None, what="the counter has a session")
    watch.start()
    try:
        # ~7 KB an order to the counter: 200 orders are about three times the cap.
        await lat.rush(kiosk, "rush", 200, lines=10)
        await until(lambda: link.closing, timeout=5, what="the counter that does not read is closed by the cap")
    finally:
        await watch.stop()
    assert watch.closes == [(link, CloseCode.TOO_SLOW)], watch.closes
    assert server.closes[CloseCode.TOO_SLOW] == 1 and server.closes[1006] == 0, server.closes
    assert watch.of(link) <= lim.outbox_max_bytes + SLACK, watch.of(link)
    r = await kiosk.request({"type": "ping"})
    assert isinstance(r, Pong) and kiosk.connections == 1


# ------------------------------------------------------------------------------- 9. the client's durable queue


class FsyncLog:
    """`os.fsync`, recording what each call made durable: the path of its descriptor and (a file) its text then."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str | None]] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            text = Path(path).read_text(encoding="utf-8") if os.path.isfile(path) else None
            self.calls.append((path, text))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    def of(self, path: Path) -> list[str | None]:
        return [text for p, text in self.calls if p == str(path)]

    def refs(self, path: Path) -> list[str]:
        """The refs in the file at its last fsync (failing when it was not fsync'd)."""
        texts = self.of(path)
        assert texts, f"{path.name} was not fsync'd; fsyncs: {self.calls}"
        return [json.loads(line)["ref"] for line in (texts[-1] or "").splitlines()]


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads descriptors' paths in /proc")


@needs_proc
async def test_an_action_is_fsynced_to_the_queue_file_before_it_counts_as_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`enqueue` returns (the action counts as queued, it may be sent) only once the queue file holding it has been
    fsync'd, and the folder with it when the file is new; removing an answered action renames a new file into place
    and fsyncs the folder too."""
    folder = tmp_path / "spool"
    path = folder / "queue.jsonl"
    fsyncs = FsyncLog(monkeypatch)
    client = HubClient("ws://127.0.0.1:9", device="wok-1", token="t", role="kitchen", queue_path=path)
    fut = client.enqueue({"type": "ticket.bump", "ref": "a", "ticket_id": "x/wok"})
    assert fsyncs.refs(path) == ["a"], "fsync'd before enqueue returned, with the action in it"
    assert fsyncs.of(folder), f"the new queue file's folder was not fsync'd: {fsyncs.calls}"
    fsyncs.calls.clear()
    client.enqueue({"type": "order.call", "ref": "b", "order_id": "y"})
    assert fsyncs.refs(path) == ["a", "b"]
    fsyncs.calls.clear()
    queue = client.queue
    assert queue.remove("a")
    tmp = path.with_suffix(path.suffix + ".tmp")
    assert fsyncs.refs(tmp) == ["b"], "the rewritten queue is fsync'd before it replaces the old one"
    assert fsyncs.of(folder), f"the rename of the rewritten queue was not made durable: {fsyncs.calls}"
    assert [m["ref"] for m in ActionQueue(path).items] == ["b"]
    fut.cancel()
    await client.close()


# ------------------------------------------------------------------------------- 10. acknowledge after commit

DINE_IN = {"type": "dine_in", "table": "21"}


def _frames(data: bytes, buf: bytearray) -> list[dict[str, Any]]:
    """Text frames (unmasked, as a server sends them) out of the bytes written so far; what is incomplete waits."""
    buf += data
    out = []
    while len(buf) >= 2:
        opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < at + n:
            break
        payload = bytes(buf[at : at + n])
        del buf[: at + n]
        if opcode == 0x1:
            out.append(json.loads(payload))
    return out


async def test_an_order_is_acknowledged_only_once_the_database_holds_it(
    config: StoreConfig, db_path: Path | str, devices: Devices
) -> None:
    """Deterministic where the SIGKILL test (tests/test_durability.py) is a matter of luck.

    Design: the hub's test-only hook `HubServer.after_commit` runs once a batch's commit has returned and before any
    frame of that batch goes out. The test watches the very moment the hub writes to each connection's socket (its
    transport's `write`): every `order.accepted` written must name an order the database already holds, read through
    the test's own connection (which sees committed rows only), and one the hook has already reported committed;
    every `order.created` event likewise. At the hook's own moment no frame of its batch may have been written yet.
    A hub that acknowledges before its commit (or without waiting for it) breaks these on its first order, every run,
    whatever the timing; nothing here waits for time to pass."""
    server = HubServer(OrderHub(config), Store(db_path, store_id=config.store.id), host="127.0.0.1", port=0)
    engine = sa.create_engine(database_url(db_path))
    await server.start()
    committed: set[str] = set()
    written: set[str] = set()
    problems: list[str] = []

    def held(order_id: str) -> bool:
        with engine.connect() as conn:
            q = sa.text("SELECT count(*) FROM orders WHERE id = :id")
            return bool(conn.execute(q, {"id": order_id}).scalar())

    def after_commit(records: Sequence[EventRecord]) -> None:
        for rec in records:
            if rec.dropped:
                continue
            if rec.order_id in written:
                problems.append(f"order {rec.order_id}: a frame of it was written before its commit returned")
            if not held(rec.order_id):
                problems.append(f"order {rec.order_id}: its commit returned but the database does not hold it")
            committed.add(rec.order_id)

    def watch(transport: Any) -> None:
        write, buf = transport.write, bytearray()

        def checked(data: bytes | bytearray | memoryview) -> None:
            for f in _frames(bytes(data), buf):
                if f.get("type") == "order.accepted":
                    oid = f["order_id"]
                elif f.get("type") == "event" and f.get("kind") == "order.created":
                    oid = f["order"]["id"]
                else:
                    continue
                written.add(oid)
                if oid not in committed:
                    problems.append(f"{f['type']} for {oid} written before its commit returned")
                if not held(oid):
                    problems.append(f"{f['type']} for {oid} written while the database does not hold it")
            write(data)

        transport.write = checked

    try:
        kiosk = await devices.connect(server.url, "kiosk-1")
        shelf = await devices.connect(server.url, "shelf-1")
        wok = await devices.connect(server.url, "wok-1")
        created: list[str] = []
        wok.listeners.append(
            lambda f: created.append(f.order.id) if isinstance(f, Event) and f.kind is EventKind.ORDER_CREATED else None
        )
        for link in server._links.values():
            watch(link.conn.transport)
        server.after_commit = after_commit

        # One at a time, then many at once (many orders to a commit).
        first = await kiosk.request(
            {"type": "order.submit", "order": app_order("one", channel="kiosk", fulfilment=DINE_IN)}
        )
        assert isinstance(first, OrderAccepted)
        answers = await asyncio.gather(
            *(
                (kiosk if k % 2 else shelf).request(
                    {
                        "type": "order.submit",
                        "order": app_order(f"many-{k}", channel="kiosk", fulfilment=DINE_IN)
                        if k % 2
                        else shelf_order(f"many-{k}"),
                    }
                )
                for k in range(40)
            )
        )
        assert all(isinstance(a, OrderAccepted) for a in answers), answers
        await until(lambda: len(created) == 41, what="the kitchen screen has every order")
        acked = {first.order_id} | {accepted(a).order_id for a in answers}
        assert problems == [], problems[:5]
        assert acked <= written and acked <= committed, "every acknowledgement was seen at the socket"
    finally:
        server.after_commit = None
        await devices.close()
        await server.stop()
        engine.dispose()
