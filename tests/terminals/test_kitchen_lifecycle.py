"""The kitchen screen's life cycle: what arrives before it is composed or after it has closed (a frame, the clock's
tick, a redraw the last frames scheduled) finds nothing to draw on and must be a no-op, not a crash on the way out
(it was `NoMatches('Board')` from `redraw` during teardown, about 1 run in 7)."""

from __future__ import annotations

from datetime import UTC, datetime

from kds.client import LinkState
from kds.config import StoreConfig
from kds.protocol import PrinterState, PrinterStatus
from kds.server import HubServer
from terminals.kitchen.app import KitchenApp
from tests.support import event_frame, order_view, until, welcome_frame
from tests.terminals.test_kitchen import ClientFactory, kitchen, numbers, running, submit, wok_order


async def test_frames_ticks_and_redraws_before_compose_and_after_close_are_no_ops(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url)
    app.redraw()  # not composed yet
    app._tick()
    async with running(app) as pilot:
        a = await submit(kiosk, wok_order("k-1"))
        await until(lambda: numbers(app) == [a.number])
        await pilot.pause()
    assert not app.is_running
    # The app has closed: the screen's widgets are gone. What was still queued then must not fail.
    await submit(kiosk, wok_order("k-2"))
    app.redraw()
    app._tick()
    app._redraw_pending = True
    app._redraw_if_pending()
    app._frame(KitchenApp.HubFrame(event_frame(2, order_view(id=a.order_id))))
    app._link(KitchenApp.LinkChanged(LinkState.OFFLINE))
    app.show_printer_status(
        PrinterStatus(
            type="printer.status",
            printer="wok-printer",
            stations=["wok"],
            ok=False,
            state=PrinterState.PAPER_OUT,
            message="",
            at=datetime(2026, 11, 25, 4, 0, tzinfo=UTC),
        )
    )


async def test_a_redraw_scheduled_as_the_app_closes_does_not_fail_it(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    kiosk = await connect("kiosk-1")
    app = kitchen(config, hub.url)
    async with running(app) as pilot:
        await submit(kiosk, wok_order("k-1"))
        await until(lambda: len(app.entries) == 1)
        # Frames keep coming while the app shuts down: each schedules a redraw that runs during teardown.
        app.call_later(app.redraw)
        app.exit()
        app._schedule_redraw()
        app.post_message(KitchenApp.HubFrame(welcome_frame(1, resumed=True)))
        await pilot.pause()
    assert app.return_code in (None, 0)
