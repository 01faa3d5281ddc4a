"""Generate the examples of docs/protocol.md from a real hub session.

    .venv/bin/python docs/gen_examples.py            # print every example
    .venv/bin/python docs/gen_examples.py --write    # refresh the examples in docs/protocol.md
    .venv/bin/python docs/gen_examples.py --check    # exit 1 when docs/protocol.md is out of date

A real hub (`HubServer` over a temporary SQLite file, the sample store config) runs on loopback; real `HubClient`s
and raw websockets connections play a store's devices through one scripted shift. The hub's clock is fixed per step
so the frames are the same on every run. Every frame shown in the document is a frame that was actually sent.

In the document, an example is a fenced block right after a marker line `<!-- example: NAME -->`. The fence's info
string says what the block is, and `tests/test_protocol_docs.py` checks each block accordingly:

- `json client`: a client → hub frame (parses with `kds.protocol.parse_client_frame`; the hub may still refuse it,
  e.g. an order with an unknown SKU);
- `json client-bad` or `text client-bad`: a deliberately bad client frame (`parse_client_frame` refuses it);
- `json hub`: a hub → client frame (validates against `kds.protocol.HubMessage`); a long list may be trimmed, and
  ends then with the string "…", which the test strips before validating;
- `text close`: a websocket close (code and reason), not JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from kds.client import Backoff, HubClient  # noqa: E402
from kds.config import StoreConfig, load_config  # noqa: E402
from kds.hub import OrderHub  # noqa: E402
from kds.protocol import PrinterState, Pong  # noqa: E402
from kds.server import HubServer  # noqa: E402
from kds.store import Store  # noqa: E402

DOC = ROOT / "docs" / "protocol.md"
SAMPLE_CONFIG = ROOT / "config" / "store.toml"
START = datetime(2026, 11, 25, 4, 5, 0, tzinfo=UTC)
"""12:05 in Shanghai: the lunch rush."""
TRIM = "…"
WIDTH = 110
MARKER = re.compile(r"^<!-- example: ([a-z0-9_.-]+) -->\n```[^\n]*\n.*?^```\n", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Example:
    """One block of the document."""

    kind: str
    """'client', 'client-bad', 'hub', 'close' or 'text' (plain text, not checked)."""
    body: str

    def render(self) -> str:
        """The fenced block."""
        try:
            json.loads(self.body)
            lang = "json"
        except ValueError:
            lang = "text"
        info = lang if self.kind == "text" else f"{lang} {self.kind}"
        return f"```{info}\n{self.body.rstrip()}\n```\n"


# ------------------------------------------------------------------------------------------------ formatting


def pretty(obj: Any, indent: int = 0) -> str:
    """JSON, indented, with containers that fit on one line kept on one line."""
    flat = json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(obj, dict | list) or indent + len(flat) <= WIDTH - 10 or not obj:
        return flat
    pad = " " * (indent + 2)
    if isinstance(obj, dict):
        parts = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {pretty(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(parts) + "\n" + " " * indent + "}"
    parts = [pad + pretty(v, indent + 2) for v in obj]
    return "[\n" + ",\n".join(parts) + "\n" + " " * indent + "]"


def trim(items: list[Any], keep: int) -> list[Any]:
    """The first `keep` entries and the trim mark, when there are more."""
    return items if len(items) <= keep else [*items[:keep], TRIM]


def trim_welcome(w: dict[str, Any]) -> dict[str, Any]:
    """A welcome with its long store lists cut short."""
    w = json.loads(json.dumps(w))
    store = w["store"]
    store["stations"] = trim(store["stations"], 2)
    store["methods"] = trim(store["methods"], 2)
    store["catalogue"] = trim(store["catalogue"], 2)
    return w


# ------------------------------------------------------------------------------------------------ the session


class FixedClock:
    """The hub's clock, moved by the script."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        """Set the time to START + seconds."""
        self.now = START + timedelta(seconds=seconds)


