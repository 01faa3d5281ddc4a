"""300 open tickets on one station: the screen keeps up, pages with a count, and keys act at once.

The figures (burst, redraw, key to screen) are held to generous bounds (`BOUNDS`): about ten times what they
measured on the 2-core machine this suite runs on in CI, so a slow or busy machine passes and only a screen that got
an order of magnitude slower (a redraw gone quadratic, a key that lays out all 300 tickets again) fails. The precise
figures are the benchmark's (`make bench-terminal`, docs/performance.md); `pytest -s` prints them here too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from kds.client import Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.protocol import OrderAccepted
from kds.server import HubServer
from terminals.kitchen.app import create_app
from terminals.kitchen.board import Board
from tests.support import until

ClientFactory = Callable[..., Any]
TICKETS = 300
BOUNDS = {
    "burst_s": 20.0,  # measured 1.6-2.0 s
    "redraw_ms": 400.0,  # 24-51 ms
    "select_ms": 1200.0,  # 104-130 ms (Pilot's own cost, a key bound to nothing, is 73-81 ms of it)
    "page_ms": 1500.0,  # 107-197 ms
    "bump_ms": 400.0,  # 20-45 ms
    "all_day_ms": 3000.0,  # 273-391 ms
}
"""Upper bounds, about 10x the figures measured on the 2-core CI machine (three runs beside another pytest process,
2026-11); a figure past its bound fails the test."""
WOK_DISHES = ["WOK-KUNGPAO", "WOK-MAPO", "WOK-FRIEDRICE", "WOK-BEEF-PEPPER", "WOK-SWEETSOUR", "NDL-BEEF", "NDL-DANDAN"]


def wok_orders(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """n kiosk orders with one to three wok dishes each (and sometimes a drink)."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        items: list[dict[str, Any]] = [
            {
                "sku": sku,
                "qty": rng.choice([1, 1, 2, 3]),
                **({"modifiers": ["less spicy"]} if rng.random() < 0.3 else {}),
            }
            for sku in rng.sample(WOK_DISHES, rng.randint(1, 3))
        ]
        if rng.random() < 0.5:
            items.append({"sku": "BAR-MILKTEA"})
        fulfilment = {"type": "dine_in", "table": str(rng.randint(1, 48))} if rng.random() < 0.6 else {"type": "pickup"}
        out.append(
            {
                "key": f"load-{k}",
                "channel": "kiosk",
                "fulfilment": fulfilment,
                "items": items,
                "priority": "rush" if rng.random() < 0.05 else "normal",
            }
        )
    return out


async def test_three_hundred_open_tickets_stay_responsive(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    dev = config.device("wok-1")
    assert dev is not None
    client = HubClient.for_device(hub.url, dev, backoff=Backoff(first=0.05, cap=0.3))
    app = create_app(client, station="wok", keymap=dict(dev.keymap), close_client=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(lambda: client.state is LinkState.ONLINE, what="online")
        started = time.perf_counter()
        orders = wok_orders(TICKETS)
        for k in range(0, TICKETS, 50):
            answers = await asyncio.gather(
                *(kiosk.request({"type": "order.submit", "order": o}) for o in orders[k : k + 50])
            )
            assert all(isinstance(a, OrderAccepted) for a in answers), answers
        await until(lambda: len(app.entries) == TICKETS, timeout=30, what="300 tickets on the board")
        burst = time.perf_counter() - started
        board = app.query_one(Board)
        assert len(board.pages) > 10
        header = str(app.query_one("#header").render())
        assert f"+{TICKETS - len(board.page_entries())} more" in header

        # A full redraw: the board worked out from the book (300 tickets), laid out, the page drawn.
        runs = 50
        t = time.perf_counter()
        for _ in range(runs):
            app.redraw()
        redraw_ms = (time.perf_counter() - t) / runs * 1000

        # A key press until the screen is drawn again (Pilot waits for the app to process it and refresh); a key
        # bound to nothing measures what Pilot itself costs.
        t = time.perf_counter()
        for _ in range(20):
            await pilot.press("f12")
        idle_ms = (time.perf_counter() - t) / 20 * 1000
        t = time.perf_counter()
        for _ in range(20):
            await pilot.press("right")
        key_ms = (time.perf_counter() - t) / 20 * 1000
        assert app.selected == app.entries[20].id

        t = time.perf_counter()
        await pilot.press("n")
        page_ms = (time.perf_counter() - t) * 1000
        assert board.page_index >= 1

        # The bump itself: queued with the client and the board redrawn without it (Pilot's press would also wait
        # for the hub's durable commit of it, in this same process).
        first = app.selected
        t = time.perf_counter()
        app.action_bump()
        bump_ms = (time.perf_counter() - t) * 1000
        assert first not in {e.id for e in app.entries}, "bumped off the board at once"
        await until(lambda: not app.state.pending, what="bump acknowledged")

        t = time.perf_counter()
        await pilot.press("a")
        all_day_ms = (time.perf_counter() - t) * 1000
        await pilot.press("escape")

        print(
            f"\n300 open tickets on wok: {burst:.2f} s from the first submit to all on the board; "
            f"full redraw {redraw_ms:.1f} ms; key to screen: select {key_ms:.1f} ms, page {page_ms:.1f} ms, "
            f"bump (queued and redrawn, before the screen is painted) {bump_ms:.1f} ms, "
            f"all-day {all_day_ms:.1f} ms (a key bound to nothing: {idle_ms:.1f} ms); "
            f"{len(board.pages)} pages"
        )
        figures = {
            "burst_s": burst,
            "redraw_ms": redraw_ms,
            "select_ms": key_ms,
            "page_ms": page_ms,
            "bump_ms": bump_ms,
            "all_day_ms": all_day_ms,
        }
        over = {k: f"{v:.1f} > {BOUNDS[k]:.0f}" for k, v in figures.items() if v > BOUNDS[k]}
        assert not over, f"slower than ten times what this machine measured: {over}"
