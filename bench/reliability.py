"""Reliability probes: the hub as a hostile device, a slow screen and a failing database would try it.

    .venv/bin/python bench/reliability.py [--quick]

Starts `kds serve` (a separate process, loopback only, the sample store with its printers writing to /dev/null) on
a temporary SQLite file, with the default limits, and runs each probe against it while a wok screen keeps pinging
(its round trips are the "other devices keep being served" figure). The hub's resident memory (VmRSS) is read
from /proc. Prints a table and one JSON object. Figures, not a test: the tests (tests/test_reliability.py,
tests/test_db_faults.py, tests/test_welcome_size.py) are the short versions that gate CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import _free_port, _pct, _wait_port  # noqa: E402
from bench.soak import quiet_printers, rss_mb  # noqa: E402
from kds.client import HubClient  # noqa: E402
from kds.config import Device, StoreConfig, load_config  # noqa: E402
from kds.protocol import Error, ErrorCode, OrderAccepted  # noqa: E402
from kds.wire import HubFrame  # noqa: E402


def device_of(config: StoreConfig, device: str) -> Device:
    """A device the bench's store config must have."""
    dev = config.device(device)
    assert dev is not None, device
    return dev


def hello(config: StoreConfig, device: str, **over: Any) -> dict[str, Any]:
    dev = config.device(device)
    assert dev is not None, device
    msg: dict[str, Any] = {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value}
    if dev.station:
        msg["station"] = dev.station
    return {**msg, **over}


class RawPeer:
    """A websocket client on a bare socket: it sends what it is told, reads only when told, never answers pings."""

    def __init__(self, sock: socket.socket, proto: ClientProtocol) -> None:
        self.sock, self.proto = sock, proto

    @classmethod
    async def open(cls, url: str, rcvbuf: int = 4096) -> RawPeer:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        port = int(url.rsplit(":", 1)[1])
        await loop.sock_connect(sock, ("127.0.0.1", port))
        proto = ClientProtocol(parse_uri(url), max_size=None)
        proto.send_request(proto.connect())
        await loop.sock_sendall(sock, b"".join(proto.data_to_send()))
        async with asyncio.timeout(5):
            while proto.state is State.CONNECTING:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    raise ConnectionError("hung up during the handshake")
                proto.receive_data(data)
        proto.events_received()
        return cls(sock, proto)

    async def send(self, msg: dict[str, Any] | str) -> None:
        self.proto.send_text((msg if isinstance(msg, str) else json.dumps(msg)).encode())
        await asyncio.get_running_loop().sock_sendall(self.sock, b"".join(self.proto.data_to_send()))

    async def read_until_gone(self, timeout: float) -> tuple[float, int | None]:
        """Read (never answering pings) until the hub closes or cuts the connection: (seconds, close code)."""
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        code: int | None = -1  # -1: still open when the timeout came
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        data = await loop.sock_recv(self.sock, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        code = None if code == -1 else code  # None: cut without a close frame
                        break
                    self.proto.receive_data(data)
                    for ev in self.proto.events_received():
                        assert isinstance(ev, Frame), ev  # past the handshake, only frames
                        if ev.opcode is Opcode.CLOSE and len(ev.data) >= 2:
                            code = int.from_bytes(ev.data[:2], "big")
                    self.proto.data_to_send()  # dropped: no pong, no close answer
        return time.monotonic() - t0, code

    def close(self) -> None:
        self.sock.close()


class Pinger:
    """The wok screen's round trips, all the time: what every other device sees while a probe runs."""

    def __init__(self, client: HubClient) -> None:
        self.client = client
        self.rtts: list[float] = []
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.rtts, self.failures = [], 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            try:
                await self.client.request({"type": "ping"}, timeout=5)
                self.rtts.append((time.perf_counter() - t) * 1000)
            except Exception:
                self.failures += 1
            await asyncio.sleep(0.02)

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return {
            "pings": len(self.rtts),
            "p50_ms": round(_pct(self.rtts, 50), 2),
            "p99_ms": round(_pct(self.rtts, 99), 2),
            "failed": self.failures,
        }


async def probe_surrogate(url: str, config: StoreConfig) -> dict[str, Any]:
    async with ws_connect(url) as kiosk:
        await kiosk.send(json.dumps(hello(config, "kiosk-1")))
        await kiosk.recv()
        await kiosk.send('{"type":"ping","ref":"\\ud800"}')
        err = json.loads(await kiosk.recv())
        await kiosk.send('{"type":"ping","ref":"after"}')
        pong = json.loads(await kiosk.recv())
    return {"answer": err.get("code"), "loc": err.get("errors", [{}])[0].get("loc"), "then": pong.get("type")}


async def probe_flood(url: str, config: StoreConfig, frames: int, log: Path) -> dict[str, Any]:
    log_before = log.stat().st_size
    sent, answers, code = 0, 0, None
    t0 = time.monotonic()
    async with ws_connect(url, max_size=None) as flooder:
        await flooder.send(json.dumps(hello(config, "kiosk-2")))
        await flooder.recv()

        async def drain() -> None:
            nonlocal answers
            with contextlib.suppress(ConnectionClosed):
                async for _ in flooder:
                    answers += 1

        reader = asyncio.ensure_future(drain())
        with contextlib.suppress(ConnectionClosed):
            for k in range(frames):
                await flooder.send('{"type": "ping", "ref": "x"' if k % 2 else "not json")
                sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, 10)
        code = flooder.close_code
    return {
        "sent": sent,
        "seconds": round(time.monotonic() - t0, 2),
        "answered": answers,
        "closed_with": code,  # 4029: the flooder went on far past its frame rate
        "log_bytes": log.stat().st_size - log_before,
    }


