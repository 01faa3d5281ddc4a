"""The protocol client on its own: answers lost with the link, the durable queue file, backoff bounds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from kds.client import ActionQueue, Backoff, HubClient, NotConnected


async def test_a_request_in_flight_fails_at_once_when_the_link_drops() -> None:
    async def handler(conn: ServerConnection) -> None:
        await conn.recv()  # hello
        await conn.send(json.dumps({"type": "welcome", "seq": 0, "resumed": False, "replay": 0, "snapshot": None}))
        await conn.recv()  # the request, never answered
        conn.transport.abort()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = HubClient(f"ws://127.0.0.1:{port}", device="d", token="t", role="source", request_timeout=60)
        await client.connect()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(NotConnected):
            await client.request({"type": "ping"})
        assert loop.time() - started < 5, "the caller must not wait for the request timeout"
        await client.close()


def test_the_action_queue_survives_a_restart_of_the_client(tmp_path: Path) -> None:
    path = tmp_path / "queue.jsonl"
    q = ActionQueue(path)
    q.push({"type": "ticket.bump", "ref": "a", "ticket_id": "x/wok"})
    q.push({"type": "ticket.bump", "ref": "b", "ticket_id": "y/wok"})
    q.push({"type": "order.call", "ref": "c", "order_id": "y"})
    assert q.remove("b") and not q.remove("b")
    again = ActionQueue(path)
    assert [m["ref"] for m in again.items] == ["a", "c"], "order kept, answered action gone"


def test_backoff_grows_to_its_cap() -> None:
    b = Backoff(first=0.1, cap=2.0)
    delays = [b.delay(n) for n in range(12)]
    assert delays[0] <= 0.125
    assert all(d <= 2.0 * 1.25 for d in delays)
    assert delays[-1] >= 2.0 * 0.75
    assert b.delay(10_000) <= 2.5  # no overflow on a long outage
