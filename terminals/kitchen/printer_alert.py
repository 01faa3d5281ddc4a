"""A loud line while a printer of this station is in trouble: "PRINTER wok-printer: paper out".

The hub sends `printer.status` frames (from the printing work); a frame with `ok` false for a printer serving this
station shows the line until a frame with `ok` true comes for the same printer. A printer "serves" the station when
it is the station's own, and also when this station's printer is its backup: then the line says that this printer
is printing the other station's tickets. Right after its welcome a screen gets every printer's state as the hub
last heard it, good ones too, so an alert left from before a reconnect (or a hub restart) goes away.
"""

from __future__ import annotations

from textual.widgets import Static

from kds.config import Language
from kds.i18n import COMMON, Words
from kds.protocol import PrinterStatus

STATE_WORDS = {"paper_out": "paper out", "offline": "offline", "error": "error", "ok": "ok"}

WORDS = Words(
    {
        "PRINTER": "打印机",
        "paper out": "缺纸",
        "offline": "离线",
        "error": "故障",
        "not working": "不工作",
        "and {n} more printers": "另有 {n} 台打印机",
    },
    parent=COMMON,
)

MAX_LINES = 3
"""At most this many lines of alerts (one per printer, cut at the screen's edge): on an 80x24 screen three printers in
trouble must not push the tickets off the screen. A fourth and later printers are counted on the last line."""


class PrinterAlert(Static):
    """Hidden while every printer of the station is fine."""

    DEFAULT_CSS = """
    PrinterAlert {
        display: none;
        height: auto;
        max-height: 3;
        width: 1fr;
        padding: 0 1;
        text-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    PrinterAlert.-shown {
        display: block;
    }
    """

    def __init__(self, station: str, *, id: str | None = None, language: Language | str = Language.EN) -> None:
        super().__init__(id=id)
        self.station = station
        self.language = language
        self.troubles: dict[str, PrinterStatus] = {}
        """Printer id → its last `printer.status` frame with ok false."""

    def apply(self, frame: PrinterStatus) -> bool:
        """Take a `printer.status` frame; True when it concerns this station."""
        printer = frame.printer
        stations = frame.stations
        if not printer or (stations and self.station not in stations):
            return False
        if frame.ok:
            self.troubles.pop(printer, None)
        else:
            self.troubles[printer] = frame
        self._show()
        return True

    @property
    def text(self) -> str:
        """The alert as shown (empty when none): one line per printer, this station's own printer first."""
        lang = self.language
        ordered = sorted(self.troubles.items(), key=lambda kv: (self.station not in kv[1].stations[:1], kv[0]))
        lines = []
        for printer, f in ordered:
            state = WORDS(lang, STATE_WORDS.get(f.state, f.state.value or "not working"))
            line = f"⚠ {WORDS(lang, 'PRINTER')} {printer}: {state}"
            if f.message:
                line += f" — {f.message}"
            lines.append(line)
        if len(lines) > MAX_LINES:
            rest = [p for p, _ in ordered[MAX_LINES - 1 :]]
            lines = [
                *lines[: MAX_LINES - 1],
                f"⚠ {WORDS(lang, 'and {n} more printers').format(n=len(rest))}: " + ", ".join(rest),
            ]
        return "\n".join(lines)

    def _show(self) -> None:
        self.set_class(bool(self.troubles), "-shown")
        self.update(self.text)
