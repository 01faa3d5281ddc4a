"""The hello: refused hellos get an `error` frame and a 4xxx close, good ones a `welcome` fit for the role; a refused
device never disturbs the devices already connected."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from kds.client import Backoff, HubClient, LinkState, Refused
from kds.config import Role, StoreConfig
from kds.protocol import MAX_FRAME_BYTES, CloseCode, Error, ErrorCode, OrderAccepted, Welcome
from kds.server import HubServer
from tests.conftest import shelf_order
from tests.support import until
from tests.test_bad_input import kiosk_order


def hello(device: str, token: str, role: str, **extra: Any) -> dict[str, Any]:
    return {"type": "hello", "device": device, "token": token, "role": role, **extra}


GOOD_WOK = hello("wok-1", "dev-wok-1-token", "kitchen", station="wok")


@dataclass(frozen=True)
class Refusal:
    id: str
    first: str | bytes | dict[str, Any]
    close: int
    code: ErrorCode
    locs: tuple[tuple[str, ...], ...] | None
    """Acceptable locs of the error; None: not checked here (see test_bad_hello_names_the_field_at_fault)."""


REFUSALS = [
    Refusal(
        "wrong-token",
        hello("shelf-1", "not-the-token", "source"),
        CloseCode.UNAUTHORIZED,
        ErrorCode.UNAUTHORIZED,
        (("token",),),
    ),
    Refusal(
        "another-devices-token",
        hello("wok-1", "dev-wok-2-token", "kitchen", station="wok"),
        CloseCode.UNAUTHORIZED,
        ErrorCode.UNAUTHORIZED,
        (("token",),),
    ),
    # Not telling whether the device exists is fine: either field may be named.
    Refusal(
        "unknown-device",
        hello("ghost-9", "dev-ghost-9-token", "source"),
        CloseCode.UNAUTHORIZED,
        ErrorCode.UNAUTHORIZED,
        (("token",), ("device",)),
    ),
    Refusal(
        "kitchen-claims-counter",
        hello("wok-1", "dev-wok-1-token", "counter"),
        CloseCode.FORBIDDEN,
        ErrorCode.FORBIDDEN,
        (("role",),),
    ),
    Refusal(
        "counter-claims-source",
        hello("counter-1", "dev-counter-1-token", "source"),
        CloseCode.FORBIDDEN,
        ErrorCode.FORBIDDEN,
        (("role",),),
    ),
    Refusal(
        "monitor-claims-kitchen",
        hello("monitor-1", "dev-monitor-1-token", "kitchen", station="wok"),
        CloseCode.FORBIDDEN,
        ErrorCode.FORBIDDEN,
        (("role",),),
    ),
    Refusal(
        "source-claims-monitor",
        hello("kiosk-1", "dev-kiosk-1-token", "monitor"),
        CloseCode.FORBIDDEN,
        ErrorCode.FORBIDDEN,
        (("role",),),
    ),
    Refusal(
        "kitchen-claims-other-station",
        hello("wok-1", "dev-wok-1-token", "kitchen", station="cold"),
        CloseCode.FORBIDDEN,
        ErrorCode.FORBIDDEN,
        (("station",),),
    ),
    Refusal(
        "kitchen-claims-unknown-station",
        hello("wok-1", "dev-wok-1-token", "kitchen", station="sauna"),
        CloseCode.FORBIDDEN,
        ErrorCode.FORBIDDEN,
        (("station",),),
    ),
    Refusal("first-frame-ping", {"type": "ping", "ref": "p1"}, CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, (("type",),)),
    Refusal(
        "first-frame-submit",
        {"type": "order.submit", "ref": "s1", "order": shelf_order("pre-hello")},
        CloseCode.BAD_HELLO,
        ErrorCode.BAD_HELLO,
        (("type",),),
    ),
    Refusal("first-frame-unknown-type", {"type": "howdy"}, CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, (("type",),)),
    Refusal("malformed-json", '{"type":"hello","device":"wok-1",', CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, None),
    Refusal("json-array", json.dumps([GOOD_WOK]), CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, None),
    Refusal("binary-garbage", b"\x00\xff\xfe\x81", CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, None),
    Refusal(
        "missing-device",
        {k: v for k, v in GOOD_WOK.items() if k != "device"},
        CloseCode.BAD_HELLO,
        ErrorCode.BAD_HELLO,
        None,
    ),
    Refusal(
        "missing-token",
        {k: v for k, v in GOOD_WOK.items() if k != "token"},
        CloseCode.BAD_HELLO,
        ErrorCode.BAD_HELLO,
        None,
    ),
    Refusal(
        "missing-role",
        {k: v for k, v in GOOD_WOK.items() if k != "role"},
        CloseCode.BAD_HELLO,
        ErrorCode.BAD_HELLO,
        None,
    ),
    Refusal("unknown-role", {**GOOD_WOK, "role": "chef"}, CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, None),
    Refusal("negative-resume-from", {**GOOD_WOK, "resume_from": -1}, CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, None),
    # (Unknown fields of a hello are ignored since protocol 2: tests/test_contract_versions.py.)
    Refusal("no-common-protocol", {**GOOD_WOK, "protocols": [99]}, CloseCode.BAD_HELLO, ErrorCode.BAD_HELLO, None),
]


async def open_ws_url(url: str) -> ClientConnection:
    return await ws_connect(url, max_size=None, open_timeout=5, close_timeout=2)


async def open_ws(hub: HubServer) -> ClientConnection:
    return await open_ws_url(hub.url)


async def refused(conn: ClientConnection) -> tuple[dict[str, Any], ConnectionClosed]:
    """The error frame the hub sends before closing, and the close."""
    async with asyncio.timeout(5):
        err = json.loads(await conn.recv())
        with pytest.raises(ConnectionClosed) as info:
            await conn.recv()
    return err, info.value


async def assert_still_serving(kiosk: HubClient, wok: HubClient, key: str) -> None:
    """Devices connected before keep working, and a new device can still say hello."""
    acc = await kiosk.request({"type": "order.submit", "order": kiosk_order(key)}, expect=OrderAccepted)
    await until(lambda: acc.order_id in wok.book.orders)
    conn = await open_ws_url(wok.urls[0])
    await conn.send(json.dumps(hello("monitor-1", "dev-monitor-1-token", "monitor")))
    async with asyncio.timeout(5):
        w = json.loads(await conn.recv())
    assert w["type"] == "welcome" and w["device"] == "monitor-1"
    assert acc.order_id in {o["id"] for o in w["snapshot"]["orders"]}
    await conn.close()


@pytest.mark.parametrize("case", [pytest.param(r, id=r.id) for r in REFUSALS])
async def test_refused_hello_gets_error_then_close(case: Refusal, hub: HubServer, connect: Any) -> None:
    kiosk = await connect("kiosk-1")
    wok = await connect("wok-2")
    sessions = len(hub.sessions)

    conn = await open_ws(hub)
    first = case.first
    await conn.send(json.dumps(first) if isinstance(first, dict) else first)
    err, closed = await refused(conn)

    assert err["type"] == "error", err
    Error.model_validate(err)
    assert err["code"] == case.code.value
    assert err["ref"] is None
    assert isinstance(err["message"], str) and err["message"]
    assert closed.rcvd is not None and closed.rcvd.code == case.close
    assert closed.rcvd.reason, "the close says why"
    assert conn.close_code == case.close
    if case.locs is not None:
        assert [tuple(e["loc"]) for e in err["errors"]][:1] in [[loc] for loc in case.locs], err["errors"]
    assert len(hub.sessions) == sessions, "a refused device got a session"
    assert hub.hub.seq == 0

    await assert_still_serving(kiosk, wok, f"after-{case.id}")


@pytest.mark.parametrize(
    ("first", "loc"),
    [
        pytest.param({k: v for k, v in GOOD_WOK.items() if k != "device"}, ["device"], id="missing-device"),
        pytest.param({k: v for k, v in GOOD_WOK.items() if k != "token"}, ["token"], id="missing-token"),
        pytest.param({**GOOD_WOK, "role": "chef"}, ["role"], id="unknown-role"),
        pytest.param({**GOOD_WOK, "resume_from": -1}, ["resume_from"], id="negative-resume-from"),
    ],
)
async def test_bad_hello_names_the_field_at_fault(first: dict[str, Any], loc: list[str], hub: HubServer) -> None:
    conn = await open_ws(hub)
    await conn.send(json.dumps(first))
    err, closed = await refused(conn)
    assert err["code"] == ErrorCode.BAD_HELLO.value
    assert closed.rcvd is not None and closed.rcvd.code == CloseCode.BAD_HELLO
    assert [e["loc"] for e in err["errors"]] == [loc]


async def test_no_hello_in_time_closes_4000(hub: HubServer, connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    kiosk = await connect("kiosk-1")
    wok = await connect("wok-1")
    monkeypatch.setattr(hub, "limits", hub.limits.model_copy(update={"hello_timeout_s": 0.2}))
    conn = await open_ws(hub)
    async with asyncio.timeout(5):
        with pytest.raises(ConnectionClosed) as info:
            await conn.recv()  # say nothing
    assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.BAD_HELLO
    await assert_still_serving(kiosk, wok, "after-silence")


async def test_oversized_hello_closes_4009(hub: HubServer, connect: Any) -> None:
    kiosk = await connect("kiosk-1")
    wok = await connect("wok-1")
    conn = await open_ws(hub)
    await conn.send(json.dumps({**GOOD_WOK, "client": "x" * MAX_FRAME_BYTES}))
    async with asyncio.timeout(5):
        with pytest.raises(ConnectionClosed) as info:
            await conn.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.TOO_LARGE
    await assert_still_serving(kiosk, wok, "after-big-hello")


@pytest.mark.parametrize(
    ("token", "role", "code"),
    [
        pytest.param("wrong-token-123", "kitchen", CloseCode.UNAUTHORIZED, id="wrong-token"),
        pytest.param("dev-wok-1-token", "counter", CloseCode.FORBIDDEN, id="wrong-role"),
    ],
)
async def test_hub_client_reports_refusal_and_stops(token: str, role: str, code: int, hub: HubServer) -> None:
    """The one protocol client surfaces the refusal (no reconnect loop against a hub that will keep refusing)."""
    client = HubClient(
        hub.url, device="wok-1", token=token, role=role, station="wok", backoff=Backoff(first=0.01, cap=0.05)
    )
    try:
        with pytest.raises(Refused) as info:
            await client.connect(timeout=5)
        assert info.value.code == code
        assert client.state is LinkState.REFUSED
        assert client.connections == 0
    finally:
        await client.close()


# --------------------------------------------------------------------------------------------- good hellos


@pytest.mark.parametrize(
    "device",
    ["wok-1", "seafood-1", "cold-1", "bar-1", "counter-1", "app-backend", "kiosk-1", "shelf-1", "monitor-1"],
)
async def test_good_hello_gets_welcome_for_its_role(
    device: str, hub: HubServer, connect: Any, config: StoreConfig
) -> None:
    shelf = await connect("shelf-1")
    first = await shelf.request({"type": "order.submit", "order": shelf_order("w-1")})  # wok + cold
    second = await shelf.request(
        {"type": "order.submit", "order": shelf_order("w-2", items=[{"sku": "BAR-MILKTEA"}])}  # bar
    )
    assert isinstance(first, OrderAccepted) and isinstance(second, OrderAccepted), (first, second)

    dev = config.device(device)
    assert dev is not None and dev.token is not None
    conn = await open_ws(hub)
    msg = hello(dev.id, dev.token, dev.role.value)
    if dev.station:
        msg["station"] = dev.station
    await conn.send(json.dumps(msg))
    async with asyncio.timeout(5):
        w = json.loads(await conn.recv())
    await conn.close()

    Welcome.model_validate(w)
    assert w["type"] == "welcome"
    assert w["protocol"] == 1, "a hello that states no `protocols` speaks version 1"
    assert w["device"] == dev.id
    assert w["role"] == dev.role.value
    assert w["station"] == dev.station
    assert w["seq"] == hub.hub.seq == 2
    assert w["resumed"] is False and w["replay"] == 0
    store = w["store"]
    assert store["id"] == config.store.id
    assert [s["id"] for s in store["stations"]] == [s.id for s in config.stations]

    if dev.role in (Role.SOURCE, Role.COUNTER):
        assert [c["sku"] for c in store["catalogue"]] == [i.sku for i in config.catalogue]
        assert {m["id"] for m in store["methods"]} == {m.id for m in config.methods}
        lobster = next(c for c in store["catalogue"] if c["sku"] == "LOB-AUS")
        assert lobster["sold_by"] == "weight" and lobster["min_weight_g"] == 500 and lobster["max_weight_g"] == 3000
        assert lobster["methods"]["sashimi"] == 5000  # the item's own fee overrides the method's
    else:
        assert store["catalogue"] == [] and store["methods"] == []

    snap = w["snapshot"]
    ids = {first.order_id, second.order_id}
    if dev.role is Role.SOURCE:
        mine = ids if dev.id == "shelf-1" else set()
        assert snap["orders"] == []
        assert {s["order_id"] for s in snap["statuses"]} == mine
    elif dev.role is Role.KITCHEN:
        seen = {first.order_id} if dev.station in ("wok", "cold") else set()
        if dev.station == "bar":
            seen = {second.order_id}
        assert {o["id"] for o in snap["orders"]} == seen
    else:
        assert {o["id"] for o in snap["orders"]} == ids


async def test_kitchen_hello_without_station_gets_its_own(hub: HubServer) -> None:
    conn = await open_ws(hub)
    await conn.send(json.dumps({k: v for k, v in GOOD_WOK.items() if k != "station"}))
    async with asyncio.timeout(5):
        w = json.loads(await conn.recv())
    assert w["type"] == "welcome" and w["role"] == "kitchen" and w["station"] == "wok"
    await conn.close()
