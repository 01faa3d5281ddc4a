"""A partner's client, written in Node.js from docs/protocol.md alone, passes every flow against a real hub (issue 16).

tests/js/partner_client.js is what a store's app backend and a kiosk do: hello/welcome (protocols [1, 2]), submit,
resubmit (duplicate), the same key with another order (conflict), invalid orders, amend, cancel with a reason,
follow order.status as the kitchen and the counter move the order, and reconnect with resume_from. It validates every
frame it sends and receives with ajv (strict, draft 2020-12 build, ajv-formats) against the schema exactly as
`kds schema` prints it, and prints one JSON summary line.

This test runs a real hub on 127.0.0.1 (free port, a SQLite file), runs the client as a subprocess and plays the
kitchen and the counter with HubClients when the client says what it waits for ("waiting: ready ORDER_ID" on its
stdout; "waiting: offline ORDER_ID SEQ" while it is disconnected, answered with "go" on its stdin once the kitchen
and counter have acted). The control test gives the client a schema whose order status lacks `called`: the client
must fail on the frame that does not fit. Without node, npm or the registry the tests are skipped loudly ("NOT
CHECKED WITH AJV"), and fail instead with KDS_REQUIRE_NODE=1 (tests/js/node.py).
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kds.client import HubClient
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import Ack, TicketState, json_schema
from kds.server import HubServer
from kds.store import Store
from tests.conftest import Devices
from tests.js import node

CLIENT = node.JS / "partner_client.js"
FLOWS = [
    "hello_welcome",
    "hello_refused",
    "submit",
    "duplicate",
    "conflict",
    "invalid",
    "amend",
    "kiosk",
    "kitchen_and_counter",
    "cancel",
    "resume",
    "snapshot",
]
MIN_FRAMES = 60
"""A floor for the frames the client validates in a full run (68 today: 27 sent, 41 received), so that a flow
that quietly sends or receives nothing shows."""
TIMEOUT_S = 60


@pytest.fixture
async def server(config: StoreConfig, tmp_path: Path) -> AsyncIterator[HubServer]:
    """A real hub on 127.0.0.1 (free port) over a fresh SQLite file."""
    hub = HubServer(
        OrderHub(config), Store(tmp_path / "kds.sqlite3", store_id=config.store.id), host="127.0.0.1", port=0
    )
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


@dataclass
class Run:
    """What the client did: its return code, stdout lines, stderr, and the summary (its last stdout line)."""

    returncode: int
    lines: list[str]
    stderr: str
    summary: dict[str, Any]
    acted: list[str] = field(default_factory=list)


class Kitchen:
    """Plays the kitchen stations and the counter on a hub, with real HubClients of the sample config's devices."""

    def __init__(self, server: HubServer, devices: Devices) -> None:
        self.server = server
        self.devices = devices
        self.clients: dict[str, HubClient] = {}

    async def client(self, device: str) -> HubClient:
        if device not in self.clients:
            self.clients[device] = await self.devices.connect(self.server.url, device)
        return self.clients[device]

    async def act(self, device: str, frame: dict[str, Any]) -> None:
        answer = await (await self.client(device)).request(frame)
        assert isinstance(answer, Ack), (frame, answer)

    def open_tickets(self, order_id: str) -> list[tuple[str, str]]:
        """(ticket id, station) of the order's tickets not done or cancelled, from the hub's state."""
        order = self.server.hub.orders[order_id]
        live = (TicketState.DONE, TicketState.CANCELLED)
        return [(t.id, t.station) for t in order.tickets if t.state not in live]

    async def preparing(self, order_id: str) -> None:
        ticket, station = self.open_tickets(order_id)[0]
        await self.act(f"{station}-1", {"type": "ticket.start", "ticket_id": ticket})

    async def ready(self, order_id: str) -> None:
        for ticket, station in self.open_tickets(order_id):
            await self.act(f"{station}-1", {"type": "ticket.bump", "ticket_id": ticket})

    async def called(self, order_id: str) -> None:
        await self.act("counter-1", {"type": "order.call", "order_id": order_id})

    async def handed_over(self, order_id: str) -> None:
        await self.act("counter-1", {"type": "order.handover", "order_id": order_id, "to": "rider"})


