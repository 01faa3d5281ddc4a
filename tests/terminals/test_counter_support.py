"""Helpers shared by the counter screen's tests (this module has no tests of its own)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from kds.client import Backoff
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.server import HubServer
from kds.store import Store
from terminals.counter.app import CounterApp, make_app
from terminals.counter.intake import IntakeScreen
from tests.support import until

START = datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC)
"""12:00 in Shanghai: the fixed clock of the snapshot tests."""
HUB_LABEL = "ws://hub.test:8765"
"""What the status bar calls the hub in snapshots (the real one listens on a free port)."""


class Clock:
    """A wall clock the test moves."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move on by `timedelta(**delta)`."""
        self.now += timedelta(**delta)


def counter_app(url: str, tmp_path: Path, **kwargs: Any) -> CounterApp:
    """The counter screen of device counter-1, reconnecting fast, with its queue in `tmp_path`."""
    return make_app(
        url,
        "counter-1",
        "dev-counter-1-token",
        queue_path=tmp_path / "counter-queue.jsonl",
        backoff=Backoff(first=0.05, cap=0.3),
        **kwargs,
    )


async def ready(pilot: Pilot[Any], app: CounterApp) -> None:
    """Wait until the app is online with the store's catalogue and its first view is up."""
    await until(
        lambda: app.client.book.store is not None and bool(app.client.book.store.catalogue) and app.screen.is_mounted,
        what="counter online",
    )
    await pilot.pause()


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type like a keyboard (or a scanner) would."""
    await pilot.press(*text)


async def key_item(
    pilot: Pilot[Any],
    intake: IntakeScreen,
    find: str,
    *,
    weight: int | str | None = None,
    cook: str | None = None,
    qty: int | None = None,
    note: str | None = None,
    allergens: list[str] | None = None,
    add: bool = True,
) -> None:
    """Key in one item from the keys alone: find + Enter, weight + Enter, ↓… Enter on the method, details, each
    allergy typed and picked from the store's list with Enter, F4."""
    await type_text(pilot, find)
    await pilot.press("enter")
    await pilot.pause()
    if weight is not None:
        await type_text(pilot, str(weight))
        await pilot.press("enter")
    if cook is not None:
        assert intake.product is not None
        await pilot.press(*["down"] * list(intake.product.methods).index(cook), "enter")
    if qty is not None:
        await type_text(pilot, str(qty))
    if note is not None:
        intake.query_one("#item-note").focus()
        await type_text(pilot, note)
    if allergens is not None:
        intake.query_one("#allergens").focus()
        for allergen in allergens:
            await type_text(pilot, allergen)
            await pilot.press("enter")
    if add:
        await pilot.press("f4")
    await pilot.pause()


def no_blink(app: CounterApp) -> None:
    """Steady text cursors (snapshots must not catch a blink)."""
    for w in app.screen.query(Input):
        w.cursor_blink = False


def hub_server(
    config: StoreConfig, db: Path, *, port: int = 0, clock: Callable[[], datetime] | None = None
) -> HubServer:
    """A real hub (over a real SQLite file) on loopback."""
    hub = OrderHub(config, clock=clock) if clock is not None else OrderHub(config)
    return HubServer(hub, Store(db, store_id=config.store.id), host="127.0.0.1", port=port)
