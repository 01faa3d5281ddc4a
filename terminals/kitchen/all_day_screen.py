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


def _weight(grams: int) -> str:
    return "" if not grams else f"{grams} g" if grams < 1000 else f"{grams / 1000:.2f} kg"


def table(totals: list[Total], width: int) -> Content:
    """The totals as rows: quantity, dish, cooking method, total weight, tickets; the method goes under the dish
    when the screen is narrow."""
    if not totals:
        return Content.styled("Nothing to make.", "italic")
    width = max(40, width)
    wide = width >= 100
    fixed = 4 + 2 + 1 + 9 + (9 if wide else 0)
    flex = width - fixed
    dish_w, method_w = (flex // 2, flex - flex // 2 - 1) if wide else (flex, 0)
    head = f"{'QTY':>4}  {'DISH':<{dish_w}}" + (f" {'METHOD':<{method_w}}" if wide else "") + f" {'WEIGHT':>9}"
    head += f" {'TICKETS':>8}" if wide else ""
    rows = [Content.styled(head, "bold underline")]
    for t in totals:
        name = t.name if not t.name_zh or t.name_zh == t.name else f"{t.name} {t.name_zh}"
        parts: list[str | tuple[str, str] | Content] = [
            (f"{t.qty:>4}", "bold"),
            "  ",
            Content(name).truncate(dish_w, ellipsis=True, pad=True),
        ]
        if wide:
            parts += [" ", Content(t.cook or "—").truncate(method_w, ellipsis=True, pad=True)]
        parts.append(f" {_weight(t.weight_g):>9}")
        if wide:
            parts.append(f" {t.tickets:>8}")
        rows.append(Content.assemble(*parts))
        if not wide and t.cook:
            rows.append(Content.styled(f"      ▶ {t.cook}", "bold").truncate(width, ellipsis=True))
    return Content("\n").join(rows)


class AllDayScreen(ModalScreen[None]):
    """Totals over the board; updated while open."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(keymap.OVERLAY)

    def __init__(self, totals: list[Total], *, station_name: str, tickets: int, keys: dict[str, list[str]]) -> None:
        super().__init__()
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
        return table(self.totals, 200).plain

    def _draw(self) -> None:
        qty = sum(t.qty for t in self.totals)
        self.query_one("#all-day-title", Static).update(
            f"ALL DAY — {self.station_name}: {qty} to make across {self.tickets} open tickets"
        )
        box = self.query_one("#all-day-table", Static)
        width = box.content_size.width or min(126, int(self.app.size.width * 0.9) - 4)
        box.update(table(self.totals, width))
        label = keymap.keys_label
        self.query_one("#all-day-keys", Static).update(
            f"{label(self.keys['all_day'])} or {label(self.keys['close'])}: back to the tickets"
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
