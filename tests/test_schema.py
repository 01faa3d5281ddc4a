"""`kds schema` prints the protocol's JSON Schema, and every frame a real hub sends fits the models it is built from.

The hub builds its outgoing frames as plain dicts on the hot path (kds/hub.py, kds/domain.py); the round trip here
plays a shift through a real hub on loopback and validates every frame each device received against
`kds.protocol.HubMessage`, so the dicts and the published schema cannot drift apart unnoticed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from kds.client import HubClient
from kds.config import Role, StoreConfig
from kds.protocol import (
    CLIENT_TYPES,
    Ack,
    ClosedOrders,
    Error,
    EventKind,
    HubMessage,
    OrderAccepted,
    OrderQuoted,
    OrderStatus,
    Pong,
    PrinterState,
    json_schema,
)
from kds.server import HubServer
from kdsapp.cli import main
from tests.conftest import app_order, shelf_order
from tests.support import status_of, until

ROOT = Path(__file__).resolve().parent.parent
HUB = TypeAdapter(HubMessage)
HUB_MODELS: dict[str, type[Any]] = {
    typing.get_args(m.model_fields["type"].annotation)[0]: m for m in typing.get_args(typing.get_args(HubMessage)[0])
}


# ------------------------------------------------------------------------------------------------ kds schema


def _schema_from_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, dict[str, Any]]:
    assert main(["schema", *argv]) == 0
    out = capsys.readouterr().out
    return out, json.loads(out)


def test_kds_schema_has_every_message_of_both_directions(capsys: pytest.CaptureFixture[str]) -> None:
    _, schema = _schema_from_main(capsys)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = schema["$defs"]
    for kind, model in CLIENT_TYPES.items():
        assert defs[model.__name__]["properties"]["type"]["const"] == kind, kind
    for kind, model in HUB_MODELS.items():
        assert defs[model.__name__]["properties"]["type"]["const"] == kind, kind
    # Each union is a oneOf of its messages, told apart by their `type` constant (no OpenAPI `discriminator`, which
    # standard JSON Schema validators do not know: tests/test_schema_standard.py).
    for union, kinds in (("ClientMessage", CLIENT_TYPES), ("HubMessage", HUB_MODELS)):
        assert "discriminator" not in defs[union]
        members = [defs[m["$ref"].removeprefix("#/$defs/")] for m in defs[union]["oneOf"]]
        assert sorted(m["properties"]["type"]["const"] for m in members) == sorted(kinds), union


def test_kds_schema_refs_all_resolve(capsys: pytest.CaptureFixture[str]) -> None:
    _, schema = _schema_from_main(capsys)
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        target: Any = schema
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, f"unresolvable $ref {ref}"
            target = target[part]


def test_kds_schema_compact_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    out, schema = _schema_from_main(capsys, "--compact")
    assert out.count("\n") == 1
    assert schema == json_schema()


def _console_commands() -> list[list[str]]:
    commands = [[sys.executable, "-m", "kdsapp.cli", "schema"]]
    script = Path(sys.executable).parent / "kds"
    if script.exists():
        commands.append([str(script), "schema"])
    return commands


@pytest.mark.parametrize("command", _console_commands(), ids=lambda c: Path(c[0]).name)
def test_kds_schema_from_the_command_line(command: list[str]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json_schema()


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "kds"
    assert script.exists(), f"no `kds` console script next to {sys.executable}: reinstall with pip install -e ."


# ------------------------------------------------------------------------------------------------ a real round trip


async def _raw(url: str, hello: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """A plain websocket: send a hello, read the welcome and the frames it announces, or the error and the close."""
    frames: list[dict[str, Any]] = []
    async with ws_connect(url) as conn:
        await conn.send(json.dumps(hello))
        try:
            first = json.loads(await asyncio.wait_for(conn.recv(), 5))
            frames.append(first)
            if first["type"] == "welcome":
                for _ in range(first["replay"] + first.get("pages", 0)):
                    frames.append(json.loads(await asyncio.wait_for(conn.recv(), 5)))
                return frames, None
            await asyncio.wait_for(conn.recv(), 5)
        except ConnectionClosed:
            pass
        return frames, conn.close_code


async def _play(server: HubServer, connect: Any, config: StoreConfig) -> list[dict[str, Any]]:
    """A shift: every hub message, every event kind and every status; returns every frame the devices received."""
    received: list[dict[str, Any]] = []
    clients: dict[str, HubClient] = {}
    for dev in ("wok-1", "cold-1", "bar-1", "counter-1", "monitor-1", "shelf-1", "app-backend", "kiosk-1"):
        # Every frame as it came over the wire, the welcome first (the client's listeners get them parsed).
        c = await connect(dev, tap=lambda raw: received.append(json.loads(raw)))
        assert c.welcome is not None and received[-1]["type"] == "welcome"
        clients[dev] = c
    wok, cold, bar = clients["wok-1"], clients["cold-1"], clients["bar-1"]
    counter, monitor = clients["counter-1"], clients["monitor-1"]
    shelf, app, kiosk = clients["shelf-1"], clients["app-backend"], clients["kiosk-1"]

    async def ok(c: HubClient, msg: dict[str, Any]) -> Ack:
        return await c.request(msg, expect=Ack)

    async def refused(c: HubClient, msg: dict[str, Any], code: str) -> None:
        r = await c.request(msg)
        assert isinstance(r, Error) and r.code == code, r

    # orders in, duplicates, refusals
    s = (await shelf.request({"type": "order.submit", "order": shelf_order("rt-shelf")}, expect=OrderAccepted)).order_id
    dup = await shelf.request({"type": "order.submit", "order": shelf_order("rt-shelf")}, expect=OrderAccepted)
    assert dup.duplicate is True and dup.order_id == s
    quoted = await app.request({"type": "order.quote", "order": app_order("rt-quote")}, expect=OrderQuoted)
    assert quoted.ready_at_estimate == max(quoted.stations.values())
    a = (await app.request({"type": "order.submit", "order": app_order("rt-app")}, expect=OrderAccepted)).order_id
    await counter.request(
        {
            "type": "order.submit",
            "order": shelf_order(
                "rt-counter",
                channel="kiosk",
                items=[{"sku": "SPECIAL-SEASONAL"}, {"sku": "BAK-EGGTART", "qty": 2}],
                fulfilment={"type": "pickup"},
            ),
        },
        expect=OrderAccepted,
    )
    await refused(
        shelf,
        {
            "type": "order.submit",
            "order": shelf_order(
                "rt-bad",
                items=[
                    {"sku": "NOPE"},
                    {"sku": "LOB-AUS", "weight_g": 9000, "cook": "steamed"},
                    {"sku": "CRAB-MUD", "weight_g": 500},
                    {"sku": "WOK-MAPO", "weight_g": 300},
                    {"sku": "LOB-AUS", "weight_g": 900, "cook": "steem"},
                ],
            ),
        },
        "invalid_order",
    )
    await refused(app, {"type": "order.submit", "order": {"key": "x", "channel": "app"}}, "invalid_message")
    await refused(kiosk, {"type": "order.submit", "order": app_order("rt-kiosk-app")}, "forbidden")
    await refused(wok, {"type": "order.update", "order_id": s}, "unknown_type")
    await refused(wok, {"type": "order.cancel", "order_id": s}, "forbidden")
    await refused(wok, {"type": "ticket.bump", "ticket_id": f"{s}/cold"}, "forbidden")
    await refused(wok, {"type": "ticket.bump", "ticket_id": f"{s}/bakery"}, "not_found")
    await refused(kiosk, {"type": "order.cancel", "order_id": a}, "forbidden")
    await refused(counter, {"type": "order.call", "order_id": a}, "conflict")
    errors_before = sum(1 for f in received if f["type"] == "error")
    await wok.send_raw('{"type": "ping"')
    await until(lambda: sum(1 for f in received if f["type"] == "error") > errors_before, what="invalid_json error")

    # the kitchen and the counter
    assert (await ok(wok, {"type": "ticket.start", "ticket_id": f"{s}/wok"})).seq is not None
    assert (await ok(wok, {"type": "ticket.start", "ticket_id": f"{s}/wok"})).seq is None
    await ok(cold, {"type": "item.bump", "ticket_id": f"{s}/cold", "item_id": "2"})
    await ok(wok, {"type": "ticket.bump", "ticket_id": f"{s}/wok"})
    await ok(wok, {"type": "ticket.recall", "ticket_id": f"{s}/wok"})
    await ok(wok, {"type": "ticket.bump", "ticket_id": f"{s}/wok"})
    await ok(counter, {"type": "order.call", "order_id": s})
    await ok(counter, {"type": "print.request", "order_id": s, "layout": "pickup_slip"})
    # An order for two hours later: held, then fired by hand (protocol 3 kinds and statuses).
    later_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    later = (
        await kiosk.request(
            {
                "type": "order.submit",
                "order": app_order("rt-later", channel="kiosk", fulfilment={"type": "pickup", "at": later_at}),
            },
            expect=OrderAccepted,
        )
    ).order_id
    await ok(counter, {"type": "order.hold", "order_id": later})
    await ok(wok, {"type": "order.fire", "order_id": later})
    await ok(counter, {"type": "order.fire", "order_id": later})
    # The spooler's path for a printer in trouble and back (no printer runs in this test).
    server.printer_status("wok-printer", PrinterState.PAPER_OUT, "Wok station printer is out of paper")
    server.printer_status("wok-printer", PrinterState.OK, "Wok station printer is back")
    await until(lambda: sum(f["type"] == "printer.status" for f in received) >= 4, what="printer.status frames")
    await ok(counter, {"type": "order.handover", "order_id": s, "to": "runner"})
    await ok(counter, {"type": "order.recall", "order_id": s})
    await ok(counter, {"type": "order.handover", "order_id": s})
    await ok(
        app,
        {
            "type": "order.amend",
            "order_id": a,
            "add": [{"sku": "BAR-COCONUT"}],
            "remove": ["2"],
            "item_notes": {"1": "mild"},
            "note": "call on arrival",
        },
    )
    await ok(bar, {"type": "ticket.start", "ticket_id": f"{a}/bar"})
    await ok(app, {"type": "order.cancel", "order_id": a, "reason": "rider unavailable"})
    closed = await counter.request({"type": "orders.closed", "limit": 5}, expect=ClosedOrders)
    assert [o.id for o in closed.orders] == [a, s], "newest first: the cancelled app order, the handed-over one"
    for c in clients.values():
        await c.request({"type": "ping"}, expect=Pong)
    await until(lambda: monitor.seq == server.hub.seq, what="the monitor to see every event")
    await until(lambda: status_of(shelf, s) == "handed_over", what="the shelf's status")
    await until(lambda: status_of(app, a) == "cancelled", what="the app's status")

    # reconnecting, fresh and resumed, and refused connections
    def hello(device: str, **over: Any) -> dict[str, Any]:
        dev = config.device(device)
        assert dev is not None
        msg = {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value}
        if dev.station:
            msg["station"] = dev.station
        return {**msg, **over}

    # a large snapshot in pages (pages made small: the shift's few orders need more than one)
    limits = server.hub.limits
    server.hub.limits = limits.model_copy(update={"snapshot_page_bytes": 2000})
    try:
        frames, code = await _raw(server.url, hello("monitor-1"))
    finally:
        server.hub.limits = limits
    assert code is None and frames[0]["pages"] >= 1 and frames[1]["type"] == "snapshot.page", frames[:2]
    received.extend(frames)

    for msg, close in [
        (hello("wok-2", resume_from=1), None),
        (hello("monitor-1", resume_from=3), None),
        (hello("app-backend", resume_from=1), None),
        (hello("app-backend"), None),
        (hello("counter-1"), None),
        (hello("wok-1", token="wrong-token"), 4001),
        (hello("wok-1", role="monitor"), 4003),
        (hello("wok-1", station="cold"), 4003),
        ({"type": "ping"}, 4000),
        ({"type": "hello", "device": "wok-1", "role": "kitchen"}, 4000),
    ]:
        frames, code = await _raw(server.url, msg)
        assert code == close, (msg, frames)
        received.extend(frames)
    return received


@pytest.fixture
async def session_frames(hub: HubServer, connect: Any, config: StoreConfig) -> list[dict[str, Any]]:
    """Every frame the devices of one scripted shift received from a real hub."""
    return await _play(hub, connect, config)


def _check(frames: list[dict[str, Any]]) -> None:
    assert frames
    bad: list[str] = []
    for f in frames:
        try:
            # Strict: a number sent as a string, or a bool as 0/1, is a mismatch too, not something to coerce.
            HUB.validate_json(json.dumps(f), strict=True)
        except ValidationError as exc:
            bad.append(f"{f.get('type')} seq={f.get('seq')}: {exc}")
    assert not bad, f"{len(bad)} frames do not fit kds.protocol.HubMessage:\n" + "\n".join(bad[:5])


def test_every_frame_the_hub_sends_fits_the_models(session_frames: list[dict[str, Any]]) -> None:
    _check([f for f in session_frames if f["type"] != "event"])


def test_every_event_frame_fits_the_models(session_frames: list[dict[str, Any]]) -> None:
    _check([f for f in session_frames if f["type"] == "event"])


def test_the_shift_covers_the_whole_protocol(session_frames: list[dict[str, Any]]) -> None:
    frames = session_frames
    assert {f["type"] for f in frames} == set(HUB_MODELS)
    assert {f["kind"] for f in frames if f["type"] == "event"} == {k.value for k in EventKind}
    assert {f["status"] for f in frames if f["type"] == "order.status"} == {s.value for s in OrderStatus}
    welcomes = [f for f in frames if f["type"] == "welcome"]
    assert {w["role"] for w in welcomes} == {r.value for r in Role}
    assert any(w["resumed"] and w["replay"] > 0 for w in welcomes)
    assert any(w["snapshot"] and w["snapshot"]["statuses"] for w in welcomes)
    assert any(w["snapshot"] and w["snapshot"]["orders"] for w in welcomes)
    codes = {f["code"] for f in frames if f["type"] == "error"}
    assert codes == {
        "invalid_json",
        "invalid_message",
        "unknown_type",
        "invalid_order",
        "not_found",
        "forbidden",
        "conflict",
        "unauthorized",
        "bad_hello",
    }
    acks = [f for f in frames if f["type"] == "ack"]
    assert any(a["seq"] is None for a in acks) and any(a["seq"] is not None for a in acks)
    assert any(f["type"] == "order.accepted" and f["duplicate"] for f in frames)
