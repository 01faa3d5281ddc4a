"""The hub keeps serving whatever one device does: hostile text, a device that stops reading (mid-welcome or
mid-rush), a peer that goes silent, floods of frames and of connections, orders that keep growing, floods of bad
frames in the log.

Real hubs on 127.0.0.1 (free ports) over a real SQLite file. A test that needs other limits builds its own hub
(`make_hub`) from the sample config with those limits. Every wait is on a condition or a frame, with a timeout.

"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from kds.client import HubClient
from kds.config import Limits, StoreConfig
from kds.hub import OrderHub
from kds.outbox import Outbox
from kds.protocol import (
    Ack,
    CloseCode,
    Error,
    ErrorCode,
    Event,
    EventKind,
    OrderAccepted,
    OrderView,
    Pong,
)
from kds.server import CLOSE_TIMEOUT_S, TICK_S, HubServer, Link
from kds.store import Store
from kds.wire import HubFrame
from tests.conftest import Devices
from tests.support import until
from tests.test_auth import hello, open_ws_url, refused
from tests.test_bad_input import Raw, db_state, kiosk_order

# SQLite only: these tests are about the hub's connections, not about its database.
pytestmark = pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)

MakeHub = Callable[..., Awaitable[HubServer]]
MakeSilent = Callable[[HubServer], Awaitable["Silent"]]


@pytest.fixture
async def make_hub(config: StoreConfig, db_path: Path) -> AsyncIterator[MakeHub]:
    """`await make_hub(frames_per_s=1, ...)`: a real hub of the sample store with these limits (stopped after)."""
    servers: list[HubServer] = []

    async def make(**limits: Any) -> HubServer:
        lim = Limits.model_validate({**config.limits.model_dump(), **limits})  # a typo or an out-of-range value fails
        cfg = config.model_copy(update={"limits": lim})
        server = HubServer(OrderHub(cfg), Store(db_path, store_id=cfg.store.id), host="127.0.0.1", port=0)
        await server.start()
        servers.append(server)
        assert server.limits is server.hub.limits is lim
        return server

    try:
        yield make
    finally:
        for s in reversed(servers):
            await s.stop()


@pytest.fixture
async def silent() -> AsyncIterator[MakeSilent]:
    """`await silent(server)`: a `Silent` client of that hub (its socket closed after the test)."""
    opened: list[Silent] = []

    async def make(server: HubServer) -> Silent:
        s = await Silent.open(server)
        opened.append(s)
        return s

    try:
        yield make
    finally:
        for s in opened:
            s.close()


def device_hello(config: StoreConfig, device_id: str, token: str | None = None) -> dict[str, Any]:
    dev = config.device(device_id)
    assert dev is not None, device_id
    secret = token or dev.token
    assert secret is not None, device_id
    msg = hello(dev.id, secret, dev.role.value)
    if dev.station:
        msg["station"] = dev.station
    return msg


def fat_order(key: str, lines: int, note: int = 300) -> dict[str, Any]:
    """A kiosk order of `lines` wok lines, each with a note of `note` characters (about 0.7 KB a line on the wire)."""
    return kiosk_order(key, items=[{"sku": "WOK-MAPO", "note": "n" * note} for _ in range(lines)])


async def is_served(client: HubClient, key: str | None = None) -> None:
    """The client's device is answered: a ping, and (a source) an order."""
    pong = await client.request({"type": "ping"}, timeout=5)
    assert isinstance(pong, Pong), pong
    if key is not None:
        acc = await client.request({"type": "order.submit", "order": kiosk_order(key)}, timeout=5)
        assert isinstance(acc, OrderAccepted) and acc.duplicate is False, acc


async def link_of(server: HubServer, port: int) -> Link:
    """The hub's Link of the connection from this local port (once the hub has it)."""

    def find() -> Link | None:
        return next((k for k in server._links.values() if k.conn.remote_address[1] == port), None)

    await until(lambda: find() is not None, what="the hub has the connection")
    link = find()
    assert link is not None
    return link


