"""Snapshots (pytest-textual-snapshot) of a busy wok station at 80×24 and 160×48, with a fixed clock.

`snap_compare` runs the app in its own event loop, so these tests are synchronous and the real hub runs in a
thread of its own (on loopback, over a real SQLite file). The hub's clock is moved before each order, so every
ticket has a known age: late, warning, on time; plus a rush, an amended, a cancelled and a just-arrived ticket.
Update the pictures with `pytest tests/terminals/test_kitchen_snapshots.py --snapshot-update` and look at them.

Each test also reads what the screen shows from its widgets (the board's text cut into cards, the header, the
status bar, the all-day table) and checks it against what a cook at this station must see, written out by hand
below (`WOK_CARDS`): a regenerated picture of a wrong screen still fails.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from rich.cells import get_character_cell_size
from textual.pilot import Pilot
from textual.widgets import Static

from kds.client import Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.hub import OrderHub
from kds.protocol import Ack, OrderAccepted
from kds.server import HubServer
from kds.store import Store
from kds.wire import Answer
from terminals.kitchen.all_day_screen import AllDayScreen
from terminals.kitchen.app import KitchenApp, create_app
from terminals.kitchen.bigtext import big
from terminals.kitchen.board import Board
from tests.support import accepted

T = TypeVar("T")
T0 = datetime.fromisoformat("2026-11-25T12:00:00+08:00")
"""The screen's clock in every snapshot."""


class HubThread:
    """A real hub in a thread with its own event loop, and source clients to feed it; its clock is `self.now`."""

    def __init__(self, config: StoreConfig, db: Path) -> None:
        self.config = config
        self.now = T0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hub", daemon=True)
        self.thread.start()
        self.server: HubServer = self.run(self._start(db))
        self.clients: dict[str, HubClient] = {}

    async def _start(self, db: Path) -> HubServer:
        hub = OrderHub(self.config, clock=lambda: self.now)
        server = HubServer(hub, Store(db, store_id=self.config.store.id), host="127.0.0.1", port=0)
        await server.start()
        return server

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the hub's loop and wait for it (from the test's thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def request(self, device: str, msg: dict[str, Any]) -> Answer:
        """Send a frame as a device of the sample config (connected on first use) and return the answer."""
        client = self.clients.get(device)
        if client is None:
            dev = self.config.device(device)
            assert dev is not None
            client = self.clients[device] = HubClient.for_device(self.server.url, dev)
            await client.connect()
        answer = await client.request(msg)
        assert isinstance(answer, (OrderAccepted, Ack)), answer
        return answer

    def at(self, minutes_before: float, device: str, msg: dict[str, Any]) -> Answer:
        """Send a frame with the hub's clock `minutes_before` T0."""
        self.now = T0 - timedelta(minutes=minutes_before)
        try:
            return self.run(self.request(device, msg))
        finally:
            self.now = T0

    def stop(self) -> None:
        """Close the clients and the hub, end the thread."""

        async def stop() -> None:
            for c in self.clients.values():
                await c.close()
            await self.server.stop()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def submit(key: str, channel: str, fulfilment: dict[str, Any], items: list[dict[str, Any]], **extra: Any) -> Any:
    """An order.submit frame."""
    order = {"key": key, "channel": channel, "fulfilment": fulfilment, "items": items, **extra}
    return {"type": "order.submit", "order": order}


