"""What every terminal says about its link to the hub: a status bar in words, and a loud OFFLINE banner.

Both read a `HubClient` and refresh themselves once a second, so "last event 12 s ago" keeps counting even when
nothing arrives. The clock is injectable (`now`) so snapshot tests are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from kds.client import HubClient, LinkState

STATE_WORDS = {
    LinkState.CONNECTING: "connecting to the hub…",
    LinkState.ONLINE: "connected to the hub",
    LinkState.OFFLINE: "OFFLINE — reconnecting",
    LinkState.REFUSED: "REFUSED by the hub",
    LinkState.CLOSED: "disconnected",
}


def ago(seconds: float | None) -> str:
    """'just now', '12 s ago', '3 min ago', '2 h ago', or 'never'."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 2:
        return "just now"
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


class ConnectionBar(Static):
    """One line: the link in words, when the last event came, and how many actions wait to be sent."""

    DEFAULT_CSS = """
    ConnectionBar {
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $success-darken-3;
        color: $text;
    }
    ConnectionBar.-offline {
        background: $error;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(
        self,
        client: HubClient,
        *,
        now: Callable[[], float] = time.monotonic,
        label: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.client = client
        self.now = now
        self.label = label
        """How to name the hub (its URL when None; snapshot tests give a fixed name for a hub on a free port)."""

    def on_mount(self) -> None:
        """Refresh every second (and at once)."""
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        """Re-read the client's state."""
        c = self.client
        last = None if c.last_event_at is None else self.now() - c.last_event_at
        parts = [STATE_WORDS[c.state], f"last event {ago(last)}"]
        if len(c.queue):
            parts.append(f"{len(c.queue)} action{'s' if len(c.queue) != 1 else ''} waiting to be sent")
        if c.state is LinkState.REFUSED and c.last_error:
            parts.append(c.last_error)
        parts.append(self.label if self.label is not None else c.urls[0] if c.urls else "")
        self.set_class(c.state is not LinkState.ONLINE, "-offline")
        self.update(" · ".join(p for p in parts if p))


class OfflineBanner(Static):
    """Shown only while the hub is unreachable: the screen below keeps the last state it had."""

    DEFAULT_CSS = """
    OfflineBanner {
        display: none;
        height: 3;
        width: 1fr;
        content-align: center middle;
        background: $error;
        color: $text;
        text-style: bold;
    }
    OfflineBanner.-shown {
        display: block;
    }
    """

    shown: reactive[bool] = reactive(False)

    def __init__(self, client: HubClient, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.client = client

    def on_mount(self) -> None:
        """Follow the client's state."""
        self.check()
        self.set_interval(0.5, self.check)

    def check(self) -> None:
        """Show or hide, with the number of queued actions."""
        c = self.client
        offline = c.state in (LinkState.OFFLINE, LinkState.REFUSED, LinkState.CLOSED) or (
            c.state is LinkState.CONNECTING and c.connections > 0
        )
        self.set_class(offline, "-shown")
        if offline:
            queued = len(c.queue)
            tail = f" — {queued} action{'s' if queued != 1 else ''} queued, sent when back" if queued else ""
            if c.state is LinkState.REFUSED:
                self.update(f"REFUSED BY THE HUB — {c.last_error or 'check device id and token'}")
            else:
                self.update(f"OFFLINE — reconnecting — showing the last known state{tail}")


class ConnectionStatus(Vertical):
    """The banner (top) and bar (bottom) together, for screens that want both in one place."""

    DEFAULT_CSS = """
    ConnectionStatus {
        height: auto;
    }
    """

    def __init__(self, client: HubClient, *, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.client = client
        self.now = now

    def compose(self) -> ComposeResult:
        """Banner, then bar."""
        yield OfflineBanner(self.client)
        yield ConnectionBar(self.client, now=self.now)