class Silent:
    """A websocket client on a bare socket that reads only when `read` is called: past that, nothing it is sent
    moves. Its receive buffer is small, and the hub's socket of it gets a small send buffer (the kernel would
    otherwise autotune it to megabytes), so what the hub sends it piles up in the hub within a few hundred KB."""

    def __init__(self, server: HubServer, sock: socket.socket, proto: ClientProtocol, link: Link) -> None:
        self.server = server
        self.sock = sock
        self.proto = proto
        self.link = link
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, server: HubServer) -> Silent:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        proto = ClientProtocol(parse_uri(server.url), max_size=None)
        proto.send_request(proto.connect())
        await loop.sock_sendall(sock, b"".join(proto.data_to_send()))
        async with asyncio.timeout(5):
            while proto.state is State.CONNECTING:
                data = await loop.sock_recv(sock, 65536)
                assert data, "the hub hung up during the websocket handshake"
                proto.receive_data(data)
        assert proto.handshake_exc is None, proto.handshake_exc
        proto.events_received()  # the 101 response
        link = await link_of(server, sock.getsockname()[1])
        hub_sock = link.conn.transport.get_extra_info("socket")
        hub_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        return cls(server, sock, proto, link)

    async def send(self, msg: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(msg).encode())
        await asyncio.get_running_loop().sock_sendall(self.sock, b"".join(self.proto.data_to_send()))

    async def read(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        """Read (and answer pings) until `done(frames)` holds; then nothing more is read."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not done(self.frames):
                data = await loop.sock_recv(self.sock, 65536)
                assert data, "the hub hung up"
                self.proto.receive_data(data)
                for ev in self.proto.events_received():
                    assert isinstance(ev, Frame), ev  # past the handshake, only frames
                    if ev.opcode is Opcode.TEXT:
                        self.frames.append(json.loads(bytes(ev.data)))
                out = b"".join(self.proto.data_to_send())  # pongs
                if out:
                    await loop.sock_sendall(self.sock, out)

    def close(self) -> None:
        self.sock.close()


class OutboxWatch:
    """The most bytes each connection's outbox held (its queue plus its socket's write buffer): checked after every
    `Outbox.put` and sampled every millisecond, for every link of the hub; and every close the hub made."""

    def __init__(self, server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = server
        self.peak: dict[int, int] = {}
        self.queued: dict[int, int] = {}
        """The most bytes waiting in each outbox's own queue (the hub holds them, not the kernel)."""
        self.held_all: dict[int, int] = {}
        """The most bytes each outbox held, welcome frames included (`peak` counts what the cap counts)."""
        self.samples = 0
        self.closes: list[tuple[Link, int]] = []
        self.closed_at: list[float] = []
        """Every connection the hub closed (with its code), and when."""
        self._task: asyncio.Task[None] | None = None
        put = Outbox.put
        watch = self
        close = server._close

        def recorded_close(link: Link, code: int, reason: str) -> None:
            if not link.closing:
                watch.closes.append((link, code))
                watch.closed_at.append(time.monotonic())
            close(link, code, reason)

        monkeypatch.setattr(server, "_close", recorded_close)

        def checked_put(box: Outbox, data: bytes, **kw: Any) -> bool:
            ok = put(box, data, **kw)
            watch._see(box)
            return ok

        monkeypatch.setattr(Outbox, "put", checked_put)

    def _see(self, box: Outbox) -> None:
        self.peak[id(box)] = max(self.peak.get(id(box), 0), box.held())
        self.held_all[id(box)] = max(self.held_all.get(id(box), 0), box.buffered())
        self.queued[id(box)] = max(self.queued.get(id(box), 0), box.queued)

    async def _sample(self) -> None:
        while True:
            for link in list(self.server._links.values()):
                self._see(link.outbox)
            self.samples += 1
            await asyncio.sleep(0.001)

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    def of(self, link: Link) -> int:
        return self.peak.get(id(link.outbox), 0)


class Latency:
    """Submit → `order.created` event on a kitchen screen, per order key."""

    def __init__(self, screen: HubClient) -> None:
        self.sent: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        screen.listeners.append(self._on_frame)

    def _on_frame(self, frame: HubFrame) -> None:
        if isinstance(frame, Event) and frame.kind is EventKind.ORDER_CREATED:
            self.seen.setdefault(frame.order.key, time.monotonic())

    async def rush(self, source: HubClient, prefix: str, n: int, lines: int, batch: int = 10) -> list[str]:
        """Submit `n` orders of `lines` lines, `batch` at a time; every one must be accepted."""
        ids: list[str] = []
        for start in range(0, n, batch):
            keys = [f"{prefix}-{k}" for k in range(start, min(n, start + batch))]
            now = time.monotonic()
            self.sent.update(dict.fromkeys(keys, now))
            answers = await asyncio.gather(
                *(source.request({"type": "order.submit", "order": fat_order(k, lines)}, timeout=10) for k in keys)
            )
            assert all(isinstance(a, OrderAccepted) for a in answers), answers
            ids += [a.order_id for a in answers if isinstance(a, OrderAccepted)]
        return ids

    async def p99(self, prefix: str) -> float:
        keys = [k for k in self.sent if k.startswith(prefix)]
        await until(lambda: all(k in self.seen for k in keys), timeout=10, what="the kitchen screen has every order")
        lat = sorted(self.seen[k] - self.sent[k] for k in keys)
        return lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)]