def busy_wok(hub: HubThread) -> None:
    """A wok station in the middle of lunch: every kind of ticket a cook meets."""
    due = (T0 + timedelta(minutes=5)).isoformat()
    late = hub.at(
        14,
        "kiosk-1",
        submit(
            "b-1",
            "kiosk",
            {"type": "dine_in", "table": "12"},
            [
                {"sku": "WOK-KUNGPAO", "qty": 2, "modifiers": ["less spicy"]},
                {"sku": "WOK-MAPO", "note": "tofu well done"},
                {"sku": "BAR-LEMONTEA"},
            ],
        ),
    )
    hub.at(13, "wok-2", {"type": "ticket.start", "ticket_id": f"{accepted(late).order_id}/wok"})
    hub.at(
        9,
        "app-backend",
        submit(
            "b-2",
            "app",
            {"type": "delivery", "due": due, "address": "碧云路199弄12号601"},
            [{"sku": "WOK-FRIEDRICE"}, {"sku": "NDL-BEEF", "name": "红烧牛肉面", "modifiers": ["不要葱"]}],
            customer={"name": "王芳"},
        ),
    )
    hub.at(
        7,
        "kiosk-2",
        submit("b-3", "kiosk", {"type": "pickup"}, [{"sku": "NDL-WONTON", "qty": 3}], customer={"name": "Emma"}),
    )
    hub.at(
        6,
        "shelf-1",
        submit(
            "b-4",
            "shelf",
            {"type": "dine_in", "table": "21"},
            [
                {"sku": "LOB-AUS", "weight_g": 1350, "cook": "ginger_scallion", "tag": "T-2041", "note": "cut in 8"},
                {"sku": "GEODUCK", "weight_g": 820, "cook": "sashimi", "tag": "T-2042"},
            ],
        ),
    )
    amended = hub.at(
        5,
        "kiosk-1",
        submit(
            "b-5",
            "kiosk",
            {"type": "dine_in", "table": "3"},
            [{"sku": "WOK-SWEETSOUR"}, {"sku": "WOK-GREENS"}],
        ),
    )
    cancelled = hub.at(
        4, "kiosk-2", submit("b-6", "kiosk", {"type": "dine_in", "table": "30"}, [{"sku": "WOK-BEEF-PEPPER"}])
    )
    hub.at(
        3,
        "shelf-1",
        submit(
            "b-7",
            "shelf",
            {"type": "dine_in", "table": "8"},
            [{"sku": "CRAB-MUD", "weight_g": 650, "cook": "typhoon_shelter", "tag": "T-2043", "allergens": ["peanut"]}],
        ),
    )
    hub.at(
        2,
        "app-backend",
        submit(
            "b-8",
            "app",
            {"type": "pickup", "at": (T0 + timedelta(minutes=20)).isoformat()},
            [{"sku": "NDL-DANDAN", "qty": 2, "allergens": ["peanut"]}],
            priority="rush",
            note="Customer is allergic to peanuts: clean wok",
            customer={"name": "Li Wei"},
        ),
    )
    hub.at(
        1,
        "kiosk-1",
        {
            "type": "order.amend",
            "order_id": accepted(amended).order_id,
            "add": [{"sku": "WOK-EGGTOMATO"}],
            "remove": ["2"],
            "item_notes": {"1": "no sesame"},
        },
    )
    hub.at(
        0.5, "kiosk-2", {"type": "order.cancel", "order_id": accepted(cancelled).order_id, "reason": "customer left"}
    )


@pytest.fixture
def busy_hub(config: StoreConfig, tmp_path: Path) -> Iterator[HubThread]:
    """A hub thread holding a busy wok station."""
    hub = HubThread(config, tmp_path / "kds.sqlite3")
    try:
        busy_wok(hub)
        yield hub
    finally:
        hub.stop()


def wok_screen(config: StoreConfig, hub: HubThread) -> KitchenApp:
    """wok-1's screen at T0, its status bar naming the hub 'hub' and the last event 3 s old."""
    dev = config.device("wok-1")
    assert dev is not None
    client = HubClient.for_device(hub.server.url, dev, backoff=Backoff(first=0.05, cap=0.3))
    return create_app(
        client,
        station="wok",
        keymap=dict(dev.keymap),
        now=lambda: T0,
        monotonic=lambda: (client.last_event_at or 0.0) + 3.0,
        hub_label="hub",
        close_client=True,
    )


