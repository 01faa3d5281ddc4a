"""A read-only live view of the store: one column per station with its open tickets (a `monitor` device).

`kds demo` puts it in front of a hub fed by the simulator; it only reads the state through `HubClient`'s book, so it
works against any hub. The kitchen and counter screens are separate terminals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar
from zoneinfo import ZoneInfo

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.content import Content
from textual.widgets import Static

from kds.client import HubClient, LinkState
from kds.protocol import (
    Delivery,
    DineIn,
    Event,
    Fulfilment,
    ItemChange,
    ItemView,
    OrderView,
    Priority,
    StationInfo,
    TicketState,
    TicketView,
    Welcome,
)
from kds.view import CLOSED
from kds.wire import HubFrame

FOOTER_NOTE = "Kitchen station and counter screens come in later issues  ·  q or Ctrl+C quits"
MIN_COLUMN_WIDTH = 18
"""Below this many cells per station, the stations wrap onto two rows."""

STATE_WORDS = {
    LinkState.CONNECTING: "connecting…",
    LinkState.ONLINE: "connected",
    LinkState.OFFLINE: "offline, reconnecting…",
    LinkState.REFUSED: "refused by the hub",
    LinkState.CLOSED: "disconnected",
}
TICKET_STATE_STYLE = {
    TicketState.NEW: "bold $warning",
    TicketState.STARTED: "bold $accent",
    TicketState.DONE: "bold $success",
}
SHOWN = (TicketState.NEW, TicketState.STARTED, TicketState.DONE)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


class StationColumn(Static):
    """One station's open tickets, newest work at the bottom, rush first."""

    DEFAULT_CSS = """
    StationColumn {
        height: 1fr;
        border: round $primary-darken-1;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 0 0 1;
        overflow: hidden;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, station: StationInfo) -> None:
        super().__init__(id=f"station-{station.id}")
        self.station = station
        self.border_title = f"{station.name} {station.name_zh}".strip()
        self.plain = ""
        """The text shown, without styles (for tests and logs)."""

    def show(self, tickets: list[tuple[OrderView, TicketView]], now: datetime, tz: ZoneInfo) -> None:
        """Render these (order, ticket) pairs."""
        counts = {s.value: sum(1 for _, t in tickets if t.state is s) for s in SHOWN}
        self.border_subtitle = " · ".join(f"{n} {s}" for s, n in counts.items() if n) or "idle"
        room = max(1, self.content_size.height or 1000)
        lines: list[Content] = []
        shown = 0
        for order, ticket in tickets:
            block = self._block(order, ticket, now, tz)
            if lines and len(lines) + len(block) + 1 > room - 1:
                break
            if lines:
                lines.append(Content(""))
            lines.extend(block)
            shown += 1
        if shown < len(tickets):
            lines.append(Content.styled(f"+{len(tickets) - shown} more", "italic $text-muted"))
        if not tickets:
            lines.append(Content.styled("no open tickets", "italic $text-muted"))
        content = Content("\n").join(lines)
        self.plain = content.plain
        self.update(content)

    def _block(self, o: OrderView, t: TicketView, now: datetime, tz: ZoneInfo) -> list[Content]:
        created = t.created_at
        end = t.done_at if t.state is TicketState.DONE else None
        age = ((end or now) - created).total_seconds()
        warn, late = self.station.warn_after_s, self.station.late_after_s
        age_style = "bold $error" if age >= late else "$warning" if age >= warn else ""
        if t.state is TicketState.DONE:
            age_style = "$text-muted"
        head: list[str | tuple[str, str]] = [(o.number, "bold"), " ", (o.channel.value, "$text-muted")]
        if o.priority is Priority.RUSH:
            head += [" ", ("RUSH", "bold reverse $error")]
        head += [" ", (_clock(age), age_style), " ", (t.state.value, TICKET_STATE_STYLE.get(t.state, ""))]
        lines = [Content.assemble(*head)]
        where = self._fulfilment(o.fulfilment, tz)
        if o.customer and o.customer.name:
            where += f" · {o.customer.name}"
        lines.append(Content.styled(where, "$text-muted"))
        items = {i.id: i for i in o.items}
        for iid in t.items:
            it = items.get(iid)
            if it is None:
                continue
            lines.extend(self._item(it))
        if o.note:
            lines.append(Content.styled(f"✎ {o.note}", "italic"))
        return lines

    @staticmethod
    def _fulfilment(f: Fulfilment, tz: ZoneInfo) -> str:
        if isinstance(f, DineIn):
            return f"table {f.table}"
        if isinstance(f, Delivery):
            return f"delivery due {f.due.astimezone(tz):%H:%M}"
        return f"pickup {f.at.astimezone(tz):%H:%M}" if f.at else "pickup"

    @staticmethod
    def _item(it: ItemView) -> list[Content]:
        style = ""
        mark = ""
        if it.removed:
            style, mark = "strike $text-muted", "− "
        elif it.change is ItemChange.ADDED:
            style, mark = "bold $success", "+ "
        elif it.done_at:
            style = "$text-muted"
        out = [Content.styled(f"{mark}{it.qty}× {it.name}", style)]
        # Shelf goods: weight, cooking method and claim tag on their own line (they matter most to the cook).
        shelf = [
            f"{it.weight_g} g" if it.weight_g else "",
            it.cook_name or it.cook or "",
            f"#{it.tag}" if it.tag else "",
        ]
        if any(shelf):
            out.append(Content.styled("   " + " · ".join(p for p in shelf if p), style or "bold"))
        details = [*it.modifiers]
        if it.note:
            details.append(f"“{it.note}”")
        if details:
            out.append(Content.styled("   " + ", ".join(details), "italic"))
        return out


class LiveView(App[None]):
    """Orders flowing by station, as a `monitor` device sees them."""

    TITLE = "Hema KDS live view"
    CSS = """
    #header { height: 1; background: $primary; color: $text; padding: 0 1; text-style: bold; }
    #stations { height: 1fr; grid-size: 6 1; grid-gutter: 0 0; }
    #waiting { height: 1fr; content-align: center middle; color: $text-muted; }
    #footer-line { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        client: HubClient,
        *,
        extra: str = "",
        note: str = FOOTER_NOTE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.client = client
        self.extra = extra
        self.note = note
        self.clock = clock
        self.columns: dict[str, StationColumn] = {}
        self._dirty = True
        self._drawn_at = 0.0
        self.header_text = ""
        """The header line as last drawn."""

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static("connecting to the hub…", id="waiting")
        yield Grid(id="stations")
        yield Static(self.note, id="footer-line")

    async def on_mount(self) -> None:
        self.query_one("#stations").display = False
        self.client.listeners.append(self._on_frame)
        self.client.state_listeners.append(self._on_state)
        await self.client.start()
        self.set_interval(0.25, self._tick)
        self._draw()

    def on_unmount(self) -> None:
        if self._on_frame in self.client.listeners:
            self.client.listeners.remove(self._on_frame)
        if self._on_state in self.client.state_listeners:
            self.client.state_listeners.remove(self._on_state)

    def on_resize(self) -> None:
        self._layout_columns()
        self._dirty = True

    # ------------------------------------------------------------------ hub

    def _on_frame(self, frame: HubFrame) -> None:
        if isinstance(frame, (Welcome, Event)):
            self._dirty = True

    def _on_state(self, _state: LinkState) -> None:
        self._dirty = True

    # ------------------------------------------------------------------ drawing

    def _tick(self) -> None:
        # At most four redraws a second, and one a second anyway for the elapsed times.
        now = self.clock().timestamp()
        if self._dirty or now - self._drawn_at >= 1.0:
            self._draw()

    def _mount_columns(self) -> None:
        store = self.client.book.store
        stations = store.stations if store is not None else []
        if not stations or self.columns:
            return
        grid = self.query_one("#stations", Grid)
        for s in stations:
            col = StationColumn(s)
            self.columns[s.id] = col
            grid.mount(col)
        grid.display = True
        self.query_one("#waiting").display = False
        self._layout_columns()

    def _layout_columns(self) -> None:
        n = len(self.columns)
        if not n:
            return
        cols = n if self.size.width // n >= MIN_COLUMN_WIDTH else math.ceil(n / 2)
        grid = self.query_one("#stations", Grid)
        grid.styles.grid_size_columns = cols
        grid.styles.grid_size_rows = math.ceil(n / cols)

    def _header(self) -> str:
        c = self.client
        book = c.book
        state = STATE_WORDS.get(c.state, c.state.value)
        if c.state in (LinkState.OFFLINE, LinkState.REFUSED) and c.last_error:
            state += f" ({c.last_error})"
        store = book.store.name if book.store is not None else ""
        open_n = sum(1 for o in book.orders.values() if o.status not in CLOSED)
        parts = [
            state,
            f"{len(book.orders)} orders accepted",
            f"{open_n} open",
            f"hub {c.urls[0]}",
            store or self.TITLE,
            self.extra,
        ]
        return " · ".join(p for p in parts if p)

    def _draw(self) -> None:
        self._dirty = False
        now = self.clock()
        self._drawn_at = now.timestamp()
        self.header_text = self._header()
        self.query_one("#header", Static).update(self.header_text)
        self._mount_columns()
        if not self.columns:
            return
        store = self.client.book.store
        tz = ZoneInfo((store.timezone if store is not None else None) or "UTC")
        by_station: dict[str, list[tuple[OrderView, TicketView]]] = {s: [] for s in self.columns}
        for o in self.client.book.orders.values():
            if o.status in CLOSED:
                continue
            for t in o.tickets:
                if t.state is not TicketState.CANCELLED and t.station in by_station:
                    by_station[t.station].append((o, t))
        for station, tickets in by_station.items():
            # Work to do first (rush, then oldest), then what is done and waits for the counter (latest first).
            todo = sorted(
                (p for p in tickets if p[1].state is not TicketState.DONE),
                key=lambda p: (p[0].priority is not Priority.RUSH, p[1].created_at),
            )
            done = sorted(
                (p for p in tickets if p[1].state is TicketState.DONE),
                key=lambda p: p[1].done_at or p[1].created_at,
                reverse=True,
            )
            self.columns[station].show(todo + done, now, tz)
