"""A busy kitchen's screen hides nothing: a ticket taller than the screen goes on in the next column or page under
"#A012 (cont. 2/2)", the customer's allergy shows at the top of every part of its card, paging always moves, the
item cursor is always on screen, and the pick keys match the numbers on the cards. Real hub on loopback, Pilot.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from kds.config import StoreConfig
from kds.server import HubServer
from terminals.kitchen.app import KitchenApp
from terminals.kitchen.board import Board
from tests.support import until
from tests.terminals.test_kitchen import ClientFactory, kitchen, running, submit

DISHES = ["WOK-KUNGPAO", "WOK-MAPO", "WOK-FRIEDRICE", "WOK-SWEETSOUR", "WOK-EGGTOMATO", "WOK-GREENS", "NDL-BEEF"]


def big_order(key: str) -> dict[str, Any]:
    """A table's order of 14 wok dishes, each with a modifier and a note; only the LAST line says the customer is
    allergic to peanuts."""
    items: list[dict[str, Any]] = [
        {"sku": DISHES[k % len(DISHES)], "qty": 1, "modifiers": ["less oil"], "note": f"dish {k + 1:02d} of 14"}
        for k in range(14)
    ]
    items[-1] = {**items[-1], "sku": "WOK-GREENS", "allergens": ["peanut"]}
    return {"key": key, "channel": "kiosk", "fulfilment": {"type": "dine_in", "table": "12"}, "items": items}


def small_order(key: str) -> dict[str, Any]:
    """A one-dish pickup."""
    return {"key": key, "channel": "kiosk", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}


def board_text(app: KitchenApp) -> str:
    """What the board shows now."""
    return app.query_one(Board).plain


def pieces_on_page(app: KitchenApp, ticket_id: str) -> int:
    """How many parts of a ticket's card the current page shows."""
    b = app.query_one(Board)
    return len(b.pages[b.page_index].pieces(b.index_of[ticket_id]))


def assert_cursor_on_screen(app: KitchenApp) -> None:
    """The item under the ▸ cursor is drawn on the page shown."""
    b = app.query_one(Board)
    assert app.cursor is not None
    assert b.page_index in b.pages_of(app.selected or "", app.cursor), "the cursor's item is on another page"
    item = next(i for i in app.entries[app._sel_index].items() if i.id == app.cursor)
    line = next(ln for ln in board_text(app).splitlines() if "▸ " in ln)
    assert "1×" in line.split("▸ ", 1)[1][:4], line
    assert item.note is not None and item.note in board_text(app), f"{item.note} is not on screen"


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_a_tall_ticket_continues_with_its_allergy_on_every_part(
    config: StoreConfig, hub: HubServer, connect: ClientFactory, size: tuple[int, int]
) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url, "wok-2")
    async with running(app, size=size) as pilot:
        big = await submit(kiosk, big_order("big"))
        for k in range(20):
            await submit(kiosk, small_order(f"s-{k}"))
        await until(lambda: len(app.entries) == 21)
        await pilot.press("home")
        b = app.query_one(Board)
        tall = app.entries[0]
        assert tall.number == big.number and app.selected == tall.id
        assert len(b.pages) > 1

        # Every part of the tall card, on every page, starts with the customer's allergy.
        seen: list[str] = []
        on_pages: set[str] = set()
        parts_seen = 0
        pages = [b.page_index]
        while True:
            text = board_text(app)
            seen.append(text)
            on_pages |= {e.id for e in b.page_entries()}
            parts = pieces_on_page(app, tall.id)
            parts_seen += parts
            assert text.count("⚠ ALLERGY: Peanut") == parts, f"page {b.page_index + 1}: a part without the banner"
            before = b.page_index
            await pilot.press("pagedown")
            if before == len(b.pages) - 1:
                assert b.page_index == before
                break
            assert b.page_index == before + 1, "PgDn always turns the page"
            pages.append(b.page_index)
        assert parts_seen >= 2, "the 14-item ticket is taller than a column"
        everything = "\n".join(seen)
        assert re.search(rf"#{tall.number} \(cont\. 2/\d\)", everything)
        for k in range(14):
            assert f"dish {k + 1:02d} of 14" in everything, f"item {k + 1} is never shown"
        assert "CUSTOMER ALLERGY: Peanut" in everything
        assert on_pages == {e.id for e in app.entries}, "paging reaches every ticket"

        # PgUp goes back page by page.
        for expected in reversed(pages[:-1]):
            await pilot.press("pageup")
            assert b.page_index == expected

        # The cursor walks the 14 items and never leaves the screen (the page follows it).
        await pilot.press("home")
        assert app.selected == tall.id
        assert_cursor_on_screen(app)
        for _ in range(13):
            await pilot.press("down")
            assert_cursor_on_screen(app)
        assert app.cursor == tall.open_items()[-1].id
        assert "CUSTOMER ALLERGY: Peanut" in board_text(app)
        for _ in range(13):
            await pilot.press("up")
            assert_cursor_on_screen(app)

        # → from the tall ticket goes on to the next one, on whichever page it is.
        await pilot.press("right")
        assert app.selected == app.entries[1].id
        assert b.page_index in b.pages_of(app.entries[1].id)


def labels(app: KitchenApp) -> dict[int, tuple[int, int]]:
    """Pick number → (row, column) of the card top that shows it."""
    b = app.query_one(Board)
    out: dict[int, tuple[int, int]] = {}
    for y, row in enumerate(b._rows):
        for x, line in enumerate(row):
            m = re.match(r"[┏╭╔](\d)", line.plain)
            if m:
                out[int(m.group(1))] = (y, x)
    return out


async def test_the_pick_keys_select_the_card_labelled_with_that_number(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url, "wok-2")
    async with running(app, size=(120, 40)) as pilot:
        # Cards of different heights, so the columns do not fill in step.
        await submit(kiosk, {**small_order("p-0"), "items": [{"sku": "WOK-MAPO", "note": "a long note " * 6}] * 3})
        for k in range(1, 7):
            await submit(kiosk, small_order(f"p-{k}"))
        await until(lambda: len(app.entries) == 7)
        b = app.query_one(Board)
        shown = labels(app)
        assert sorted(shown) == list(range(1, len(b.page_entries()) + 1)), "every card on the page is numbered"
        assert sorted(shown, key=lambda n: shown[n]) == sorted(shown), "numbered in reading order"
        assert any(shown[n][0] > 0 for n in shown), "some cards are below others"
        for n in sorted(shown, reverse=True):
            await pilot.press(str(n))
            heavy = [(y, x) for y, row in enumerate(b._rows) for x, line in enumerate(row) if line.plain[:1] == "┏"]
            assert heavy == [shown[n]], f"{n} selects the card labelled {n}"
            assert app.selected == b.page_entries()[n - 1].id