def ready(app: KitchenApp, hub: HubThread, tickets: int) -> Callable[[Pilot[Any]], Coroutine[Any, Any, None]]:
    """Before the picture: wait (bounded) for the board, then a new order arrives and the cook moves on."""

    async def run_before(pilot: Pilot[Any]) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while not (app.client.state is LinkState.ONLINE and len(app.entries) == tickets):
            assert loop.time() < end, "the board did not fill"
            await pilot.pause(0.02)
        fresh = submit("b-9", "kiosk", {"type": "dine_in", "table": "5"}, [{"sku": "WOK-GREENS", "qty": 2}])
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hub.request("kiosk-1", fresh), hub.loop))
        while len(app.entries) != tickets + 1:
            assert loop.time() < end, "the new order did not arrive"
            await pilot.pause(0.02)
        await pilot.press("right", "right", "down")

    return run_before


BUSY_TICKETS = 8
"""Open wok tickets of `busy_wok` (the cancelled one included, not yet acknowledged)."""


# ============================================================================================ what the screen shows


@dataclass
class Seen:
    """What the screen showed just before the picture was taken, read from its widgets."""

    board: str = ""
    header: str = ""
    status: str = ""
    pages: int = 0
    all_day_title: str = ""
    all_day: str = ""
    notices: list[str] = field(default_factory=list)


def seeing(app: KitchenApp, before: Callable[[Pilot[Any]], Coroutine[Any, Any, None]], seen: Seen) -> Any:
    """`before`, then settle as snap_compare does before its picture, then read the screen into `seen`."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await before(pilot)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        board = app.query_one(Board)
        seen.board, seen.pages = board.plain, len(board.pages)
        seen.header = str(app.query_one("#header", Static).render())
        seen.status = str(app.query_one("#status", Static).render())
        seen.notices = list(app.notices)
        if isinstance(app.screen, AllDayScreen):
            seen.all_day_title = str(app.screen.query_one("#all-day-title", Static).render())
            seen.all_day = str(app.screen.query_one("#all-day-table", Static).render())

    return run_before


def cells(line: str, start: int, stop: int) -> str:
    """The characters of `line` in terminal cells `start`..`stop` (a Chinese character takes two cells)."""
    out, x = [], 0
    for ch in line:
        w = get_character_cell_size(ch)
        if start <= x and x + w <= stop:
            out.append(ch)
        x += w
    return "".join(out)


def read_cards(board: str) -> dict[int, list[str]]:
    """The cards of the board's text by their pick number (1-9), each its lines, frame included, cut out by cell."""
    lines = board.split("\n")
    top = lines[0]
    ends = [x for x, ch in enumerate(top) if ch in "╮┓╗"]  # the top line holds no wide characters
    assert ends, f"no card on the board:\n{board}"
    width = ends[0] + 1
    columns = (sum(get_character_cell_size(c) for c in top) + 1) // (width + 1)
    cards: dict[int, list[str]] = {}
    for col in range(columns):
        x = col * (width + 1)
        current: list[str] | None = None
        for line in lines:
            piece = cells(line, x, x + width)
            if piece[:1] in ("╭", "┏", "╔"):
                current = cards.setdefault(int(piece[1]), [])
            if current is not None:
                current.append(piece)
            if piece[:1] in ("╰", "┗", "╚"):
                current = None
    return cards


def words(text: str) -> str:
    """Text with every run of blanks made one space."""
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class Card:
    """What one card must show, written by hand from `busy_wok`."""

    number: str
    frame: str
    """The top-left corner: ╭ a ticket, ┏ the selected one, ╔ a ticket that just arrived."""
    top: tuple[str, ...]
    """Words of the top line, in order: age, timer, state, channel."""
    where: str
    """The right of the number: the table (drawn big), or the fulfilment's words."""
    lines: tuple[str, ...]
    """The body's text in order (each a run of words as shown, wrapped lines joined)."""
    banner: str | None = None
    """The allergy banner, the first line under the number."""


