"""What the kitchen's list overlays share (the recall list, the list for later): moving through them with the item
keys, closing them, and keys this device has none for doing nothing."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import BindingType
from textual.screen import ModalScreen

from terminals.kitchen import keymap


class PickList(ModalScreen[str | None]):
    """A list the cook moves through and picks from; dismissed with the id picked (or None)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *keymap.bindings(keymap.LIST),
        keymap.confirm_binding(),
    ]

    def __init__(self, keys: dict[str, list[str]]) -> None:
        super().__init__()
        self.keys = keys
        self.index = 0

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An action this device has no key for does nothing."""
        return keymap.enabled(self.keys, action, parameters)

    def count(self) -> int:
        """Rows in the list."""
        raise NotImplementedError

    def moved(self) -> None:
        """The highlight moved (a list clears what it said of the row before)."""

    def _draw(self) -> None:
        raise NotImplementedError

    def action_item_up(self) -> None:
        """Highlight the row above."""
        self.index = max(0, self.index - 1)
        self.moved()
        self._draw()

    def action_item_down(self) -> None:
        """Highlight the row below."""
        self.index = min(max(0, self.count() - 1), self.index + 1)
        self.moved()
        self._draw()

    def action_close(self) -> None:
        """Close without picking."""
        self.dismiss(None)

    def action_help(self) -> None:
        """Close (help is on the board)."""
        self.dismiss(None)
