"""An ESC/POS interpreter with no I/O: bytes in, the printer's answers and finished pages of paper out.

It understands what our layouts send and what common receipt software sends (text with code pages or GB18030
Kanji mode, ESC !/E/-/a, GS !/B, GS v 0 raster images, GS ( k QR codes, GS V cuts, feeds), answers the status
queries (DLE EOT n in real time, GS r n after the data before it), and skips, by their length, the commands it does
not draw (barcodes, page mode, drawer kicks). The emulator (`printers.emulator`) drives it over TCP; tests use it to
read the bytes a layout made.

Status bytes (ESC/POS reference, DLE EOT): n=1 printer: 0x12 fixed bits, 0x08 offline. n=2 offline cause: 0x04
cover open, 0x20 stopped by paper end. n=4 roll paper sensor: 0x0C near end, 0x60 paper end. GS r 1: 0x0C paper
end (never sent: a printer out of paper does not execute GS r until it has paper again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from printers.profiles import LINE_DOTS
from printers.text import width


class Condition(StrEnum):
    """What a printer reports about itself."""

    OK = "ok"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"


FIXED = 0x12
"""Bits 1 and 4 of every DLE EOT answer are fixed to 1."""
LINE_GAP = 6
"""Dots between two text rows (24-dot characters, 30-dot default line spacing)."""


def status_byte(n: int, condition: Condition) -> int:
    """The answer to DLE EOT n."""
    if n == 1:
        return FIXED | (0x08 if condition is not Condition.OK else 0)
    if n == 2:
        return (
            FIXED
            | (0x04 if condition is Condition.COVER_OPEN else 0)
            | (0x20 if condition is Condition.PAPER_OUT else 0)
        )
    if n == 4:
        return FIXED | (0x6C if condition is Condition.PAPER_OUT else 0)
    return FIXED


# ------------------------------------------------------------------------------------------------ the paper


@dataclass(frozen=True, slots=True)
class Style:
    """How a run of text prints."""

    bold: bool = False
    underline: bool = False
    invert: bool = False
    w: int = 1
    h: int = 1


@dataclass(slots=True)
class Run:
    """Text in one style."""

    text: str
    style: Style
    kanji: bool = False
    """Printed in Kanji (GB18030) mode, where a character of two bytes takes two columns."""

    @property
    def columns(self) -> int:
        """Columns the run takes: in Kanji mode one per byte (ASCII one, any other character two)."""
        if self.kanji:
            return sum(1 if ord(c) < 0x80 else 2 for c in self.text) * self.style.w
        return width(self.text) * self.style.w


@dataclass(slots=True)
class TextLine:
    """A printed row of text."""

    runs: list[Run]
    align: str = "left"

    @property
    def text(self) -> str:
        """The characters of the row."""
        return "".join(r.text for r in self.runs)

    @property
    def columns(self) -> int:
        """Columns the row takes (double width counts double)."""
        return sum(r.columns for r in self.runs)

    @property
    def height(self) -> int:
        """Dots the row takes, with the gap below it."""
        return max((r.style.h for r in self.runs), default=1) * LINE_DOTS + LINE_GAP


@dataclass(slots=True)
class Raster:
    """A raster bit image (GS v 0): `width` × `height` dots, rows of bytes, most significant bit leftmost, 1 = black."""

    width: int
    height: int
    data: bytes
    align: str = "left"
    scale: tuple[int, int] = (1, 1)

    def black(self, x: int, y: int) -> bool:
        """Whether dot (x, y) is black."""
        row = (self.width + 7) // 8
        return bool(self.data[y * row + x // 8] & (0x80 >> (x % 8)))


@dataclass(slots=True)
class QRCode:
    """A QR code the printer draws (GS ( k)."""

    data: str
    module: int = 3
    ec: str = "L"
    align: str = "left"


@dataclass(slots=True)
class Feed:
    """Paper fed without printing."""

    dots: int


Element = TextLine | Raster | QRCode | Feed


@dataclass(slots=True)
class Page:
    """One job as it came out of the printer: from one cut to the next."""

    elements: list[Element] = field(default_factory=list)
    raw: bytes = b""
    cut: str | None = None
    """'full', 'partial', or None when the data ended without a cut."""

    @property
    def printed(self) -> bool:
        """Something is on the paper."""
        return any(not isinstance(e, Feed) for e in self.elements)

    def lines(self) -> list[TextLine]:
        """The text rows."""
        return [e for e in self.elements if isinstance(e, TextLine)]

    def text(self, columns: int = 48) -> str:
        """The page as plain text: rows aligned on `columns`, images and QR codes named in brackets."""
        out: list[str] = []
        for e in self.elements:
            if isinstance(e, TextLine):
                s = e.text
                gap = max(0, columns - e.columns)
                pad = gap // 2 if e.align == "center" else gap if e.align == "right" else 0
                out.append((" " * pad + s).rstrip())
            elif isinstance(e, Raster):
                out.append(f"[raster image {e.width}x{e.height} dots]")
            elif isinstance(e, QRCode):
                out.append(f"[QR code: {e.data}]")
        return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ decoding


class NeedMore(Exception):
    """The buffer ends inside a command."""


@lru_cache(maxsize=64)
def _code_page(n: int) -> list[str]:
    """Characters 128–255 of the code page an ESC t n selects (python-escpos's printer database, default profile)."""
    from escpos.capabilities import get_profile
    from escpos.magicencode import Encoder

    name = get_profile("default").codePages.get(n) or get_profile("default").codePages.get(str(n))
    if name is None:
        return ["?"] * 128
    try:
        chars: list[str] = Encoder._get_codepage_char_list(name)
    except (LookupError, ValueError):
        return ["?"] * 128
    return chars


class Decoder:
    """Feed it the bytes a printer receives; it answers status queries and collects the pages."""

    def __init__(
        self,
        condition: Callable[[], Condition] = lambda: Condition.OK,
        confirm: Callable[[], bool] = lambda: True,
    ) -> None:
        self.condition = condition
        self.confirm = confirm
        """False holds back the answer to GS r (a printer stuck after printing: the host cannot know)."""
        self.pages: list[Page] = []
        """Pages finished (cut) and not yet taken."""
        self.unknown: list[bytes] = []
        """Commands that were skipped (for logs)."""
        self._buf = bytearray()
        self._page = Page()
        self._raw = bytearray()
        self._runs: list[Run] = []
        self._cut: str | None = None
        self._reset()

    def _reset(self) -> None:
        self.style = Style()
        self.align = "left"
        self.kanji = False
        self.code_page = 0
        self.qr_module = 3
        self.qr_ec = "L"
        self.qr_data = b""

    # ---------------------------------------------------------------- input

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; returns the bytes the printer answers."""
        self._buf += data
        replies = bytearray()
        while self._buf:
            try:
                used, reply = self._step()
            except NeedMore:
                break
            self._raw += self._buf[:used]
            del self._buf[:used]
            if self._cut is not None:  # the cut's own bytes belong to the page it ends
                self._finish(self._cut)
                self._cut = None
            if reply:
                replies += reply
        return bytes(replies)

    def flush(self) -> Page | None:
        """The host is gone: what was printed since the last cut, as a page (None when nothing was)."""
        self._end_line(force=False)
        self._raw += self._buf
        self._buf.clear()
        page = self._finish(None)
        return page

    def take_pages(self) -> list[Page]:
        """The pages finished since the last call."""
        pages, self.pages = self.pages, []
        return pages

    # ---------------------------------------------------------------- paper

    @property
    def printing(self) -> bool:
        """A printer out of paper or with its cover open prints nothing."""
        return self.condition() is Condition.OK

    def _add(self, e: Element) -> None:
        if self.printing:
            self._page.elements.append(e)

    def _text(self, s: str) -> None:
        if self._runs and self._runs[-1].style == self.style and self._runs[-1].kanji == self.kanji:
            self._runs[-1].text += s
        else:
            self._runs.append(Run(s, self.style, self.kanji))

    def _end_line(self, force: bool = True) -> None:
        if self._runs or force:
            self._add(TextLine(self._runs, self.align))
        self._runs = []

    def _finish(self, cut: str | None) -> Page | None:
        page, self._page = self._page, Page()
        page.raw, self._raw = bytes(self._raw), bytearray()
        page.cut = cut
        if page.printed:
            self.pages.append(page)
            return page
        return None

    # ---------------------------------------------------------------- commands

    def _need(self, n: int) -> bytes:
        if len(self._buf) < n:
            raise NeedMore
        return bytes(self._buf[:n])

    def _step(self) -> tuple[int, bytes]:
        b = self._buf[0]
        if b == 0x0A:
            self._end_line()
            return 1, b""
        if b in (0x0D, 0x00):
            return 1, b""
        if b == 0x09:
            col = sum(width(r.text) for r in self._runs)
            self._text(" " * (8 - col % 8))
            return 1, b""
        if b == 0x0C:
            self._end_line(force=False)
            return 1, b""
        if b == 0x10:
            return self._dle()
        if b == 0x1B:
            return self._esc()
        if b == 0x1C:
            return self._fs()
        if b == 0x1D:
            return self._gs()
        if b < 0x20 or b == 0x7F:
            return 1, b""
        return self._char()

    def _char(self) -> tuple[int, bytes]:
        b = self._buf[0]
        if b < 0x80:
            self._text(chr(b))
            return 1, b""
        if self.kanji and 0x81 <= b <= 0xFE:
            second = self._need(2)[1]
            n = 4 if 0x30 <= second <= 0x39 else 2
            raw = self._need(n)
            self._text(raw.decode("gb18030", errors="replace"))
            return n, b""
        self._text(_code_page(self.code_page)[b - 0x80])
        return 1, b""

    def _dle(self) -> tuple[int, bytes]:
        cmd = self._need(2)[1]
        if cmd == 0x04:  # DLE EOT n: real-time status
            n = self._need(3)[2]
            return 3, bytes([status_byte(n, self.condition())])
        if cmd == 0x05:
            return 3, b""
        if cmd == 0x14:
            return 5, b""
        return 2, b""

    def _esc(self) -> tuple[int, bytes]:
        cmd = chr(self._need(2)[1])
        one = "!E G-aMtdJ3RVr{=cU".replace(" ", "")
        if cmd == "@":
            self._end_line(force=False)
            self._reset()
            return 2, b""
        if cmd == "2":
            return 2, b""
        if cmd == "D":  # tab stops, NUL-terminated
            end = self._buf.find(0, 2)
            if end < 0:
                raise NeedMore
            return end + 1, b""
        if cmd == "p":
            return 5, b""
        if cmd == "B":
            return 4, b""
        if cmd == "c":
            return 4, b""
        if cmd == "*":  # column image: skipped
            m, nl, nh = self._need(5)[2:5]
            n = nl + nh * 256
            size = n * (3 if m in (32, 33) else 1)
            self._need(5 + size)
            self._add(Feed(24 if m in (32, 33) else 8))
            return 5 + size, b""
        if cmd not in one:
            self.unknown.append(bytes(self._buf[:2]))
            return 2, b""
        n = self._need(3)[2]
        if cmd == "!":
            self.style = Style(
                bold=bool(n & 0x08),
                underline=bool(n & 0x80),
                invert=self.style.invert,
                w=2 if n & 0x20 else 1,
                h=2 if n & 0x10 else 1,
            )
        elif cmd in "EG":
            self.style = _replace(self.style, bold=bool(n & 1))
        elif cmd == "-":
            self.style = _replace(self.style, underline=n in (1, 2, 49, 50))
        elif cmd == "a":
            self.align = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}.get(n, "left")
        elif cmd == "t":
            self.code_page = n
        elif cmd == "d":
            if self._runs:
                self._end_line()
                n = max(0, n - 1)
            self._add(Feed(n * (LINE_DOTS + LINE_GAP)))
        elif cmd == "J":
            self._end_line(force=False)
            self._add(Feed(n))
        return 3, b""

    def _fs(self) -> tuple[int, bytes]:
        cmd = chr(self._need(2)[1])
        if cmd == "&":
            self.kanji = True
            return 2, b""
        if cmd == ".":
            self.kanji = False
            return 2, b""
        if cmd in "!-CS":
            n = self._need(3)[2]
            if cmd == "!":
                self.style = _replace(self.style, w=2 if n & 0x04 else 1, h=2 if n & 0x08 else 1)
            return 3 if cmd != "S" else 4, b""
        if cmd == "p":
            return 4, b""
        self.unknown.append(bytes(self._buf[:2]))
        return 2, b""

    def _gs(self) -> tuple[int, bytes]:
        cmd = chr(self._need(2)[1])
        if cmd == "!":
            n = self._need(3)[2]
            self.style = _replace(self.style, w=(n >> 4 & 7) + 1, h=(n & 7) + 1)
            return 3, b""
        if cmd == "B":
            self.style = _replace(self.style, invert=bool(self._need(3)[2] & 1))
            return 3, b""
        if cmd == "V":
            m = self._need(3)[2]
            used = 4 if m in (65, 66, 97, 98, 103, 104) else 3
            self._need(used)
            self._end_line(force=False)
            self._cut = "partial" if m in (1, 49, 66, 98, 104) else "full"
            return used, b""
        if cmd == "v":
            head = self._need(8)
            m, xl, xh, yl, yh = head[3:8]
            wb, h = xl + xh * 256, yl + yh * 256
            data = self._need(8 + wb * h)[8:]
            self._end_line(force=False)
            scale = (2 if m & 1 else 1, 2 if m & 2 else 1)
            self._add(Raster(wb * 8, h, data, self.align, scale))
            return 8 + wb * h, b""
        if cmd == "(":
            head = self._need(5)
            fn = chr(head[2])
            n = head[3] + head[4] * 256
            body = self._need(5 + n)[5:]
            if fn == "k":
                self._qr(body)
            return 5 + n, b""
        if cmd == "r":
            n = self._need(3)[2]
            if not self.printing or not self.confirm():
                return 3, b""  # offline (paper end, cover open): GS r waits; the host times out
            return 3, b"\x00"
        if cmd == "I":
            return 3, b"\x00"
        if cmd in "aHhwfbP|L W".replace(" ", ""):
            return (4 if cmd in "LWP" else 3), b""
        if cmd == "k":  # barcode: skipped
            m = self._need(3)[2]
            if m <= 6:
                end = self._buf.find(0, 3)
                if end < 0:
                    raise NeedMore
                return end + 1, b""
            n = self._need(4)[3]
            self._need(4 + n)
            return 4 + n, b""
        self.unknown.append(bytes(self._buf[:2]))
        return 2, b""

    def _qr(self, body: bytes) -> None:
        if len(body) < 2 or body[0] != 49:  # cn = '1': QR code
            return
        fn = body[1]
        if fn == 67 and len(body) > 2:
            self.qr_module = body[2]
        elif fn == 69 and len(body) > 2:
            self.qr_ec = {48: "L", 49: "M", 50: "Q", 51: "H"}.get(body[2], "L")
        elif fn == 80:
            self.qr_data = body[3:]
        elif fn == 81:
            self._end_line(force=False)
            self._add(QRCode(self.qr_data.decode("utf-8", errors="replace"), self.qr_module, self.qr_ec, self.align))


def _replace(s: Style, **kw: object) -> Style:
    from dataclasses import replace

    return replace(s, **kw)  # type: ignore[arg-type]


def decode(data: bytes) -> list[Page]:
    """Every page in these bytes (the last one even without a cut)."""
    d = Decoder()
    d.feed(data)
    d.flush()
    return d.take_pages()
