"""Events framed once for every screen (`kds.outbox.Encoded`), and per-message deflate only when the config asks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.frames import Frame, Opcode

from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.outbox import Encoded
from kds.server import HubServer
from kds.store import Store


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_a_frame_encoded_once_is_the_frame_websockets_would_send(size: int) -> None:
    data = ("事" * (size // 3) + "x" * (size % 3)).encode("utf-8")
    assert len(data) == size
    expected = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
    assert Encoded(data).wire() == expected


async def _hub(config: StoreConfig, db: Path) -> HubServer:
    server = HubServer(OrderHub(config), Store(db, store_id=config.store.id), host="127.0.0.1", port=0)
    await server.start()
    return server


async def _screens_see_an_order(
    url: str, *, compression: str | None, key: str = "framed-once"
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Three wok screens and a counter (raw connections offering deflate or not) and an order through a kiosk: the
    extensions each screen got, and the events each read."""
    hello = {"type": "hello", "role": "kitchen", "station": "wok", "resume_from": 0}
    screens = []
    extensions: list[list[str]] = []
    events: list[dict[str, Any]] = []
    for dev, token in (("wok-1", "dev-wok-1-token"), ("wok-2", "dev-wok-2-token"), ("wok-1", "dev-wok-1-token")):
        ws = await ws_connect(url, compression=compression)
        await ws.send(json.dumps({**hello, "device": dev, "token": token}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        screens.append(ws)
        extensions.append([e.name for e in ws.protocol.extensions])
    async with ws_connect(url, compression=compression) as kiosk:
        await kiosk.send(
            json.dumps({"type": "hello", "device": "kiosk-1", "token": "dev-kiosk-1-token", "role": "source"})
        )
        assert json.loads(await kiosk.recv())["type"] == "welcome"
        order = {
            "key": key,
            "channel": "kiosk",
            "fulfilment": {"type": "pickup"},
            "note": "不要辣 no chili, 多加葱 " * 12,
            "items": [{"sku": "WOK-KUNGPAO"}, {"sku": "WOK-MAPO", "note": "少油 " * 40}],
        }
        await kiosk.send(json.dumps({"type": "order.submit", "ref": "r1", "order": order}))
        assert json.loads(await kiosk.recv())["type"] == "order.accepted"
    for ws in screens:
        events.append(json.loads(await ws.recv()))
        await ws.close()
    return extensions, events


async def test_every_screen_reads_the_same_event_and_compression_is_declined_by_default(
    config: StoreConfig, tmp_path: Path
) -> None:
    server = await _hub(config, tmp_path / "kds.sqlite3")
    try:
        extensions, events = await _screens_see_an_order(server.url, compression="deflate")
    finally:
        await server.stop()
    assert extensions == [[], [], []]  # offered, declined: the frames are shared
    assert [e["kind"] for e in events] == ["order.created"] * 3
    assert events[0] == events[1] == events[2]
    assert events[0]["order"]["key"] == "framed-once"
    assert events[0]["order"]["note"].startswith("不要辣")


async def test_compression_when_the_config_asks_for_it(config: StoreConfig, tmp_path: Path) -> None:
    deflating = config.model_copy(update={"limits": config.limits.model_copy(update={"compression": True})})
    server = await _hub(deflating, tmp_path / "kds.sqlite3")
    try:
        extensions, events = await _screens_see_an_order(server.url, compression="deflate")
        plain, plain_events = await _screens_see_an_order(server.url, compression=None, key="plain")
    finally:
        await server.stop()
    assert extensions == [["permessage-deflate"]] * 3
    assert plain == [[], [], []]
    assert events[0]["seq"] < plain_events[0]["seq"]
    for got in (events, plain_events):
        assert [e["kind"] for e in got] == ["order.created"] * 3
        assert got[0] == got[1] == got[2]


async def test_a_batch_of_events_written_together_arrives_whole_and_in_order(
    config: StoreConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty orders sent at once are committed in few batches, and each batch's frames go to a screen in one write
    (`Outbox.flush`): the screen still reads every event once, whole, in seq order, and the kiosk every answer."""
    server = await _hub(config, tmp_path / "kds.sqlite3")
    writes: list[int] = []
    try:
        screen = await ws_connect(server.url)
        await screen.send(
            json.dumps({"type": "hello", "device": "wok-1", "token": "dev-wok-1-token", "role": "kitchen"})
        )
        assert json.loads(await screen.recv())["type"] == "welcome"
        link = next(k for k in server._links.values() if k.session is not None and k.session.device.id == "wok-1")
        transport = link.conn.transport
        write = transport.write

        def counted_write(data: bytes | bytearray | memoryview) -> None:
            writes.append(len(data))
            write(data)

        monkeypatch.setattr(transport, "write", counted_write)
        async with ws_connect(server.url) as kiosk:
            await kiosk.send(
                json.dumps({"type": "hello", "device": "kiosk-1", "token": "dev-kiosk-1-token", "role": "source"})
            )
            assert json.loads(await kiosk.recv())["type"] == "welcome"
            order = {"channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}
            for k in range(50):
                await kiosk.send(
                    json.dumps({"type": "order.submit", "ref": f"r{k}", "order": {**order, "key": f"c{k}"}})
                )
            answers: list[dict[str, Any]] = []
            while len(answers) < 50:  # the kiosk also gets each order's status
                frame = json.loads(await kiosk.recv())
                if "ref" in frame:
                    answers.append(frame)
        events = [json.loads(await screen.recv()) for _ in range(50)]
        await screen.close()
    finally:
        await server.stop()
    assert [a["ref"] for a in answers] == [f"r{k}" for k in range(50)]
    assert all(a["type"] == "order.accepted" for a in answers)
    assert [e["order"]["key"] for e in events] == [f"c{k}" for k in range(50)]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 50
    assert len(writes) < 50, f"batches are written together ({len(writes)} writes for 50 events)"
