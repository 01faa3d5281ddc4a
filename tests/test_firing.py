"""When tickets reach their stations: orders scheduled for later, hold and fire by hand, fire by prep time (so that the
parts of an order finish together), and the `scheduled` and `fired` statuses of protocol 3; with an injected clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kds.config import StoreConfig
from kds.hub import Session
from kds.protocol import Ack, EventKind, OrderAccepted, TicketState
from kds.server import HubServer
from tests.conftest import Devices, clocked_hub
from tests.support import until
from tests.test_hub_core import Clock, Core

NOON = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
"""12:00 in Shanghai."""


def by_prep(config: StoreConfig, on: bool = True) -> StoreConfig:
    return config.model_copy(update={"timing": config.timing.model_copy(update={"fire_by_prep": on})})


def pickup(key: str, at: datetime | None, *skus: str) -> dict[str, Any]:
    fulfilment: dict[str, Any] = {"type": "pickup"}
    if at is not None:
        fulfilment["at"] = at.isoformat()
    return {"key": key, "channel": "kiosk", "fulfilment": fulfilment, "items": [{"sku": s} for s in skus]}


THREE = ("WOK-FRIEDRICE", "BAR-MILKTEA", "COLD-SUSHI-PLATTER")
"""Three stations, three prep times (config: 300, 120 and 480 s)."""


def source(core: Core, device: str, protocol: int) -> Session:
    dev = core.config.device(device)
    assert dev is not None
    hello = {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value, "protocols": [protocol]}
    session, _ = core.hub.connect(json.dumps(hello))
    return session


def statuses(core: Core, session: Session) -> list[str]:
    return [json.loads(f)["status"] for r in core.events if (f := r.frame_for(session)) is not None]


def tickets(core: Core, oid: str) -> dict[str, Any]:
    return {t["station"]: t for t in core.order(oid)["tickets"]}


def fire_due(core: Core) -> list[EventKind]:
    d = core.hub.fire_due()
    core.decisions.append(d)
    return [r.kind for r in d.events]


def test_an_order_for_later_waits_and_fires_when_its_slowest_part_must_start(config: StoreConfig) -> None:
    core = Core(config, clock=Clock(NOON))
    new, old = source(core, "kiosk-1", 3), source(core, "kiosk-1", 2)
    wanted = NOON + timedelta(hours=2)
    r = core.submit("kiosk-1", pickup("later", wanted, *THREE))
    oid = r["order_id"]
    order = core.order(oid)
    # Without fire by prep time every part goes when the slowest must: 480 s before it aims to be ready, the slack
    # before it is wanted.
    aim = wanted - timedelta(seconds=config.timing.schedule_slack_s)
    fire_at = aim - timedelta(seconds=480)
    assert {s: t.get("fire_at") for s, t in tickets(core, oid).items()} == dict.fromkeys(
        ("wok", "bar", "cold"), fire_at.isoformat()
    )
    assert order["schedule"] == {"wanted_at": wanted.isoformat()}
    assert r["ready_at_estimate"] == aim.isoformat() == order["ready_at_estimate"]
    assert core.decisions[-1].jobs == []  # nothing prints before it fires
    assert core.hub.due == {oid: fire_at}
    # Nothing fires early.
    core.clock.t = fire_at - timedelta(seconds=1)
    assert fire_due(core) == []
    core.clock.t = fire_at
    assert fire_due(core) == [EventKind.ORDER_FIRED]
    fired = core.decisions[-1]
    assert sorted(j.station for j in fired.jobs if j.station) == ["bar", "cold", "wok"]
    assert all("fire_at" not in t and t["fired_at"] == fire_at.isoformat() for t in tickets(core, oid).values())
    assert core.order(oid)["schedule"] == {"wanted_at": wanted.isoformat(), "fired_at": fire_at.isoformat()}
    assert core.hub.due == {}
    core.act("wok-1", "ticket.start", ticket_id=f"{oid}/wok")
    # Protocol 3 hears scheduled, fired, preparing; protocol 2 accepted, preparing (the fire is not its kind).
    assert statuses(core, new) == ["scheduled", "fired", "preparing"]
    assert statuses(core, old) == ["accepted", "preparing"]


def test_an_order_wanted_soon_goes_to_the_kitchen_at_once(config: StoreConfig) -> None:
    core = Core(config, clock=Clock(NOON))
    soon = NOON + timedelta(seconds=config.timing.schedule_ahead_s)  # less than that after its work: at once
    oid = core.submit("kiosk-1", pickup("soon", soon, *THREE))["order_id"]
    assert all(t.get("fire_at") is None for t in tickets(core, oid).values())
    assert "schedule" not in core.order(oid) and core.hub.due == {}
    assert sorted(j.station for j in core.decisions[-1].jobs if j.station) == ["bar", "cold", "wok"]


def test_fire_by_prep_time_makes_the_parts_finish_together_with_the_queues_counted(config: StoreConfig) -> None:
    core = Core(by_prep(config), clock=Clock(NOON))
    oid = core.submit("kiosk-1", pickup("now", None, *THREE))["order_id"]
    t = tickets(core, oid)
    # The slowest (cold, 480 s) at once; the wok 180 s later, the bar 360 s later: all done at 12:08.
    assert t["cold"].get("fire_at") is None
    assert t["wok"]["fire_at"] == (NOON + timedelta(seconds=180)).isoformat()
    assert t["bar"]["fire_at"] == (NOON + timedelta(seconds=360)).isoformat()
    assert core.order(oid)["ready_at_estimate"] == (NOON + timedelta(seconds=480)).isoformat()
    assert "schedule" not in core.order(oid)  # not an order for later: the source hears accepted
    assert [j.station for j in core.decisions[-1].jobs if j.station] == ["cold"]
    core.clock.t = NOON + timedelta(seconds=180)
    assert fire_due(core) == [EventKind.ORDER_FIRED]
    assert [j.station for j in core.decisions[-1].jobs if j.station] == ["wok"]
    core.clock.t = NOON + timedelta(seconds=360)
    assert fire_due(core) == [EventKind.ORDER_FIRED]
    assert [j.station for j in core.decisions[-1].jobs if j.station] == ["bar"]

    # Two fried rices waiting at the wok (one cook): the wok part is now the slowest; it goes at once, the others
    # when they must to finish with it.
    later = Core(by_prep(config), clock=Clock(NOON))
    for k in range(2):
        later.submit("kiosk-1", pickup(f"rice-{k}", None, "WOK-FRIEDRICE"))
    oid = later.submit("kiosk-1", pickup("three", None, *THREE))["order_id"]
    t = tickets(later, oid)
    wok_done = NOON + timedelta(seconds=3 * 300)
    assert t["wok"].get("fire_at") is None
    assert t["cold"]["fire_at"] == (wok_done - timedelta(seconds=480)).isoformat()
    assert t["bar"]["fire_at"] == (wok_done - timedelta(seconds=120)).isoformat()
    assert later.order(oid)["ready_at_estimate"] == wok_done.isoformat()


def test_the_counter_fires_early_and_holds_and_kitchens_only_their_own(config: StoreConfig) -> None:
    core = Core(config, clock=Clock(NOON))
    a = core.submit("kiosk-1", pickup("a", NOON + timedelta(hours=2), *THREE))["order_id"]
    b = core.submit("kiosk-1", pickup("b", NOON + timedelta(hours=2), *THREE))["order_id"]
    # The counter fires one station's part early; the wok fires its own; the rest waits.
    assert core.act("counter-1", "order.fire", order_id=a, station="cold")["seq"] is not None
    assert [j.station for j in core.decisions[-1].jobs if j.station] == ["cold"]
    assert core.act("wok-1", "order.fire", order_id=a)["seq"] is not None
    t = tickets(core, a)
    assert t["cold"].get("fire_at") is None and t["wok"].get("fire_at") is None and t["bar"].get("fire_at")
    r = core.act("wok-1", "order.fire", order_id=a, station="bar")
    assert (r["code"], r["errors"][0]["loc"]) == ("forbidden", ["station"])
    # Firing what is at its station already changes nothing.
    assert core.act("counter-1", "order.fire", order_id=a, station="cold")["seq"] is None
    # Held: it does not fire when its time comes, only by hand.
    assert core.act("counter-1", "order.hold", order_id=b)["seq"] is not None
    assert all(t["held"] for t in tickets(core, b).values())
    assert b not in core.hub.due
    core.clock.t = NOON + timedelta(hours=3)
    assert [k for k in fire_due(core)] == [EventKind.ORDER_FIRED]  # a's bar part, not b
    assert tickets(core, a)["bar"].get("fire_at") is None and all(t["held"] for t in tickets(core, b).values())
    assert core.act("counter-1", "order.fire", order_id=b)["seq"] is not None
    assert not any(t.get("held") or t.get("fire_at") for t in tickets(core, b).values())
    # A started ticket cannot be held; a station that starts a waiting ticket fires it.
    core.act("wok-1", "ticket.start", ticket_id=f"{b}/wok")
    r = core.act("counter-1", "order.hold", order_id=b, station="wok")
    assert (r["code"], r["errors"][0]["loc"]) == ("conflict", ["order_id"])
    # One part held, the others fire on time without it.
    d = core.submit("kiosk-1", pickup("d", NOON + timedelta(hours=5), *THREE))["order_id"]
    assert core.act("counter-1", "order.hold", order_id=d, station="bar")["seq"] is not None
    core.clock.t = NOON + timedelta(hours=6)
    assert fire_due(core) == [EventKind.ORDER_FIRED]
    t = tickets(core, d)
    assert t["bar"]["held"] and t["wok"].get("fire_at") is None and t["cold"].get("fire_at") is None
    assert d not in core.hub.due
    c = core.submit("kiosk-1", pickup("c", NOON + timedelta(hours=9), *THREE))["order_id"]
    core.act("bar-1", "ticket.bump", ticket_id=f"{c}/bar")
    bar = tickets(core, c)["bar"]
    assert bar["state"] == TicketState.DONE.value and "fire_at" not in bar and bar["fired_at"]


# --------------------------------------------------------------------------------------------- a real hub


async def test_a_real_hub_fires_on_its_own_also_after_a_restart(
    config: StoreConfig, db_path: Path | str, devices: Devices, servers: list[HubServer]
) -> None:
    clock = Clock(NOON)

    server = await clocked_hub(config, db_path, servers, clock)
    kiosk = await devices.connect(server.url, "kiosk-1")
    wanted = NOON + timedelta(hours=1)
    acc = await kiosk.request({"type": "order.submit", "order": pickup("r", wanted, *THREE)}, expect=OrderAccepted)
    await server.stop()

    again = await clocked_hub(config, db_path, servers, clock)
    wok = await devices.connect(again.url, "wok-1")
    assert wok.protocol == 3
    fire_at = wanted - timedelta(seconds=config.timing.schedule_slack_s + 480)
    assert wok.book.orders[acc.order_id].tickets[0].fire_at == fire_at
    clock.t = fire_at  # its time: the hub's next tick fires it

    def fired() -> bool:
        return all(t.fire_at is None and t.fired_at is not None for t in wok.book.orders[acc.order_id].tickets)

    await until(fired, what="the scheduled order fired by the hub")
    ack = await wok.request({"type": "ticket.start", "ticket_id": f"{acc.order_id}/wok"}, expect=Ack)
    assert ack.seq is not None
