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
    """Lines `start`..`stop` of card number `index` (the whole card, or a part of a very tall one)."""

    index: int
    start: int
    stop: int


@dataclass(slots=True)
class Page:
    """Columns of pieces."""

    columns: list[list[Piece]] = field(default_factory=list)

    def indexes(self) -> list[int]:
        """The cards on this page, in working order, each once."""
        return sorted({p.index for col in self.columns for p in col})


def geometry(width: int) -> tuple[int, int]:
    """(columns, card width) for a board `width` cells wide."""
    cols = max(1, (width + GAP) // (MIN_CARD_WIDTH + GAP))
    return cols, max(1, (width - GAP * (cols - 1)) // cols)


def paginate(heights: list[int], columns: int, rows: int) -> list[Page]:
    """Pack cards of these heights into pages of `columns` columns of `rows` rows; at least one (empty) page."""
    rows, columns = max(1, rows), max(1, columns)
    pages: list[Page] = []
    used: list[int] = []

    def new_page() -> None:
        pages.append(Page([[] for _ in range(columns)]))
        used[:] = [0] * columns

    new_page()
    for index, h in enumerate(heights):
        if h > rows:
            # Taller than a column: from the top of a column, continued in the next ones (and pages).
            if any(used):
                new_page()
            col, start = 0, 0
            while start < h:
                if col == columns:
                    new_page()
                    col = 0
                take = min(h - start, rows)
                pages[-1].columns[col].append(Piece(index, start, start + take))
                used[col] = take
                start += take
                col += 1
            continue
        col = min(range(columns), key=lambda c: (used[c], c))
        if used[col] + h > rows:
            new_page()
            col = 0
        pages[-1].columns[col].append(Piece(index, 0, h))
        used[col] += h
    return pages
