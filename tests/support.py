"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kds.client import HubClient
from kds.config import Role
from kds.protocol import (
    Ack,
    Error,
    Event,
    EventKind,
    OrderAccepted,
    OrderStatus,
    OrderView,
    Pong,
    Snapshot,
    StoreView,
    Welcome,
)
from kds.store import database_url
from kds.wire import Answer

_PORTS_PER_WORKER = 2000
_next_port = itertools.count()


def free_port() -> int:
    """A TCP port free on loopback right now, for a server a test must start (and maybe restart) on a known port.

    Taken from a range of its own per pytest-xdist worker (20000 + 2000 × worker), below the kernel's ephemeral range
    (32768-60999, where port-0 servers land) and in turn within it: two workers never pick the same port, and a port
    is not reused after a test let it go (with port 0 the kernel could hand one worker the port another worker's hub
    was about to bind, and that test's clients would talk to the other hub)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 20000 + _PORTS_PER_WORKER * (int(worker) if worker.isdigit() else 0)
    for _ in range(_PORTS_PER_WORKER):  # bounded: every port of the worker's range once
        port = base + next(_next_port) % _PORTS_PER_WORKER
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {base}-{base + _PORTS_PER_WORKER - 1}")


async def until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait until `predicate()` holds, yielding to the event loop; fail after `timeout` seconds (bounded). The
    default is generous: `make test` runs two workers on two cores, beside hubs, printer emulators and the niced
    ticket renderer, and a wait that returns as soon as the condition holds costs nothing when all is well."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"{what} not met within {timeout}s"
        await asyncio.sleep(0.005)


def db_rows(db: str | Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a query (`?` placeholders) on a test's database: a SQLite file or a PostgreSQL URL."""
    parts = sql.split("?")
    text = parts[0] + "".join(f":p{k}{rest}" for k, rest in enumerate(parts[1:]))
    engine = sa.create_engine(database_url(db))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(text), {f"p{k}": a for k, a in enumerate(args)})]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------- the hub's answers


def accepted(answer: Answer) -> OrderAccepted:
    """The answer, which must be an `order.accepted`."""
    assert isinstance(answer, OrderAccepted), answer
    return answer


def acked(answer: Answer) -> Ack:
    """The answer, which must be an `ack`."""
    assert isinstance(answer, Ack), answer
    return answer


def refused(answer: Answer, code: str | None = None) -> Error:
    """The answer, which must be an `error` (with this `code` when given)."""
    assert isinstance(answer, Error), answer
    assert code is None or answer.code == code, answer
    return answer


def ponged(answer: Answer) -> Pong:
    """The answer, which must be a `pong`."""
    assert isinstance(answer, Pong), answer
    return answer


def status_of(client: HubClient, order_id: str) -> OrderStatus | None:
    """The status of an order a source follows, as its client's book has it (None before the first)."""
    s = client.book.statuses.get(order_id)
    return None if s is None else s.status


# --------------------------------------------------------------------------------------------- frames built by hand


AT = "2026-11-25T04:00:00+00:00"


def order_json(**over: Any) -> dict[str, Any]:
    """An order as the hub sends it (an `OrderView`'s JSON)."""
    o: dict[str, Any] = {
        "id": "20261125-K001",
        "number": "K001",
        "key": "k-1",
        "source": "kiosk-1",
        "channel": "kiosk",
        "fulfilment": {"type": "dine_in", "table": "7"},
        "customer": None,
        "priority": "normal",
        "note": None,
        "status": "accepted",
        "version": 1,
        "created_at": AT,
        "updated_at": AT,
        "called_at": None,
        "handed_over_at": None,
        "handed_over_to": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "amended_at": None,
        "status_seq": 1,
        "status_at": AT,
        "status_ready": [],
        "amend_refs": [],
        "digest": None,
        "items": [
            {
                "id": "1",
                "sku": "WOK-MAPO",
                "name": "Mapo tofu",
                "name_zh": "麻婆豆腐",
                "qty": 2,
                "weight_g": None,
                "cook": None,
                "cook_name": None,
                "fee_cents": 0,
                "modifiers": [],
                "allergens": ["soy"],
                "note": None,
                "tag": None,
                "station": "wok",
                "unrouted": False,
                "removed": False,
                "done_at": None,
                "change": None,
            }
        ],
        "tickets": [
            {
                "id": "20261125-K001/wok",
                "station": "wok",
                "state": "new",
                "items": ["1"],
                "created_at": AT,
                "started_at": None,
                "done_at": None,
                "recalled_at": None,
                "amended_at": None,
            }
        ],
    }
    o.update(over)
    return o


def order_view(**over: Any) -> OrderView:
    """An `OrderView` (the JSON of `order_json`, parsed)."""
    return OrderView.model_validate(order_json(**over))


def welcome_frame(
    seq: int, *, resumed: bool = False, replay: int = 0, orders: list[OrderView] | None = None
) -> Welcome:
    """A kitchen screen's `welcome` (with a snapshot of `orders` unless resumed)."""
    return Welcome(
        type="welcome",
        protocol=2,
        seq=seq,
        device="wok-1",
        role=Role.KITCHEN,
        station="wok",
        resumed=resumed,
        replay=replay,
        snapshot=None if resumed else Snapshot(orders=orders or []),
        store=StoreView(
            id="s",
            name="Store",
            timezone="UTC",
            currency="CNY",
            stations=[],
            counter_warn_after_s=120,
            counter_late_after_s=300,
        ),
        server_time=datetime(2026, 11, 25, 4, 0, tzinfo=UTC),
    )


def event_frame(seq: int, order: OrderView, kind: EventKind = EventKind.ORDER_CREATED) -> Event:
    """An `event` carrying `order`."""
    return Event(type="event", seq=seq, at=datetime(2026, 11, 25, 4, 0, tzinfo=UTC), kind=kind, order=order)
