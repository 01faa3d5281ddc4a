"""Two hubs on one PostgreSQL store: acknowledgement and order-to-screen latency through the leader and the follower.

    .venv/bin/python bench/cluster.py --pg postgresql://USER:PASSWORD@127.0.0.1:5432/postgres [--rate 100 --orders 500]

Starts two `kds serve` processes (loopback only) on a fresh database, which it drops at the end. For each way in
(a source on the leading hub, then on the following hub), sends `--orders` orders at `--rate` per second and times
the `order.accepted` and the moment a kitchen screen on the *other* hub shows the order. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import _free_port, _pct, _wait_port  # noqa: E402
from kds.client import HubClient  # noqa: E402
from kds.config import load_config  # noqa: E402
from kds.protocol import Event, EventKind, OrderAccepted  # noqa: E402
from kds.store import database_url  # noqa: E402
from kds.wire import HubFrame  # noqa: E402


async def one_way(config: Any, src_url: str, screen_url: str, label: str, orders: int, rate: float) -> dict[str, Any]:
    """Orders through `src_url`, watched on a wok screen at `screen_url`."""
    kiosk, wok = config.device("kiosk-1"), config.device("wok-1")
    src, screen = HubClient.for_device(src_url, kiosk), HubClient.for_device(screen_url, wok)
    await src.connect()
    await screen.connect()
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    acks: list[float] = []

    def on_frame(f: HubFrame) -> None:
        if isinstance(f, Event) and f.kind is EventKind.ORDER_CREATED:
            seen.setdefault(f.order.key, time.perf_counter())

    screen.listeners.append(on_frame)
    t0 = time.perf_counter()

    async def submit(k: int) -> None:
        await asyncio.sleep(max(0.0, t0 + k / rate - time.perf_counter()))
        key = f"{label}-{uuid.uuid4().hex[:8]}-{k}"
        order = {"key": key, "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}
        sent[key] = time.perf_counter()
        r = await src.request({"type": "order.submit", "order": order}, timeout=30)
        if isinstance(r, OrderAccepted):
            acks.append((time.perf_counter() - sent[key]) * 1000)

    await asyncio.gather(*(submit(k) for k in range(orders)))
    deadline = time.monotonic() + 30
    while len(seen) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await src.close()
    await screen.close()
    screen_ms = [(seen[k] - sent[k]) * 1000 for k in seen]
    return {
        "accepted": len(acks),
        "ack_p50_ms": round(_pct(acks, 50), 2),
        "ack_p99_ms": round(_pct(acks, 99), 2),
        "screen_p50_ms": round(_pct(screen_ms, 50), 2),
        "screen_p99_ms": round(_pct(screen_ms, 99), 2),
    }


async def main_async(pg: str, orders: int, rate: float) -> dict[str, Any]:
    """Make the database, run both hubs, measure both ways, clean up."""
    name = f"kds_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(database_url(pg), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(database_url(pg)).set(database=name).render_as_string(hide_password=False)
    ports = [_free_port(), _free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:  # the first one started leads
            cmd = [sys.executable, "-m", "kdsapp.cli", "serve", "--quiet", "--db", url, "--port", str(port)]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            await _wait_port(port)
        config = load_config(ROOT / "config/store.toml")
        lead, follow = (f"ws://127.0.0.1:{p}" for p in ports)
        return {
            "via_leader": await one_way(config, lead, follow, "lead", orders, rate),
            "via_follower": await one_way(config, follow, lead, "follow", orders, rate),
        }
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    """Parse arguments, run, print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", default=os.environ.get("KDS_TEST_POSTGRES_URL"), help="a PostgreSQL server URL")
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--rate", type=float, default=100.0)
    args = ap.parse_args()
    if not args.pg:
        raise SystemExit("bench/cluster.py needs --pg postgresql://… (or KDS_TEST_POSTGRES_URL)")
    result = asyncio.run(main_async(args.pg, args.orders, args.rate))
    print(f"\ntwo hubs on one PostgreSQL store, {args.orders} orders at {args.rate:g}/s, screen on the other hub")
    for way, r in result.items():
        print(
            f"  {way:<13} ack p50 {r['ack_p50_ms']:>6} ms  p99 {r['ack_p99_ms']:>6} ms   "
            f"screen p50 {r['screen_p50_ms']:>6} ms  p99 {r['screen_p99_ms']:>6} ms   accepted {r['accepted']}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
