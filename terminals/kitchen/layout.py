"""Cards into columns, columns into pages. Pure: heights in, pages out.

Cards are laid out in working order, each in the column that is least filled (the leftmost of equals), so the
oldest tickets read left to right along the top and the columns fill evenly. When the next card fits in no column,
the page is full and the next page starts with it: the order is never shuffled to fill a gap. A card taller than a
whole column continues at the top of the next one. The header says how many tickets the other pages hold, so
nothing is hidden without a count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GAP = 1
"""Blank cells between columns."""
MIN_CARD_WIDTH = 34


@dataclass(frozen=True, slots=True)
class Piece:
    """Lines `start`..`stop` of card number `index`: the whole card, or part `part` (from 0) of `parts` of a card
    taller than a column. A part after the first is drawn under a continuation line and the card's banner (`head`
    rows); a part before the last ends with a "continues" line."""

    index: int
    start: int
    stop: int
    part: int = 0
    parts: int = 1
    head: int = 0
    y: int = field(default=0, compare=False)
    """The row of the column the piece starts on."""

    @property
    def height(self) -> int:
        """Rows the piece takes on the page."""
        tail = 1 if self.part < self.parts - 1 else 0
        return (self.head if self.part else 0) + self.stop - self.start + tail


@dataclass(slots=True)
class Page:
    """Columns of pieces."""

    columns: list[list[Piece]] = field(default_factory=list)

    def indexes(self) -> list[int]:
        """The cards on this page, in working order, each once."""
        return sorted({p.index for col in self.columns for p in col})

    def reading_order(self) -> list[int]:
        """The cards on this page as they are read: left to right, top to bottom (by the row each piece starts on,
        then the column), each once (where it first shows)."""
        pieces = sorted(((p.y, x, p.index) for x, col in enumerate(self.columns) for p in col))
        return list(dict.fromkeys(i for _y, _x, i in pieces))

    def pieces(self, index: int) -> list[Piece]:
        """The pieces of card `index` on this page."""
        return [p for col in self.columns for p in col if p.index == index]


def geometry(width: int) -> tuple[int, int]:
    """(columns, card width) for a board `width` cells wide."""
    cols = max(1, (width + GAP) // (MIN_CARD_WIDTH + GAP))
    return cols, max(1, (width - GAP * (cols - 1)) // cols)


def split(height: int, rows: int, head: int, breaks: list[int] | None = None) -> list[tuple[int, int]]:
    """The line ranges of a card `height` lines tall cut to fit columns of `rows`: every part but the last keeps a
    row for its "continues" line, every part but the first starts with `head` rows (continuation line, banner).
    A part ends before the last of `breaks` (the lines items start on) that fits, so an item is not cut in two
    unless it alone is taller than a column."""
    parts: list[tuple[int, int]] = []
    start = 0
    while start < height:
        extra = head if parts else 0
        if height - start + extra <= rows:
            parts.append((start, height))
            break
        take = max(1, rows - extra - 1)
        stop = max((b for b in breaks or () if start < b <= start + take), default=start + take)
        parts.append((start, min(height, stop)))
        start = stop
    return parts


def paginate(
    heights: list[int], columns: int, rows: int, heads: list[int] | None = None, breaks: list[list[int]] | None = None
) -> list[Page]:
    """Pack cards of these heights into pages of `columns` columns of `rows` rows; at least one (empty) page.
    `heads[i]`: the rows a continued part of card i repeats at its top (when it is taller than a column);
    `breaks[i]`: the lines it had best be cut before (where its items start)."""
    rows, columns = max(1, rows), max(1, columns)
    pages: list[Page] = []
    used: list[int] = []

    def new_page() -> None:
        pages.append(Page([[] for _ in range(columns)]))
        used[:] = [0] * columns

    new_page()
    for index, h in enumerate(heights):
        if h > rows:
            # Taller than a column: from the top of the first empty column (else a new page), continued in the
            # next columns (and pages), each part saying so and repeating the card's banner.
            head = heads[index] if heads else 0
            ranges = split(h, rows, head, breaks[index] if breaks else None)
            empty = [c for c in range(columns) if not used[c]]
            col = empty[0] if empty else columns
            for part, (start, stop) in enumerate(ranges):
                if col == columns:
                    new_page()
                    col = 0
                piece = Piece(index, start, stop, part, len(ranges), head, 0)
                pages[-1].columns[col].append(piece)
                used[col] = piece.height
                col += 1
            continue
        col = min(range(columns), key=lambda c: (used[c], c))
        if used[col] + h > rows:
            new_page()
            col = 0
        pages[-1].columns[col].append(Piece(index, 0, h, y=used[col]))
        used[col] += h
    return pages
