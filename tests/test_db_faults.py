"""The hub keeps serving when its database fails: a full disk, a lock held by someone else, a dropped connection.

A commit that fails is undone in memory: every frame of it is answered `unavailable` (with its ref), nobody sees
any of it, the database holds none of it; reads (`ping`) and new connections go on from memory; after a backoff the
hub takes writes again, and the same frames sent again are applied exactly once. Real hubs on loopback, real
databases, real faults (SQLite's `max_page_count`, a second connection holding the write lock, PostgreSQL's
`pg_terminate_backend`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kds.client import HubClient
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import Ack, Error, ErrorCode, Event, EventKind, OrderAccepted, OrderView, Pong
from kds.server import HubServer
from kds.store import Store, database_url
from kds.wire import Answer, HubFrame
from tests import pg
from tests.conftest import Devices, shelf_order
from tests.support import accepted, db_rows, until

RETRY_S = 0.1
"""`limits.db_retry_s` of these hubs: the first backoff after a failed commit (doubling to RETRY_MAX_S)."""
RETRY_MAX_S = 0.4


def fast_retry(config: StoreConfig) -> StoreConfig:
    """The sample store, with a short backoff after failed commits (the tests wait on it)."""
    limits = config.limits.model_copy(update={"db_retry_s": RETRY_S, "db_retry_max_s": RETRY_MAX_S})
    return config.model_copy(update={"limits": limits})


async def start_hub(servers: list[HubServer], config: StoreConfig, store: Store) -> HubServer:
    server = HubServer(OrderHub(fast_retry(config)), store, host="127.0.0.1", port=0)
    servers.append(server)
    await server.start()
    return server


def big_order(key: str) -> dict[str, Any]:
    """A shelf order as large as the protocol allows notes to make it (about 5 KB stored twice: event and order)."""
    text = (key + " ") * 500
    order = shelf_order(key, note=text[:500])
    for k, item in enumerate(order["items"]):
        item["note"] = (f"item {k} " + text)[:500]
    return order


def submit(order: dict[str, Any]) -> dict[str, Any]:
    return {"type": "order.submit", "order": order}


def created(frames: list[HubFrame]) -> list[Event]:
    """The `order.created` events among the frames a client received."""
    return [f for f in frames if isinstance(f, Event) and f.kind is EventKind.ORDER_CREATED]


def event_seqs(frames: list[HubFrame]) -> list[int]:
    return [f.seq for f in frames if isinstance(f, Event)]


def stored_keys(db: Path | str) -> collections.Counter[str]:
    """How many stored orders each idempotency key has."""
    return collections.Counter(k for (k,) in db_rows(db, "select key from orders"))


def record(client: HubClient) -> list[HubFrame]:
    """Every frame the client receives from now on."""
    frames: list[HubFrame] = []
    client.listeners.append(frames.append)
    return frames


def wok_state(order: dict[str, Any]) -> str:
    return str(next(t["state"] for t in order["tickets"] if t["station"] == "wok"))


def unavailable(answer: Answer, ref: str) -> bool:
    return isinstance(answer, Error) and answer.code is ErrorCode.UNAVAILABLE and answer.ref == ref


# --------------------------------------------------------------------------------------------- SQLite: disk full


async def test_full_disk_answers_unavailable_serves_reads_and_takes_the_same_frames_again(
    config: StoreConfig, tmp_path: Path, servers: list[HubServer], devices: Devices
) -> None:
    db = tmp_path / "kds.sqlite3"
    server = await start_hub(servers, config, Store(db, store_id=config.store.id))
    shelf = await devices.connect(server.url, "shelf-1")
    wok = await devices.connect(server.url, "wok-1")
    monitor = await devices.connect(server.url, "monitor-1")
    assert monitor.welcome is not None
    first_seq = monitor.welcome.seq
    wok_frames, monitor_frames = record(wok), record(monitor)

    before = [accepted(await shelf.request(submit(big_order(f"pre-{n}")))) for n in range(5)]
    assert all(not r.duplicate for r in before), before
    await until(lambda: {r.order_id for r in before} <= set(wok.book.orders), what="the first orders on the wok")
    stored_seq = server.hub.seq

    # The disk is full: the file may not grow past the pages it has (every new connection is capped).
    def pages() -> int:
        with server.store.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    cap_at = await server.run_db(pages)

    def cap(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA max_page_count={cap_at}")
        cur.close()

    sa.event.listen(server.store.engine, "connect", cap)
    await server.run_db(server.store.engine.dispose)
    mark = len(wok_frames)

    frames = [submit(big_order(f"full-{n}")) for n in range(50)]
    answers = await asyncio.gather(*(shelf.request(f) for f in frames))
    refused = {f["order"]["key"] for f, a in zip(frames, answers, strict=True) if unavailable(a, f["ref"])}
    fitted = {f["order"]["key"]: a for f, a in zip(frames, answers, strict=True) if isinstance(a, OrderAccepted)}
    assert refused, "the full disk refused nothing"
    assert len(refused) + len(fitted) == len(frames), [a for a in answers if not isinstance(a, OrderAccepted)]
    assert server.commit_failures >= 1

    # Nothing refused is stored, nor shown to anyone; what fitted is stored once.
    on_disk = stored_keys(db)
    assert not refused & set(on_disk), "an order answered 'unavailable' is in the database"
    assert all(on_disk[k] == 1 for k in fitted)
    assert {e.order.key for e in created(wok_frames[mark:])} == set(fitted)
    assert not refused & {o.key for o in wok.book.orders.values()}
    assert server.hub.seq == stored_seq + len(fitted)

    # Still full: the kitchen's ping is answered, a counter that connects now is welcomed with what is stored.
    pong = await wok.request({"type": "ping"}, expect=Pong)
    assert pong.seq == server.hub.seq
    counter = await devices.connect(server.url, "counter-1")
    assert counter.welcome is not None and counter.welcome.seq == server.hub.seq
    assert {o.key for o in counter.book.orders.values()} == set(on_disk)

    # The disk has room again: the same frames (same refs, same keys) are all accepted, each stored once.
    sa.event.remove(server.store.engine, "connect", cap)
    await server.run_db(server.store.engine.dispose)
    await until(lambda: server.hub.writable, 5, "the hub taking writes again")
    again = await asyncio.gather(*(shelf.request(f) for f in frames))
    for f, a in zip(frames, again, strict=True):
        key = f["order"]["key"]
        assert isinstance(a, OrderAccepted) and a.ref == f["ref"], a
        assert a.duplicate is (key in fitted)
        if key in fitted:
            assert a.order_id == fitted[key].order_id
    ids = {f["order"]["key"]: accepted(a).order_id for f, a in zip(frames, again, strict=True)}
    on_disk = stored_keys(db)
    assert all(on_disk[k] == 1 for k in ids), on_disk
    assert len(on_disk) == len(before) + len(frames)

    await until(lambda: set(ids.values()) <= set(wok.book.orders), what="every order on the wok")
    await until(lambda: monitor.seq == server.hub.seq, what="the monitor caught up")
    per_order = collections.Counter(e.order.id for e in created(wok_frames))
    assert all(per_order[i] == 1 for i in ids.values()), per_order
    assert sum(per_order.values()) == len(before) + len(frames)
    assert event_seqs(monitor_frames) == list(range(first_seq + 1, server.hub.seq + 1)), "gaps or repeats"
    assert [s for (s,) in db_rows(db, "select seq from events order by seq")] == list(range(1, server.hub.seq + 1))
    assert counter.seq == server.hub.seq
    assert not server.stopped.is_set() and server.failed is None


# --------------------------------------------------------------------------------------------- SQLite: lock held


def stored_doc(db: Path | str, order_id: str) -> dict[str, Any]:
    [(doc,)] = db_rows(db, "select doc from orders where id = ?", order_id)
    return dict(json.loads(doc))


async def test_a_lock_held_elsewhere_undoes_bumps_and_amendments_and_the_same_frames_apply_once(
    config: StoreConfig, tmp_path: Path, servers: list[HubServer], devices: Devices
) -> None:
    db = tmp_path / "kds.sqlite3"
    server = await start_hub(servers, config, Store(db, store_id=config.store.id, busy_timeout_ms=100))
    shelf = await devices.connect(server.url, "shelf-1")
    wok = await devices.connect(server.url, "wok-1")
    monitor = await devices.connect(server.url, "monitor-1")
    oid = (await shelf.request(submit(shelf_order("lock-0")), expect=OrderAccepted)).order_id
    await until(lambda: oid in wok.book.orders, what="the order on the wok")
    before = stored_doc(db, oid)
    assert wok_state(before) == "new" and before["note"] is None
    stored_seq = server.hub.seq
    wok_frames, monitor_frames = record(wok), record(monitor)

    bump = {"type": "ticket.bump", "ticket_id": f"{oid}/wok"}
    amend: dict[str, Any] = {
        "type": "order.amend",
        "order_id": oid,
        "note": "no ginger",
        "add": [{"sku": "BAR-MILKTEA"}],
    }
    frames = [submit(shelf_order(f"lock-{n}")) for n in range(1, 6)]
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        # The bump is decided (the ticket is done in the hub's memory), its commit waits 100 ms and fails.
        assert unavailable(await wok.request(bump), bump["ref"])
        assert server.commit_failures == 1
        await until(lambda: server.hub.writable, 5, "the end of the first backoff")
        # So is the amendment, decided on the order as it was before the bump.
        assert unavailable(await shelf.request(amend), amend["ref"])
        assert server.commit_failures == 2
        await until(lambda: server.hub.writable, 5, "the end of the second backoff")
        answers = await asyncio.gather(*(shelf.request(f) for f in frames))
        assert all(unavailable(a, f["ref"]) for f, a in zip(frames, answers, strict=True)), answers

        # The order is as it was: in the hub's memory, in the database, on the screen, in a fresh welcome.
        assert server.hub.orders[oid].model_dump(mode="json") == before
        assert stored_doc(db, oid) == before
        assert wok.book.orders[oid] == OrderView.model_validate(before)
        pong = await wok.request({"type": "ping"}, expect=Pong)
        assert pong.seq == stored_seq == server.hub.seq
        fresh = await devices.connect(server.url, "wok-2")
        assert fresh.welcome is not None and fresh.welcome.seq == stored_seq
        assert fresh.book.orders == {oid: OrderView.model_validate(before)}
        assert [f for f in wok_frames if isinstance(f, Event)] == []
        assert [f for f in monitor_frames if isinstance(f, Event)] == []
        assert stored_keys(db) == {"lock-0": 1}
        assert db_rows(db, "select count(*) from events") == [(stored_seq,)]
    finally:
        blocker.rollback()
        blocker.close()

    # The lock is gone: the same frames apply, once; sent again they change nothing.
    await until(lambda: server.hub.writable, 5, "the hub taking writes again")
    bumped = await wok.request(bump, expect=Ack)
    assert bumped.ref == bump["ref"] and isinstance(bumped.seq, int)
    amended = await shelf.request(amend, expect=Ack)
    assert isinstance(amended.seq, int)
    applied = [accepted(a) for a in await asyncio.gather(*(shelf.request(f) for f in frames))]
    assert all(not a.duplicate for a in applied), applied
    ids = {a.order_id for a in applied}
    assert (await wok.request(bump, expect=Ack)).seq is None
    assert (await shelf.request(amend, expect=Ack)).seq is None
    again = [accepted(a) for a in await asyncio.gather(*(shelf.request(f) for f in frames))]
    assert [(a.order_id, a.duplicate) for a in again] == [(a.order_id, True) for a in applied]

    after = stored_doc(db, oid)
    assert wok_state(after) == "done" and after["note"] == "no ginger"
    assert [i["sku"] for i in after["items"]] == ["LOB-AUS", "LOB-AUS", "BAR-MILKTEA"]
    assert stored_keys(db) == {f"lock-{n}": 1 for n in range(6)}
    final_seq = stored_seq + 2 + len(frames)
    assert server.hub.seq == final_seq
    assert [s for (s,) in db_rows(db, "select seq from events order by seq")] == list(range(1, final_seq + 1))
    await until(lambda: monitor.seq == wok.seq == final_seq, what="the screens caught up")
    kinds = collections.Counter((f.kind, f.order.id) for f in wok_frames if isinstance(f, Event))
    assert kinds == {("ticket.bumped", oid): 1, ("order.amended", oid): 1, **{("order.created", i): 1 for i in ids}}
    assert wok.book.orders[oid] == OrderView.model_validate(after)
    assert event_seqs(monitor_frames) == list(range(stored_seq + 1, final_seq + 1))
    assert not server.stopped.is_set() and server.failed is None


async def test_new_orders_wait_out_the_backoff_like_every_other_change(
    config: StoreConfig, tmp_path: Path, servers: list[HubServer], devices: Devices
) -> None:
    """While the hub refuses changes after a failed commit, an `order.submit` is refused from memory too: it does
    not go to the database (each try holds the one database thread for up to `db_busy_timeout_ms`, behind which
    every ping waits) and does not restart the backoff."""
    db = tmp_path / "kds.sqlite3"
    slow = config.model_copy(update={"limits": config.limits.model_copy(update={"db_retry_s": 1.0})})
    server = HubServer(OrderHub(slow), Store(db, store_id=config.store.id, busy_timeout_ms=100), port=0)
    servers.append(server)
    await server.start()
    shelf = await devices.connect(server.url, "shelf-1")
    wok = await devices.connect(server.url, "wok-1")
    oid = (await shelf.request(submit(shelf_order("backoff-0")), expect=OrderAccepted)).order_id
    await until(lambda: oid in wok.book.orders, what="the order on the wok")
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        bump = {"type": "ticket.bump", "ticket_id": f"{oid}/wok"}
        assert unavailable(await wok.request(bump), bump["ref"])
        assert server.commit_failures == 1 and not server.hub.writable
        # A bump now is refused from memory: the database is not tried.
        again = {"type": "ticket.bump", "ticket_id": f"{oid}/wok"}
        assert unavailable(await wok.request(again), again["ref"])
        assert server.commit_failures == 1
        # So should a new order be.
        order = submit(shelf_order("backoff-1"))
        answer = await shelf.request(order)
        assert not server.hub.writable, "the backoff ended before the test could check it"
        assert unavailable(answer, order["ref"])
        assert server.commit_failures == 1, "the new order was tried against the locked database during the backoff"
    finally:
        blocker.rollback()
        blocker.close()
    await until(lambda: server.hub.writable, 5, "the hub taking writes again")


async def test_a_commit_whose_answer_was_lost_is_taken_in_not_repeated(
    config: StoreConfig, tmp_path: Path, servers: list[HubServer], devices: Devices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the database committed and before it said so (PostgreSQL over a network: a
    terminated backend, a restarted server, a cut cable). The hub cannot tell that from a refused commit; it answers
    `unavailable`, the source sends the same order again, and that must be answered with the stored order (and the
    hub must go on storing new ones) instead of colliding with what the database already holds."""
    db = tmp_path / "kds.sqlite3"
    server = await start_hub(servers, config, Store(db, store_id=config.store.id))
    shelf = await devices.connect(server.url, "shelf-1")
    wok = await devices.connect(server.url, "wok-1")
    await shelf.request(submit(shelf_order("lost-0")), expect=OrderAccepted)
    wok_frames = record(wok)

    real_commit = server.store.commit
    lost: list[bool] = []

    def commit_then_lose_the_answer(*args: Any, **kwargs: Any) -> Any:
        result = real_commit(*args, **kwargs)
        if not lost:  # the first commit from now on: stored, but the hub hears "connection lost"
            lost.append(True)
            raise sa.exc.OperationalError("COMMIT", None, ConnectionError("server closed the connection unexpectedly"))
        return result

    monkeypatch.setattr(server.store, "commit", commit_then_lose_the_answer)
    frame = submit(shelf_order("lost-1"))
    assert unavailable(await shelf.request(frame), frame["ref"])
    assert stored_keys(db) == {"lost-0": 1, "lost-1": 1}, "the commit did reach the database"

    await until(lambda: server.hub.writable, 5, "the hub taking writes again")
    resent = await shelf.request(frame, expect=OrderAccepted)
    [(stored_id,)] = db_rows(db, "select id from orders where key = ?", "lost-1")
    assert resent.order_id == stored_id
    newer = await shelf.request(submit(shelf_order("lost-2")), expect=OrderAccepted)
    assert not newer.duplicate, newer
    assert stored_keys(db) == {"lost-0": 1, "lost-1": 1, "lost-2": 1}
    assert [s for (s,) in db_rows(db, "select seq from events order by seq")] == [1, 2, 3]
    await until(lambda: {stored_id, newer.order_id} <= set(wok.book.orders), what="both orders on the wok")
    assert collections.Counter(e.order.key for e in created(wok_frames)) == {"lost-1": 1, "lost-2": 1}


