"""The protocol client on its own: answers lost with the link, the durable queue file, backoff bounds."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from kds.client import ActionQueue, Backoff, HubClient, LinkState, NotConnected
from kds.protocol import Pong, Welcome
from kds.wire import HubFrame
from tests.support import welcome_frame


async def test_a_request_in_flight_fails_at_once_when_the_link_drops() -> None:
    async def handler(conn: ServerConnection) -> None:
        await conn.recv()  # hello
        await conn.send(welcome_frame(0).model_dump_json())
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


async def test_a_frame_of_an_unknown_type_is_skipped_and_unknown_fields_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A newer hub may send frames and fields this client does not know: it reads on (forward compatibility)."""

    async def handler(conn: ServerConnection) -> None:
        await conn.recv()  # hello
        welcome = json.loads(welcome_frame(3).model_dump_json())
        await conn.send(json.dumps({**welcome, "region": "cn-east"}))
        ping = json.loads(await conn.recv())
        await conn.send(json.dumps({"type": "order.eta", "seq": 3, "order_id": "x", "eta_s": 300}))
        await conn.send(json.dumps({"type": "pong", "ref": ping["ref"], "seq": 3, "load": 0.2}))
        await conn.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = HubClient(f"ws://127.0.0.1:{port}", device="d", token="t", role="kitchen")
        frames: list[HubFrame] = []
        client.listeners.append(frames.append)
        with caplog.at_level(logging.INFO, logger="kds.client"):
            await client.connect()
            pong = await client.request({"type": "ping"}, expect=Pong)
        assert pong.seq == 3 and client.seq == 3 and client.state is LinkState.ONLINE
        assert [type(f) for f in frames] == [Welcome, Pong], "the unknown frame reaches no listener"
        assert any("order.eta" in m for m in caplog.messages), caplog.messages
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
