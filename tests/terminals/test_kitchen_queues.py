"""Two screens of the same device each keep their own queue file: a screen that empties its queue never drops the
bumps another screen still holds, and a screen that starts adopts (sends) what a closed one left. Real hub on
loopback, real files, Pilot."""

from __future__ import annotations

import json
from pathlib import Path

from kds.client import Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.server import HubServer
from terminals.kitchen import queues
from terminals.kitchen.app import KitchenApp, create_app
from tests.support import until
from tests.terminals.test_kitchen import ClientFactory, running, submit, ticket, wok_order


def screen(config: StoreConfig, url: str, base: Path) -> KitchenApp:
    """A wok-1 screen whose queue file is claimed as `kds kitchen` claims it."""
    dev = config.device("wok-1")
    assert dev is not None
    claim = queues.claim(base)
    client = HubClient.for_device(url, dev, backoff=Backoff(first=0.05, cap=0.3), queue_path=claim.path)
    return create_app(client, station="wok", keymap=dict(dev.keymap), close_client=True, queue_claim=claim)


def refs(path: Path) -> list[str]:
    """The refs of the actions in a queue file."""
    return [json.loads(line)["ref"] for line in path.read_text().splitlines()] if path.exists() else []


async def test_two_screens_of_one_device_never_lose_each_others_bumps(
    config: StoreConfig, hub: HubServer, connect: ClientFactory, tmp_path: Path
) -> None:
    kiosk = await connect("kiosk-1")
    a = await submit(kiosk, wok_order("k-1"))
    b = await submit(kiosk, wok_order("k-2"))
    base = tmp_path / "queue-wok-1.jsonl"
    online = screen(config, hub.url, base)
    # The same device's second screen cannot reach the hub (a cable out): its bumps wait in its queue.
    offline = screen(config, "ws://127.0.0.1:9", base)
    assert online.queue_claim is not None and offline.queue_claim is not None
    assert online.queue_claim.path == base and offline.queue_claim.path == tmp_path / "queue-wok-1.2.jsonl"
    async with running(online) as on_pilot:
        async with offline.run_test(size=(120, 40)) as off_pilot:
            await until(lambda: offline.client.connections == 0 and offline.client.state is not LinkState.ONLINE)
            # The offline screen has no tickets from the hub; give it the online one's view to act on.
            offline.client.book.orders.update(online.client.book.orders)
            offline._welcomed = True
            offline.state.observe(offline.client.book.orders.values(), offline.now(), quiet=True)
            offline.redraw()
            await off_pilot.pause()
            assert [e.id for e in offline.entries][:1] == [f"{a.order_id}/wok"]
            await off_pilot.press("enter")  # bump A: kept in its own queue file
            held = refs(offline.queue_claim.path)
            assert len(held) == 1
            await on_pilot.press("right", "enter")  # the online screen bumps B: sent, answered, its queue emptied
            await until(lambda: ticket(hub, b.order_id).state.value == "done", what="B bumped")
            await until(lambda: len(online.client.queue) == 0)
            assert refs(base) == []
            assert refs(offline.queue_claim.path) == held, "the other screen's bump is still on disk"
        # The offline screen closed with its bump unsent; its file is no longer locked.
        assert not offline.queue_claim.held and refs(tmp_path / "queue-wok-1.2.jsonl") == held
        assert ticket(hub, a.order_id).state.value == "new"
    assert not online.queue_claim.held

    # The next screen of the device takes the first file and adopts the one left behind: A's bump reaches the hub.
    third = screen(config, hub.url, base)
    assert third.queue_claim is not None and third.queue_claim.path == base
    async with running(third):
        await until(lambda: ticket(hub, a.order_id).state.value == "done", what="the adopted bump applied")
        await until(lambda: len(third.client.queue) == 0)
        assert not (tmp_path / "queue-wok-1.2.jsonl").exists()
    bumps = [r for r in hub.hub.log if r.kind.value == "ticket.bumped" and r.order_id == a.order_id]
    assert len(bumps) == 1, "applied once"


def test_a_queue_file_is_held_by_one_screen_at_a_time(tmp_path: Path) -> None:
    base = tmp_path / "var" / "queue-wok-1.jsonl"
    first = queues.claim(base)
    second = queues.claim(base)
    assert (first.path, second.path) == (base, tmp_path / "var" / "queue-wok-1.2.jsonl")
    second.path.write_text('{"type": "ticket.bump", "ref": "r-1"}\n')
    assert queues.leftovers(first) == [], "a running screen's file is not a leftover"
    second.release()
    left = queues.leftovers(first)
    assert [c.path for c in left] == [second.path]
    third = queues.claim(base)
    assert third.path == tmp_path / "var" / "queue-wok-1.3.jsonl", "a file being adopted is held"
    for c in [*left, third, first]:
        c.release()
    again = queues.claim(base)
    assert again.path == base
    again.release()
