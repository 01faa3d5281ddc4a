"""Expo / handover: every open order with its progress per station, READY ones on top; call, hand over, recall,
print again.

The list is redrawn from `HubClient.book` on every event and once a second (countdowns). Actions go through the
client's durable queue; an action waiting for the hub is marked on its row, and the hub's answer (or refusal, in
words) shows on the line under the list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from kds.client import LinkState
from kds.protocol import Delivery, DineIn, Error, OrderStatus, OrderView, Priority, TicketState
from kds.wire import Answer
from terminals.connection import ConnectionBar, OfflineBanner
from terminals.counter import actions
from terminals.counter.assembly import Assembly, Level, clock, expo_list
from terminals.counter.context import CounterContext
from terminals.counter.dialogs import handover_dialog, print_dialog
from terminals.counter.widgets import ViewTitle
from terminals.counter.words import speak_bindings

LEVEL_STYLE = {Level.OK: "", Level.WARN: "bold yellow", Level.LATE: "bold red"}
WIDE = 110
"""From this many columns on, the list has an Alerts column; below, an order's first alert takes its Time cell."""


def _columns(width: int, w: Callable[[str], str] = str) -> list[tuple[str, str, int]]:
    """(key, label, width) of the list's columns for a screen `width` cells wide (each cell has 1 cell of padding);
    `w` gives the headers in the screen's language."""
    if width >= WIDE:
        fixed = [("number", w("Order"), 6), ("for", w("For"), 11), ("status", w("Status"), 12)]
        rest = width - 2 - sum(n + 2 for _, _, n in fixed) - 2 * 2 - 18
        stations = max(20, rest * 5 // 9)
        return [
            *fixed,
            ("stations", w("Stations"), stations),
            ("time", w("Time"), 18),
            ("alerts", w("Alerts"), rest - stations),
        ]
    fixed = [("number", w("Order"), 5), ("for", w("For"), 10), ("status", w("Status"), 10)]
    rest = width - 2 - sum(n + 2 for _, _, n in fixed) - 2 * 2 - 15
    return [*fixed, ("stations", w("Stations"), max(12, rest)), ("time", w("Time"), 15)]


class ExpoScreen(Screen[None]):
    """Orders coming together: READY first, then the rest; recently handed over at the bottom for recall."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "call", "Call"),
        Binding("h", "handover", "Hand over"),
        Binding("r", "recall", "Recall"),
        Binding("p", "reprint", "Print"),
        Binding("f", "fire", "Fire now"),
        Binding("w", "hold", "Hold"),
    ]

    class Answered(Message):
        """The hub answered a counter action (`ack` or `error`)."""

        def __init__(self, order_id: str, what: str, number: str, answer: Answer) -> None:
            super().__init__()
            self.order_id = order_id
            self.what = what
            self.number = number
            self.answer = answer

    class Printed(Message):
        """The hub answered a print request: None when it took the job, else why not."""

        def __init__(self, number: str, layout: str, problem: str | None) -> None:
            super().__init__()
            self.number = number
            self.layout = layout
            self.problem = problem

    def __init__(self, ctx: CounterContext) -> None:
        super().__init__(id="expo-screen")
        self.ctx = ctx
        speak_bindings(self, ctx.w)
        self.rows: list[Assembly] = []
        self.pending: dict[str, str] = {}
        """Order id → the action waiting for the hub's answer (shown on the row)."""
        self.last_message = ""
        """The action line's text (plain), for tests and logs."""
        self.wide: bool | None = None
        self._dirty = False

    def compose(self) -> ComposeResult:
        """Title, banner, the list, the selected order's lines, the action line, status bar, keys."""
        yield ViewTitle(id="title")
        yield OfflineBanner(self.ctx.client, language=self.ctx.lang)
        yield DataTable(id="orders", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")
        yield Static("", id="action-line")
        yield ConnectionBar(self.ctx.client, now=self.ctx.monotonic, label=self.ctx.hub_label, language=self.ctx.lang)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Columns, first fill, and a redraw every second for the countdowns."""
        self.refresh_orders()
        self.set_interval(1.0, self.mark_dirty)
        self.set_interval(0.1, self._redraw_if_dirty)

    def mark_dirty(self) -> None:
        """The book changed (or a second passed): redraw soon, at most ten times a second."""
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if self._dirty and self.is_current:
            self.refresh_orders()

    def on_screen_resume(self) -> None:
        """Back on this view: redraw at once."""
        self.refresh_orders()

    # ------------------------------------------------------------------ drawing

    @property
    def selected(self) -> Assembly | None:
        """The order under the cursor."""
        table = self.query_one("#orders", DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def refresh_orders(self) -> None:
        """Redraw the list from the client's book, keeping the cursor on the same order."""
        if not self.is_mounted:
            return
        self._dirty = False
        ctx = self.ctx
        now = ctx.now()
        table = self.query_one("#orders", DataTable)
        keep = self.selected.id if self.selected else None
        self.rows = expo_list(list(ctx.client.book.orders.values()), ctx.store, now)
        width = self.app.size.width
        if self.wide is None or self.wide != (width >= WIDE):
            self.wide = width >= WIDE
            table.clear(columns=True)
            for key, label, cells in _columns(width, ctx.w):
                table.add_column(label, key=key, width=cells)
        table.clear()
        for row in self.rows:
            table.add_row(*self._cells(row), key=row.id)
        if keep is not None and self.rows:
            index = next((k for k, r in enumerate(self.rows) if r.id == keep), 0)
            table.move_cursor(row=index, animate=False)
        self._show_detail()
        ready = sum(1 for r in self.rows if r.ready)
        self.query_one(ViewTitle).show("expo", ctx, ready=ready)
        if not self.rows:
            self.query_one("#detail", Static).update(
                ctx.w("No open orders.") if ctx.client.book.store else ctx.w("Waiting for the hub…")
            )

    def _for(self, order: OrderView, *, short: bool) -> str:
        """DINE-IN 12 (or `DINE-IN · table 12`), PICKUP, DELIVERY: how the customer gets it, in words."""
        f, w = order.fulfilment, self.ctx.w
        if isinstance(f, DineIn):
            table = f.table
            return f"{w('DINE-IN')} {table}" if short else f"{w('DINE-IN')} · {w('table {table}').format(table=table)}"
        return w("DELIVERY") if isinstance(f, Delivery) else w("PICKUP")

    def _cells(self, row: Assembly) -> list[Text]:
        o = row.order
        w = self.ctx.w
        number = Text(row.number + ("!" if o.priority is Priority.RUSH else ""), style="bold")
        pending = self.pending.get(row.id)
        if pending:
            status = Text(f"⧗ {self._act(pending)}", style="bold yellow")
        elif row.status is OrderStatus.READY:
            status = Text(f" {w('CALLED') if row.called else w('READY')} ", style="bold black on green")
        elif row.status is OrderStatus.HANDED_OVER:
            status = Text(f"→ {w(o.handed_over_to.value if o.handed_over_to else 'handed_over')}", style="dim")
        elif row.status is OrderStatus.CANCELLED:
            status = Text(w("cancelled"), style="dim strike")
        elif o.schedule is not None and row.status is OrderStatus.ACCEPTED:
            status = Text(w("fired" if o.schedule.fired_at else "scheduled"), style="italic")
        else:
            status = Text(w(row.status.value))
        stations = Text()
        for k, s in enumerate(row.stations):
            if k:
                stations.append("  ")
            style = "green" if s.finished else LEVEL_STYLE[s.level]
            label = s.label(self.ctx.local).replace(s.station, self.ctx.station_name(s.station), 1)
            if s.held:
                label = label.replace("held", w("held"))
            stations.append(label, style="dim" if row.closed else style)
        level = LEVEL_STYLE[row.level]
        cells = [number, Text(self._for(o, short=True), style="dim" if row.closed else ""), status, stations]
        alerts = self._alerts(row)
        if self.wide:
            return [*cells, Text(self._time_text(row), style=level), Text(", ".join(alerts), style=level)]
        return [*cells, Text(alerts[0] if alerts else self._time_text(row), style=level)]

    def _alerts(self, row: Assembly) -> list[str]:
        """The row's alerts in the screen's language (stations by name)."""
        w = self.ctx.w
        return [
            w(template).format(**{k: self.ctx.station_name(v) if k == "station" else v for k, v in values.items()})
            for template, values in row.said
        ]

    def _time_text(self, row: Assembly) -> str:
        o, w = row.order, self.ctx.w
        if row.closed:
            when = o.handed_over_at or o.cancelled_at or o.updated_at
            return w("at {time}").format(time=self.ctx.local(when))
        if row.due_in is not None and isinstance(o.fulfilment, Delivery):
            due = self.ctx.local(o.fulfilment.due)
            late = row.due_in.total_seconds() < 0
            left = clock(row.due_in)
            if not self.wide:
                return w("LATE {clock}" if late else "due in {clock}").format(clock=left)
            return w("due {due}, {clock} ago" if late else "due {due} in {clock}").format(due=due, clock=left)
        if row.waiting is not None:
            return w("ready {clock}").format(clock=clock(row.waiting))
        return w("age {clock}").format(clock=clock(row.age))

    @on(DataTable.RowHighlighted, "#orders")
    def _highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.selected
        if row is None:
            return
        o, w = row.order, self.ctx.w
        head = [
            f"[b]{escape(row.number)}[/b]",
            escape(self._for(o, short=False)),
            escape(w(o.channel.value)),
            escape(w("from {source}").format(source=o.source)),
        ]
        head.append(w("placed {time}").format(time=self.ctx.local(o.created_at)))
        if o.customer and o.customer.name:
            head.append(escape(o.customer.name))
        head.append(self._time_text(row))
        lines = [" · ".join(head)]
        if row.alerts:
            lines.append(f"[{LEVEL_STYLE[row.level]}]⚠ {escape(', '.join(self._alerts(row)))}[/]")
        if o.note:
            lines.append(f"[b $warning]{escape(w('note'))}: {escape(o.note)}[/]")
        for it in o.items:
            if it.removed:
                continue
            mark = "[green]✓[/]" if it.done_at else "·"
            what = [w("{grams} g").format(grams=it.weight_g) if it.weight_g else f"{it.qty}×"]
            if it.cook:
                what.append(self.ctx.method_name(it.cook))
            elif it.cook_name:
                what.append(it.cook_name)
            what[-1] += f" → {self.ctx.station_name(it.station)}"
            if it.tag:
                what.append(f"{w('tag')} {it.tag}")
            extra = []
            if it.note:
                extra.append(f"{w('note')}: {it.note}")
            # The customer's own allergies (the catalogue's are known to everybody).
            product = self.ctx.catalogue.get(it.sku)
            told = [a for a in it.allergens if product is None or a not in product.allergens]
            if told:
                extra.append(w("ALLERGY") + ": " + ", ".join(self.ctx.allergen_name(a) for a in told))
            first, other = self.ctx.item_names(it.sku, it.name, it.name_zh)
            name = first if other is None else f"{first} {other}"
            text = f" {mark} {escape(name)} · {escape(' · '.join(what))}"
            if extra:
                text += f" [b $warning]{escape(' · '.join(extra))}[/]"
            lines.append(text)
        self.query_one("#detail", Static).update("\n".join(lines))

    def _say(self, markup: str) -> None:
        content = Content.from_markup(markup)
        self.last_message = content.plain
        self.query_one("#action-line", Static).update(content)

    # ------------------------------------------------------------------ actions

    def _act(self, what: str) -> str:
        """An action (`call`, `recall`, `hand over to runner`…) in the screen's language."""
        w = self.ctx.w
        if what.startswith("hand over to "):
            return w("hand over to {to}").format(to=w(what.removeprefix("hand over to ")))
        return w(what)

    def _send(self, row: Assembly, what: str, msg: dict[str, Any]) -> None:
        """Queue one counter action durably and wait for its answer in a worker."""
        answer = self.ctx.client.enqueue(msg)
        self.pending[row.id] = what
        offline = self.ctx.client.state is not LinkState.ONLINE
        act = self._act(what)
        self._say(
            self.ctx.w("[b $warning]OFFLINE:[/] {what} {number} queued, sent when the hub is back.").format(
                what=act, number=row.number
            )
            if offline
            else f"{act.capitalize()} {row.number}…"
        )
        self.refresh_orders()
        self.run_worker(self._await_answer(row.id, what, row.number, answer), name="counter-action", group="actions")

    async def _await_answer(self, order_id: str, what: str, number: str, answer: asyncio.Future[Answer]) -> None:
        """Worker: wait for the hub's answer to a queued action."""
        self.post_message(self.Answered(order_id, what, number, await answer))

    @on(Answered)
    def _answered(self, event: Answered) -> None:
        self.pending.pop(event.order_id, None)
        a, w = event.answer, self.ctx.w
        if isinstance(a, Error):
            self._say(f"[b $error]✗ {self._act(event.what)} {event.number}:[/] {escape(actions.error_words(a))}")
        else:
            if event.what == "call":
                self.app.bell()
            if event.what.startswith("hand over to "):
                done = w("handed over to the {to}").format(to=w(event.what.removeprefix("hand over to ")))
            else:
                done = w(
                    {
                        "call": "called",
                        "recall": "recalled: back to READY",
                        "fire": "fired: at its stations now",
                        "hold": "held until fired (f)",
                    }.get(event.what, event.what)
                )
            self._say(f"[b $success]✓[/] {event.number} {done}")
        self.refresh_orders()

    def _need(self, what: str) -> Assembly | None:
        row = self.selected
        if row is None:
            self._say(self.ctx.w("No order selected to {what}.").format(what=self._act(what)))
        return row

    def action_call(self) -> None:
        """c: call the selected order's number (it must be READY)."""
        row = self._need("call")
        if row is None:
            return
        if not row.ready:
            self._not_ready("call", row, self.ctx.w(row.status.value).replace("_", " "))
            return
        self._send(row, "call", actions.call(row.id))

    def action_handover(self) -> None:
        """h: hand the selected READY order over to the customer, a runner or a rider."""
        row = self._need("hand over")
        if row is None:
            return
        if not row.ready:
            w = self.ctx.w
            closed = row.status is OrderStatus.HANDED_OVER
            state = w("already handed over") if closed else w(row.status.value).replace("_", " ")
            self._not_ready("hand over", row, state)
            return

        def chosen(to: str | None) -> None:
            if to:
                self._send(row, f"hand over to {to}", actions.handover(row.id, to))

        self.app.push_screen(handover_dialog(row.number, row.order.fulfilment.type, self.ctx.w), chosen)

    def _not_ready(self, what: str, row: Assembly, state: str) -> None:
        self._say(
            self.ctx.w("[b $error]✗ {what} {number}:[/] it is not ready ({state}).").format(
                what=self._act(what), number=row.number, state=escape(state)
            )
        )

    def action_fire(self) -> None:
        """f: send the selected order's waiting parts (for later, by prep time, or held) to their stations now."""
        row = self._need("fire")
        if row is None:
            return
        if not any(s.fire_at is not None or s.held for s in row.stations):
            self._say(self.ctx.w("{number}: nothing of it waits to be fired.").format(number=row.number))
            return
        self._send(row, "fire", actions.fire(row.id))

    def action_hold(self) -> None:
        """w: keep the selected order's parts not started from their stations until they are fired by hand (f)."""
        row = self._need("hold")
        if row is None:
            return
        if row.closed or not any(s.state is TicketState.NEW for s in row.stations):
            self._say(self.ctx.w("{number}: nothing of it is left to hold.").format(number=row.number))
            return
        self._send(row, "hold", actions.hold(row.id))

    def action_recall(self) -> None:
        """r: take back an order handed over by mistake (READY again)."""
        row = self._need("recall")
        if row is None:
            return
        if row.status is not OrderStatus.HANDED_OVER:
            self._say(
                self.ctx.w("[b $error]✗ {what} {number}:[/] only a handed-over order can be recalled.").format(
                    what=self._act("recall"), number=row.number
                )
            )
            return
        self._send(row, "recall", actions.recall(row.id))

    def action_reprint(self) -> None:
        """p: print again (expo slip, pickup slip, claim tags or station tickets)."""
        row = self._need("print")
        if row is None:
            return
        has_tags = any(it.tag for it in row.order.items)

        def chosen(layout: str | None) -> None:
            if layout:
                self._say(
                    self.ctx.w("Printing the {layout} of {number}…").format(
                        layout=self.ctx.w(actions.LAYOUTS[layout]), number=row.number
                    )
                )
                self.run_worker(self._print(row.id, row.number, layout), name="print", group="print")

        self.app.push_screen(print_dialog(row.number, has_tags, self.ctx.w), chosen)

    async def _print(self, order_id: str, number: str, layout: str) -> None:
        """Worker: one print request and its answer."""
        problem = await actions.request_print(self.ctx.client, order_id, layout)
        self.post_message(self.Printed(number, layout, problem))

    @on(Printed)
    def _printed(self, event: Printed) -> None:
        w = self.ctx.w
        what = w("{layout} of {number}").format(layout=w(actions.LAYOUTS[event.layout]), number=event.number)
        self._say(
            w("[b $success]✓[/] {what} sent to the printer").format(what=what)
            if event.problem is None
            else w("[b $error]✗ {what} not printed:[/] {problem}").format(what=what, problem=escape(w(event.problem)))
        )
