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


async def bench_hub(
    config: StoreConfig, *, orders: int, sources: int, in_flight: int, rate: float | None = None
) -> dict[str, Any]:
    """The real hub (separate process, SQLite WAL, synchronous=FULL): flat out with `in_flight` orders in flight,
    or open-loop at `rate` orders per second (the latency a kitchen sees at a given load)."""
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
            clients = [HubClient.for_device(url, kiosks[k % len(kiosks)]) for k in range(sources)]
            kitchen = [HubClient.for_device(url, d) for d in screens.values()]
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
            sem = asyncio.Semaphore(in_flight if not rate else orders)

            async def submit(k: int, order: dict[str, Any]) -> None:
                nonlocal errors
                if rate:
                    await asyncio.sleep(max(0.0, t_start + k / rate - time.perf_counter()))
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
        "in_flight": in_flight if not rate else None,
        "rate": rate,
        "accepted": len(ack_ms),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "accepted_per_s": round(len(ack_ms) / elapsed, 1),
        "ack_p50_ms": round(_pct(ack_ms, 50), 2),
        "ack_p99_ms": round(_pct(ack_ms, 99), 2),
        "screen_p50_ms": round(_pct(screen_ms, 50), 2),
        "screen_p99_ms": round(_pct(screen_ms, 99), 2),
    }


async def relay_server(port: int) -> None:
    """A bare websockets relay: every frame from a source goes to every screen; no validation, no database."""
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

    async with serve(handler, "127.0.0.1", port, max_size=None):
        await asyncio.Future()


async def bench_relay(config: StoreConfig, *, orders: int, rate: float) -> dict[str, Any]:
    """The baseline: the bare relay in its own process (like the hub), the same frames at the same pace, one screen."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--relay-server", str(port)], cwd=ROOT)
    try:
        await _wait_port(port)
        url = f"ws://127.0.0.1:{port}"
        seen: dict[str, float] = {}
        sent_at: dict[str, float] = {}
        async with connect(url, max_size=None) as screen, connect(url, max_size=None) as src:
            await screen.send("screen")
            await src.send("source")
            batch = _orders(config, orders, "relay")
            # The relay has no welcome: a first frame that comes back on the screen says it is subscribed.
            await src.send(json.dumps({"order": {"key": "probe"}}))
            await src.recv()
            await screen.recv()

            async def reader() -> None:
                async for frame in screen:
                    seen[json.loads(frame)["order"]["key"]] = time.perf_counter()
                    if len(seen) == len(batch):
                        return

            async def acks() -> None:
                for _ in batch:
                    await src.recv()

            rt = asyncio.create_task(reader())
            at = asyncio.create_task(acks())
            t0 = time.perf_counter()
            for k, o in enumerate(batch):
                await asyncio.sleep(max(0.0, t0 + k / rate - time.perf_counter()))
                sent_at[o["key"]] = time.perf_counter()
                await src.send(json.dumps({"type": "order.submit", "order": o}))
            await asyncio.wait_for(asyncio.gather(rt, at), 60)
            elapsed = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    screen_ms = [(seen[k] - sent_at[k]) * 1000 for k in seen]
    return {
        "orders": orders,
        "rate": rate,
        "relayed_per_s": round(len(seen) / elapsed, 1),
        "screen_p50_ms": round(_pct(screen_ms, 50), 2),
        "screen_p99_ms": round(_pct(screen_ms, 99), 2),
    }


def main() -> None:
    """`make bench`."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=5000, help="orders in the flat-out run")
    ap.add_argument("--sources", type=int, default=8, help="source connections")
    ap.add_argument("--in-flight", type=int, default=64, help="orders in flight in the flat-out run")
    ap.add_argument("--rate", type=float, default=500.0, help="orders/s of the latency runs (hub and relay)")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each latency run")
    ap.add_argument("--relay-server", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.relay_server is not None:
        asyncio.run(relay_server(args.relay_server))
        return
    config = load_config(ROOT / "config/store.toml")
    paced = round(args.rate * args.seconds)
    flat = asyncio.run(bench_hub(config, orders=args.orders, sources=args.sources, in_flight=args.in_flight))
    hub = asyncio.run(bench_hub(config, orders=paced, sources=args.sources, in_flight=args.in_flight, rate=args.rate))
    relay = asyncio.run(bench_relay(config, orders=paced, rate=args.rate))
    ratio = hub["screen_p99_ms"] / relay["screen_p99_ms"] if relay["screen_p99_ms"] else float("nan")
    rows = [
        (
            f"flat out ({args.in_flight} in flight): durably accepted orders/s",
            f"{flat['accepted_per_s']:.0f}",
            "target ≥ 1000 on 2 cores",
        ),
        ("flat out: ack latency p50 / p99 ms", f"{flat['ack_p50_ms']} / {flat['ack_p99_ms']}", ""),
        (f"at {args.rate:.0f}/s: hub ack latency p50 / p99 ms", f"{hub['ack_p50_ms']} / {hub['ack_p99_ms']}", ""),
        (
            f"at {args.rate:.0f}/s: hub order-to-screen p50 / p99 ms",
            f"{hub['screen_p50_ms']} / {hub['screen_p99_ms']}",
            "",
        ),
        (
            f"at {args.rate:.0f}/s: bare relay order-to-screen p50 / p99 ms",
            f"{relay['screen_p50_ms']} / {relay['screen_p99_ms']}",
            "",
        ),
        ("hub p99 / relay p99", f"{ratio:.2f}", "target ≤ 2"),
        ("errors", str(flat["errors"] + hub["errors"]), ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nhub on SQLite (WAL, synchronous=FULL), {args.sources} source connections, {os.cpu_count()} cores")
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>16}  {note}")
    print(json.dumps({"flat_out": flat, "paced": hub, "relay": relay, "p99_ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