WOK_CARDS = {
    1: Card(
        "K006",
        "╭",
        ("CANCELLED", "clear: X"),
        "30",
        ("ORDER CANCELLED — stop, do not make: customer left", "1× Black pepper beef tenderloin 黑椒牛柳"),
    ),
    2: Card(
        "A008",
        "╭",
        ("2:00", "RUSH", "NEW", "APP"),
        "PICKUP at 12:20 Li",
        ("✎ Customer is allergic to peanuts: clean wok", "2× Dan dan noodles 担担面", "⚠ CUSTOMER ALLERGY: Peanut"),
        banner="⚠ ALLERGY: Peanut",
    ),
    3: Card(
        "K001",
        "┏",
        ("14:00", "LATE", "COOKING", "KIOSK"),
        "12",
        (
            "2× Kung pao chicken 宫保鸡丁",
            "+ less spicy",
            "contains: Peanut, Soy",
            "▸ 1× Mapo tofu 麻婆豆腐",  # the item under the cursor
            "✎ tofu well done",
            "also: bar ×1",
        ),
    ),
    4: Card(
        "A002",
        "╭",
        ("9:00", "late in 3:00", "NEW", "APP"),
        "DELIVERY due 12:05 5:00 left",
        ("1× Yangzhou fried rice 扬州炒饭", "1× 红烧牛肉面", "+ 不要葱"),
    ),
    5: Card("K003", "╭", ("7:00", "NEW", "KIOSK"), "PICKUP Emma", ("3× Shrimp wonton noodle soup 鲜虾云吞面",)),
    6: Card(
        "S004",
        "╭",
        ("6:00", "NEW", "SHELF"),
        "21",
        (
            "1× 1.35 kg Australian rock lobster 澳洲龙虾",
            "▶ Wok-fried with ginger and scallion",
            "TAG T-2041",
            "✎ cut in 8",
            "also: cold ×1",
        ),
    ),
    7: Card(
        "K005",
        "╭",
        ("5:00", "NEW", "AMENDED", "KIOSK"),
        "3",
        (
            "1× Sweet and sour pork 糖醋里脊",
            "✎ no sesame NOTE CHANGED",
            "✗ 1× Stir-fried seasonal greens 清炒时蔬 REMOVED",
            "+ 1× Stir-fried tomato and egg 番茄炒蛋 ADDED",
        ),
    ),
    8: Card(
        "S007",
        "╭",
        ("3:00", "NEW", "SHELF"),
        "8",
        (
            "1× 650 g Mud crab 青蟹",
            "▶ Typhoon shelter (crispy garlic)",
            "TAG T-2043",
            "⚠ CUSTOMER ALLERGY: Peanut",
        ),
        banner="⚠ ALLERGY: Peanut",
    ),
    9: Card("K009", "╔", ("0:00", "★ NEW", "KIOSK"), "5", ("2× Stir-fried seasonal greens 清炒时蔬",)),
}
"""The wok board in working order (cancelled, rush, then oldest first), by pick number. Not on the board: the
cancelled ticket's items are not to make, and no card shows a delivery's address."""


def in_order(text: str, parts: tuple[str, ...]) -> bool:
    """Every part occurs in `text`, each after the one before."""
    at = 0
    for part in parts:
        found = text.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return True


def check_card(pick: int, lines: list[str], card: Card) -> None:
    """The card on the screen shows what `card` says."""
    assert len(lines) >= 6, f"card {pick} cut short: {lines}"
    assert lines[0][0] == card.frame, f"card {pick} framed {lines[0][0]}, not {card.frame}"
    assert in_order(words(lines[0][2:-1]), card.top), f"card {pick}: top line {lines[0]!r}, expected {card.top}"
    inner = [line[1:-1] for line in lines[1:-1]]
    rows = inner[:3]
    digits = big(card.number)
    for n, row in enumerate(rows):
        assert row[1:].startswith(digits[n]), f"card {pick} does not show the number {card.number}: {rows}"
    if card.where.isdigit():
        table = big(card.where)
        assert "TABLE" in rows[0]
        shown = all(r.rstrip().endswith(table[n].rstrip()) for n, r in enumerate(rows))
        assert shown, f"card {pick} does not show the table {card.where}: {rows}"
    else:
        right = words(" ".join(r[1 + len(digits[n]) :] for n, r in enumerate(rows)))
        assert right == card.where, f"card {pick}: {right!r}, expected {card.where!r}"
    body = inner[3:]
    if card.banner is not None:
        assert words(body[0]) == card.banner, f"card {pick}: the allergy banner is not at the top: {body}"
    else:
        assert "ALLERGY" not in " ".join(body[:1]), f"card {pick}: an allergy banner on a card without allergies"
    text = words(" ".join(body))
    assert in_order(text, card.lines), f"card {pick} reads {text!r}, expected in order {card.lines}"


