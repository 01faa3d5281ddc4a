"""Small choices the expo asks for: to whom an order is handed over, and what to print."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from terminals.counter.actions import LAYOUTS
from terminals.counter.words import speak_bindings

HANDOVER_CHOICES = (
    ("customer", "c", "Customer — picks it up at the counter"),
    ("runner", "r", "Runner — takes it to the table"),
    ("rider", "d", "Rider — delivery"),
)
PRINT_CHOICES = (
    ("expo", "e", "Expo slip — the whole order"),
    ("pickup_slip", "s", "Pickup slip — for the customer"),
    ("claim_tag", "t", "Claim tags — for the goods from the tanks"),
    ("station", "k", "Station tickets — again at each station"),
)


def default_handover(fulfilment_type: str) -> str:
    """Who usually takes an order: a runner for a table, a rider for a delivery, else the customer."""
    return {"dine_in": "runner", "delivery": "rider"}.get(fulfilment_type, "customer")


class ChoiceDialog(ModalScreen[str | None]):
    """A short list to choose from with ↑/↓ and Enter, or by its letter; Esc cancels."""

    DEFAULT_CSS = """
    ChoiceDialog {
        align: center middle;
        background: $background 60%;
    }
    ChoiceDialog > Vertical {
        width: 60;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ChoiceDialog OptionList {
        height: auto;
        max-height: 8;
    }
    ChoiceDialog .hint {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        choices: tuple[tuple[str, str, str], ...],
        default: str | None = None,
        w: Callable[[str], str] = str,
    ) -> None:
        """`title` as shown; `choices` (value, letter, English text) and the hint in the screen's language (`w`)."""
        super().__init__()
        speak_bindings(self, w)
        self.w = w
        self.title_text = title
        self.choices = tuple((value, key, w(text)) for value, key, text in choices)
        self.default = default
        self.keys = {key: value for value, key, _ in choices}

    def compose(self) -> ComposeResult:
        """Title, choices, hint."""
        with Vertical():
            yield Label(f"[b]{self.title_text}[/b]")
            yield OptionList(*(Option(f"{key}  {text}", id=value) for value, key, text in self.choices), compact=True)
            yield Label(self.w("↑/↓ Enter or the letter · Esc cancels"), classes="hint")

    def on_mount(self) -> None:
        """Highlight the default choice."""
        box = self.query_one(OptionList)
        box.focus()
        values = [value for value, _, _ in self.choices]
        box.highlighted = values.index(self.default) if self.default in values else 0

    def on_key(self, event: events.Key) -> None:
        """A choice's letter picks it at once."""
        if event.key in self.keys:
            event.stop()
            self.dismiss(self.keys[event.key])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_id)

    def action_cancel(self) -> None:
        """Esc: choose nothing."""
        self.dismiss(None)


def handover_dialog(number: str, fulfilment_type: str, w: Callable[[str], str] = str) -> ChoiceDialog:
    """Ask to whom order `number` is handed over (`w`: in the screen's language)."""
    title = w("Hand over {number} to…").format(number=number)
    return ChoiceDialog(title, HANDOVER_CHOICES, default_handover(fulfilment_type), w)


def print_dialog(number: str, has_tags: bool, w: Callable[[str], str] = str) -> ChoiceDialog:
    """Ask what to print again for order `number` (`w`: in the screen's language)."""
    choices = tuple(c for c in PRINT_CHOICES if has_tags or c[0] != "claim_tag")
    assert all(c[0] in LAYOUTS for c in choices)
    return ChoiceDialog(w("Print again for {number}…").format(number=number), choices, "expo", w)