# --------------------------------------------------------------------------------------------- 1. hostile text

LONE = "\\ud800"
"""A JSON escape of a lone UTF-16 surrogate: valid JSON, not valid text (UTF-8 cannot carry it)."""


def _submit_frame(ref: str, key: str, note: str) -> str:
    """An order.submit whose first item's note is `note`, spliced in as raw JSON string content."""
    frame = json.dumps({"type": "order.submit", "ref": ref, "order": kiosk_order(key, items=[{"sku": "WOK-MAPO"}])})
    return frame.replace('{"sku": "WOK-MAPO"}', '{"sku": "WOK-MAPO", "note": "' + note + '"}')


HOSTILE = [
    pytest.param('{"type":"ping","ref":"' + LONE + '"}', ["ref"], None, id="ping-ref-high"),
    pytest.param('{"type":"ping","ref":"r-\\uDC00"}', ["ref"], None, id="ping-ref-low-upper"),
    pytest.param('{"type":"ping","ref":"r-key","' + LONE + 'x":1}', ["\\ud800x"], "r-key", id="object-key"),
    pytest.param(_submit_frame("r-note", "k-lone", "fish " + LONE), ["order", "items", 0, "note"], "r-note", id="note"),
    pytest.param(
        _submit_frame("r-note2", "k-lone2", "\\ude00\\ud83d"),
        ["order", "items", 0, "note"],
        "r-note2",
        id="pair-swapped",
    ),
]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize(("frame", "loc", "ref"), HOSTILE)
async def test_lone_surrogate_is_invalid_message_and_the_hub_serves_on(
    frame: str,
    loc: list[Any],
    ref: str | None,
    binary: bool,
    hub: HubServer,
    connect: Any,
    config: StoreConfig,
    db_path: Path,
) -> None:
    kiosk = await connect("kiosk-2")
    wok = await connect("wok-1")
    bad = await Raw.open(hub.url, config, "kiosk-1")
    seq = hub.hub.seq

    await bad.send(frame.encode("ascii") if binary else frame)
    err = await bad.reply()  # websockets decodes it: the answer itself is valid UTF-8

    assert err["type"] == "error" and err["code"] == ErrorCode.INVALID_MESSAGE.value, err
    Error.model_validate(err)
    assert err["ref"] == ref
    assert err["errors"][0]["loc"] == loc, err["errors"]
    assert "surrogate" in err["errors"][0]["msg"]
    assert hub.hub.seq == seq, "a refused frame made an event"

    # The sender and everyone else are served on; nothing of the frame is stored anywhere.
    await bad.ping()
    await is_served(kiosk, "after-hostile")
    ping = await wok.request({"type": "ping"})
    assert isinstance(ping, Pong)
    await until(lambda: len(wok.book.orders) == 1)
    _, docs = db_state(db_path, config)
    assert [d["key"] for d in docs.values()] == ["after-hostile"]
    assert [o.key for o in hub.hub.orders.values()] == ["after-hostile"]
    await bad.close()


@pytest.mark.parametrize(
    ("note", "stored"),
    [
        pytest.param("\\ud83d\\udc1f fish", "\U0001f41f fish", id="escaped-pair"),
        pytest.param("\\\\ud800 is text", "\\ud800 is text", id="escaped-backslash"),
        pytest.param("\\u00e9\\u9c7c", "é鱼", id="bmp-escapes"),
    ],
)
async def test_escapes_that_are_text_are_accepted(
    note: str, stored: str, hub: HubServer, connect: Any, config: StoreConfig, db_path: Path
) -> None:
    """The surrogate check has no false alarms: a proper pair, an escaped backslash, ordinary escapes."""
    wok = await connect("wok-1")
    bad = await Raw.open(hub.url, config, "kiosk-1")
    await bad.send(_submit_frame("r-text", "k-text", note))
    acc = await bad.reply()
    assert acc["type"] == "order.accepted", acc
    await until(lambda: acc["order_id"] in wok.book.orders)
    assert wok.book.orders[acc["order_id"]].items[0].note == stored
    _, docs = db_state(db_path, config)
    assert docs[acc["order_id"]]["items"][0]["note"] == stored
    await bad.close()


@pytest.mark.parametrize("field", ["client", "device", "token"])
async def test_lone_surrogate_in_a_hello_is_a_bad_hello(
    field: str, hub: HubServer, connect: Any, config: StoreConfig
) -> None:
    kiosk = await connect("kiosk-1")
    frame = json.dumps({**device_hello(config, "wok-1"), "client": "tablet"})
    frame = frame.replace(f'"{field}": "', f'"{field}": "{LONE}', 1)
    conn = await open_ws_url(hub.url)
    await conn.send(frame)
    err, closed = await refused(conn)
    assert err["code"] == ErrorCode.BAD_HELLO.value and err["ref"] is None, err
    assert err["errors"][0]["loc"] == [field], err
    assert closed.rcvd is not None and closed.rcvd.code == CloseCode.BAD_HELLO
    assert "wok-1" not in {s.device.id for s in hub.sessions}
    await is_served(kiosk, "after-bad-hello")