async def probe_wrong_tokens(url: str, config: StoreConfig, n: int) -> dict[str, Any]:
    codes: dict[str, int] = {}
    t0 = time.monotonic()
    sem = asyncio.Semaphore(20)

    async def one(k: int) -> None:
        async with sem:
            try:
                async with ws_connect(url, open_timeout=5) as c:
                    await c.send(json.dumps(hello(config, "kiosk-1", token=f"guess-{k}")))
                    while True:
                        await c.recv()
            except ConnectionClosed as exc:
                key = str(exc.rcvd.code) if exc.rcvd is not None else "cut"
            except (OSError, TimeoutError) as exc:
                key = type(exc).__name__
            codes[key] = codes.get(key, 0) + 1

    await asyncio.gather(*(one(k) for k in range(n)))
    return {"hellos": n, "per_s": round(n / (time.monotonic() - t0)), "close_codes": codes}


async def fill(url: str, config: StoreConfig, open_orders: int, closed: int) -> None:
    """Open and closed orders, through the durable queue (it resends what the frame rate limit refused)."""
    src = HubClient.for_device(url, device_of(config, "app-backend"))
    await src.connect()
    try:
        for start in range(0, closed, 200):
            keys = range(start, min(closed, start + 200))
            answers = await asyncio.gather(
                *(src.enqueue({"type": "order.submit", "order": app(f"c{k}")}) for k in keys)
            )
            ids = [a.order_id for a in answers if isinstance(a, OrderAccepted)]
            await asyncio.gather(
                *(src.enqueue({"type": "order.cancel", "order_id": oid, "reason": "test"}) for oid in ids)
            )
        for start in range(0, open_orders, 200):
            keys = range(start, min(open_orders, start + 200))
            await asyncio.gather(*(src.enqueue({"type": "order.submit", "order": app(f"o{k}")}) for k in keys))
    finally:
        await src.close()


def app(key: str) -> dict[str, Any]:
    return {
        "key": f"rel-{key}",
        "channel": "app",
        "fulfilment": {"type": "delivery", "due": "2026-11-25T12:30:00+08:00"},
        "note": "call on arrival, gate 3",
        "items": [
            {"sku": "WOK-KUNGPAO", "qty": 2, "modifiers": ["less oil"]},
            {"sku": "BAR-MILKTEA", "qty": 1, "modifiers": ["less sugar"]},
            {"sku": "WOK-MAPO", "qty": 1},
        ],
    }