# --------------------------------------------------------------------------------------------- PostgreSQL


class PgAdmin:
    """The test's database seen from the server's maintenance database: who is connected, who leads; kill them."""

    def __init__(self, url: str) -> None:
        self.name = sa.make_url(database_url(url)).database
        admin_url = pg.admin_url()
        assert admin_url is not None
        self.engine = sa.create_engine(database_url(admin_url), isolation_level="AUTOCOMMIT")

    def _scalar(self, sql: str, **params: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql), {"name": self.name, **params}).scalar_one())

    def terminate(self, *, spare: int = 0) -> int:
        """Terminate every server process connected to the database (but `spare` and this one's): how many."""
        return self._scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid() AND pid <> :spare",
            spare=spare,
        )

    def waiting_on_locks(self) -> int:
        """Server processes of the database waiting for a lock."""
        return self._scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = :name AND wait_event_type = 'Lock'")

    def leads(self) -> int:
        """Advisory locks granted in the database: 1 while a hub leads the store (and its connection lives)."""
        return self._scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = :name"
        )


@pytest.fixture
def pg_admin(pg_db: str) -> Iterator[PgAdmin]:
    admin = PgAdmin(pg_db)
    yield admin
    admin.engine.dispose()


async def eventually(check: Any, what: str, timeout: float = 10.0) -> None:
    """Wait until the database query `check()` (run off the event loop, the hub runs on it) is true; bounded."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await asyncio.to_thread(check):
        assert loop.time() < end, f"{what} not met within {timeout}s"
        await asyncio.sleep(0.01)


async def submit_until_accepted(
    client: HubClient, frame: dict[str, Any], refusals: list[str], attempts: int = 30
) -> Answer:
    """What a source does: send the same frame again (same ref, same key) while the hub says `unavailable`."""
    for attempt in range(attempts):
        answer = await client.request(frame, timeout=15)
        if not unavailable(answer, frame["ref"]):
            return answer
        refusals.append(frame["order"]["key"])
        await asyncio.sleep(min(0.5, 0.05 * 2**attempt))  # the client's retry backoff (docs/protocol.md)
    raise AssertionError(f"{frame['order']['key']} still unavailable after {attempts} tries")


async def test_terminated_postgresql_backends_lose_nothing_and_the_hub_leads_again(
    config: StoreConfig, pg_db: str, pg_admin: PgAdmin, servers: list[HubServer], devices: Devices
) -> None:
    server = await start_hub(servers, config, Store(pg_db, store_id=config.store.id))
    assert server.leading and await asyncio.to_thread(pg_admin.leads) == 1
    shelf = await devices.connect(server.url, "shelf-1")
    wok = await devices.connect(server.url, "wok-1")
    monitor = await devices.connect(server.url, "monitor-1")
    assert monitor.welcome is not None
    first_seq = monitor.welcome.seq
    wok_frames, monitor_frames = record(wok), record(monitor)
    before = [await shelf.request(submit(shelf_order(f"pg-pre-{n}")), expect=OrderAccepted) for n in range(3)]
    refusals: list[str] = []

    # Idle: every connection of the hub goes (the one holding the lead and its advisory lock, LISTEN, and its pool's
    # when one is open at that instant: under load a CI run found it closed, so it is not counted on).
    assert await asyncio.to_thread(pg_admin.terminate) >= 2
    await eventually(lambda: pg_admin.leads() == 0, "the advisory lock going with its connection", 2)
    frames = [submit(shelf_order(f"pg-{n}")) for n in range(10)]
    answers = await asyncio.gather(*(submit_until_accepted(shelf, f, refusals) for f in frames))
    await eventually(lambda: pg_admin.leads() == 1, "the hub leading its store again")
    await until(lambda: server.leading, 5, "the hub knowing it leads")

    # Mid-commit: the hub's commit waits on a table lock when its connection is terminated; the batch fails.
    lock_engine = sa.create_engine(database_url(pg_db))
    locker = lock_engine.connect()
    try:
        locker.begin()
        locker.execute(sa.text("LOCK TABLE events IN EXCLUSIVE MODE"))
        locker_pid = int(locker.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        more = [submit(shelf_order(f"pg-more-{n}")) for n in range(10)]
        sending = [asyncio.ensure_future(submit_until_accepted(shelf, f, refusals)) for f in more]
        await eventually(lambda: pg_admin.waiting_on_locks() >= 1, "the hub's commit waiting on the lock")
        assert await asyncio.to_thread(pg_admin.terminate, spare=locker_pid) >= 1
    finally:
        locker.rollback()
        locker.close()
        lock_engine.dispose()
    answers += await asyncio.gather(*sending)
    assert server.commit_failures >= 1 and refusals, "no commit failed"
    assert all(isinstance(a, OrderAccepted) for a in answers), answers

    await eventually(lambda: pg_admin.leads() == 1, "the hub leading its store")
    await until(lambda: server.leading, 5, "the hub knowing it leads")
    assert not server.stopped.is_set() and server.failed is None
    keys = {f["order"]["key"] for f in frames + more}
    stored = stored_keys(pg_db)
    assert all(stored[k] == 1 for k in keys), stored
    assert len(stored) == len(before) + len(keys)
    ids = {accepted(a).order_id for a in answers}
    assert len(ids) == len(keys)
    await until(lambda: ids <= set(wok.book.orders), 10, "every order on the wok")
    await until(lambda: monitor.seq == server.hub.seq, 10, "the monitor caught up")
    per_order = collections.Counter(e.order.id for e in created(wok_frames))
    assert all(per_order[i] == 1 for i in ids) and sum(per_order.values()) == len(before) + len(keys), per_order
    assert event_seqs(monitor_frames) == list(range(first_seq + 1, server.hub.seq + 1)), "gaps or repeats"
    seqs = [s for (s,) in db_rows(pg_db, "select seq from events order by seq")]
    assert seqs == list(range(1, server.hub.seq + 1))
    # And it goes on taking orders, as the leader.
    last = await shelf.request(submit(shelf_order("pg-last")), expect=OrderAccepted)
    assert not last.duplicate and server.leading


@pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)
async def test_reads_are_answered_while_a_commit_waits_on_the_database(
    servers: list[HubServer], config: StoreConfig, db_path: Path, devices: Devices
) -> None:
    """A commit stuck behind another program's lock holds back only the frames of its own connection (in order):
    another screen's ping is answered at once, from memory."""
    db = Path(db_path)
    server = await start_hub(servers, config, Store(db, store_id=config.store.id, busy_timeout_ms=3000))
    shelf = await devices.connect(server.url, "shelf-1")
    wok = await devices.connect(server.url, "wok-1")
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        order = asyncio.ensure_future(shelf.request(submit(shelf_order("behind-the-lock"))))
        await until(lambda: bool(server._queued), what="the order to wait in the commit pipeline")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pong = await wok.request({"type": "ping", "ref": "while-locked"}, timeout=2)
        waited = loop.time() - t0
        assert isinstance(pong, Pong) and waited < 1.0, f"a read waited {waited:.2f} s behind another device's commit"
        # The shelf's own ping comes after the answer to its order (frames of one connection stay in order).
        mine = asyncio.ensure_future(shelf.request({"type": "ping", "ref": "shelf-after"}, timeout=10))
        assert not order.done() and not mine.done()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    answer = await asyncio.wait_for(order, 10)
    assert isinstance(answer, (OrderAccepted, Error)), answer
    assert isinstance(await asyncio.wait_for(mine, 10), Pong)
