"""Benchmarks of the hub: durable acceptance throughput, and order-to-screen latency against a bare relay.

Run with `make bench`. The hub runs in its own process (`kds serve` on a temporary SQLite file, loopback only);
this process is the load: several source connections submitting orders with many in flight, and one kitchen screen
per station measuring when each order's event arrives. The baseline is a bare websockets relay (no validation, no
database) carrying the same frames, so "order-to-screen p99 within twice a bare relay" can be read off directly.

Prints a readable table and one JSON object. Figures, not a test: nothing here gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kds.client import HubClient  # noqa: E402
from kds.config import Role, StoreConfig, load_config  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def _orders(config: StoreConfig, n: int, run: str) -> list[dict[str, Any]]:
    """A fixed, varied order mix over the whole kiosk catalogue (two to four lines each)."""
    each = [i for i in config.catalogue if not i.methods and i.sold_by.value == "each"]
    out = []
    for k in range(n):
        lines = [each[(k * 7 + j * 13) % len(each)] for j in range(2 + k % 3)]
        out.append(
            {
                "key": f"{run}-{k}",
                "channel": "kiosk",
                "fulfilment": {"type": "dine_in", "table": str(1 + k % 40)},
                "items": [{"sku": i.sku, "qty": 1 + (k + j) % 2} for j, i in enumerate(lines)],
            }
        )
    return out


async def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


async def bench_hub(config: StoreConfig, *, orders: int, sources: int, in_flight: int) -> dict[str, Any]:
    """Throughput and latency of the real hub (separate process, SQLite WAL, synchronous=FULL)."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kds.cli",
                "serve",
                "--quiet",
                "--db",
                f"{tmp}/bench.sqlite3",
                "--port",
                str(port),
                "--config",
                str(ROOT / "config/store.toml"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        try:
            await _wait_port(port)
            url = f"ws://127.0.0.1:{port}"
            kiosks = [d for d in config.devices if d.role is Role.SOURCE and "kiosk" in d.channels]
            screens = {}
            for d in config.devices:
                if d.role is Role.KITCHEN and d.station not in screens:
                    screens[d.station] = d
            clients = [
                HubClient(url, device=kiosks[k % len(kiosks)].id, token=kiosks[k % len(kiosks)].token, role="source")
                for k in range(sources)
            ]
            kitchen = [
                HubClient(url, device=d.id, token=d.token, role="kitchen", station=d.station) for d in screens.values()
            ]
            sent_at: dict[str, float] = {}
            seen: dict[str, float] = {}

            def on_event(frame: dict[str, Any]) -> None:
                if frame.get("type") == "event" and frame.get("kind") == "order.created":
                    seen.setdefault(frame["order"]["key"], time.perf_counter())

            for c in kitchen:
                c.listeners.append(on_event)
            for c in clients + kitchen:
                await c.connect()
            batch = _orders(config, orders, f"bench-{os.getpid()}-{time.time_ns()}")
            ack_ms: list[float] = []
            errors = 0
            sem = asyncio.Semaphore(in_flight)

            async def submit(k: int, order: dict[str, Any]) -> None:
                nonlocal errors
                async with sem:
                    t0 = time.perf_counter()
                    sent_at[order["key"]] = t0
                    r = await clients[k % len(clients)].request({"type": "order.submit", "order": order}, timeout=60)
                    if r["type"] == "order.accepted":
                        ack_ms.append((time.perf_counter() - t0) * 1000)
                    else:
                        errors += 1

            t_start = time.perf_counter()
            await asyncio.gather(*(submit(k, o) for k, o in enumerate(batch)))
            elapsed = time.perf_counter() - t_start
            deadline = time.monotonic() + 30
            while len(seen) < len(batch) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            screen_ms = [(seen[k] - sent_at[k]) * 1000 for k in seen if k in sent_at]
            for c in clients + kitchen:
                await c.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {
        "orders": orders,
        "sources": sources,
        "in_flight": in_flight,
        "accepted": len(ack_ms),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "accepted_per_s": round(len(ack_ms) / elapsed, 1),
        "ack_p50_ms": round(_pct(ack_ms, 50), 2),
        "ack_p99_ms": round(_pct(ack_ms, 99), 2),
        "screen_p50_ms": round(_pct(screen_ms, 50), 2),
        "screen_p99_ms": round(_pct(screen_ms, 99), 2),
    }


async def bench_relay(config: StoreConfig, *, orders: int, in_flight: int) -> dict[str, Any]:
    """The baseline: a bare websockets relay (in-process) carrying the same order frames to one screen."""
    screens: set[ServerConnection] = set()

    async def handler(conn: ServerConnection) -> None:
        role = await conn.recv()
        if role == "screen":
            screens.add(conn)
            await conn.wait_closed()
            return
        async for frame in conn:
            broadcast(screens, frame)
            await conn.send('{"type":"ack"}')

    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}"
        seen: dict[str, float] = {}
        sent_at: dict[str, float] = {}
        async with connect(url) as screen, connect(url) as src:
            await screen.send("screen")
            await src.send("source")
            while not screens:
                await asyncio.sleep(0.001)
            batch = _orders(config, orders, "relay")

            async def reader() -> None:
                async for frame in screen:
                    seen[json.loads(frame)["order"]["key"]] = time.perf_counter()
                    if len(seen) == len(batch):
                        return

            rt = asyncio.create_task(reader())
            t0 = time.perf_counter()
            window = max(1, in_flight)
            for start in range(0, len(batch), window):
                chunk = batch[start : start + window]
                for o in chunk:
                    sent_at[o["key"]] = time.perf_counter()
                    await src.send(json.dumps({"type": "order.submit", "order": o}))
                for _ in chunk:
                    await src.recv()
            await asyncio.wait_for(rt, 30)
            elapsed = time.perf_counter() - t0
    screen_ms = [(seen[k] - sent_at[k]) * 1000 for k in seen]
    return {
        "orders": orders,
        "relayed_per_s": round(len(seen) / elapsed, 1),
        "screen_p50_ms": round(_pct(screen_ms, 50), 2),
        "screen_p99_ms": round(_pct(screen_ms, 99), 2),
    }


def main() -> None:
    """`make bench`."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=5000)
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--in-flight", type=int, default=64)
    args = ap.parse_args()
    config = load_config(ROOT / "config/store.toml")
    hub = asyncio.run(bench_hub(config, orders=args.orders, sources=args.sources, in_flight=args.in_flight))
    relay = asyncio.run(bench_relay(config, orders=args.orders, in_flight=args.in_flight))
    ratio = hub["screen_p99_ms"] / relay["screen_p99_ms"] if relay["screen_p99_ms"] else float("nan")
    rows = [
        ("hub: durably accepted orders/s", f"{hub['accepted_per_s']:.0f}", "target ≥ 1000 on 2 cores"),
        ("hub: ack latency p50 / p99 ms", f"{hub['ack_p50_ms']} / {hub['ack_p99_ms']}", ""),
        ("hub: order-to-screen p50 / p99 ms", f"{hub['screen_p50_ms']} / {hub['screen_p99_ms']}", ""),
        ("bare relay: order-to-screen p50 / p99 ms", f"{relay['screen_p50_ms']} / {relay['screen_p99_ms']}", ""),
        ("hub p99 / relay p99", f"{ratio:.2f}", "target ≤ 2"),
        ("errors", str(hub["errors"]), ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"\n{args.orders} orders, {args.sources} source connections, {args.in_flight} in flight, {os.cpu_count()} cores"
    )
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>16}  {note}")
    print(json.dumps({"hub": hub, "relay": relay, "p99_ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
