"""The station's tickets waiting for later (orders scheduled for a time, parts fired by prep time, held ones), the next
to fire first, each with when it fires and how long until then; one key fires the highlighted one now."""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from terminals.kitchen import keymap
from terminals.kitchen.model import Order, Ticket, mmss
from terminals.kitchen.pick_list import PickList
from terminals.kitchen.words import ENGLISH, Speech


class ScheduledScreen(PickList):
    """Pick a waiting ticket to fire now; dismissed with its order id (or None)."""

    def __init__(
        self,
        waiting: list[tuple[Order, Ticket]],
        *,
        now: datetime,
        tz: tzinfo,
        keys: dict[str, list[str]],
        speech: Speech = ENGLISH,
    ) -> None:
        super().__init__(keys)
        self.waiting, self.now, self.tz, self.speech = waiting, now, tz, speech

    def count(self) -> int:
        """Tickets in the list."""
        return len(self.waiting)

    def compose(self) -> ComposeResult:
        """A box with a title, the list and a line of keys."""
        with Vertical(id="scheduled-box", classes="overlay-box"):
            yield Static(id="scheduled-title", classes="overlay-title")
            yield Static(id="scheduled-list")
            yield Static(id="scheduled-keys", classes="overlay-keys")

    def on_mount(self) -> None:
        """Draw."""
        self._draw()

    def update_waiting(self, waiting: list[tuple[Order, Ticket]], now: datetime) -> None:
        """The list changed (fired elsewhere, a new order for later): keep the highlight on the same ticket."""
        current = self.waiting[self.index][1].id if self.waiting else None
        self.waiting, self.now = waiting, now
        ids = [t.id for _o, t in waiting]
        self.index = ids.index(current) if current in ids else min(self.index, max(0, len(waiting) - 1))
        self._draw()

    @property
    def plain(self) -> str:
        """The list's text (tests)."""
        return "\n".join(self._lines())

    def _lines(self) -> list[str]:
        w = self.speech
        out = []
        for k, (o, t) in enumerate(self.waiting):
            if t.held or t.fire_at is None:
                when = w("held: fires when you fire it")
            else:
                at = t.fire_at.astimezone(self.tz)
                when = w(
                    "fires {time}, in {t}", time=f"{at:%H:%M}", t=mmss(max(0.0, (t.fire_at - self.now).total_seconds()))
                )
            by_id = {i.id: i for i in o.items}
            items = ", ".join(f"{i.qty}× {w.item(i)[0]}" for iid in t.items if (i := by_id.get(iid)) and not i.removed)
            mark = "▸" if k == self.index else " "
            out.append(f"{mark} {o.number:<5} {when}  {items}")
        return out

    def _draw(self) -> None:
        label = keymap.keys_label
        w = self.speech
        self.query_one("#scheduled-title", Static).update(
            w("FOR LATER — tickets waiting to be fired ({n})", n=len(self.waiting))
        )
        lines = self._lines()
        if lines:
            rows = [Content.styled(line, "reverse bold" if k == self.index else "") for k, line in enumerate(lines)]
            content = Content("\n").join(rows)
        else:
            content = Content.styled(w("Nothing waits for later."), "italic")
        self.query_one("#scheduled-list", Static).update(content)
        keys = self.keys
        self.query_one("#scheduled-keys", Static).update(
            w(
                "{up}/{down} choose · {fire} or Enter: fire it now · {close} close",
                up=label(keys["item_up"]),
                down=label(keys["item_down"]),
                fire=label(keys["fire"]),
                close=label(keys["close"]),
            )
        )

    def action_fire(self) -> None:
        """Fire the highlighted ticket's order at this station now."""
        self.dismiss(self.waiting[self.index][0].id if self.waiting else None)

    def action_confirm(self) -> None:
        """Enter: the same as the fire key."""
        self.action_fire()
