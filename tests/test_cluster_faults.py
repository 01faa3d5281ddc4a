"""Two hubs on one PostgreSQL store, under load, through the faults a store meets: the leader killed, its lock
session terminated, the LISTEN connections terminated, each hub restarted. After each, every acknowledged order is
in the database, and every hub's snapshot (what a screen connecting to it gets) equals the database: the same open
orders at the same versions, as of the database's last seq.

The hubs are real `kds serve` processes; the load is a kiosk submitting orders and a wok screen bumping each one's
wok ticket, both with the two hubs as their failover list and their durable action queues.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kds.client import HubClient
from kds.protocol import Ack, Error, OrderAccepted
from kds.store import OPEN_STATUSES
from kds.wire import Answer
from tests.conftest import Devices
from tests.support import db_rows, free_port
from tests.test_durability import HubProcess

ORDERS = 150
RATE = 60.0  # orders/s
FAULT_AFTER = 40  # acknowledged orders before the fault


class TwoHubs:
    """Two `kds serve` processes on one database: `a` started first (it leads), `b` follows."""

    def __init__(self, db: str, tmp: Path) -> None:
        self.db = db
        self.a = HubProcess(db, free_port(), tmp / "a.log")
        self.b = HubProcess(db, free_port(), tmp / "b.log")
        self.admin = sa.create_engine(sa.make_url(db), isolation_level="AUTOCOMMIT")

    @property
    def urls(self) -> str:
        return f"{self.a.url},{self.b.url}"

    def terminate(self, sql_filter: str) -> list[int]:
        """Terminate the database sessions of the hubs that match `sql_filter` (on pg_stat_activity `a`)."""
        with self.admin.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT a.pid, pg_terminate_backend(a.pid) FROM pg_stat_activity a "
                    f"WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND ({sql_filter})"
                )
            )
            return [int(r[0]) for r in rows if r[1]]

    def lock_sessions(self) -> str:
        return "a.pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"

    async def restart(self, hub: HubProcess, sig: signal.Signals) -> None:
        assert hub.proc is not None
        hub.proc.send_signal(sig)
        await hub.exited(20)
        hub.proc = None
        await hub.start()

    def kill(self) -> None:
        for h in (self.a, self.b):
            h.kill()
        self.admin.dispose()


@pytest.fixture
async def cluster(pg_db: str, tmp_path: Path) -> AsyncIterator[TwoHubs]:
    c = TwoHubs(pg_db, tmp_path)
    try:
        await c.a.start()
        await c.b.start()
        yield c
    finally:
        c.kill()


def _order(n: int) -> dict[str, Any]:
    return {
        "key": f"load-{n}",
        "channel": "kiosk",
        "fulfilment": {"type": "pickup"},
        "items": [{"sku": "WOK-MAPO"}],
    }


async def _load(kiosk: HubClient, wok: HubClient, fault: Callable[[], Awaitable[None]]) -> list[Answer]:
    """ORDERS orders at RATE through the kiosk's durable queue, each one's wok ticket bumped once accepted; `fault`
    runs once FAULT_AFTER are acknowledged. Returns the kiosk's answers."""
    loop = asyncio.get_running_loop()
    acked: list[Answer] = []
    bumps: list[asyncio.Future[Answer]] = []
    struck = asyncio.Event()

    def accepted(fut: asyncio.Future[Answer]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        answer = fut.result()
        acked.append(answer)
        if isinstance(answer, OrderAccepted) and not answer.duplicate:
            bumps.append(wok.enqueue({"type": "ticket.bump", "ticket_id": f"{answer.order_id}/wok"}))
        if len(acked) == FAULT_AFTER:
            struck.set()

    futures = []
    start = loop.time()
    fault_task: asyncio.Task[None] | None = None
    for n in range(ORDERS):
        fut = kiosk.enqueue({"type": "order.submit", "order": _order(n)})
        fut.add_done_callback(accepted)
        futures.append(fut)
        if struck.is_set() and fault_task is None:
            fault_task = asyncio.ensure_future(fault())
        await asyncio.sleep(max(0.0, start + (n + 1) / RATE - loop.time()))  # pacing, not synchronisation
    assert fault_task is not None, "the fault struck while orders were still being sent"
    answers = await asyncio.wait_for(asyncio.gather(*futures), 90)
    await asyncio.wait_for(fault_task, 60)
    done = await asyncio.wait_for(asyncio.gather(*bumps), 90)
    assert all(isinstance(b, Ack) for b in done), [b for b in done if not isinstance(b, Ack)][:3]
    return answers


def _database(db: str) -> tuple[int, dict[str, int]]:
    """The database's last seq and its open orders (id -> version)."""
    seq = db_rows(db, "SELECT coalesce(max(seq), 0) FROM events")[0][0]
    marks = ",".join("?" * len(OPEN_STATUSES))
    rows = db_rows(db, f"SELECT id, doc FROM orders WHERE status IN ({marks})", *OPEN_STATUSES)
    return int(seq), {r[0]: int(json.loads(r[1])["version"]) for r in rows}


async def _snapshot_equals_database(devices: Devices, url: str, db: str) -> None:
    """A screen connecting to the hub at `url` gets exactly the database's open orders, as of its last seq. The hub
    may still be taking in the last events (a follower, a hub that just took the lead): bounded retries."""
    last: tuple[Any, ...] = ()
    for _ in range(60):
        seq, orders = _database(db)
        mon = await devices.connect(url, "monitor-1")
        assert mon.welcome is not None
        seen = {oid: o.version for oid, o in mon.book.orders.items() if o.status in OPEN_STATUSES}
        got = (mon.welcome.seq, seen)
        await mon.close()
        if got == (seq, orders):
            return
        last = (got[0], seq, set(orders) - set(seen), {k for k in seen if seen[k] != orders.get(k)})
        await asyncio.sleep(0.1)  # the hub catches up by itself; look again
    raise AssertionError(f"hub at {url}: welcome seq vs database seq, missing orders, wrong versions: {last}")


async def _check(cluster: TwoHubs, devices: Devices, answers: list[Answer]) -> None:
    assert [a.type for a in answers] == ["order.accepted"] * ORDERS, [a for a in answers if isinstance(a, Error)]
    ids = {a.order_id for a in answers if isinstance(a, OrderAccepted)}
    assert len(ids) == ORDERS, "one order per key, whatever was resent"
    stored = {r[0] for r in db_rows(cluster.db, "SELECT id FROM orders")}
    assert ids <= stored, f"acknowledged but not stored: {ids - stored}"
    seqs = [r[0] for r in db_rows(cluster.db, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1)), "seq has no gaps and no doubles"
    for hub in (cluster.a, cluster.b):
        await _snapshot_equals_database(devices, hub.url, cluster.db)


async def _clients(cluster: TwoHubs, devices: Devices) -> tuple[HubClient, HubClient]:
    return await devices.connect(cluster.urls, "kiosk-1"), await devices.connect(cluster.urls, "wok-1")


async def test_the_leader_killed_under_load(cluster: TwoHubs, devices: Devices) -> None:
    kiosk, wok = await _clients(cluster, devices)

    async def fault() -> None:
        cluster.a.kill()  # SIGKILL: its sessions (and the lock) vanish; B takes the lead
        await cluster.a.start()  # back, as a follower

    await _check(cluster, devices, await _load(kiosk, wok, fault))
    assert kiosk.connections >= 2, "the kiosk failed over"


async def test_the_leaders_lock_session_terminated_under_load(cluster: TwoHubs, devices: Devices) -> None:
    kiosk, wok = await _clients(cluster, devices)
    killed: list[int] = []

    async def fault() -> None:
        killed.extend(cluster.terminate(cluster.lock_sessions()))

    await _check(cluster, devices, await _load(kiosk, wok, fault))
    assert len(killed) == 1
    # pg_locks is the whole server's: count this test's database only (other tests' hubs run beside it).
    leads = db_rows(
        cluster.db,
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
    )[0][0]
    assert leads == 1, "exactly one hub leads again"


async def test_the_listen_connections_terminated_under_load(cluster: TwoHubs, devices: Devices) -> None:
    kiosk, wok = await _clients(cluster, devices)
    killed: list[int] = []

    async def fault() -> None:
        killed.extend(cluster.terminate("a.query LIKE 'LISTEN%'"))

    await _check(cluster, devices, await _load(kiosk, wok, fault))
    assert len(killed) == 2, "one LISTEN connection per hub"


@pytest.mark.parametrize("which", ["leader", "follower"])
async def test_each_hub_restarted_under_load(cluster: TwoHubs, devices: Devices, which: str) -> None:
    kiosk, wok = await _clients(cluster, devices)
    hub = cluster.a if which == "leader" else cluster.b

    async def fault() -> None:
        await cluster.restart(hub, signal.SIGTERM)

    await _check(cluster, devices, await _load(kiosk, wok, fault))
