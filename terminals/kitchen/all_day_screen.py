"""All-day totals: how many of each dish, per cooking method, are still to make across the station's open tickets."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from terminals.kitchen import keymap
from terminals.kitchen.model import Total
from terminals.kitchen.words import ENGLISH, Speech


def _weight(grams: int) -> str:
    return "" if not grams else f"{grams} g" if grams < 1000 else f"{grams / 1000:.2f} kg"


def table(totals: list[Total], width: int, speech: Speech = ENGLISH) -> Content:
    """The totals as rows: quantity, dish, cooking method, total weight, tickets; the method goes under the dish
    when the screen is narrow."""
    w = speech
    if not totals:
        return Content.styled(w("Nothing to make."), "italic")
    width = max(40, width)
    wide = width >= 100
    fixed = 4 + 2 + 1 + 9 + (9 if wide else 0)
    flex = width - fixed
    dish_w, method_w = (flex // 2, flex - flex // 2 - 1) if wide else (flex, 0)

    def col(word: str, cells: int, right: bool = False) -> Content:
        c = Content(w(word))
        return c.pad_left(cells - c.cell_length) if right else c.truncate(cells, pad=True)

    heads = [col("QTY", 4, True), Content("  "), col("DISH", dish_w)]
    if wide:
        heads += [Content(" "), col("METHOD", method_w)]
    heads += [Content(" "), col("WEIGHT", 9, True)]
    if wide:
        heads += [Content(" "), col("TICKETS", 8, True)]
    rows = [Content.assemble(*heads).stylize("bold underline")]
    for t in totals:
        pair = (t.name_zh, t.name) if w.zh else (t.name, t.name_zh)
        name = " ".join(dict.fromkeys(n for n in pair if n))
        parts: list[str | tuple[str, str] | Content] = [
            (f"{t.qty:>4}", "bold"),
            "  ",
            Content(name).truncate(dish_w, ellipsis=True, pad=True),
        ]
        if wide:
            cook = w.method_named(t.cook) if t.cook else "—"
            parts += [" ", Content(cook).truncate(method_w, ellipsis=True, pad=True)]
        parts.append(f" {_weight(t.weight_g):>9}")
        if wide:
            parts.append(f" {t.tickets:>8}")
        rows.append(Content.assemble(*parts))
        if not wide and t.cook:
            rows.append(Content.styled(f"      ▶ {w.method_named(t.cook)}", "bold").truncate(width, ellipsis=True))
    return Content("\n").join(rows)


class AllDayScreen(ModalScreen[None]):
    """Totals over the board; updated while open."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(keymap.OVERLAY)

    def __init__(
        self,
        totals: list[Total],
        *,
        station_name: str,
        tickets: int,
        keys: dict[str, list[str]],
        speech: Speech = ENGLISH,
    ) -> None:
        super().__init__()
        self.speech = speech
        self.totals = totals
        self.station_name = station_name
        self.tickets = tickets
        self.keys = keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An action this device has no key for does nothing."""
        return keymap.enabled(self.keys, action, parameters)

    def compose(self) -> ComposeResult:
        """A box with a title, the table and a line of keys."""
        with Vertical(id="all-day-box", classes="overlay-box"):
            yield Static(id="all-day-title", classes="overlay-title")
            with VerticalScroll(id="all-day-scroll"):
                yield Static(id="all-day-table")
            yield Static(id="all-day-keys", classes="overlay-keys")

    def on_mount(self) -> None:
        """Draw (and again once the box has its size)."""
        self._draw()
        self.call_after_refresh(self._draw)

    def on_resize(self) -> None:
        """Draw for the new width."""
        self.call_after_refresh(self._draw)

    def update_totals(self, totals: list[Total], tickets: int) -> None:
        """New totals (the board changed). Before the screen is mounted (pushed, not yet composed) only kept: its
        mount draws them."""
        self.totals, self.tickets = totals, tickets
        if self.is_mounted:
            self._draw()

    @property
    def plain(self) -> str:
        """The table's text (tests)."""
        return table(self.totals, 200, self.speech).plain

    def _draw(self) -> None:
        qty = sum(t.qty for t in self.totals)
        w = self.speech
        self.query_one("#all-day-title", Static).update(
            w(
                "ALL DAY — {station}: {qty} to make across {tickets} open tickets",
                station=self.station_name,
                qty=qty,
                tickets=self.tickets,
            )
        )
        box = self.query_one("#all-day-table", Static)
        width = box.content_size.width or min(126, int(self.app.size.width * 0.9) - 4)
        box.update(table(self.totals, width, w))
        label = keymap.keys_label
        self.query_one("#all-day-keys", Static).update(
            w("{a} or {b}: back to the tickets", a=label(self.keys["all_day"]), b=label(self.keys["close"]))
        )

    def action_all_day(self) -> None:
        """Close."""
        self.dismiss(None)

    def action_close(self) -> None:
        """Close."""
        self.dismiss(None)

    def action_help(self) -> None:
        """Close (help is on the board)."""
        self.dismiss(None)
