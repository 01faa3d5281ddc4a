"""The ticket board: the station's tickets as cards in columns, one page at a time.

The board draws one page: the one the cook turned to, as long as it shows the item under the cursor (else the page
that does: the cursor is never off screen). A card taller than a column goes on in the next column or page, each
part after the first under a "#A012 (cont. 2/2)" line and the card's allergy banner. Every card on the page carries
its pick number (1-9, the key that selects it) in reading order, left to right, top to bottom. The other tickets
are measured (their card bodies are cached by order version) so paging stays cheap with hundreds of open tickets.
It paints line by line (Textual's line API): each line of a card is turned into terminal segments once and reused
while the card does not change, so a key press or the clock repaints only what changed instead of the whole page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import ClassVar

from rich.segment import Segment
from textual.color import Color
from textual.content import Content, Span
from textual.strip import Strip
from textual.style import Style
from textual.visual import Visual
from textual.widget import Widget

from terminals.kitchen import cards
from terminals.kitchen.layout import GAP, Page, Piece, geometry, paginate
from terminals.kitchen.model import Entry, StationInfo
from terminals.kitchen.words import ENGLISH, Speech


@dataclass(frozen=True, slots=True)
class Painted:
    """One card line turned into terminal segments, and whether it starts and ends with unstyled text."""

    segments: list[Segment]
    length: int
    plain_start: bool
    plain_end: bool


BodyKey = tuple[str, int, str, frozenset[str], bool, bool, bool, int, bool, str | None]


class Board(Widget):
    """Cards of the station's open tickets, paged; the selected one framed in heavy lines."""

    COMPONENT_CLASSES: ClassVar[set[str]] = set(cards.COMPONENT_CLASSES) | {"board--empty"}
    ALLOW_SELECT = False
    """A display worked from the keys or a bump bar: no mouse text selection (lines are painted piece by piece)."""
    DEFAULT_CSS = """
    Board {
        height: 1fr;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[Entry] = []
        self.selected: str | None = None
        self.cursor: str | None = None
        self.station = StationInfo("", "")
        self.tz: tzinfo = UTC
        self.now = datetime.now(UTC)
        self.pages: list[Page] = [Page([])]
        self.page_index = 0
        self.index_of: dict[str, int] = {}
        self.page_of: dict[int, int] = {}
        self.speech: Speech = ENGLISH
        self._bodies: dict[BodyKey, cards.Body] = {}
        """Card bodies of the tickets laid out last; only those are kept (a long day leaves nothing behind)."""
        self._last_bodies: dict[BodyKey, cards.Body] = {}
        self._partial_styles: dict[tuple[str, ...], Style] = {}
        self._content: Content | None = Content("")
        """The whole page as one Content: the empty board's text, or built on demand from `_rows` (`plain`)."""
        self._rows: list[tuple[Content, ...]] = []
        """The page's lines, each the lines of the cards across it, one per column."""
        self._strips: dict[tuple[str, tuple[Span, ...]], Painted] = {}
        """Segments of the card lines on the page (and the previous one), by text and spans."""
        self._used: dict[tuple[str, tuple[Span, ...]], Painted] = {}
        self._empty_strips: list[Strip] | None = None
        self._geometry = (0, 0, 0)
        self.empty_text = ""

    def get_visual_style(self, *component_classes: str, partial: bool = False) -> Style:
        """Component styles as the stylesheet gives them, background included.

        Content spans name component classes (".card--late") and Textual resolves them with `partial=True`, which
        in Textual 8.2 drops an opaque background (it blends towards the colour with a factor of 1 - alpha). The
        cards' coloured bars need it, so partial component styles are built here straight from the stylesheet.
        """
        if not (partial and component_classes):
            return super().get_visual_style(*component_classes, partial=partial)
        cached = self._partial_styles.get(component_classes)
        if cached is not None:
            return cached
        style = Style()
        for name in component_classes:
            rules = self.get_component_styles(name)
            text = rules.text_style
            style += Style(
                rules.background if rules.has_rule("background") else Color(0, 0, 0, 0),
                rules.color if rules.has_rule("color") else Color(255, 255, 255, 0),
                bold=text.bold,
                dim=text.dim,
                italic=text.italic,
                underline=text.underline,
                strike=text.strike,
            )
        self._partial_styles[component_classes] = style
        return style

    def notify_style_update(self) -> None:
        """The stylesheet changed: forget the component styles."""
        self._partial_styles.clear()
        self._strips.clear()
        self._used.clear()
        super().notify_style_update()

    # ------------------------------------------------------------------ input

    def show(
        self,
        entries: list[Entry],
        *,
        selected: str | None,
        cursor: str | None,
        now: datetime,
        station: StationInfo,
        tz: tzinfo,
        empty_text: str = "",
        page: int | None = None,
        speech: Speech | None = None,
    ) -> None:
        """Lay out these tickets and draw page `page` (else the one shown until now), or the page that holds the
        item under the cursor (or the selected ticket) when that one does not (or `empty_text` when none)."""
        self.empty_text = empty_text
        self.entries = entries
        self.selected = selected
        self.cursor = cursor
        self.now = now
        self.station = station
        self.tz = tz
        if speech is not None and speech is not self.speech:
            self.speech = speech
            self._bodies.clear()
        if page is not None:
            self.page_index = page
        self._layout()
        self._draw()

    def tick(self, now: datetime) -> None:
        """Redraw the visible page at a new time (timers)."""
        self.now = now
        self._draw()

    def on_resize(self) -> None:
        """Lay out again for the new size."""
        self._bodies.clear()
        self._last_bodies.clear()
        self._strips.clear()
        self._used.clear()
        self._layout()
        self._draw()

    # ------------------------------------------------------------------ queries

    @property
    def columns(self) -> int:
        """Columns of cards across the board."""
        return geometry(self.size.width)[0]

    def page_entries(self, page: int | None = None) -> list[Entry]:
        """The tickets on a page (the current one by default) in reading order: the first is labelled 1."""
        p = self.pages[self.page_index if page is None else page]
        return [self.entries[i] for i in p.reading_order()]

    def starting_on(self, page: int) -> list[Entry]:
        """The tickets whose card starts on `page`, in working order."""
        return [self.entries[i] for i, p in sorted(self.page_of.items()) if p == page]

    def pages_of(self, ticket_id: str, item_id: str | None = None) -> list[int]:
        """The pages showing a ticket (with `item_id`: the first line of that item of it)."""
        index = self.index_of.get(ticket_id)
        if index is None:
            return []
        row: int | None = None
        if item_id is not None:
            body = self._bodies.get(self._key(self.entries[index], self._geometry[1]))
            row = body.item_rows.get(item_id) if body is not None else None
        out = []
        for n, page in enumerate(self.pages):
            for piece in page.pieces(index):
                if row is None or piece.start <= row < piece.stop:
                    out.append(n)
                    break
        return out

    def counts(self) -> tuple[int, int]:
        """Tickets that start on the pages before the current one, and on the pages after it."""
        before = sum(1 for p in self.page_of.values() if p < self.page_index)
        after = sum(1 for p in self.page_of.values() if p > self.page_index)
        return before, after

    @property
    def plain(self) -> str:
        """The board's text without styles (tests)."""
        return self._page_content().plain

    # ------------------------------------------------------------------ drawing

    def _key(self, e: Entry, width: int) -> BodyKey:
        selected = e.id == self.selected
        cursor = self.cursor if selected else None
        return (
            e.id,
            e.version,
            e.state,
            e.done_items,
            e.pending,
            e.fresh,
            e.needs_ack,
            width,
            selected,
            cursor,
        )

    def _body(self, e: Entry, width: int) -> cards.Body:
        key = self._key(e, width)
        body = self._bodies.get(key)
        if body is None:
            body = self._last_bodies.get(key)
            if body is None:
                body = cards.card_body(e, width, selected=key[8], cursor=key[9], speech=self.speech)
            self._bodies[key] = body
        return body

    def _layout(self) -> None:
        width, rows = self.size.width, self.size.height
        cols, card_w = geometry(width)
        self._geometry = (cols, card_w, rows)
        self._last_bodies, self._bodies = self._bodies, {}
        heights = [cards.TOP_ROWS + len(self._body(e, card_w).lines) for e in self.entries]
        iw = cards.inner_width(card_w)
        heads = [
            1 + len(cards.banner(e, iw, self.speech)) if h > rows else 0
            for e, h in zip(self.entries, heights, strict=True)
        ]
        breaks = [
            sorted(self._body(e, card_w).item_rows.values()) if h > rows else []
            for e, h in zip(self.entries, heights, strict=True)
        ]
        self.pages = paginate(heights, cols, rows, heads, breaks)
        self.index_of = {e.id: k for k, e in enumerate(self.entries)}
        self.page_of = {}
        for n, p in enumerate(self.pages):
            for i in p.indexes():
                self.page_of.setdefault(i, n)
        page = max(0, min(self.page_index, len(self.pages) - 1))
        if self.selected in self.index_of:
            # The page follows the cursor: the item under it (else the selected ticket) is always on screen.
            where = self.pages_of(self.selected, self.cursor) if self.cursor else []
            where = where or self.pages_of(self.selected)
            if where and page not in where:
                page = where[0]
        elif not self.entries:
            page = 0
        self.page_index = page

    def _draw(self) -> None:
        cols, card_w, rows = self._geometry
        if not self.entries:
            text = self.empty_text or self.speech(
                "No open tickets at {station} — new orders ring the bell and show here.", station=self.station.name
            )
            self._content = Content.styled(f"\n\n  {text}", ".board--empty")
            self._rows, self._empty_strips = [], None
            self.refresh()
            return
        page = self.pages[min(self.page_index, len(self.pages) - 1)]
        picks = {index: n for n, index in enumerate(page.reading_order(), 1)}
        labelled = {
            index: min(((p.y, x), p) for x, col in enumerate(page.columns) for p in col if p.index == index)[1]
            for index in picks
        }
        columns: list[list[Content]] = []
        tops: dict[int, list[Content]] = {}
        for col in page.columns:
            lines: list[Content] = []
            for piece in col:
                e = self.entries[piece.index]
                selected = e.id == self.selected
                pick = picks[piece.index] if labelled[piece.index] == piece else None
                top = tops.get(piece.index)
                if top is None:
                    top = tops[piece.index] = cards.card_top(
                        e,
                        card_w,
                        station=self.station,
                        now=self.now,
                        tz=self.tz,
                        selected=selected,
                        speech=self.speech,
                        pick=pick if piece.part == 0 else None,
                    )
                lines.extend(self._piece(e, piece, top, card_w, selected, pick))
            columns.append(lines)
        blank = Content(" " * card_w)
        while len(columns) < cols:
            columns.append([])
        self._rows = [tuple(col[y] if y < len(col) else blank for col in columns[:cols]) for y in range(rows)]
        # Keep the segments of the lines painted since the last draw; older ones go.
        if self._used:
            self._strips, self._used = self._used, {}
        self._content = None
        self.refresh()

    def _piece(
        self, e: Entry, piece: Piece, top: list[Content], width: int, selected: bool, pick: int | None
    ) -> list[Content]:
        """The lines of one piece of a card: a part after the first under its continuation line and banner, a part
        before the last ending with where it goes on."""
        lines: list[Content] = []
        if piece.part:
            lines += cards.continued_head(
                e, width, part=piece.part, parts=piece.parts, selected=selected, speech=self.speech, pick=pick
            )
        card = top + self._body(e, width).lines
        lines += card[piece.start : piece.stop]
        if piece.part < piece.parts - 1:
            lines.append(
                cards.continues_foot(
                    e, width, part=piece.part, parts=piece.parts, selected=selected, speech=self.speech
                )
            )
        return lines

    def _page_content(self) -> Content:
        if self._content is None:
            gap = " " * GAP
            self._content = Content("\n").join(Content(gap).join(row) for row in self._rows)
        return self._content

    def _strip(self, line: Content) -> Painted:
        """A card line's segments, made once while a line like it stays on the page."""
        key = (line.plain, tuple(line.spans))
        painted = self._strips.get(key)
        if painted is None:
            painted = self._strips[key] = self._paint(line)
        self._used[key] = painted
        return painted

    def _paint(self, line: Content) -> Painted:
        text = line.plain
        end = len(text)
        plain_start = not any(span.start == 0 for span in line.spans)
        plain_end = not any(span.end == end for span in line.spans)
        base = self.visual_style
        if "\t" in text:  # tabs are expanded by Textual's own rendering
            strips = Visual.to_strips(self, line, max(1, line.cell_length), 1, base)
            return Painted(list(strips[0]) if strips else [], line.cell_length, plain_start, plain_end)
        # What Content.render_strips does for one line that fits its width (no wrapping, no alignment). The offsets
        # Textual puts in each segment's style (for mouse selection, off here) are relative to the card line.
        segments = []
        x = 0
        for t, style in line.render(base, "", self._style):
            segments.append(Segment(t, (base + style).rich_style_with_offset(x, 0)))
            x += len(t)
        return Painted(segments, line.cell_length, plain_start, plain_end)

    def _style(self, style: str | Style) -> Style:
        """A span's style: a component class of the cards (".card--late") or a style such as "bold"."""
        if isinstance(style, Style):
            return style
        if style.startswith("."):
            return self.get_visual_style(style[1:], partial=True)
        return Style.parse(style)

    def render_line(self, y: int) -> Strip:
        """One line of the page: the card lines across it, each painted once and reused."""
        if not self.entries:
            if self._empty_strips is None:
                assert self._content is not None
                width, height = self.size
                self._empty_strips = Visual.to_strips(self, self._content, width, height, self.visual_style)
            if y < len(self._empty_strips):
                return self._empty_strips[y]
            return Strip.blank(self.size.width, self.visual_style.rich_style)
        if y >= len(self._rows):
            return Strip.blank(self.size.width, self.visual_style.rich_style)
        segments: list[Segment] = []
        length = 0
        plain_end = False
        gap = self._gap()
        for k, line in enumerate(self._rows[y]):
            parts = (gap, self._strip(line)) if k else (self._strip(line),)
            for part in parts:
                if not part.segments:
                    continue
                if plain_end and part.plain_start and segments:
                    # Unstyled text running on from one card into the gap or the next: one run, as the page's
                    # Content would have rendered it.
                    last = segments.pop()
                    first = part.segments[0]
                    segments.append(Segment(last.text + first.text, last.style))
                    segments.extend(part.segments[1:])
                else:
                    segments.extend(part.segments)
                length += part.length
                plain_end = part.plain_end
        return Strip(segments, length)

    def _gap(self) -> Painted:
        return Painted([Segment(" " * GAP, self.visual_style.rich_style)], GAP, plain_start=True, plain_end=True)

    def render(self) -> Content:
        """The current page (what the line API paints, as one Content)."""
        return self._page_content()
