"""`kds counter`: the counter screen. Intake (F2) takes shelf-to-table and walk-up orders; expo (F3) calls and hands
over orders as they come together across the stations.

`make_app` builds the app for the CLI and the tests alike; `run_counter` is what `kds counter` runs. The app talks to
the hub only through `HubClient` (a `counter` device): its book holds the orders, its durable queue the actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from kds.client import Backoff, HubClient, LinkState
from kds.config import StoreConfig
from kds.protocol import Event, OrderAccepted, PrinterStatus, Welcome
from kds.wire import HubFrame
from terminals.connection import ConnectionBar, OfflineBanner
from terminals.counter.context import CounterContext
from terminals.counter.expo import ExpoScreen
from terminals.counter.intake import IntakeScreen
from terminals.counter.words import speak_bindings


def utc_now() -> datetime:
    """The default wall clock."""
    return datetime.now(UTC)


class CounterApp(App[int]):
    """The counter: intake and expo views over one hub connection."""

    CSS_PATH = "counter.tcss"
    ENABLE_COMMAND_PALETTE = False
    TITLE = "KDS counter"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "view('intake')", "Intake", priority=True),
        Binding("f3", "view('expo')", "Expo", priority=True),
    ]

    def __init__(self, ctx: CounterContext, *, view: str = "intake") -> None:
        super().__init__()
        self.ctx = ctx
        speak_bindings(self, ctx.w)
        self.client = ctx.client
        self.intake = IntakeScreen(ctx)
        self.expo = ExpoScreen(ctx)
        self.add_mode("intake", lambda: self.intake)
        self.add_mode("expo", lambda: self.expo)
        self.first_view = view
        self.bells = 0
        """Times the bell rang (an order called)."""
        self.notices: list[str] = []
        """Things said to the clerk in passing (reconnections, orders accepted from an old queue)."""

    async def on_mount(self) -> None:
        """Follow the hub: every frame redraws the views; start connecting."""
        self.client.listeners.append(self._on_frame)
        self.client.state_listeners.append(self._on_link)
        await self.client.start()
        await self.switch_mode(self.first_view)

    async def on_unmount(self) -> None:
        """Close the hub connection with the app."""
        if self._on_frame in self.client.listeners:
            self.client.listeners.remove(self._on_frame)
        if self._on_link in self.client.state_listeners:
            self.client.state_listeners.remove(self._on_link)
        await self.client.close()

    def action_view(self, view: str) -> None:
        """F2 / F3: switch between intake and expo."""
        self.switch_mode(view)

    def bell(self) -> None:
        """Ring (an order's number is called), and count it."""
        self.bells += 1
        super().bell()

    def _say(self, text: str, **kwargs: Any) -> None:
        self.notices.append(text)
        self.notify(text, **kwargs)

    def _on_frame(self, frame: HubFrame) -> None:
        """Every frame from the hub (called in the app's event loop by the client)."""
        if isinstance(frame, Welcome):
            self.ctx.printers.clear()  # the hub sends the status of every printer in trouble right after
            if not frame.resumed:
                # A fresh snapshot holds only the last few closed orders: fetch the recall list once online.
                self.run_worker(self._fetch_closed(), exclusive=True, group="closed")
            if self.client.connections > 1:
                w = self.ctx.w
                how = (
                    w("replayed {n} missed events").format(n=frame.replay)
                    if frame.resumed
                    else w("fresh snapshot of every open order")
                )
                self._say(w("Back online — resynced ({how}).").format(how=how), timeout=5)
        elif isinstance(frame, OrderAccepted) and frame.ref not in self.intake.refs:
            # An order from a queue left by an earlier run of this screen reached the hub.
            self._say(self.ctx.w("Queued order accepted: {number}").format(number=frame.number), timeout=15)
        elif isinstance(frame, PrinterStatus):
            self._printer_status(frame)
        self._refresh_link()
        if isinstance(frame, (Welcome, Event, PrinterStatus)):
            self.expo.mark_dirty()
            if self.intake.is_mounted:
                self.intake.refresh_title()

    async def _fetch_closed(self) -> None:
        try:
            await self.client.wait_online(10)
            await self.client.fetch_closed()
        except Exception as exc:  # offline again, or an old hub: the snapshot's closed orders stay
            self.log(f"could not fetch the closed orders: {exc}")
            return
        self.expo.mark_dirty()

    def _on_link(self, state: LinkState) -> None:
        """The link changed (online, offline…): say so at once rather than at the next tick."""
        self._refresh_link()

    def _refresh_link(self) -> None:
        for screen in (self.intake, self.expo):
            if screen.is_mounted:
                for bar in screen.query(ConnectionBar):
                    bar.refresh_status()
                for banner in screen.query(OfflineBanner):
                    banner.check()

    def _printer_status(self, frame: PrinterStatus) -> None:
        """A printer got into trouble or out of it: on the title line while it lasts, and said once."""
        printer = frame.printer
        was = printer in self.ctx.printers
        ours = not frame.stations  # the counter's own printer; the kitchen's are only counted
        w = self.ctx.w
        if frame.ok:
            self.ctx.printers.pop(printer, None)
            if was and ours:
                message = frame.message
                self._say(w("Printer {printer} is back: {message}").format(printer=printer, message=message), timeout=8)
        else:
            self.ctx.printers[printer] = frame
            if not was and ours:
                message = frame.message
                said = w("Printer {printer}: {message}").format(printer=printer, message=message)
                self._say(said, severity="warning", timeout=15)


def make_app(
    hub: str,
    device: str,
    token: str,
    *,
    queue_path: str | Path | None = None,
    now: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    hub_label: str | None = None,
    backoff: Backoff | None = None,
    view: str = "intake",
    ca_file: str | Path | None = None,
    config: StoreConfig | None = None,
) -> CounterApp:
    """The counter app for a `counter` device of the hub at `hub` (the CLI and the tests build it here); `ca_file`
    verifies a `wss://` hub; `config` (the store's, as `kds counter` reads it) gives the screen's language and the
    store's declared allergens."""
    client = HubClient(
        hub,
        device=device,
        token=token,
        role="counter",
        queue_path=queue_path,
        backoff=backoff or Backoff(),
        client_name="kds-counter",
        ca_file=ca_file,
    )
    return CounterApp(CounterContext(client, now, monotonic, hub_label, config), view=view)


def run_counter(
    *,
    hub: str,
    device: str,
    token: str,
    queue_path: str | Path | None = None,
    ca_file: str | Path | None = None,
    config: StoreConfig | None = None,
) -> int:
    """Run the counter screen until the clerk quits (Ctrl+Q); returns the exit code."""
    app = make_app(hub, device, token, queue_path=queue_path, ca_file=ca_file, config=config)
    app.run()
    return app.return_code or 0