async def probe_welcomes(url: str, config: StoreConfig) -> dict[str, Any]:
    out = {}
    for device in ("wok-1", "cold-1", "counter-1", "monitor-1", "app-backend"):
        async with ws_connect(url, max_size=1024 * 1024) as c:
            await c.send(json.dumps(hello(config, device)))
            first = await c.recv()
            w = json.loads(first)
            frames = [first] + [await c.recv() for _ in range(w.get("pages", 0))]
            sizes = [len(f.encode() if isinstance(f, str) else f) for f in frames]
            out[device] = {
                "frames": len(frames),
                "largest_kb": round(max(sizes) / 1024),
                "total_kb": round(sum(sizes) / 1024),
            }
    return out


async def probe_slow_readers(url: str, config: StoreConfig, pid: int, n: int, wait_s: float) -> dict[str, Any]:
    devices = ["counter-1", "monitor-1", "wok-2", "cold-1"]
    devices = [d for d in devices if config.device(d) is not None]
    before = rss_mb(pid)
    peers = []
    for k in range(n):
        p = await RawPeer.open(url)
        await p.send(hello(config, devices[k % len(devices)]))
        peers.append(p)
    peak = before
    t0 = time.monotonic()
    gone: list[asyncio.Task[tuple[float, int | None]]] = []
    while time.monotonic() - t0 < wait_s:
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.5)
    # Now read what is left: the hub has closed (4011) or cut the ones that never read.
    for p in peers:
        gone.append(asyncio.ensure_future(p.read_until_gone(5)))
    results = await asyncio.gather(*gone)
    for p in peers:
        p.close()
    codes: dict[str, int] = {}
    for _t, code in results:
        codes[str(code)] = codes.get(str(code), 0) + 1
    return {"readers": n, "rss_before_mb": round(before), "rss_peak_mb": round(peak), "close_codes": codes}


async def probe_dead_peer(url: str, config: StoreConfig) -> dict[str, Any]:
    p = await RawPeer.open(url, rcvbuf=1 << 20)
    await p.send(hello(config, "monitor-1"))
    seconds, code = await p.read_until_gone(60)
    p.close()
    return {"dropped_after_s": round(seconds, 1), "close_code": code}


async def probe_connections(url: str, n: int, pid: int) -> dict[str, Any]:
    before = rss_mb(pid)
    peers: list[RawPeer] = []
    refused = 0
    for _ in range(n):
        try:
            peers.append(await RawPeer.open(url))
        except (OSError, ConnectionError, TimeoutError):
            refused += 1
    await asyncio.sleep(0.5)
    results = await asyncio.gather(*(p.read_until_gone(0.5) for p in peers))
    codes: dict[str, int] = {}
    for _t, code in results:
        codes[str(code)] = codes.get(str(code), 0) + 1
    peak = rss_mb(pid)
    for p in peers:
        p.close()
    return {"opened": n, "close_codes": codes, "rss_before_mb": round(before), "rss_with_them_mb": round(peak)}


async def probe_amend_growth(url: str, config: StoreConfig) -> dict[str, Any]:
    src = HubClient.for_device(url, device_of(config, "app-backend"))
    await src.connect()
    try:
        r = await src.request({"type": "order.submit", "order": app("grow")}, expect=OrderAccepted)
        answers: dict[str, int] = {}
        for _ in range(40):
            a = await src.request({"type": "order.amend", "order_id": r.order_id, "add": [{"sku": "WOK-MAPO"}] * 25})
            key = a.code.value if isinstance(a, Error) else a.type
            answers[key] = answers.get(key, 0) + 1
    finally:
        await src.close()
    return {"amendments": 40, "answers": answers}