def check_board(seen: Seen, picks: list[int]) -> None:
    """The board shows exactly the cards `picks` of WOK_CARDS, each as it must."""
    cards = read_cards(seen.board)
    assert sorted(cards) == picks, f"cards {sorted(cards)} on the board, expected {picks}:\n{seen.board}"
    for pick in picks:
        check_card(pick, cards[pick], WOK_CARDS[pick])
    assert "碧云路" not in seen.board and "王芳" not in seen.board  # the delivery's address and name stay off


def test_busy_wok_station_at_160x48(config: StoreConfig, busy_hub: HubThread, snap_compare: Any) -> None:
    app = wok_screen(config, busy_hub)
    seen = Seen()
    matched = snap_compare(
        app, terminal_size=(160, 48), run_before=seeing(app, ready(app, busy_hub, BUSY_TICKETS), seen)
    )
    check_board(seen, list(range(1, 10)))  # every ticket on one page
    assert seen.pages == 1
    assert words(seen.header).startswith("WOK 炒锅 8 open · 1 LATE · 1 RUSH · 1 CANCELLED"), seen.header
    assert "page" not in seen.header and "more" not in seen.header
    assert words(seen.header).endswith("12:00 ? help"), seen.header
    assert seen.status == "connected to the hub · last event 3 s ago · hub"
    assert seen.notices == []
    assert matched


def test_busy_wok_station_at_80x24(config: StoreConfig, busy_hub: HubThread, snap_compare: Any) -> None:
    app = wok_screen(config, busy_hub)
    seen = Seen()
    matched = snap_compare(
        app, terminal_size=(80, 24), run_before=seeing(app, ready(app, busy_hub, BUSY_TICKETS), seen)
    )
    check_board(seen, [1, 2, 3, 4])  # the first page: two columns of two
    assert seen.pages == 3
    # Narrow: the late and rush counts give way to the page count, never the other way round.
    assert words(seen.header).startswith("WOK 炒锅 8 open · 1 CANCELLED page 1/3 +5 more ▶"), seen.header
    assert seen.status == "connected to the hub · last event 3 s ago · hub"
    assert matched


ALL_DAY_80 = """\
 QTY  DISH                                                          WEIGHT
   3  Shrimp wonton noodle soup 鲜虾云吞面
   2  Dan dan noodles 担担面
   2  Kung pao chicken 宫保鸡丁
   2  Stir-fried seasonal greens 清炒时蔬
   1  Australian rock lobster 澳洲龙虾                                1.35 kg
      ▶ Wok-fried with ginger and scallion
   1  Mapo tofu 麻婆豆腐
   1  Mud crab 青蟹                                                    650 g
      ▶ Typhoon shelter (crispy garlic)
   1  Stir-fried tomato and egg 番茄炒蛋
   1  Sweet and sour pork 糖醋里脊
   1  Yangzhou fried rice 扬州炒饭
   1  红烧牛肉面"""
"""What is left to make at wok, by hand: the cancelled order and the removed greens are not in it, the two greens
of the new order are."""


def test_all_day_view_at_80x24(config: StoreConfig, busy_hub: HubThread, snap_compare: Any) -> None:
    app = wok_screen(config, busy_hub)
    before = ready(app, busy_hub, BUSY_TICKETS)

    async def run_before(pilot: Pilot[Any]) -> None:
        await before(pilot)
        await pilot.press("a")

    seen = Seen()
    matched = snap_compare(app, terminal_size=(80, 24), run_before=seeing(app, run_before, seen))
    assert seen.all_day_title == "ALL DAY — Wok: 16 to make across 8 open tickets"
    assert [words(line) for line in seen.all_day.splitlines()] == [words(line) for line in ALL_DAY_80.splitlines()]
    assert matched
