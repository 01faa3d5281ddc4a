"""`kds serve --timings`: when each new order passed each step in the hub, on the clock every process of the machine
shares (`time.monotonic`, CLOCK_MONOTONIC on Linux), which `bench/run.py --anatomy` joins with its sources' sends and
its screens' reads. Real hubs on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import ErrorCode
from kds.server import HubServer
from kds.store import Store
from tests.conftest import ROOT, SAMPLE_CONFIG, Devices, shelf_order
from tests.support import accepted, free_port, refused

STEPS = ("received", "decided", "commit_started", "committed", "delivered")


async def test_each_new_order_stored_has_its_steps_in_order_on_the_shared_clock(
    config: StoreConfig, tmp_path: Path, servers: list[HubServer], devices: Devices
) -> None:
    server = HubServer(OrderHub(config), Store(tmp_path / "kds.sqlite3", store_id=config.store.id), port=0)
    servers.append(server)
    server.timings = []
    await server.start()
    shelf = await devices.connect(server.url, "shelf-1")

    before = time.monotonic()
    for key in ("t-1", "t-2", "t-3"):
        accepted(await shelf.request({"type": "order.submit", "order": shelf_order(key)}))
    again = accepted(await shelf.request({"type": "order.submit", "order": shelf_order("t-2")}))
    assert again.duplicate
    bad = shelf_order("t-4", items=[{"sku": "NO-SUCH-SKU"}])
    refused(await shelf.request({"type": "order.submit", "order": bad}), ErrorCode.INVALID_ORDER)
    after = time.monotonic()

    assert [t.key for t in server.timings] == ["t-1", "t-2", "t-3"], "one entry per new order stored, no other"
    for t in server.timings:
        times = [getattr(t, step) for step in STEPS]
        assert before <= times[0] and times[-1] <= after, t
        assert times == sorted(times), f"{t.key}: steps out of order: {dict(zip(STEPS, times, strict=True))}"


async def test_kds_serve_writes_them_when_it_stops(tmp_path: Path, devices: Devices) -> None:
    port = free_port()
    out = tmp_path / "timings.jsonl"
    log = tmp_path / "hub.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "kdsapp.cli", "serve", "--config", str(SAMPLE_CONFIG),
                "--db", str(tmp_path / "kds.sqlite3"), "--host", "127.0.0.1", "--port", str(port),
                "--quiet", "--timings", str(out),
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            assert loop.time() < end, "the hub did not listen within 20 s"
            await asyncio.sleep(0.02)
        shelf = await devices.connect(f"ws://127.0.0.1:{port}", "shelf-1")
        sent = time.monotonic()
        accepted(await shelf.request({"type": "order.submit", "order": shelf_order("cli-1")}))
        answered = time.monotonic()
        await shelf.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text(errors="replace")
    stopped = time.monotonic()

    [line] = out.read_text().splitlines()
    timing = json.loads(line)
    assert timing["key"] == "cli-1"
    times = [timing[step] for step in STEPS]
    assert times == sorted(times)
    # On the clock this process shares with the hub's: sent before the hub had it, answered after its commit (the
    # answer may be read before the hub has written the batch's last frame and noted it delivered).
    assert sent <= timing["received"] and timing["committed"] <= answered and timing["delivered"] <= stopped
