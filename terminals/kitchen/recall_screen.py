"""The recall list: tickets this station bumped in the last 30 minutes, the latest first; one key reopens one."""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from kds.protocol import DineIn
from terminals.kitchen import keymap
from terminals.kitchen.model import Entry, recallable
from terminals.kitchen.pick_list import PickList
from terminals.kitchen.words import ENGLISH, Speech


def _fulfilment(e: Entry, w: Speech) -> str:
    f = e.order.fulfilment
    if isinstance(f, DineIn):
        return w("table {table}", table=f.table)
    kind = f.type
    return w(kind) if w.zh else kind.replace("_", " ")


def _ago(seconds: float, w: Speech) -> str:
    m = max(0, int(seconds)) // 60
    return w("just now") if m < 1 else w("{m} min ago", m=m)


def _status(e: Entry, w: Speech) -> str:
    status = e.order.status.value
    return w(status) if w.zh else status.replace("_", " ")


class RecallScreen(PickList):
    """Pick a bumped ticket to reopen; dismissed with its ticket id (or None)."""

    def __init__(
        self, entries: list[Entry], *, now: datetime, tz: tzinfo, keys: dict[str, list[str]], speech: Speech = ENGLISH
    ) -> None:
        super().__init__(keys)
        self.speech = speech
        self.entries = entries
        self.now = now
        self.tz = tz
        self.message = ""

    def count(self) -> int:
        """Tickets in the list."""
        return len(self.entries)

    def moved(self) -> None:
        """What was said of the ticket before goes."""
        self.message = ""

    def compose(self) -> ComposeResult:
        """A box with a title, the list and a line of keys."""
        with Vertical(id="recall-box", classes="overlay-box"):
            yield Static(id="recall-title", classes="overlay-title")
            yield Static(id="recall-list")
            yield Static(id="recall-keys", classes="overlay-keys")

    def on_mount(self) -> None:
        """Draw."""
        self._draw()

    def update_entries(self, entries: list[Entry], now: datetime) -> None:
        """The list changed (a bump or recall elsewhere): keep the highlight on the same ticket."""
        current = self.entries[self.index].id if self.entries else None
        self.entries, self.now = entries, now
        ids = [e.id for e in entries]
        self.index = ids.index(current) if current in ids else min(self.index, max(0, len(entries) - 1))
        self._draw()

    @property
    def plain(self) -> str:
        """The list's text (tests)."""
        return "\n".join(self._lines(plain=True))

    def _lines(self, plain: bool = False) -> list[str]:
        w = self.speech
        out = []
        for k, e in enumerate(self.entries):
            done = e.done_at.astimezone(self.tz).strftime("%H:%M") if e.done_at else "--:--"
            ago = _ago((self.now - e.done_at).total_seconds(), w) if e.done_at else ""
            items = ", ".join(f"{i.qty}× {w.item(i)[0]}" for i in e.items() if not i.removed)
            status = "" if recallable(e) else f"  ({_status(e, w)})"
            mark = "▸" if k == self.index else " "
            where = Content(_fulfilment(e, w))
            where = where.pad_right(max(0, 10 - where.cell_length))
            out.append(f"{mark} {e.number:<5} {where.plain} {w('bumped {time}', time=done)} ({ago}){status}  {items}")
        return out

    def _draw(self) -> None:
        label = keymap.keys_label
        w = self.speech
        self.query_one("#recall-title", Static).update(
            w("RECALL — tickets bumped in the last 30 minutes ({n})", n=len(self.entries))
        )
        lines = self._lines()
        if not lines:
            content = Content.styled(w("Nothing bumped in the last 30 minutes."), "italic")
        else:
            rows = []
            for k, line in enumerate(lines):
                style = "reverse bold" if k == self.index else ""
                if not recallable(self.entries[k]):
                    style += " dim"
                rows.append(Content.styled(line, style.strip()))
            content = Content("\n").join(rows)
        if self.message:
            content = Content.assemble(content, "\n\n", (self.message, "bold reverse"))
        self.query_one("#recall-list", Static).update(content)
        keys = self.keys
        self.query_one("#recall-keys", Static).update(
            w(
                "{up}/{down} choose · {recall} or Enter: recall it · {close} close",
                up=label(keys["item_up"]),
                down=label(keys["item_down"]),
                recall=label(keys["recall"]),
                close=label(keys["close"]),
            )
        )

    def action_recall(self) -> None:
        """Reopen the highlighted ticket (only while its order is open)."""
        if not self.entries:
            self.dismiss(None)
            return
        e = self.entries[self.index]
        if not recallable(e):
            self.message = self.speech(
                "{number} is {status}: it cannot be recalled", number=e.number, status=_status(e, self.speech)
            )
            self._draw()
            return
        self.dismiss(e.id)

    def action_confirm(self) -> None:
        """Enter: the same as the recall key."""
        self.action_recall()