class Recorder:
    """Every frame one HubClient received, in order, as it came over the wire (the client's `tap`: its listeners and
    `request` get the frames parsed into their models; the document shows the JSON)."""

    def __init__(self, make: Callable[[Callable[[str | bytes], None]], HubClient]) -> None:
        self.frames: list[dict[str, Any]] = []
        self.client = make(lambda raw: self.frames.append(json.loads(raw)))

    def find(self, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The first received frame matching pred."""
        return next((f for f in self.frames if pred(f)), None)

    async def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        """The first frame matching pred, waiting (bounded) for it to arrive."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (f := self.find(pred)) is None:
            if loop.time() > end:
                raise TimeoutError(f"{self.client.device}: no such frame; got {[x.get('type') for x in self.frames]}")
            await asyncio.sleep(0.002)
        return f

    async def event(self, seq: int) -> dict[str, Any]:
        """The event with this seq."""
        return await self.wait(lambda f: f.get("type") == "event" and f["seq"] == seq)

    async def status(self, seq: int) -> dict[str, Any]:
        """The order.status frame with this seq."""
        return await self.wait(lambda f: f.get("type") == "order.status" and f["seq"] == seq)


async def raw_session(url: str, first: str) -> tuple[list[str], int | None, str]:
    """Open a plain websocket and send `first`: the welcome and its replay frames, or the frames until the close.

    Returns (frames, close code, close reason); the code is None when the hub welcomed the device.
    """
    frames: list[str] = []
    async with ws_connect(url, max_size=None) as conn:
        await conn.send(first)
        try:
            while True:
                frames.append(str(await asyncio.wait_for(conn.recv(), 5.0)))
                head = json.loads(frames[0])
                if head["type"] == "welcome" and len(frames) == 1 + head["replay"] + head.get("pages", 0):
                    return frames, None, ""
        except ConnectionClosed:
            pass
    return frames, conn.close_code, conn.close_reason or ""


async def generate(config_path: Path = SAMPLE_CONFIG) -> dict[str, Example]:
    """Run one scripted session against a real hub and return every example by name."""
    config = load_config(config_path)
    clock = FixedClock()
    with tempfile.TemporaryDirectory() as tmp:
        server = HubServer(
            OrderHub(config, clock=clock),
            Store(Path(tmp) / "kds.sqlite3", store_id=config.store.id),
            host="127.0.0.1",
            port=0,
        )
        await server.start()
        clients: list[HubClient] = []
        try:
            return await _script(server, config, clock, clients)
        finally:
            for c in clients:
                await c.close()
            await server.stop()


async def _script(
    server: HubServer, config: StoreConfig, clock: FixedClock, clients: list[HubClient]
) -> dict[str, Example]:
    url = server.url
    ex: dict[str, Example] = {}

    def client(name: str, msg: dict[str, Any], kind: str = "client") -> dict[str, Any]:
        ex[name] = Example(kind, pretty(msg))
        return msg

    def hub(name: str, frame: dict[str, Any]) -> dict[str, Any]:
        ex[name] = Example("hub", pretty(frame))
        return frame

    async def device(device_id: str) -> Recorder:
        dev = config.device(device_id)
        assert dev is not None
        rec = Recorder(
            lambda tap: HubClient.for_device(
                url, dev, backoff=Backoff(first=0.05, cap=0.5), client_name="docs-example", tap=tap
            )
        )
        clients.append(rec.client)
        await rec.client.connect(timeout=10)
        return rec

    async def ask(rec: Recorder, name: str | None, msg: dict[str, Any], kind: str = "client") -> dict[str, Any]:
        if name:
            client(name, msg, kind)
        sent = dict(msg)
        await rec.client.request(sent)  # (the ref it was given is the answer's: the answer as it came)
        answer = rec.find(lambda f: f.get("ref") == sent["ref"])
        assert answer is not None
        return answer

    async def hello(name: str, msg: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None, str]:
        client(name, msg)
        frames, code, reason = await raw_session(url, json.dumps(msg, ensure_ascii=False))
        return [json.loads(f) for f in frames], code, reason

    # --- hello and welcome, before any order
    clock.at(0)
    frames, _, _ = await hello(
        "hello.kitchen",
        {
            "type": "hello",
            "device": "wok-1",
            "token": "dev-wok-1-token",
            "role": "kitchen",
            "station": "wok",
            "resume_from": 0,
            "client": "acme-kds 2.3",
            "protocols": [1, 2],
        },
    )
    hub("welcome.kitchen", trim_welcome(frames[0]))

    wok = await device("wok-1")
    cold = await device("cold-1")
    counter = await device("counter-1")
    app = await device("app-backend")
    shelf = await device("shelf-1")
    kiosk = await device("kiosk-1")

    # --- submitting orders
    clock.at(10)
    shelf_submit = {
        "type": "order.submit",
        "ref": "shelf-1-0001",
        "order": {
            "key": "shelf-1/2026-11-25/0001",
            "channel": "shelf",
            "fulfilment": {"type": "dine_in", "table": "12"},
            "customer": {"name": "Mei Chen"},
            "items": [
                {"sku": "LOB-AUS", "name": "澳洲龙虾", "weight_g": 820, "cook": "ginger_scallion", "tag": "T-1001"},
                {
                    "sku": "LOB-AUS",
                    "weight_g": 700,
                    "cook": "sashimi",
                    "tag": "T-1002",
                    "note": "ice plate, shell as decoration",
                },
            ],
        },
    }
    r = await ask(shelf, "submit.shelf", shelf_submit)
    hub("accepted.shelf", r)
    s001 = r["order_id"]
    created = await counter.wait(lambda f: f.get("type") == "event" and f["order"]["id"] == s001)
    hub("event.order.created", created)
    hub("status.accepted", await shelf.status(created["seq"]))

    r = await ask(shelf, None, {**shelf_submit, "ref": "shelf-1-0001-retry"})
    hub("accepted.duplicate", r)

    clock.at(20)
    # Before it submits, the app asks when the order would be ready (nothing is stored).
    r = await ask(
        app,
        "quote",
        {
            "type": "order.quote",
            "ref": "q-88412907",
            "order": {
                "channel": "app",
                "fulfilment": {"type": "delivery", "due": "2026-11-25T12:40:00+08:00"},
                "items": [{"sku": "WOK-KUNGPAO", "qty": 2}, {"sku": "BAR-MILKTEA"}],
            },
        },
    )
    hub("quoted", r)

    clock.at(25)
    r = await ask(
        app,
        "submit.app",
        {
            "type": "order.submit",
            "ref": "a7f3c9e2",
            "order": {
                "key": "app-order-88412907",
                "channel": "app",
                "fulfilment": {
                    "type": "delivery",
                    "due": "2026-11-25T12:40:00+08:00",
                    "address": "Biyun Rd 199, 2-1203",
                },
                "customer": {"name": "Wang L.", "phone": "138****5521"},
                "priority": "rush",
                "items": [
                    {"sku": "WOK-KUNGPAO", "qty": 2, "modifiers": ["extra chili"], "allergens": ["sesame"]},
                    {"sku": "BAR-MILKTEA", "modifiers": ["less sugar", "no ice"]},
                ],
            },
        },
    )
    hub("accepted.app", r)
    a002 = r["order_id"]
    # What each role sees: the wok screen gets the same event as the counter, with the customer's data cut.
    seen = await wok.wait(lambda f: f.get("type") == "event" and f["order"]["id"] == a002)
    o = seen["order"]
    hub("event.kitchen", {**seen, "order": {**o, "items": trim(o["items"], 1), "tickets": trim(o["tickets"], 1)}})

    clock.at(40)
    r = await ask(
        kiosk,
        "submit.kiosk",
        {
            "type": "order.submit",
            "ref": "k1-5520",
            "order": {
                "key": "kiosk-1-20261125-0057",
                "channel": "kiosk",
                "fulfilment": {"type": "pickup"},
                "items": [{"sku": "SPECIAL-SEASONAL"}, {"sku": "BAK-EGGTART", "qty": 2}],
            },
        },
    )
    k003 = r["order_id"]
    hub("event.unrouted", await counter.wait(lambda f: f.get("type") == "event" and f["order"]["id"] == k003))

    # --- refused orders
    clock.at(50)
    r = await ask(
        shelf,
        "submit.invalid_order",
        {
            "type": "order.submit",
            "ref": "shelf-1-0002",
            "order": {
                "key": "shelf-1/2026-11-25/0002",
                "channel": "shelf",
                "fulfilment": {"type": "dine_in", "table": "7"},
                "items": [
                    {"sku": "LOB-AUSS", "weight_g": 900, "cook": "steamed"},
                    {"sku": "CRAB-MUD", "weight_g": 650, "cook": "steem"},
                    {"sku": "LOB-BOSTON", "weight_g": 3200, "cook": "steamed_garlic"},
                    {"sku": "FISH-GROUPER", "weight_g": 900},
                    {"sku": "WOK-MAPO", "weight_g": 400},
                ],
            },
        },
    )
    hub("error.invalid_order", r)

    r = await ask(
        app,
        "submit.invalid_message",
        {
            "type": "order.submit",
            "ref": "a7f3c9e3",
            "order": {
                "key": "app-order-88412950",
                "channel": "app",
                "fulfilment": {"type": "delivery"},
                "items": [{"sku": "WOK-MAPO", "qty": 0}],
            },
        },
        "client-bad",
    )
    hub("error.invalid_message", r)

    r = await ask(
        kiosk,
        None,
        {
            "type": "order.submit",
            "ref": "k1-5521",
            "order": {
                "key": "kiosk-1-20261125-0058",
                "channel": "app",
                "fulfilment": {"type": "pickup"},
                "items": [{"sku": "BAR-COCONUT"}],
            },
        },
    )
    hub("error.forbidden_channel", r)

    r = await ask(wok, "unknown_type", {"type": "order.update", "ref": "w1-77", "order_id": s001}, "client-bad")
    hub("error.unknown_type", r)

    bad_json = '{"type": "ping", "ref": "w1-78"'
    ex["invalid_json"] = Example("client-bad", bad_json)
    n = len(wok.frames)
    await wok.client.send_raw(bad_json)
    hub("error.invalid_json", await wok.wait(lambda f: f.get("type") == "error" and wok.frames.index(f) >= n))

    r = await ask(wok, None, {"type": "order.cancel", "ref": "w1-79", "order_id": s001})
    hub("error.forbidden_role", r)

    r = await ask(wok, None, {"type": "ticket.bump", "ref": "w1-80", "ticket_id": f"{s001}/cold"})
    hub("error.forbidden_station", r)

    r = await ask(wok, None, {"type": "ticket.bump", "ref": "w1-81", "ticket_id": "20261125-S999/wok"})
    hub("error.not_found", r)

    r = await ask(counter, None, {"type": "order.call", "ref": "c1-300", "order_id": a002})
    hub("error.conflict", r)

    # --- the kitchen
    clock.at(60)
    r = await ask(wok, "ticket.start", {"type": "ticket.start", "ref": "w1-82", "ticket_id": f"{s001}/wok"})
    hub("ack", r)
    hub("event.ticket.started", await counter.event(r["seq"]))
    hub("status.preparing", await shelf.status(r["seq"]))
    r = await ask(wok, None, {"type": "ticket.start", "ref": "w1-83", "ticket_id": f"{s001}/wok"})
    hub("ack.unchanged", r)

    clock.at(90)
    r = await ask(cold, "item.bump", {"type": "item.bump", "ref": "c1-12", "ticket_id": f"{s001}/cold", "item_id": "2"})
    hub("event.item.bumped", await counter.event(r["seq"]))

    clock.at(300)
    r = await ask(wok, "ticket.bump", {"type": "ticket.bump", "ref": "w1-84", "ticket_id": f"{s001}/wok"})
    hub("event.ticket.bumped", await counter.event(r["seq"]))
    hub("status.ready", await shelf.status(r["seq"]))

    clock.at(320)
    r = await ask(wok, "ticket.recall", {"type": "ticket.recall", "ref": "w1-85", "ticket_id": f"{s001}/wok"})
    hub("event.ticket.recalled", await counter.event(r["seq"]))
    clock.at(380)
    r = await ask(wok, None, {"type": "ticket.bump", "ref": "w1-86", "ticket_id": f"{s001}/wok"})

    # --- the counter
    clock.at(400)
    r = await ask(counter, "order.call", {"type": "order.call", "ref": "c1-301", "order_id": s001})
    hub("event.order.called", await counter.event(r["seq"]))
    hub("status.called", await shelf.status(r["seq"]))  # (HubClient speaks protocol 2: it hears the call)
    r = await ask(
        counter, "print.request", {"type": "print.request", "ref": "c1-310", "order_id": s001, "layout": "claim_tag"}
    )
    hub("ack.print", r)

    # --- a printer in trouble (what the spooler reports through the server; no printer runs here)
    n = len(wok.frames)
    server.printer_status(
        "wok-printer", PrinterState.PAPER_OUT, "Wok station printer: out of paper; retrying until it prints"
    )
    hub(
        "printer.status.paper_out",
        await wok.wait(lambda f: f.get("type") == "printer.status" and wok.frames.index(f) >= n),
    )
    n = len(counter.frames)
    server.printer_status(
        "seafood-printer",
        PrinterState.OFFLINE,
        "Seafood / steam station printer: cannot connect to 127.0.0.1:9101: Connection refused; "
        "its tickets print on wok-printer until it is back",
    )
    hub(
        "printer.status.failover",
        await counter.wait(lambda f: f.get("type") == "printer.status" and counter.frames.index(f) >= n),
    )
    n = len(wok.frames)
    server.printer_status("wok-printer", PrinterState.OK, "Wok station printer is printing again")
    hub("printer.status.ok", await wok.wait(lambda f: f.get("type") == "printer.status" and wok.frames.index(f) >= n))
    server.printer_status("seafood-printer", PrinterState.OK, "Seafood / steam station printer is printing again")
    clock.at(430)
    r = await ask(
        counter, "order.handover", {"type": "order.handover", "ref": "c1-302", "order_id": s001, "to": "runner"}
    )
    hub("event.order.handed_over", await counter.event(r["seq"]))
    hub("status.handed_over", await shelf.status(r["seq"]))
    clock.at(440)
    r = await ask(counter, "order.recall", {"type": "order.recall", "ref": "c1-303", "order_id": s001})
    hub("event.order.recalled", await counter.event(r["seq"]))
    clock.at(450)
    await ask(counter, None, {"type": "order.handover", "ref": "c1-304", "order_id": s001, "to": "runner"})

    # --- the sources change their minds
    clock.at(500)
    resume_point = (await app.client.request({"type": "ping", "ref": "seq-probe"}, expect=Pong)).seq
    r = await ask(
        app,
        "order.amend",
        {
            "type": "order.amend",
            "ref": "a7f3c9e4",
            "order_id": a002,
            "add": [{"sku": "BAR-COCONUT"}],
            "item_notes": {"1": "one without chili"},
            "note": "call on arrival",
        },
    )
    hub("event.order.amended", await counter.event(r["seq"]))

    clock.at(520)
    r = await ask(
        kiosk,
        "order.cancel",
        {"type": "order.cancel", "ref": "k1-5530", "order_id": k003, "reason": "customer changed their mind"},
    )
    hub("event.order.cancelled", await counter.event(r["seq"]))
    hub("status.cancelled", await kiosk.status(r["seq"]))

    r = await ask(kiosk, None, {"type": "order.cancel", "ref": "k1-5531", "order_id": a002})
    hub("error.forbidden_source", r)

    clock.at(530)
    r = await ask(wok, "ping", {"type": "ping", "ref": "w1-90"})
    hub("pong", r)
    r = await ask(counter, "orders.closed", {"type": "orders.closed", "ref": "c1-320", "limit": 10})
    hub("orders.closed.list", {**r, "orders": trim(r["orders"], 1)})

    # --- an order for later: held at the counter, then fired early
    clock.at(560)
    r = await ask(
        kiosk,
        None,
        {
            "type": "order.submit",
            "ref": "k1-5590",
            "order": {
                "key": "kiosk-1-20261125-0090",
                "channel": "kiosk",
                "fulfilment": {"type": "pickup", "at": "2026-11-25T18:30:00+08:00"},
                "items": [{"sku": "BAK-EGGTART", "qty": 6}],
            },
        },
    )
    later = r["order_id"]
    await ask(counter, "hold", {"type": "order.hold", "ref": "c1-330", "order_id": later})
    await ask(counter, "fire", {"type": "order.fire", "ref": "c1-331", "order_id": later, "station": "bakery"})

    # --- reconnecting
    clock.at(600)
    frames, _, _ = await hello(
        "hello.resume",
        {
            "type": "hello",
            "device": "wok-2",
            "token": "dev-wok-2-token",
            "role": "kitchen",
            "station": "wok",
            "resume_from": resume_point,
            "client": "acme-kds 2.3",
            "protocols": [1, 2],
        },
    )
    hub("welcome.resumed", trim_welcome(frames[0]))
    ex["replay.kinds"] = Example(
        "text", "\n".join(f"seq {f['seq']}: event {f['kind']} {f['order']['id']}" for f in frames[1:])
    )

    frames, _, _ = await hello(
        "hello.source",
        {
            "type": "hello",
            "device": "app-backend",
            "token": "dev-app-backend-token",
            "role": "source",
            "resume_from": 0,
            "client": "freshapp-backend 5.12",
            "protocols": [1, 2],
        },
    )
    hub("welcome.source", trim_welcome(frames[0]))

    # --- a large snapshot comes in pages (pages made small here, so that three orders need two)
    limits = server.hub.limits
    server.hub.limits = limits.model_copy(update={"snapshot_page_bytes": 3000})
    try:
        frames, _, _ = await hello(
            "hello.monitor",
            {
                "type": "hello",
                "device": "monitor-1",
                "token": "dev-monitor-1-token",
                "role": "monitor",
                "resume_from": 0,
                "client": "office-board 1.0",
                "protocols": [1, 2],
            },
        )
    finally:
        server.hub.limits = limits
    assert frames[0]["pages"] >= 1 and frames[1]["type"] == "snapshot.page", "the paged welcome example needs pages"
    first = trim_welcome(frames[0])
    first["snapshot"]["orders"] = trim(first["snapshot"]["orders"], 1)
    hub("welcome.paged", first)
    page = frames[1]
    hub("snapshot.page", {**page, "snapshot": {**page["snapshot"], "orders": trim(page["snapshot"]["orders"], 1)}})

    # --- refused connections
    for name, msg in [
        ("unauthorized", {"type": "hello", "device": "kiosk-9", "token": "guess", "role": "source"}),
        ("forbidden_role", {"type": "hello", "device": "wok-1", "token": "dev-wok-1-token", "role": "counter"}),
        ("bad_hello", {"type": "ping", "ref": "p-1"}),
    ]:
        frames, code, reason = await hello(f"hello.{name}", msg)
        hub(f"error.hello.{name}", frames[0])
        ex[f"close.{name}"] = Example("close", f"close {code} {reason}")

    # --- a client that speaks no version this hub speaks
    frames, code, reason = await hello(
        "hello.protocols.none",
        {"type": "hello", "device": "wok-1", "token": "dev-wok-1-token", "role": "kitchen", "protocols": [4]},
    )
    hub("error.hello.protocols.none", frames[0])
    ex["close.protocols.none"] = Example("close", f"close {code} {reason}")

    # --- a device locked out after repeated wrong tokens: its own token is refused too
    for _ in range(config.limits.device_lockout_failures):
        await raw_session(url, json.dumps({"type": "hello", "device": "kiosk-2", "token": "guess", "role": "source"}))
    frames, code, reason = await hello(
        "hello.locked_out", {"type": "hello", "device": "kiosk-2", "token": "dev-kiosk-2-token", "role": "source"}
    )
    hub("error.hello.locked_out", frames[0])
    ex["close.locked_out"] = Example("close", f"close {code} {reason}")

    big = json.dumps({"type": "ping", "ref": "x", "pad": "x" * (64 * 1024)})
    async with ws_connect(url, max_size=None) as conn:
        dev = config.device("wok-1")
        assert dev is not None
        await conn.send(json.dumps({"type": "hello", "device": dev.id, "token": dev.token, "role": "kitchen"}))
        await conn.recv()
        await conn.send(big)
        try:
            while True:
                await asyncio.wait_for(conn.recv(), 2.0)
        except ConnectionClosed:
            pass
        ex["close.too_large"] = Example("close", f"close {conn.close_code} {conn.close_reason}")

    return ex


# ------------------------------------------------------------------------------------------------ the document


def doc_blocks(text: str) -> dict[str, str]:
    """The example blocks of the document, by name."""
    return {m.group(1): m.group(0).split("\n", 1)[1] for m in MARKER.finditer(text)}


def refresh(text: str, examples: dict[str, Example]) -> str:
    """The document with every marked block replaced by its generated example (unknown names are an error)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in examples:
            raise KeyError(f"docs/protocol.md names an example the generator does not make: {name}")
        return f"<!-- example: {name} -->\n{examples[name].render()}"

    return MARKER.sub(sub, text)


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the examples."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="refresh the examples in docs/protocol.md")
    g.add_argument("--check", action="store_true", help="exit 1 when docs/protocol.md is out of date")
    args = p.parse_args(argv)
    examples = asyncio.run(generate())
    if not (args.write or args.check):
        for name, e in examples.items():
            print(f"<!-- example: {name} -->\n{e.render()}")
        return 0
    text = DOC.read_text(encoding="utf-8")
    new = refresh(text, examples)
    if args.check:
        if new != text:
            print("docs/protocol.md is out of date: run .venv/bin/python docs/gen_examples.py --write")
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    print(f"refreshed {len(doc_blocks(new))} examples in {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
