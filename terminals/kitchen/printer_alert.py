"""A loud line while a printer of this station is in trouble: "PRINTER wok-printer: paper out".

The hub sends `printer.status` frames (from the printing work); a frame with `ok` false for a printer serving this
station shows the line until a frame with `ok` true comes for the same printer. A printer "serves" the station when
it is the station's own, and also when this station's printer is its backup: then the line says that this printer
is printing the other station's tickets. Right after its welcome a screen gets every printer's state as the hub
last heard it, good ones too, so an alert left from before a reconnect (or a hub restart) goes away.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

STATE_WORDS = {"paper_out": "paper out", "offline": "offline", "error": "error", "ok": "ok"}


class PrinterAlert(Static):
    """Hidden while every printer of the station is fine."""

    DEFAULT_CSS = """
    PrinterAlert {
        display: none;
        height: auto;
        width: 1fr;
        padding: 0 1;
        text-style: bold;
    }
    PrinterAlert.-shown {
        display: block;
    }
    """

    def __init__(self, station: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.station = station
        self.troubles: dict[str, dict[str, Any]] = {}
        """Printer id → its last `printer.status` frame with ok false."""

    def apply(self, frame: dict[str, Any]) -> bool:
        """Take a `printer.status` frame; True when it concerns this station."""
        printer = str(frame.get("printer") or "")
        stations = frame.get("stations") or []
        if not printer or (stations and self.station not in stations):
            return False
        if frame.get("ok"):
            self.troubles.pop(printer, None)
        else:
            self.troubles[printer] = frame
        self._show()
        return True

    @property
    def text(self) -> str:
        """The alert as shown (empty when none)."""
        lines = []
        for printer, f in sorted(self.troubles.items()):
            state = STATE_WORDS.get(str(f.get("state")), str(f.get("state") or "not working"))
            line = f"⚠ PRINTER {printer}: {state}"
            if f.get("message"):
                line += f" — {f['message']}"
            lines.append(line)
        return "\n".join(lines)

    def _show(self) -> None:
        self.set_class(bool(self.troubles), "-shown")
        self.update(self.text)
