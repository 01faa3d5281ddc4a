"""The line above the tickets: the station, how many tickets and how late, the page and what the other pages hold."""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.content import Content
from textual.widgets import Static

from terminals.kitchen.model import Entry, StationInfo, Timing, clock


def fit(parts: list[tuple[int, Content]], right: list[tuple[int, Content]], width: int) -> Content:
    """Parts in their order, left and right, dropping the least important (highest number) until they fit."""
    left, rightp = list(parts), list(right)
    while True:
        used = sum(c.cell_length for _, c in left) + sum(c.cell_length for _, c in rightp)
        if used < width or not (left or rightp):
            break
        worst = max([*left, *rightp], key=lambda p: p[0])
        if worst in rightp:
            rightp.remove(worst)
        else:
            left.remove(worst)
    lc = Content.assemble(*(c for _, c in left))
    rc = Content.assemble(*(c for _, c in rightp))
    gap = max(1, width - lc.cell_length - rc.cell_length)
    return Content.assemble(lc, " " * gap, rc).truncate(width, ellipsis=True)


class StationHeader(Static):
    """One line; the page count ("+12 more") is the last thing left out, never the first."""

    DEFAULT_CSS = """
    StationHeader {
        height: 1;
        width: 1fr;
    }
    """

    def show(
        self,
        *,
        station: StationInfo,
        entries: list[Entry],
        page: int,
        pages: int,
        before: int,
        after: int,
        off_page_new: int,
        now: datetime,
        tz: tzinfo,
        help_key: str,
        hints: str,
    ) -> None:
        """Draw the line."""
        todo = [e for e in entries if e.state in ("new", "started")]
        late = sum(1 for e in todo if clock(e.order, e.ticket, station, now).timing is Timing.LATE)
        rush = sum(1 for e in todo if e.rush)
        cancelled = sum(1 for e in entries if e.needs_ack)
        name = " ".join(p for p in (station.name.upper(), station.name_zh) if p)
        parts: list[tuple[int, Content]] = [
            (2, Content.styled(f" {name} ", "reverse bold")),
            (4, Content(f" {len(todo)} open")),
        ]
        if late:
            parts.append((6, Content.styled(f" · {late} LATE", "bold")))
        if rush:
            parts.append((7, Content.styled(f" · {rush} RUSH", "bold")))
        if cancelled:
            parts.append((5, Content.styled(f" · {cancelled} CANCELLED", "bold")))
        if pages > 1:
            parts.append((1, Content(f"  page {page + 1}/{pages}")))
            if before:
                parts.append((8, Content(f" · ◀ {before} before")))
            if after:
                parts += [(0, Content(" ")), (0, Content.styled(f" +{after} more ▶ ", "bold reverse"))]
        if off_page_new:
            parts.append((6, Content.styled(f" · ★ {off_page_new} new on other pages", "bold")))
        right: list[tuple[int, Content]] = []
        if hints:
            right.append((10, Content(f"{hints}  ")))
        right += [(8, Content(f"{now.astimezone(tz):%H:%M}  ")), (3, Content(f"{help_key} help "))]
        self.update(fit(parts, right, self.size.width or 80))