async def probe_db_lock(url: str, config: StoreConfig, db: Path, hold_s: float, rate: float) -> dict[str, Any]:
    src = HubClient.for_device(url, config.device("kiosk-3") or device_of(config, "kiosk-1"))
    await src.connect()
    unavailable = 0

    def seen(f: HubFrame) -> None:
        nonlocal unavailable
        if isinstance(f, Error) and f.code is ErrorCode.UNAVAILABLE:
            unavailable += 1

    src.listeners.append(seen)
    lock = sqlite3.connect(db, timeout=0, isolation_level=None)
    futures = []
    keys = []
    t0 = time.monotonic()
    total = int(rate * (hold_s + 4))
    locked = released = False
    for k in range(total):
        now = time.monotonic() - t0
        if not locked and now >= 1.0:
            lock.execute("BEGIN IMMEDIATE")
            locked = True
        if locked and not released and now >= 1.0 + hold_s:
            lock.execute("ROLLBACK")
            released = True
        key = f"lock-{int(t0)}-{k}"
        keys.append(key)
        order = {"key": key, "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}
        futures.append(src.enqueue({"type": "order.submit", "order": order}))
        await asyncio.sleep(max(0.0, t0 + (k + 1) / rate - time.monotonic()))
    if not released:
        lock.execute("ROLLBACK")
    lock.close()
    answers = await asyncio.wait_for(asyncio.gather(*futures), 60)
    await src.close()
    accepted = sum(isinstance(a, OrderAccepted) for a in answers)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"SELECT key, count(*) FROM orders WHERE key IN ({','.join('?' * len(keys))}) GROUP BY key", keys
        ).fetchall()
    return {
        "orders": total,
        "lock_held_s": hold_s,
        "answered_unavailable": unavailable,
        "accepted_in_the_end": accepted,
        "stored": len(rows),
        "lost": accepted - len(rows),
        "doubled": sum(1 for _k, c in rows if c > 1),
    }


async def run(quick: bool) -> dict[str, Any]:
    port = _free_port()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "store.toml"
        cfg.write_text(quiet_printers((ROOT / "config/store.toml").read_text(encoding="utf-8")), encoding="utf-8")
        config = load_config(cfg)
        db = Path(tmp) / "rel.sqlite3"
        log = Path(tmp) / "hub.log"
        serve = ["serve", "--db", str(db), "--port", str(port), "--config", str(cfg)]
        with log.open("wb") as logf:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kdsapp.cli", *serve],
                cwd=ROOT,
                stdout=logf,
                stderr=logf,
            )
            try:
                await _wait_port(port)
                url = f"ws://127.0.0.1:{port}"
                wok = HubClient.for_device(url, device_of(config, "wok-1"))
                await wok.connect()
                pinger = Pinger(wok)

                async def step(name: str, coro: Any) -> None:
                    pinger.start()
                    t = time.monotonic()
                    out[name] = await coro
                    out[name]["wok_ping"] = await pinger.stop()
                    out[name]["hub_alive"] = proc.poll() is None
                    print(f"  {name:14s} {time.monotonic() - t:6.1f} s  {json.dumps(out[name])}", file=sys.stderr)

                out["idle"] = {"rss_mb": round(rss_mb(proc.pid))}
                await step("surrogate", probe_surrogate(url, config))
                await step("flood", probe_flood(url, config, 20_000 if quick else 100_000, log))
                await step("amend_growth", probe_amend_growth(url, config))
                t = time.monotonic()
                await fill(url, config, 500, 200 if quick else 1000)
                out["fill"] = {"open": 500, "closed": 200 if quick else 1000, "seconds": round(time.monotonic() - t, 1)}
                out["fill"]["rss_mb"] = round(rss_mb(proc.pid))
                await step("welcomes", probe_welcomes(url, config))
                await step("slow_readers", probe_slow_readers(url, config, proc.pid, 12, 8 if quick else 20))
                await step("dead_peer", probe_dead_peer(url, config))
                await step("connections", probe_connections(url, 120 if quick else 600, proc.pid))
                await step("db_lock", probe_db_lock(url, config, db, 7 if quick else 12, 20))
                # Last: past the refused-hello burst, this address is locked out for a while (by design).
                await step("wrong_tokens", probe_wrong_tokens(url, config, 300 if quick else 3000))
                out["end"] = {"rss_mb": round(rss_mb(proc.pid)), "hub_alive": proc.poll() is None}
                await wok.close()
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller probes (about a minute)")
    args = ap.parse_args()
    r = asyncio.run(run(args.quick))
    print("\nreliability probes (default limits, one kds serve process, SQLite)")
    for name, v in r.items():
        print(f"  {name:14s} {json.dumps(v)}")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
