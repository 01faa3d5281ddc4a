"""The keys of this screen, as this device has them (its bump bar map over the default one)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from terminals.kitchen import keymap
from terminals.kitchen.words import ENGLISH, Speech


def help_text(keys: dict[str, list[str]], speech: Speech = ENGLISH) -> Content:
    """One row per action: its keys and what it does (the nine 'pick' actions on one row)."""
    rows: list[tuple[str, str]] = []
    for a in keymap.ACTIONS:
        if a.id.startswith("pick_") and a.id != "pick_1":
            continue
        if a.id == "pick_1":
            picks = [keymap.keys_label(keys[f"pick_{n}"]) for n in range(1, 10)]
            label = "1…9" if picks == [str(n) for n in range(1, 10)] else " ".join(picks)
            rows.append((label, speech("select ticket 1…9 of the page (the number on the card)")))
            continue
        rows.append((keymap.keys_label(keys[a.id]), speech(a.description)))
    rows.append(("Ctrl+Q", speech("quit the screen")))
    width = max(len(k) for k, _ in rows)
    return Content("\n").join(Content.assemble((f"{k:>{width}}", "bold"), f"  {d}") for k, d in rows)


class HelpScreen(ModalScreen[None]):
    """The key list over the board."""

    BINDINGS: ClassVar[list[BindingType]] = keymap.bindings(keymap.OVERLAY)

    def __init__(self, keys: dict[str, list[str]], *, device: str, speech: Speech = ENGLISH) -> None:
        super().__init__()
        self.keys = keys
        self.device = device
        self.speech = speech

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An action this device has no key for does nothing."""
        return keymap.enabled(self.keys, action, parameters)

    def compose(self) -> ComposeResult:
        """Title, keys, how to close."""
        with Vertical(id="help-box", classes="overlay-box"):
            w = self.speech
            yield Static(w("KEYS of {device}", device=self.device), classes="overlay-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_text(self.keys, w), id="help-text")
            yield Static(
                w(
                    "{a} or {b}: close · keys are set per device in config/store.toml (keymap)",
                    a=keymap.keys_label(self.keys["help"]),
                    b=keymap.keys_label(self.keys["close"]),
                ),
                classes="overlay-keys",
            )

    def action_help(self) -> None:
        """Close."""
        self.dismiss(None)

    def action_close(self) -> None:
        """Close."""
        self.dismiss(None)

    def action_all_day(self) -> None:
        """Close (the all-day key opens it from the board)."""
        self.dismiss(None)
