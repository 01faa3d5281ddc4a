"""The line above the tickets: the station, how many tickets and how late, the page and what the other pages hold."""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.content import Content
from textual.widgets import Static

from terminals.kitchen.model import Entry, Order, StationInfo, Ticket, Timing, clock, mmss
from terminals.kitchen.words import ENGLISH, Speech


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
        speech: Speech = ENGLISH,
        scheduled: list[tuple[Order, Ticket]] | None = None,
    ) -> None:
        """Draw the line."""
        w = speech
        todo = [e for e in entries if e.state in ("new", "started")]
        late = sum(1 for e in todo if clock(e.order, e.ticket, station, now).timing is Timing.LATE)
        rush = sum(1 for e in todo if e.rush)
        cancelled = sum(1 for e in entries if e.needs_ack)
        names = (station.name_zh, station.name.upper()) if w.zh else (station.name.upper(), station.name_zh)
        name = " ".join(dict.fromkeys(p for p in names if p))
        parts: list[tuple[int, Content]] = [
            (2, Content.styled(f" {name} ", "reverse bold")),
            (4, Content(f" {w('{n} open', n=len(todo))}")),
        ]
        if late:
            parts.append((6, Content.styled(f" · {w('{n} LATE', n=late)}", "bold")))
        if rush:
            parts.append((7, Content.styled(f" · {w('{n} RUSH', n=rush)}", "bold")))
        if cancelled:
            parts.append((5, Content.styled(f" · {w('{n} CANCELLED', n=cancelled)}", "bold")))
        if scheduled:
            # Tickets not here yet (orders for later, parts that fire by prep time): how many, and the next to come.
            timed = [(o, t) for o, t in scheduled if not t.held and t.fire_at is not None]
            held = len(scheduled) - len(timed)
            parts.append((5, Content(f" · {w('{n} scheduled', n=len(timed))}") if timed else Content("")))
            if timed:
                o, t = timed[0]
                assert t.fire_at is not None
                at = t.fire_at.astimezone(tz)
                left = mmss(max(0.0, (t.fire_at - now).total_seconds()))
                parts.append(
                    (
                        9,
                        Content(
                            f" ({w('next {number} at {time}, in {t}', number=o.number, time=f'{at:%H:%M}', t=left)})"
                        ),
                    )
                )
            if held:
                parts.append((9, Content(f" · {w('{n} held', n=held)}")))
        if pages > 1:
            parts.append((1, Content(f"  {w('page {page}/{pages}', page=page + 1, pages=pages)}")))
            if before:
                parts.append((8, Content(f" · {w('◀ {n} before', n=before)}")))
            if after:
                parts += [(0, Content(" ")), (0, Content.styled(f" {w('+{n} more ▶', n=after)} ", "bold reverse"))]
        if off_page_new:
            parts.append((6, Content.styled(f" · {w('★ {n} new on other pages', n=off_page_new)}", "bold")))
        right: list[tuple[int, Content]] = []
        if hints:
            right.append((10, Content(f"{hints}  ")))
        right += [(8, Content(f"{now.astimezone(tz):%H:%M}  ")), (3, Content(f"{w('{key} help', key=help_key)} "))]
        self.update(fit(parts, right, self.size.width or 80))
