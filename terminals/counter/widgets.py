"""Small widgets of the counter screen: the weight field, an error line under a field, and a big order number."""

from __future__ import annotations

from collections.abc import Callable

from textual.markup import escape
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, Static

from terminals.counter.catalogue import parse_weight
from terminals.counter.context import CounterContext

# A 3×5 pixel font: enough for order numbers (a channel letter and digits). Rendered with half blocks, each pixel two
# cells wide, so a glyph takes 6×3 cells.
_FONT = {
    "0": "111 101 101 101 111",
    "1": "010 110 010 010 111",
    "2": "111 001 111 100 111",
    "3": "111 001 111 001 111",
    "4": "101 101 111 001 001",
    "5": "111 100 111 001 111",
    "6": "111 100 111 101 111",
    "7": "111 001 001 001 001",
    "8": "111 101 111 101 111",
    "9": "111 101 111 001 111",
    "A": "010 101 111 101 101",
    "B": "110 101 110 101 110",
    "C": "011 100 100 100 011",
    "D": "110 101 101 101 110",
    "E": "111 100 110 100 111",
    "F": "111 100 110 100 100",
    "G": "011 100 101 101 011",
    "H": "101 101 111 101 101",
    "K": "101 101 110 101 101",
    "L": "100 100 100 100 111",
    "M": "101 111 111 101 101",
    "N": "110 101 101 101 101",
    "P": "110 101 110 100 100",
    "R": "110 101 110 101 101",
    "S": "011 100 010 001 110",
    "T": "111 010 010 010 010",
    "U": "101 101 101 101 111",
    "-": "000 000 111 000 000",
    " ": "000 000 000 000 000",
}
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def big_text(text: str) -> list[str]:
    """Three lines drawing `text` in the big font (characters it lacks are drawn as `?`)."""
    rows = ["", "", ""]
    for k, ch in enumerate(text.upper()):
        bits = [[c == "1" for c in row] for row in _FONT.get(ch, "111 001 011 000 010").split()]
        bits.append([False, False, False])
        for r in range(3):
            top, bottom = bits[2 * r], bits[2 * r + 1]
            cells = "".join(_HALF[(t, b)] * 2 for t, b in zip(top, bottom, strict=True))
            rows[r] += ("  " if k else "") + cells
    return rows


class BigNumber(Widget):
    """An order number, big enough to read from across the counter."""

    DEFAULT_CSS = """
    BigNumber {
        height: 3;
        width: auto;
        color: $text;
    }
    """

    number: reactive[str] = reactive("", layout=True)

    def render(self) -> str:
        """The number in the big font."""
        return "\n".join(big_text(self.number)) if self.number else ""


class FieldError(Static):
    """A line under a form field saying what is wrong with it; takes no room when there is nothing to say."""

    DEFAULT_CSS = """
    FieldError {
        display: none;
        color: $text-error;
        text-style: bold;
        height: auto;
        padding: 0 0 0 1;
    }
    FieldError.-shown {
        display: block;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.text = ""

    def show(self, text: str | None) -> None:
        """Say what is wrong, or clear it (None or empty)."""
        self.text = text or ""
        self.update(self.text)
        self.set_class(bool(self.text), "-shown")


class WeightInput(Input):
    """The weight of a weighed piece: typed by the clerk, or set from a scale reading.

    A plain number is grams (`1200`); kilograms and grams with their unit are understood (`1.2kg`, `1.2 kg`, `1,2kg`,
    `1200 g`); anything else is not a weight (`error` says why) rather than quietly becoming another number. A scale
    adapter (or a scale label's barcode) calls `set_reading(grams)`; the field then shows the reading until the clerk
    types over it.
    """

    DEFAULT_CSS = """
    WeightInput.-from-scale {
        text-style: bold;
    }
    """

    def __init__(
        self,
        *,
        id: str | None = None,
        compact: bool = True,
        placeholder: str = "800 or 0.8kg",
        words: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(placeholder=placeholder, max_length=14, id=id, compact=compact)
        self._reading = ""
        self.words = words
        """Says `error` in the screen's language (English when None)."""

    @property
    def grams(self) -> int | None:
        """The weight entered in grams, or None when empty, not a weight (see `error`) or a scanned barcode."""
        return None if self.scanned is not None else parse_weight(self.value)[0]

    @property
    def error(self) -> str | None:
        """Why what is typed is not a weight (None when it is one, or when the field is empty)."""
        if self.scanned is not None:
            return None
        return parse_weight(self.value, self.words)[1] if self.words is not None else parse_weight(self.value)[1]

    @property
    def scanned(self) -> str | None:
        """A barcode a scanner typed into this field (8 digits or more: no piece weighs 10 tonnes), else None."""
        return self.value if len(self.value) >= 8 and self.value.isdigit() else None

    def set_reading(self, grams: int | None) -> None:
        """Put a scale reading (grams) in the field; None clears it."""
        self._reading = "" if grams is None else str(grams)
        self.value = self._reading
        self.cursor_position = len(self.value)
        self.set_class(grams is not None, "-from-scale")

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing over a reading makes the weight a typed one."""
        if event.value != self._reading:
            self.remove_class("-from-scale")


VIEWS = (("intake", "F2"), ("expo", "F3"))


class ViewTitle(Static):
    """The top line: which view is on (and the key of the other), how many orders are READY, the store."""

    DEFAULT_CSS = """
    ViewTitle {
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $primary-darken-2;
        color: $text;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def show(self, view: str, ctx: CounterContext, *, ready: int) -> None:
        """Redraw for this view."""
        w = ctx.w
        tabs = "  ".join(
            f"[reverse b] {w(name.upper())} {key} [/]" if name == view else f"{w(name)} {key}" for name, key in VIEWS
        )
        ready_text = f"[b $success]{w('{n} READY').format(n=ready)}[/]" if ready else w("none ready")
        # The counter's own printer (no stations) by name; the kitchen's printers counted (their screens say more).
        trouble = "".join(
            f"  [b $text-error]⚠ {escape(p)}: {escape(w(f.state.value.replace('_', ' ')))}[/]"
            for p, f in sorted(ctx.printers.items())
            if not f.stations
        )
        kitchen = sum(1 for f in ctx.printers.values() if f.stations)
        if kitchen:
            many = w("{n} kitchen printer in trouble" if kitchen == 1 else "{n} kitchen printers in trouble")
            trouble += f"  [b $warning]⚠ {many.format(n=kitchen)}[/]"
        store = escape(ctx.store.name if ctx.store is not None else "")
        self.update(f"[b]{w('COUNTER')}[/] {escape(ctx.client.device)}  {tabs}  {ready_text}{trouble}  [dim]{store}[/]")