async def run_client(server: HubServer, config: StoreConfig, schema_file: Path, devices: Devices) -> Run:
    """Run partner_client.js against the hub as app-backend (and kiosk-1), playing the kitchen when it waits."""
    node.node_ready()
    node_bin = shutil.which("node")
    assert node_bin is not None
    app, kiosk = config.device("app-backend"), config.device("kiosk-1")
    assert app is not None and app.secret is not None and kiosk is not None and kiosk.secret is not None
    argv = ["--url", server.url, "--schema", str(schema_file), "--device", app.id, "--token", app.secret]
    argv += ["--kiosk-device", kiosk.id, "--kiosk-token", kiosk.secret]
    proc = await asyncio.create_subprocess_exec(
        node_bin,
        str(CLIENT),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stderr = asyncio.ensure_future(proc.stderr.read())
    kitchen = Kitchen(server, devices)
    lines: list[str] = []
    acted: list[str] = []
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while raw := await proc.stdout.readline():
                line = raw.decode().rstrip("\n")
                lines.append(line)
                if not line.startswith("waiting: "):
                    continue
                what, order_id, *rest = line.removeprefix("waiting: ").split()
                acted.append(f"{what} {order_id}")
                if what == "offline":
                    # The client is disconnected, its resume point rest[0]: the order moves on while it is away.
                    assert rest and rest[0].isdigit(), line
                    await kitchen.preparing(order_id)
                    await kitchen.ready(order_id)
                    await kitchen.called(order_id)
                    proc.stdin.write(b"go\n")
                    await proc.stdin.drain()
                else:
                    await getattr(kitchen, what)(order_id)
            returncode = await proc.wait()
            err = (await stderr).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert lines, f"partner_client.js printed nothing (exit {returncode}): {err}"
    try:
        summary = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"the last line is not the JSON summary (exit {returncode}): {lines[-1]!r}\n{err}")
    return Run(returncode, lines, err, summary, acted)


def write_schema(path: Path, schema: dict[str, Any]) -> Path:
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


async def test_a_client_written_from_the_docs_passes_every_flow(
    server: HubServer, config: StoreConfig, devices: Devices, tmp_path: Path
) -> None:
    schema_file = write_schema(tmp_path / "kds-schema.json", json_schema())
    run = await run_client(server, config, schema_file, devices)
    s = run.summary
    assert run.returncode == 0 and s["ok"], f"{s['failure']}\n{run.stderr}"
    assert s["flows"] == dict.fromkeys(FLOWS, "passed")
    assert s["schema_failures"] == [] and s["failure"] is None
    assert s["protocol"] == 2
    assert s["frames_validated"] >= MIN_FRAMES, s["validated"]
    assert s["frames_validated"] == sum(n for d in s["validated"].values() for n in d.values())
    assert set(s["validated"]["sent"]) == {"hello", "ping", "order.submit", "order.amend", "order.cancel"}
    assert set(s["validated"]["received"]) == {"welcome", "pong", "order.accepted", "order.status", "ack", "error"}
    assert s["refused_by_schema_as_expected"] == 1
    # The kitchen and counter acted where the client waited, and the hub holds what the client was told.
    orders = server.hub.orders
    steps = ["preparing", "ready", "called", "handed_over", "offline", "handed_over"]
    assert [a.split()[0] for a in run.acted] == steps
    followed = run.acted[0].split()[1]
    assert orders[followed].handed_over_to == "rider" and orders[followed].source == "app-backend"
    cancelled = [o for o in orders.values() if o.cancel_reason == "customer changed their mind"]
    assert [o.source for o in cancelled] == ["app-backend"]


async def test_the_client_fails_on_a_frame_the_schema_does_not_take(
    server: HubServer, config: StoreConfig, devices: Devices, tmp_path: Path
) -> None:
    """Control: a schema whose order status lacks `called`. The hub's `called` status must fail the client."""
    schema = copy.deepcopy(json_schema())
    status = schema["$defs"]["OrderStatus"]
    status["enum"] = [v for v in status["enum"] if v != "called"]
    run = await run_client(server, config, write_schema(tmp_path / "wrong-schema.json", schema), devices)
    s = run.summary
    assert run.returncode == 1 and not s["ok"]
    assert s["flows"]["kitchen_and_counter"] == "failed", s["flows"]
    assert all(s["flows"][f] == "passed" for f in FLOWS[: FLOWS.index("kitchen_and_counter")]), s["flows"]
    [failure] = s["schema_failures"]
    assert failure["direction"] == "received" and failure["type"] == "order.status"
    assert failure["frame"]["status"] == "called"
    assert "received order.status does not fit the schema" in s["failure"]
