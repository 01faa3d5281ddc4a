"""Nothing accepted is lost: `kds serve` as a real process, SIGKILLed mid-traffic, restarted on its database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kds.client import Backoff, HubClient, LinkState, NotConnected
from kds.config import StoreConfig
from kds.protocol import Event, OrderAccepted
from kds.wire import Answer
from tests.conftest import ROOT, SAMPLE_CONFIG, app_order, shelf_order
from tests.support import free_port, until

FAST = Backoff(first=0.05, cap=0.2)


class HubProcess:
    """`python -m kdsapp.cli serve` on a given db and port."""

    def __init__(self, db: Path | str, port: int, log: Path, config: Path = SAMPLE_CONFIG) -> None:
        self.db, self.port, self.log, self.config = db, port, log, config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kdsapp.cli",
                    "serve",
                    "--db",
                    str(self.db),
                    "--port",
                    str(self.port),
                    "--host",
                    "127.0.0.1",
                    "--config",
                    str(self.config),
                    "--quiet",
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while True:
            assert self.proc.poll() is None, f"hub exited early:\n{self.log.read_text(errors='replace')}"
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return
            assert loop.time() < end, "hub not accepting connections within 20s"
            await asyncio.sleep(0.02)

    async def exited(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        proc = self.proc
        await until(lambda: proc.poll() is not None, timeout, "hub process exit")
        return int(proc.returncode)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[list[HubProcess]]:
    started: list[HubProcess] = []
    yield started
    for h in started:
        h.kill()


class Clients:
    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.all: list[HubClient] = []

    async def connect(self, url: str, device: str, **kw: Any) -> HubClient:
        dev = self.config.device(device)
        assert dev is not None and dev.token is not None
        c = HubClient(url, device=dev.id, token=dev.token, role=dev.role.value, station=dev.station, backoff=FAST, **kw)
        self.all.append(c)
        await c.connect(timeout=10)
        return c


@pytest.fixture
async def clients(config: StoreConfig) -> AsyncIterator[Clients]:
    c = Clients(config)
    yield c
    for client in c.all:
        await client.close()


def order_for(device: str, key: str) -> dict[str, Any]:
    if device == "app-backend":
        return app_order(key)
    if device == "kiosk-1":
        return app_order(key, channel="kiosk", fulfilment={"type": "dine_in", "table": "21"})
    return shelf_order(key)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def num(number: str) -> int:
    return int(number[1:])


async def test_sigkill_loses_no_accepted_order(
    config: StoreConfig, tmp_path: Path, hubs: list[HubProcess], clients: Clients
) -> None:
    db, port = tmp_path / "hub.sqlite3", free_port()
    first = HubProcess(db, port, tmp_path / "hub-1.log")
    hubs.append(first)
    await first.start()
    names = ["app-backend", "kiosk-1", "shelf-1"]
    sources = {n: await clients.connect(first.url, n, request_timeout=1.5) for n in names}
    accepted: dict[tuple[str, str], tuple[str, str]] = {}
    """(device, key) → (order_id, number) of every order.accepted received."""

    async def submit(device: str, key: str, timeout: float | None = None) -> Answer:
        r = await sources[device].request({"type": "order.submit", "order": order_for(device, key)}, timeout)
        if isinstance(r, OrderAccepted):
            accepted[(device, key)] = (r.order_id, r.number)
        return r

    async def submitted(device: str, key: str) -> OrderAccepted:
        r = await submit(device, key)
        assert isinstance(r, OrderAccepted), r
        return r

    # 200 orders in flight at once, all accepted.
    answers = await asyncio.gather(*(submit(names[i % 3], f"one-{i}", 20) for i in range(200)))
    assert all(isinstance(a, OrderAccepted) and not a.duplicate for a in answers)
    assert sorted(num(n) for _, n in accepted.values()) == list(range(1, 201))

    # More keep coming, 24 in flight at any time, until the hub is killed.
    killed = asyncio.Event()
    sem = asyncio.Semaphore(24)
    in_flight: set[tuple[str, str]] = set()
    failed: list[tuple[str, str]] = []

    async def one(device: str, key: str) -> None:
        in_flight.add((device, key))
        try:
            await submit(device, key)
        except (NotConnected, TimeoutError):
            failed.append((device, key))
        finally:
            in_flight.discard((device, key))
            sem.release()

    async def feed() -> list[asyncio.Task[None]]:
        tasks: list[asyncio.Task[None]] = []
        i = 0
        while True:
            await sem.acquire()
            if killed.is_set():
                return tasks
            tasks.append(asyncio.create_task(one(names[i % 3], f"two-{i}")))
            i += 1

    feeder = asyncio.create_task(feed())
    await until(lambda: len(accepted) >= 300, what="100 more orders accepted")
    assert in_flight, "nothing in flight at the kill"
    assert first.proc is not None
    os.kill(first.proc.pid, signal.SIGKILL)
    killed.set()
    assert await first.exited() == -signal.SIGKILL
    tasks = await feeder
    await asyncio.gather(*tasks)
    assert failed, "the kill interrupted nothing"
    before_restart = dict(accepted)

    # What the database holds after the crash, before any restart.
    rows = query(db, "select source, key, id, number from orders")
    stored = {(s, k): (i, n) for s, k, i, n in rows}
    for key, value in before_restart.items():
        assert stored.get(key) == value, f"accepted order {key} → {value} is not stored as such"
    numbers = [n for _, _, _, n in rows]
    assert len(set(numbers)) == len(numbers) and len({num(n) for n in numbers}) == len(numbers)
    seqs = [s for (s,) in query(db, "select seq from events order by seq")]
    assert seqs == list(range(1, len(seqs) + 1)), "the event log has holes"
    last_seq, top = seqs[-1], max(num(n) for n in numbers)

    # Restart on the same database and port; the old clients come back by themselves.
    second = HubProcess(db, port, tmp_path / "hub-2.log")
    hubs.append(second)
    await second.start()
    monitor = await clients.connect(second.url, "monitor-1")
    assert monitor.welcome is not None and monitor.welcome.seq == last_seq
    for (_, _), (oid, number) in before_restart.items():
        assert monitor.book.orders[oid].number == number
    assert len(monitor.book.orders) == len(rows)
    events: list[Event] = []
    monitor.listeners.append(lambda f: events.append(f) if isinstance(f, Event) else None)
    for c in sources.values():
        await c.wait_online(10)

    # The next order gets the next number; seq goes on from where the database left off.
    nxt = await submitted("kiosk-1", "after-restart")
    assert (nxt.duplicate, num(nxt.number), nxt.number[0]) == (False, top + 1, "K")
    await until(lambda: len(events) == 1, what="the new order's event at the monitor")
    assert events[0].seq == last_seq + 1 and events[0].order.id == nxt.order_id

    # Resubmitting an order accepted before the crash answers with its number, and creates nothing.
    for key in [("app-backend", "one-0"), ("shelf-1", "one-2"), ("kiosk-1", "one-199"), *list(before_restart)[-3:]]:
        again = await submitted(*key)
        assert (again.order_id, again.number, again.duplicate) == (*before_restart[key], True)
    # An order whose answer was lost in the crash is either stored whole (same number again) or not at all.
    for key in failed:
        again = await submitted(*key)
        if key in stored:
            assert (again.order_id, again.number, again.duplicate) == (*stored[key], True)
        else:
            assert again.duplicate is False and num(again.number) > top
    final = query(db, "select number from orders")
    assert len({n for (n,) in final}) == len(final)
    assert [s for (s,) in query(db, "select seq from events order by seq")] == list(
        range(1, last_seq + 2 + sum(1 for k in failed if k not in stored))
    )


async def test_sigterm_stops_cleanly(
    config: StoreConfig, tmp_path: Path, hubs: list[HubProcess], clients: Clients
) -> None:
    db = tmp_path / "hub.sqlite3"
    hub = HubProcess(db, free_port(), tmp_path / "hub.log")
    hubs.append(hub)
    await hub.start()
    shelf = await clients.connect(hub.url, "shelf-1")
    await clients.connect(hub.url, "counter-1")
    r = await shelf.request({"type": "order.submit", "order": shelf_order("term-1")}, expect=OrderAccepted)
    assert hub.proc is not None
    hub.proc.send_signal(signal.SIGTERM)
    assert await hub.exited() == 0, hub.log.read_text(errors="replace")
    assert "Traceback" not in hub.log.read_text(errors="replace")
    assert query(db, "select id, number from orders") == [(r.order_id, r.number)]
    await until(lambda: shelf.state is not LinkState.ONLINE, what="the client noticing the shutdown")
