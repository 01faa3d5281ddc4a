"""The contract partners build on (issue 16): version negotiation in `hello`/`welcome`, unknown fields, the
`called` status and the cancel reason in `order.status`.

Core tests drive a real `OrderHub` with JSON frames (`Core` of tests/test_hub_core.py); the negotiation is also
checked on a real websockets hub on 127.0.0.1 with raw connections and the real `HubClient`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from kds.client import HubClient
from kds.config import StoreConfig
from kds.hub import AuthError, OrderHub, Session
from kds.protocol import (
    PROTOCOL_VERSION,
    PROTOCOLS,
    Ack,
    CloseCode,
    OrderAccepted,
    OrderStatus,
    StatusChanged,
    Welcome,
)
from kds.server import HubServer
from kds.wire import HubFrame
from tests.conftest import ClientFactory
from tests.support import status_of, until
from tests.test_hub_core import Core, mixed_order


@pytest.fixture
def core(config: StoreConfig) -> Core:
    return Core(config)


def hello_frame(config: StoreConfig, device: str, **extra: Any) -> dict[str, Any]:
    dev = config.device(device)
    assert dev is not None
    frame: dict[str, Any] = {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value}
    if dev.station:
        frame["station"] = dev.station
    frame.update(extra)
    return frame


def connect(core: Core, device: str, **extra: Any) -> tuple[Session, dict[str, Any], list[dict[str, Any]]]:
    """A session of `device` whose hello carries `extra` (`protocols`, `resume_from`…): session, welcome, replay."""
    session, d = core.hub.connect(json.dumps(hello_frame(core.config, device, **extra)))
    welcome = json.loads(d.replies[0][1])
    Welcome.model_validate(welcome)
    return session, welcome, [json.loads(f) for _, f in d.replies[1:]]


def ready_order(core: Core, key: str = "v1") -> str:
    """An app order of app-backend, every station done: ready."""
    oid: str = core.submit("app-backend", mixed_order(key))["order_id"]
    for station in ("wok", "cold", "bar"):
        core.act(f"{station}-1", "ticket.bump", ticket_id=f"{oid}/{station}")
    assert core.order(oid)["status"] == "ready"
    return oid


def statuses_for(core: Core, session: Session) -> list[dict[str, Any]]:
    """The `order.status` frames this source session got of every event so far."""
    return [json.loads(f) for r in core.events if (f := r.frame_for(session)) is not None]


# ------------------------------------------------------------------------------------------------ negotiation


def test_the_hub_speaks_versions_1_2_and_3(core: Core) -> None:
    assert PROTOCOLS == (1, 2, 3) and PROTOCOL_VERSION == 3


@pytest.mark.parametrize(
    ("stated", "agreed"),
    [(None, 1), ([1], 1), ([1, 2], 2), ([2], 2), ([2, 1], 2), ([1, 2, 3, 9], 3), ([3], 3), ([1, 9], 1)],
)
def test_welcome_names_the_highest_version_both_speak(core: Core, stated: list[int] | None, agreed: int) -> None:
    extra = {} if stated is None else {"protocols": stated}
    session, welcome, _ = connect(core, "app-backend", **extra)
    assert welcome["protocol"] == agreed == session.protocol


@pytest.mark.parametrize("stated", [[4], [4, 5, 17]])
def test_no_version_in_common_is_a_bad_hello_naming_the_hubs_versions(core: Core, stated: list[int]) -> None:
    with pytest.raises(AuthError) as caught:
        connect(core, "wok-1", protocols=stated)
    err = caught.value
    assert err.close_code == CloseCode.BAD_HELLO
    frame = json.loads(err.frame)
    assert frame["code"] == "bad_hello" and frame["ref"] is None
    assert frame["message"] == "no protocol version in common: this hub speaks 1, 2, 3"
    assert frame["errors"] == [{"loc": ["protocols"], "msg": frame["message"]}]


@pytest.mark.parametrize("bad", [[], [0], ["2"], [1.5], "2", 2, [1] * 17])
def test_a_malformed_protocols_list_is_a_bad_hello(core: Core, bad: Any) -> None:
    with pytest.raises(AuthError) as caught:
        connect(core, "wok-1", protocols=bad)
    frame = json.loads(caught.value.frame)
    assert caught.value.close_code == 4000 and frame["code"] == "bad_hello"
    assert frame["errors"][0]["loc"][0] == "protocols"


def test_unknown_fields_of_a_hello_are_ignored_so_a_newer_client_meets_an_older_hub(core: Core) -> None:
    _, welcome, _ = connect(core, "wok-1", protocols=[2, 4], display={"rows": 24}, features=["ready_at_estimate"])
    assert welcome["protocol"] == 2 and welcome["device"] == "wok-1"


def test_unknown_fields_of_other_frames_are_still_refused(core: Core) -> None:
    reply = core.ask("wok-1", {"type": "ping", "pad": 1})
    assert reply["code"] == "invalid_message" and reply["errors"][0]["loc"] == ["pad"]


def test_validation_comes_before_the_role_check(core: Core) -> None:
    # A kitchen message from a source: malformed, it is `invalid_message`; well-formed, `forbidden`.
    bad = core.ask("app-backend", {"type": "ticket.bump"})
    assert bad["code"] == "invalid_message"
    good = core.ask("app-backend", {"type": "ticket.bump", "ticket_id": "20261125-A001/wok"})
    assert good["code"] == "forbidden"


# ------------------------------------------------------------------------------------------------ `called`


def test_a_protocol_2_source_hears_its_order_called(core: Core) -> None:
    v2, _, _ = connect(core, "app-backend", protocols=[1, 2])
    oid = ready_order(core)
    ack = core.act("counter-1", "order.call", order_id=oid)
    heard = statuses_for(core, v2)
    assert [s["status"] for s in heard] == ["accepted", "preparing", "ready", "called"]
    called = StatusChanged.model_validate(heard[-1])
    assert called.status is OrderStatus.CALLED and called.seq == ack["seq"] and called.ready == ["wok", "cold", "bar"]
    o = core.order(oid)
    assert o["status"] == "ready", "the order itself stays ready: `called` is what its source hears"
    assert o["status_seq"] == ack["seq"] and o["status_at"] == o["called_at"]
    # The event for the screens: no status change (the expo keeps showing a ready order, marked called).
    event = json.loads(core.last_event().frame)
    assert event["kind"] == "order.called" and event["status_changed"] is False
    assert event["order"]["status"] == "ready"
    # Handed over next: the source hears that too.
    core.act("counter-1", "order.handover", order_id=oid)
    assert statuses_for(core, v2)[-1]["status"] == "handed_over"


def test_a_protocol_1_source_is_not_told_of_the_call(core: Core) -> None:
    v1, welcome, _ = connect(core, "app-backend")
    assert welcome["protocol"] == 1
    oid = ready_order(core)
    core.act("counter-1", "order.call", order_id=oid)
    assert [s["status"] for s in statuses_for(core, v1)] == ["accepted", "preparing", "ready"]
    _, w1, _ = connect(core, "app-backend")
    [snap] = w1["snapshot"]["statuses"]
    assert snap["status"] == "ready" and snap["order_id"] == oid


def test_snapshot_and_replay_say_called_in_protocol_2_only(core: Core) -> None:
    oid = ready_order(core)
    before_call = core.hub.seq
    call = core.act("counter-1", "order.call", order_id=oid)
    _, w2, _ = connect(core, "app-backend", protocols=[1, 2])
    [snap] = w2["snapshot"]["statuses"]
    assert (snap["status"], snap["seq"]) == ("called", call["seq"])
    # Resuming from before the call: a protocol 2 source gets the `called` frame, a protocol 1 source nothing.
    _, r2, replay2 = connect(core, "app-backend", protocols=[1, 2], resume_from=before_call)
    assert r2["resumed"] and [f["status"] for f in replay2] == ["called"] and r2["replay"] == 1
    _, r1, replay1 = connect(core, "app-backend", resume_from=before_call)
    assert r1["resumed"] and replay1 == [] and r1["replay"] == 0


def test_a_called_order_reopened_by_an_amendment_must_be_called_again(core: Core) -> None:
    v2, _, _ = connect(core, "app-backend", protocols=[2])
    oid = ready_order(core)
    core.act("counter-1", "order.call", order_id=oid)
    core.act("app-backend", "order.amend", order_id=oid, add=[{"sku": "BAR-COCONUT"}])
    assert core.order(oid)["called_at"] is None and core.order(oid)["status"] == "preparing"
    core.act("bar-1", "ticket.bump", ticket_id=f"{oid}/bar")
    assert [s["status"] for s in statuses_for(core, v2)][-3:] == ["called", "preparing", "ready"]
    assert core.act("counter-1", "order.call", order_id=oid)["seq"] is not None, "called again, a new event"
    assert statuses_for(core, v2)[-1]["status"] == "called"


def test_a_called_status_is_rebuilt_from_the_stored_event(core: Core, config: StoreConfig) -> None:
    oid = ready_order(core)
    core.act("counter-1", "order.call", order_id=oid)
    rec = core.last_event()
    replica = OrderHub(config, clock=core.clock)
    for r in core.events:
        again = replica.apply_external(r.seq, r.frame)
    assert again.status_frame == rec.status_frame
    assert json.loads(again.status_frame or "")["status"] == "called"


# ------------------------------------------------------------------------------------------------ cancel reason


def test_a_cancelled_status_carries_the_reason_given(core: Core) -> None:
    v2, _, _ = connect(core, "app-backend", protocols=[1, 2])
    v1, _, _ = connect(core, "app-backend")
    a = core.submit("app-backend", mixed_order("c1"))["order_id"]
    b = core.submit("app-backend", mixed_order("c2"))["order_id"]
    core.act("app-backend", "order.cancel", order_id=a, reason="customer changed their mind")
    core.act("counter-1", "order.cancel", order_id=b)
    for session in (v2, v1):  # a field added: every version gets it (clients ignore fields they do not know)
        cancelled = [s for s in statuses_for(core, session) if s["status"] == "cancelled"]
        assert [(s["order_id"], s["reason"]) for s in cancelled] == [(a, "customer changed their mind"), (b, None)]
        for s in cancelled:
            StatusChanged.model_validate(s)
    # Only a cancelled status carries `reason`.
    assert all("reason" not in s for s in statuses_for(core, v2) if s["status"] != "cancelled")
    _, w, _ = connect(core, "app-backend", protocols=[2])
    assert {s["order_id"]: s.get("reason") for s in w["snapshot"]["statuses"]} == {
        a: "customer changed their mind",
        b: None,
    }


# ------------------------------------------------------------------------------------------------ a real hub


async def _raw(url: str, hello: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None, str]:
    frames: list[dict[str, Any]] = []
    async with ws_connect(url) as conn:
        await conn.send(json.dumps(hello))
        try:
            while True:
                frames.append(json.loads(await conn.recv()))
                if frames[0]["type"] == "welcome":
                    return frames, None, ""
        except ConnectionClosed:
            pass
    return frames, conn.close_code, conn.close_reason or ""


@pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)
async def test_negotiation_on_a_real_hub(hub: HubServer, config: StoreConfig, connect: ClientFactory) -> None:
    old, _, _ = await _raw(hub.url, hello_frame(config, "wok-1"))
    assert old[0]["type"] == "welcome" and old[0]["protocol"] == 1
    new, _, _ = await _raw(hub.url, hello_frame(config, "wok-1", protocols=[1, 2, 3, 4], shiny="ignored"))
    assert new[0]["type"] == "welcome" and new[0]["protocol"] == 3
    refused, code, reason = await _raw(hub.url, hello_frame(config, "wok-1", protocols=[4]))
    assert code == 4000 and refused[0]["code"] == "bad_hello"
    assert "this hub speaks 1, 2, 3" in refused[0]["message"] and "1, 2, 3" in reason
    # The real client states every version it speaks and gets the newest.
    client: HubClient = await connect("app-backend")
    assert client.protocol == 3 == client.welcome.protocol if client.welcome else False


@pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)
async def test_the_client_hears_called_and_the_cancel_reason_from_a_real_hub(connect: ClientFactory) -> None:
    app: HubClient = await connect("app-backend")
    counter: HubClient = await connect("counter-1")
    kitchens = {s: await connect(f"{s}-1") for s in ("wok", "cold", "bar")}
    frames: list[HubFrame] = []
    app.listeners.append(frames.append)
    oid = (await app.request({"type": "order.submit", "order": mixed_order("real-1")}, expect=OrderAccepted)).order_id
    for station, c in kitchens.items():
        await c.request({"type": "ticket.bump", "ticket_id": f"{oid}/{station}"}, expect=Ack)
    call = await counter.request({"type": "order.call", "order_id": oid}, expect=Ack)
    await until(lambda: status_of(app, oid) == "called", what="called status")
    assert app.book.statuses[oid].seq == call.seq == app.seq
    other = (await app.request({"type": "order.submit", "order": mixed_order("real-2")}, expect=OrderAccepted)).order_id
    await app.request({"type": "order.cancel", "order_id": other, "reason": "out of lobster"})
    await until(lambda: status_of(app, other) == "cancelled", what="cancelled status")
    assert app.book.statuses[other].reason == "out of lobster"