# ---------------------------------------------------------------------------------------- 2. devices that stop reading

SLOW = {"outbox_max_bytes": 512 * 1024, "outbox_stall_s": 1.0, "snapshot_page_bytes": 32 * 1024}
"""A small outbox cap and stall limit; welcome pages small next to the cap (one frame may go out whole)."""
SLACK = 256
"""Bytes the hub may write past its outbox (a ping, the close frame)."""
OPEN_ORDERS = 12
"""Open orders of 40 lines on the hub before the slow counter connects: a welcome of ~350 KB in ~11 pages."""
RUSH = {
    ("mid-welcome", "past-the-cap"): 150,
    ("mid-welcome", "stalled"): 12,
    ("mid-rush", "past-the-cap"): 200,
    ("mid-rush", "stalled"): 60,
}
"""Orders of 10 lines (~7 KB each to the counter) in the rush: past the cap, or well under it (then the stall
limit closes the connection)."""


def welcomed(frames: list[dict[str, Any]]) -> bool:
    return bool(frames) and len(frames) >= 1 + frames[0]["pages"]


def twenty_events(frames: list[dict[str, Any]]) -> bool:
    return sum(1 for f in frames if f["type"] == "event") >= 20


@pytest.mark.parametrize("how", ["past-the-cap", "stalled"])
@pytest.mark.parametrize("when", ["mid-welcome", "mid-rush"])
async def test_device_that_stops_reading_is_closed_4011_and_the_kitchen_keeps_pace(
    when: str,
    how: str,
    make_hub: MakeHub,
    silent: MakeSilent,
    devices: Devices,
    config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = await make_hub(**SLOW)
    lim = server.limits
    watch = OutboxWatch(server, monkeypatch)
    kiosk = await devices.connect(server.url, "kiosk-1")
    wok = await devices.connect(server.url, "wok-1")
    lat = Latency(wok)
    await lat.rush(kiosk, "open", OPEN_ORDERS, lines=40)

    slow = await silent(server)
    await slow.send(device_hello(config, "counter-1"))
    link = slow.link
    watch.start()
    try:
        if when == "mid-welcome":
            # It never reads: part of its welcome waits in the hub when the rush starts.
            await until(lambda: link.outbox.queued > 0 or link.closing, what="part of the welcome waits")
            stopped_at = time.monotonic()
            assert link.session is not None and link.session.device.id == "counter-1"
            assert not link.closing, "closed before it had a chance to read"
            await lat.rush(kiosk, "rush", RUSH[when, how], lines=10)
        else:
            # It reads its whole (paged) welcome and the first twenty events of the rush, then stops reading.
            await slow.read(welcomed)
            assert slow.frames[0]["type"] == "welcome" and slow.frames[0]["pages"] >= 2
            assert sum(len(f["snapshot"]["orders"]) for f in slow.frames) == OPEN_ORDERS
            rush = asyncio.create_task(lat.rush(kiosk, "rush", RUSH[when, how], lines=10))
            await slow.read(twenty_events)
            stopped_at = time.monotonic()
            assert not link.closing
            await rush
        await until(lambda: link.closing, timeout=lim.outbox_stall_s + TICK_S + 1, what="the slow one is closed")
    finally:
        await watch.stop()
    assert watch.closes == [(link, CloseCode.TOO_SLOW)], "only the slow one, with 4011"
    closed_after = watch.closed_at[0] - stopped_at
    peak = watch.of(link)
    if how == "past-the-cap":
        assert peak > lim.outbox_max_bytes - 64 * 1024, "closed as its outbox reached the cap"
    else:
        assert watch.queued[id(link.outbox)] > 0 and peak < lim.outbox_max_bytes - 64 * 1024
        assert closed_after >= lim.outbox_stall_s - 0.1, "closed for its stall: not before the stall limit"
    assert closed_after <= lim.outbox_stall_s + TICK_S + 0.5, closed_after

    # The hub never held more than the cap for any connection.
    assert watch.samples > 10
    assert max(watch.peak.values()) <= lim.outbox_max_bytes + SLACK, watch.peak
    # The kitchen screen kept pace all along, and nobody else was dropped.
    assert await lat.p99("rush") < 1.0
    assert wok.connections == 1 and kiosk.connections == 1
    await is_served(kiosk, "after-slow")
    # The slow connection leaves the hub (its TCP connection is cut when it does not answer the close).
    await until(lambda: link.conn not in server._links, timeout=CLOSE_TIMEOUT_S + 2, what="the link is gone")
    assert link.session not in server.sessions


async def test_a_welcome_larger_than_the_cap_reaches_a_slow_reader_whole(
    make_hub: MakeHub, silent: MakeSilent, devices: Devices, config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store with more open orders than `outbox_max_bytes` holds: a counter that reads, however slowly, gets its
    whole welcome instead of being closed 4011 and reconnecting for ever; what comes behind it still counts."""
    server = await make_hub(**SLOW)
    lim = server.limits
    watch = OutboxWatch(server, monkeypatch)
    kiosk = await devices.connect(server.url, "kiosk-1")
    lat = Latency(await devices.connect(server.url, "wok-1"))
    await lat.rush(kiosk, "open", 2 * OPEN_ORDERS, lines=40)  # a counter's welcome of ~700 KB

    slow = await silent(server)
    await slow.send(device_hello(config, "counter-1"))
    link = slow.link
    watch.start()
    try:
        await until(lambda: link.outbox.welcome_queued > 0, what="the welcome waits in the hub")
        await slow.read(welcomed)
    finally:
        await watch.stop()
    assert not link.closing and watch.closes == []
    assert sum(len(f["snapshot"]["orders"]) for f in slow.frames) == 2 * OPEN_ORDERS
    assert watch.held_all[id(link.outbox)] > lim.outbox_max_bytes, "the welcome was larger than the cap"
    assert watch.peak[id(link.outbox)] <= lim.outbox_max_bytes + SLACK, "what the cap counts stayed under it"
    await is_served(kiosk, "after-big-welcome")


async def test_a_welcome_larger_than_the_cap_that_is_not_read_is_closed_for_its_stall(
    make_hub: MakeHub, silent: MakeSilent, devices: Devices, config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The smallest cap the config allows for its page size (pages of 64 KiB, a cap of 64 + 256 KiB).
    server = await make_hub(snapshot_page_bytes=64 * 1024, outbox_max_bytes=320 * 1024, outbox_stall_s=1.0)
    watch = OutboxWatch(server, monkeypatch)
    kiosk = await devices.connect(server.url, "kiosk-1")
    # A welcome (about 450 KB) larger than the cap, for a counter that never reads it: the cap does not count the
    # welcome (it is built whole anyway), the stall limit closes the counter.
    await Latency(await devices.connect(server.url, "wok-1")).rush(kiosk, "open", 3 * OPEN_ORDERS, lines=40)
    slow = await silent(server)
    await slow.send(device_hello(config, "counter-1"))
    await until(lambda: slow.link.outbox.welcome_queued > 0, what="the welcome waits in the hub")
    waiting_from = time.monotonic()
    await until(lambda: slow.link.closing, timeout=5, what="the slow counter is closed (4011)")
    assert watch.closes == [(slow.link, CloseCode.TOO_SLOW)]
    assert watch.closed_at[0] - waiting_from >= server.limits.outbox_stall_s - 0.1, "for its stall, not its size"
    assert watch.of(slow.link) <= server.limits.outbox_max_bytes + SLACK, watch.of(slow.link)


# --------------------------------------------------------------------------------------------- 3. keepalive


@pytest.mark.parametrize("full", [False, True], ids=["idle", "full-buffer"])
async def test_peer_that_stops_answering_pings_is_dropped(
    full: bool, make_hub: MakeHub, silent: MakeSilent, devices: Devices, config: StoreConfig
) -> None:
    # Stall and cap out of the way: only the keepalive may drop it.
    server = await make_hub(keepalive_interval_s=0.3, keepalive_timeout_s=0.5, outbox_stall_s=60.0)
    lim = server.limits
    kiosk = await devices.connect(server.url, "kiosk-1")
    wok = await devices.connect(server.url, "wok-1")
    peer = await silent(server)
    await peer.send(device_hello(config, "counter-1"))
    since = time.monotonic()
    link = peer.link
    await until(lambda: link.session is not None)
    rush: asyncio.Task[list[str]] | None = None
    if full:
        lat = Latency(wok)
        rush = asyncio.create_task(lat.rush(kiosk, "full", 40, lines=40, batch=20))
        await until(lambda: link.outbox.queued > 0 or rush.done(), what="frames wait for the silent peer")
        assert link.outbox.queued > 0, "the silent peer's buffer filled"
        assert not link.closing
    # A ping goes out (even behind a full buffer) and is not answered: the hub drops it, within one interval, the
    # timeout, and a housekeeping tick for each of them.
    await until(lambda: link.conn not in server._links, timeout=lim.keepalive_interval_s + lim.keepalive_timeout_s + 3)
    dropped_after = time.monotonic() - since
    assert dropped_after <= lim.keepalive_interval_s + lim.keepalive_timeout_s + 2 * TICK_S + 0.3, dropped_after
    assert server.closes[1006] == 1 and server.closes[CloseCode.TOO_SLOW] == 0, server.closes
    assert link.session not in server.sessions
    if rush is not None:
        await rush
    # Devices that answer their pings are never dropped, at the same interval.
    await is_served(kiosk, "after-silence")
    assert kiosk.connections == 1 and wok.connections == 1


# --------------------------------------------------------------------------------------------- 4. rate limits


async def test_frames_past_the_rate_get_rate_limited_then_4029(
    make_hub: MakeHub, devices: Devices, config: StoreConfig
) -> None:
    # A rate so low that nothing refills during the test: the counts are exact. (The other device's own frames,
    # about fifteen, stay within its own burst.)
    server = await make_hub(frames_per_s=0.01, frame_burst=20, abuse_burst=20)
    lim = server.limits
    kiosk = await devices.connect(server.url, "kiosk-2")
    flood = await Raw.open(server.url, config, "kiosk-1")

    # Within the burst: answered.
    for k in range(lim.frame_burst):
        await flood.ping(f"in-{k}")
    # Past it: rate_limited with the frame's ref, nothing done; another device is answered all along.
    seq = server.hub.seq
    over: list[dict[str, Any]] = []
    for k in range(5):
        await flood.send({"type": "order.submit", "ref": f"over-{k}", "order": kiosk_order(f"over-{k}")})
        over.append(await flood.reply())
        await is_served(kiosk)
    await flood.send("not json")
    over.append(await flood.reply())
    for e in over:
        assert e["type"] == "error" and e["code"] == ErrorCode.RATE_LIMITED.value, e
        Error.model_validate(e)
    assert [e["ref"] for e in over] == [*(f"over-{k}" for k in range(5)), None]
    assert server.hub.seq == seq
    assert not any(o.key.startswith("over-") for o in server.hub.orders.values())

    # Far past it: closed with 4029 once abuse_burst frames in all were refused.
    with contextlib.suppress(ConnectionClosed):
        for k in range(lim.abuse_burst + 10):
            await flood.send({"type": "ping", "ref": f"far-{k}"})
            if k % 5 == 0:
                await is_served(kiosk)
    answers: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(5):
            while True:
                answers.append(json.loads(await flood.conn.recv()))
    assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.RATE_LIMITED
    assert [a["ref"] for a in answers] == [f"far-{k}" for k in range(lim.abuse_burst - len(over))]
    assert all(a["code"] == ErrorCode.RATE_LIMITED.value for a in answers), answers
    assert server.closes[CloseCode.RATE_LIMITED] == 1
    await is_served(kiosk)
    # The buckets are the device's, not the connection's: a new connection of it is closed at its first frame.
    again = await Raw.open(server.url, config, "kiosk-1")
    await again.send({"type": "ping", "ref": "again"})
    with pytest.raises(ConnectionClosed) as info:
        await again.reply()
    assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.RATE_LIMITED
    await is_served(kiosk, "after-flood")


async def _open(server: HubServer) -> ClientConnection:
    return await open_ws_url(server.url)


async def test_too_many_new_connections_from_one_address_get_4029(
    make_hub: MakeHub, devices: Devices, config: StoreConfig
) -> None:
    server = await make_hub(hellos_per_s=0.1, hello_burst=4)
    kiosk = await devices.connect(server.url, "kiosk-1")  # the first of the address's four
    monitors = [await Raw.open(server.url, config, "monitor-1") for _ in range(3)]

    conn = await _open(server)
    err, closed = await refused(conn)
    assert err["type"] == "error" and err["code"] == ErrorCode.RATE_LIMITED.value and err["ref"] is None, err
    Error.model_validate(err)
    assert closed.rcvd is not None and closed.rcvd.code == CloseCode.RATE_LIMITED
    assert server.closes[CloseCode.RATE_LIMITED] == 1
    # Those already connected are served.
    await is_served(kiosk, "after-hello-flood")
    for m in monitors:
        await m.ping()
        await m.close()


async def test_refused_hellos_past_the_burst_lock_the_address_out(
    make_hub: MakeHub, devices: Devices, config: StoreConfig
) -> None:
    server = await make_hub(auth_failures_per_min=0.6, auth_failure_burst=3)
    kiosk = await devices.connect(server.url, "kiosk-1")
    for _ in range(server.limits.auth_failure_burst):
        conn = await _open(server)
        await conn.send(json.dumps(device_hello(config, "shelf-1", token="not-the-token")))
        err, closed = await refused(conn)
        assert err["code"] == ErrorCode.UNAUTHORIZED.value, err
        assert closed.rcvd is not None and closed.rcvd.code == CloseCode.UNAUTHORIZED
    # Now even the right token is refused, before its hello is read.
    conn = await _open(server)
    with contextlib.suppress(ConnectionClosed):  # the hub may have refused it already
        await conn.send(json.dumps(device_hello(config, "shelf-1")))
    err, closed = await refused(conn)
    assert err["code"] == ErrorCode.RATE_LIMITED.value and err["ref"] is None, err
    assert closed.rcvd is not None and closed.rcvd.code == CloseCode.RATE_LIMITED
    assert "shelf-1" not in {s.device.id for s in server.sessions}
    await is_served(kiosk, "after-auth-flood")


# --------------------------------------------------------------------------------------------- 5. connection caps


async def test_third_connection_of_a_device_is_refused_4012(
    make_hub: MakeHub, devices: Devices, config: StoreConfig
) -> None:
    server = await make_hub(max_connections_per_device=2)
    kiosk = await devices.connect(server.url, "kiosk-1")
    first = await Raw.open(server.url, config, "wok-1")
    second = await Raw.open(server.url, config, "wok-1")

    conn = await _open(server)
    await conn.send(json.dumps(device_hello(config, "wok-1")))
    err, closed = await refused(conn)
    assert err["code"] == ErrorCode.TOO_MANY_CONNECTIONS.value and err["ref"] is None, err
    assert err["errors"][0]["loc"] == ["device"]
    assert closed.rcvd is not None and closed.rcvd.code == CloseCode.TOO_MANY_CONNECTIONS
    assert sum(s.device.id == "wok-1" for s in server.sessions) == 2
    await first.ping()
    await second.ping()
    await is_served(kiosk)

    # One goes: a new one is accepted.
    await first.close()
    await until(lambda: sum(s.device.id == "wok-1" for s in server.sessions) == 1)
    third = await Raw.open(server.url, config, "wok-1")
    await third.ping()
    await second.ping()
    await third.close()
    await second.close()


async def test_connections_past_max_connections_are_refused_4012(
    make_hub: MakeHub, devices: Devices, config: StoreConfig
) -> None:
    server = await make_hub(max_connections=3)
    kiosk = await devices.connect(server.url, "kiosk-1")
    a = await Raw.open(server.url, config, "monitor-1")
    b = await Raw.open(server.url, config, "wok-1")

    conn = await _open(server)
    err, closed = await refused(conn)  # before any hello
    assert err["code"] == ErrorCode.TOO_MANY_CONNECTIONS.value and err["ref"] is None, err
    assert closed.rcvd is not None and closed.rcvd.code == CloseCode.TOO_MANY_CONNECTIONS
    assert server.closes[CloseCode.TOO_MANY_CONNECTIONS] == 1
    await a.ping()
    await b.ping()
    await is_served(kiosk, "after-cap")
    await a.close()
    await b.close()


@pytest.mark.parametrize("limit", ["max_connections", "hello_rate"])
async def test_refused_connections_do_not_stay_in_the_hub(
    limit: str, make_hub: MakeHub, devices: Devices, config: StoreConfig
) -> None:
    if limit == "max_connections":
        server = await make_hub(max_connections=2)
    else:
        server = await make_hub(max_connections=3, hellos_per_s=50.0, hello_burst=2)
    kiosk = await devices.connect(server.url, "kiosk-1")
    a = await Raw.open(server.url, config, "monitor-1")
    conn = await _open(server)
    err, _closed = await refused(conn)
    assert err["code"] in (ErrorCode.TOO_MANY_CONNECTIONS.value, ErrorCode.RATE_LIMITED.value), err
    await a.close()
    await until(lambda: "monitor-1" not in {s.device.id for s in server.sessions})
    if limit == "hello_rate":
        await until(lambda: server._hellos["127.0.0.1"].peek(time.monotonic()), what="the hello bucket refills")
    # Only the kiosk is connected now: the refused connection is gone from the hub, and a new one is welcome.
    await until(lambda: len(server._links) == 1, timeout=1.0, what="only live links are held")
    again = await Raw.open(server.url, config, "monitor-1")
    await again.ping()
    await again.close()
    await is_served(kiosk)


# --------------------------------------------------------------------------------------------- 6. items per order


async def test_amendments_cannot_grow_an_order_past_max_items(
    make_hub: MakeHub, devices: Devices, config: StoreConfig, db_path: Path
) -> None:
    server = await make_hub(max_items_per_order=5)
    cap = server.hub.limits.max_items_per_order
    kiosk = await devices.connect(server.url, "kiosk-1")
    monitor = await devices.connect(server.url, "monitor-1")
    frame = {"type": "order.submit", "order": kiosk_order("grow", items=[{"sku": "WOK-MAPO"}] * 2)}
    oid = (await kiosk.request(frame, expect=OrderAccepted)).order_id

    def amend(**fields: Any) -> dict[str, Any]:
        return {"type": "order.amend", "order_id": oid, **fields}

    one = [{"sku": "WOK-KUNGPAO"}]
    await kiosk.request(amend(add=one), expect=Ack)  # 3
    await kiosk.request(amend(add=one * 2), expect=Ack)  # 5: the cap
    refusals = [
        await kiosk.request(amend(add=one)),  # 6
        await kiosk.request(amend(add=one * 3)),
    ]
    await kiosk.request(amend(remove=["1"]), expect=Ack)
    refusals.append(await kiosk.request(amend(add=one)))  # removed lines count
    for err in refusals:
        assert isinstance(err, Error) and err.code is ErrorCode.INVALID_ORDER, err
        assert [e.loc for e in err.errors] == [["add"]], err
    # Nothing of the refused amendments anywhere: the database, the hub, the kitchen screen.
    sync = await kiosk.request({"type": "order.submit", "order": kiosk_order("sync")}, expect=OrderAccepted)
    await until(lambda: sync.order_id in monitor.book.orders)
    _, docs = db_state(db_path, config)
    assert len(docs[oid]["items"]) == cap
    assert sum(not i["removed"] for i in docs[oid]["items"]) == cap - 1
    assert len(server.hub.orders[oid].items) == cap
    assert OrderView.model_validate(docs[oid]) == monitor.book.orders[oid]


async def test_submit_cannot_pass_max_items(
    make_hub: MakeHub, devices: Devices, config: StoreConfig, db_path: Path
) -> None:
    server = await make_hub(max_items_per_order=5)
    kiosk = await devices.connect(server.url, "kiosk-1")
    ans = await kiosk.request({"type": "order.submit", "order": kiosk_order("six", items=[{"sku": "WOK-MAPO"}] * 6)})
    _, docs = db_state(db_path, config)
    assert all(len(d["items"]) <= server.hub.limits.max_items_per_order for d in docs.values())
    assert isinstance(ans, Error) and ans.code is ErrorCode.INVALID_ORDER, ans
    assert ans.errors[0].loc[:2] == ["order", "items"], ans


# --------------------------------------------------------------------------------------------- 7. quiet logs


async def test_invalid_frames_are_logged_once_per_interval_with_a_count(
    make_hub: MakeHub, devices: Devices, config: StoreConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kds.server")
    server = await make_hub(log_interval_s=0.2)
    interval = server.limits.log_interval_s
    loud = await Raw.open(server.url, config, "kiosk-1")
    other = await Raw.open(server.url, config, "shelf-1")

    def lines(device: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "kds.server" and f"error to {device}:" in r.getMessage()]

    n = 500
    t0 = time.monotonic()
    for k in range(n):
        await loud.send(f"not json {k}")
    answers = [await loud.reply() for _ in range(n)]
    elapsed = time.monotonic() - t0
    assert all(a["code"] == ErrorCode.INVALID_JSON.value for a in answers)
    during = len(lines("kiosk-1"))
    assert 1 <= during <= 2 + elapsed / interval, (during, elapsed)
    mentions = [r.getMessage() for r in caplog.records if r.name == "kds.server" and "kiosk-1" in r.getMessage()]
    assert len(mentions) <= during + 1, mentions  # and its "connected" line
    # Another device's line is not held back by the loud one's.
    await other.send("not json either")
    assert (await other.reply())["code"] == ErrorCode.INVALID_JSON.value
    assert len(lines("shelf-1")) == 1 and "more like it" not in lines("shelf-1")[0].getMessage()

    # One more after the interval: logged, with the count of those held back.
    last = lines("kiosk-1")[-1].created
    await until(lambda: time.time() - last > interval, what="the interval passes")
    await loud.send("one more")
    assert (await loud.reply())["code"] == ErrorCode.INVALID_JSON.value
    got = lines("kiosk-1")
    assert len(got) == during + 1
    held = [
        int(r.getMessage().rsplit("(and ", 1)[1].split()[0]) if "more like it)" in r.getMessage() else 0 for r in got
    ]
    assert held[-1] > 0, got[-1].getMessage()
    assert sum(held) + len(got) == n + 1, "every refused frame is either logged or counted in a later line"
    for a, b in itertools.pairwise(got):
        assert b.created - a.created >= interval - 0.02, "two lines about one device within an interval"
    await loud.ping()
    await loud.close()
    await other.close()
