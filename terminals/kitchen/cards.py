"""A ticket drawn as a card: lines of `Content` for a given width. Pure functions; the look lives in kitchen.tcss.

Styles are Textual component classes (".card--late"…) declared by `Board`, so colours are set in the stylesheet.
Nothing is told by colour alone: the frame's line shape marks the selection (heavy) and a new arrival (double), the
timer bar says LATE in words, allergens carry a ⚠ and the word ALLERGENS, done items a ✓, changes the words ADDED,
REMOVED and NOTE CHANGED, a cancelled ticket the word CANCELLED over struck-through lines.

A card is its top (the timer bar and the three rows of the big order number: they change with the clock) and its
body (items and notes: they change only with the order), so the board can cache bodies and measure heights cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from textual.content import Content

from kds.protocol import Delivery, DineIn, ItemChange, OrderStatus, TicketState
from terminals.kitchen import bigtext
from terminals.kitchen.model import ACTIVE, Entry, Item, StationInfo, Timing, clock, mmss
from terminals.kitchen.words import ENGLISH, Speech

TOP_ROWS = 1 + bigtext.HEIGHT
"""Rows of a card's top: the timer bar and the big number."""
MIN_WIDTH = 30

BAR_CLASS = {Timing.ON_TIME: ".card--on-time", Timing.WARNING: ".card--warning", Timing.LATE: ".card--late"}
CANCELLED = ".card--cancelled"
DONE_BAR = ".card--done-bar"
BORDER = ".card--border"
SELECTED = ".card--selected"
FRESH = ".card--fresh"
BIG = ".card--big"
LABEL = ".card--label"
RUSH = ".card--rush"
QTY = ".card--qty"
METHOD = ".card--method"
TAG = ".card--tag"
NOTE = ".card--note"
ALLERGEN = ".card--allergen"
MUTED = ".card--muted"
DONE = ".card--done"
ADDED = ".card--added"
REMOVED = ".card--removed"
CHANGED = ".card--changed"
CURSOR = ".card--cursor"
LATE_WORD = ".card--late-word"
BANNER = ".card--allergy"
PICK = ".card--pick"
OTHER_NAME = ".card--other-name"

COMPONENT_CLASSES = frozenset(
    c[1:]
    for c in (
        *BAR_CLASS.values(),
        CANCELLED,
        DONE_BAR,
        BORDER,
        SELECTED,
        FRESH,
        BIG,
        LABEL,
        RUSH,
        QTY,
        METHOD,
        TAG,
        NOTE,
        ALLERGEN,
        MUTED,
        DONE,
        ADDED,
        REMOVED,
        CHANGED,
        CURSOR,
        LATE_WORD,
        BANNER,
        PICK,
        OTHER_NAME,
    )
)
"""The component classes a widget drawing cards must declare (and kitchen.tcss styles)."""

CHANNEL_WORD = {"app": "APP", "kiosk": "KIOSK", "shelf": "SHELF"}
STATE_WORD = {"new": "NEW", "started": "COOKING", "done": "DONE", "cancelled": "CANCELLED"}


@dataclass(frozen=True, slots=True)
class Frame:
    """The line characters of a card's frame, and their style."""

    tl: str
    h: str
    tr: str
    v: str
    bl: str
    br: str
    style: str


PLAIN = Frame("╭", "─", "╮", "│", "╰", "╯", BORDER)
HEAVY = Frame("┏", "━", "┓", "┃", "┗", "┛", SELECTED)
DOUBLE = Frame("╔", "═", "╗", "║", "╚", "╝", FRESH)


def frame_for(e: Entry, selected: bool) -> Frame:
    """Heavy lines for the selected ticket, double for a new arrival, thin otherwise."""
    return HEAVY if selected else DOUBLE if e.fresh else PLAIN


def inner_width(width: int) -> int:
    """Text cells inside a card `width` wide (frame and one blank each side)."""
    return max(1, width - 4)


def _row(c: Content, width: int, fr: Frame, strike: bool = False) -> Content:
    iw = inner_width(width)
    body = c.truncate(iw, ellipsis=True, pad=True)
    if strike:
        body = body.stylize("strike").stylize_before(MUTED)
    return Content.assemble((fr.v, fr.style), " ", body, " ", (fr.v, fr.style))


def _fit(left: list[tuple[str, str]], right: list[tuple[str, str]], width: int) -> Content:
    """Left and right parts on one line of `width`, dropping the right parts from the end while they do not fit."""
    right = list(right)
    while True:
        used = sum(Content(t).cell_length for t, _ in left) + sum(Content(t).cell_length for t, _ in right)
        if used + 1 <= width or not right:
            break
        right.pop()
    lc = Content.assemble(*left)
    rc = Content.assemble(*right)
    gap = max(1, width - lc.cell_length - rc.cell_length)
    return Content.assemble(lc, " " * gap, rc).truncate(width, ellipsis=True, pad=True)


# ------------------------------------------------------------------------------------------------ top


def _pick_label(pick: int | None) -> list[tuple[str, str]]:
    """The card's pick number (the key that selects it), on the top line."""
    return [(f"{pick}", PICK)] if pick is not None and 1 <= pick <= 9 else []


def card_top(
    e: Entry,
    width: int,
    *,
    station: StationInfo,
    now: datetime,
    tz: tzinfo,
    selected: bool,
    speech: Speech = ENGLISH,
    pick: int | None = None,
) -> list[Content]:
    """The timer bar (after the card's pick number) and the big order number with the fulfilment (changes every
    second)."""
    w = speech
    fr = frame_for(e, selected)
    label = _pick_label(pick)
    bar_w = width - 2 - sum(len(t) for t, _ in label)
    c = clock(e.order, e.ticket, station, now)
    channel = w(CHANNEL_WORD.get(e.order.channel, e.order.channel.upper()))
    if e.state is TicketState.CANCELLED:
        bar_style = CANCELLED
        left = [(f" {w('CANCELLED')}", "bold")]
        right = [(f"{w('clear: {key}', key='X')} ", "")]
    elif e.state is TicketState.DONE:
        bar_style = DONE_BAR
        done = e.done_at.astimezone(tz).strftime("%H:%M") if e.done_at else ""
        left = [(f" {w('DONE')} {done}", "bold")]
        right = [(f"{channel} ", "")]
    else:
        bar_style = BAR_CLASS[c.timing]
        left = [(f" {mmss(c.age_s)}", "bold")]
        if c.timing is Timing.LATE:
            left.append((f" {w('LATE')} ", LATE_WORD))
        elif c.timing is Timing.WARNING and c.late_in_s is not None:
            left.append((f" {w('late in {t}', t=mmss(c.late_in_s))}", ""))
        if e.rush:
            left += [(" ", ""), (f" {w('RUSH')} ", RUSH)]
        right = []
        fresh = w("★ NEW") if e.fresh else w("NEW")
        state = fresh if e.state is TicketState.NEW else w(STATE_WORD.get(e.state, e.state))
        right.append((state, "bold"))
        if e.ticket.recalled_at and e.state is TicketState.STARTED:
            right.append((f" {w('RECALLED')}", "bold"))
        if e.ticket.amended_at:
            right.append((f" {w('AMENDED')}", "bold"))
        right.append((f" {channel} ", ""))
    bar = _fit(left, right, bar_w).stylize_before(bar_style)
    lines = [Content.assemble((fr.tl, fr.style), *label, bar, (fr.tr, fr.style))]
    lines.extend(_number_rows(e, width, c.due_left_s, tz, fr, w))
    return lines


def continued_head(
    e: Entry, width: int, *, part: int, parts: int, selected: bool, speech: Speech = ENGLISH, pick: int | None = None
) -> list[Content]:
    """The top of a card's part after the first: "#A012 (cont. 2/2)" in the frame's top line, then the card's
    allergy banner (so a part never shows without it)."""
    fr = frame_for(e, selected)
    label = _pick_label(pick)
    text = f" #{e.number} ({speech('cont.')} {part + 1}/{parts}) "
    h = max(0, width - 2 - len(text) - sum(len(t) for t, _ in label) - 1)
    top = Content.assemble((fr.tl, fr.style), *label, (fr.h, fr.style), (text, "bold"), (fr.h * h, fr.style))
    top = Content.assemble(top.truncate(width - 1), (fr.tr, fr.style))
    return [top, *(_row(c, width, fr) for c in banner(e, inner_width(width), speech))]


def continues_foot(e: Entry, width: int, *, part: int, parts: int, selected: bool, speech: Speech = ENGLISH) -> Content:
    """The bottom of a card's part before the last: where it goes on."""
    fr = frame_for(e, selected)
    text = f" {speech('continues')} ({part + 2}/{parts}) ▶ "
    h = max(0, width - 2 - len(text) - 1)
    return Content.assemble((fr.bl + fr.h, fr.style), (text, "bold"), (fr.h * h + fr.br, fr.style)).truncate(width)


def customer_allergens(e: Entry) -> list[str]:
    """Every allergy the customer declared on the order (any station's line still on it), each once."""
    ids: list[str] = []
    for it in e.order.items:
        if not it.removed:
            ids.extend(it.declared_allergens)
    return list(dict.fromkeys(ids))


def banner(e: Entry, iw: int, speech: Speech = ENGLISH) -> list[Content]:
    """The card-level allergy banner ("⚠ ALLERGY: Peanut"), wrapped; none when the customer declared nothing."""
    ids = customer_allergens(e)
    if not ids:
        return []
    text = f"⚠ {speech('ALLERGY')}: {', '.join(speech.allergens(ids))}"
    return [c.pad_right(iw - c.cell_length).stylize(BANNER) for c in _wrap(Content(text), iw, 2)]


def _number_rows(e: Entry, width: int, due_left: float | None, tz: tzinfo, fr: Frame, w: Speech) -> list[Content]:
    iw = inner_width(width)
    number = e.number
    if bigtext.can_draw(number) and bigtext.width(number) <= iw:
        left = [Content.styled(r, BIG) for r in bigtext.big(number)]
    else:
        left = [Content.styled(number, "bold"), Content(""), Content("")]
    lw = max(c.cell_length for c in left)
    rw = max(0, iw - lw - 2)
    right = _fulfilment(e, rw, due_left, tz, w)
    strike = e.state is TicketState.CANCELLED
    return [
        _row(Content.assemble(lc.truncate(lw, pad=True), "  ", rc.right(rw, ellipsis=True)), width, fr, strike)
        for lc, rc in zip(left, right, strict=True)
    ]


def _fulfilment(e: Entry, width: int, due_left: float | None, tz: tzinfo, w: Speech) -> list[Content]:
    """Three rows: a big table number for dine-in; pickup or delivery with its time (and countdown)."""
    f = e.order.fulfilment
    customer = (e.order.customer.name if e.order.customer else None) or ""
    if isinstance(f, DineIn):
        table = f.table
        if bigtext.can_draw(table) and bigtext.width(table) + 6 <= width:
            rows = bigtext.big(table)
            word = Content(f"{w('TABLE')} ")
            pad = " " * word.cell_length
            if word.cell_length + bigtext.width(table) <= width:
                return [
                    Content.assemble((word.plain, LABEL), (rows[0], BIG)),
                    Content.assemble(pad, (rows[1], BIG)),
                    Content.assemble(pad, (rows[2], BIG)),
                ]
        if bigtext.can_draw(table) and bigtext.width(table) <= width:
            rows = bigtext.big(table)
            return [Content.styled(r, BIG) for r in rows]
        return [Content.styled(w("TABLE {table}", table=table), "bold"), Content(""), Content("")]
    if isinstance(f, Delivery):
        due_text = w("due {time}", time=f"{f.due.astimezone(tz):%H:%M}")
        if due_left is None:
            count = Content("")
        elif due_left <= 0:
            count = Content.styled(f" {w('PAST DUE {t}', t=mmss(-due_left))} ", LATE_WORD)
        else:
            count = Content.styled(w("{t} left", t=mmss(due_left)), "bold")
        return [Content.styled(w("DELIVERY"), "bold"), Content(due_text), count]
    at = f.at
    return [
        Content.styled(w("PICKUP"), "bold"),
        Content(w("at {time}", time=f"{at.astimezone(tz):%H:%M}") if at else ""),
        Content.styled(customer, MUTED),
    ]


# ------------------------------------------------------------------------------------------------ body


@dataclass(frozen=True, slots=True)
class Body:
    """A card's body lines, and the line (counted from the card's first, top included) each item starts on."""

    lines: list[Content]
    item_rows: dict[str, int]


def card_body(e: Entry, width: int, *, selected: bool, cursor: str | None, speech: Speech = ENGLISH) -> Body:
    """The allergy banner, notes, items, the other stations' share, and the bottom of the frame (changes only with
    the order)."""
    w = speech
    fr = frame_for(e, selected)
    iw = inner_width(width)
    strike = e.state is TicketState.CANCELLED
    active = e.state in ACTIVE
    notice: list[Content] = []
    if e.state is TicketState.CANCELLED:
        reason = e.order.cancel_reason
        what = w("ORDER CANCELLED") if e.order.status is OrderStatus.CANCELLED else w("ITEMS REMOVED")
        text = f"{what} — {w('stop, do not make')}" + (f": {reason}" if reason else "")
        notice = _wrap(Content.styled(text, "bold"), iw, 2)
    out = [_row(c, width, fr) for c in notice] + [_row(c, width, fr) for c in banner(e, iw, w)]
    lines: list[Content] = []
    if e.order.note:
        lines.extend(_wrap(Content.assemble(("✎ ", NOTE), (e.order.note, NOTE)), iw, 2))
    rows: dict[str, int] = {}
    for it in e.items():
        rows[it.id] = TOP_ROWS + len(out) + len(lines)
        lines.extend(_item(it, e, iw, cursor=cursor if active else None, show_changes=active, w=w))
    others = e.others()
    if others:
        text = ", ".join(f"{w.station(s) if w.zh else s} ×{n}" + (" ✓" if done else "") for s, n, done in others)
        lines.extend(_wrap(Content.styled(f"{w('also')}: {text}", MUTED), iw, 6))
    out += [_row(c, width, fr, strike=strike) for c in lines]
    tail = f" {w('sending…')} " if e.pending else ""
    h = max(0, width - 2 - Content(tail).cell_length - 1)
    out.append(
        Content.assemble((fr.bl + fr.h * h, fr.style), (tail, "bold italic"), (fr.h + fr.br, fr.style))
        if tail
        else Content.styled(fr.bl + fr.h * (width - 2) + fr.br, fr.style)
    )
    return Body(out, rows)


def _wrap(c: Content, width: int, indent: int) -> list[Content]:
    """Word-wrap one line; continuation lines are indented (notes are never cut off)."""
    if c.cell_length <= width:
        return [c]
    first, *rest = c.wrap(width)
    if not rest:
        return [first]
    tail = Content(" ").join(rest) if len(rest) > 1 else rest[0]
    return [first, *(r.pad_left(indent) for r in tail.wrap(max(4, width - indent)))]


def _weight(grams: int) -> str:
    return f"{grams} g" if grams < 1000 else f"{grams / 1000:.2f} kg".replace(".00 kg", " kg")


def _item(it: Item, e: Entry, iw: int, *, cursor: str | None, show_changes: bool, w: Speech) -> list[Content]:
    removed = it.removed
    done = it.id in e.done_items
    change = it.change if show_changes else None
    if cursor == it.id:
        mark = "▸ "
    elif removed:
        mark = "✗ "
    elif done:
        mark = "✓ "
    elif change is ItemChange.ADDED:
        mark = "+ "
    else:
        mark = "  "
    name, other = w.item(it)
    head: list[str | tuple[str, str] | Content] = [mark, (f"{it.qty}×", QTY), " "]
    if it.weight_g:
        head += [(_weight(it.weight_g), QTY), " "]
    head.append(name)
    if other:
        head += [" ", (other, OTHER_NAME)]
    if removed and show_changes:
        head += ["  ", (f" {w('REMOVED')} ", REMOVED)]
    elif change is ItemChange.ADDED:
        head += ["  ", (f" {w('ADDED')} ", ADDED)]
    first = Content.assemble(*head)
    lines = _wrap(first, iw, 5)
    if cursor == it.id:
        lines = [ln.stylize_before(CURSOR) for ln in lines]
    # Details start one cell right of the name; coloured blocks carry their own blank on each side.
    details: list[Content] = []
    if it.cook:
        details.append(Content.styled(f" ▶ {w.method(it)} ", METHOD))
    if it.tag:
        details.append(Content.styled(f" TAG {it.tag}", TAG))
    if it.modifiers:
        details.append(Content(" + " + ", ".join(it.modifiers)))
    if it.note:
        note = Content.styled(f" ✎ {it.note}", NOTE)
        if change is ItemChange.NOTE:
            note = Content.assemble(note, "  ", (f" {w('NOTE CHANGED')} ", CHANGED))
        details.append(note)
    declared = it.declared_allergens
    contains = [a for a in it.allergens if a not in declared]
    if declared:
        # What the customer said is the one that must not be missed: loud, and in words.
        names = ", ".join(w.allergens(declared))
        details.append(Content.styled(f" ⚠ {w('CUSTOMER ALLERGY')}: {names} ", ALLERGEN))
    if contains:
        details.append(Content.styled(f" {w('contains')}: {', '.join(w.allergens(contains))}", NOTE))
    if it.unrouted:
        details.append(Content.styled(f" {w('(no station set for this dish — tell the manager)')}", MUTED))
    for d in details:
        lines.extend(r.pad_left(4) for r in _wrap(d, iw - 4, 3))
    if removed:
        lines = [ln.stylize("strike").stylize_before(MUTED) for ln in lines]
    elif done:
        lines = [ln.stylize_before(DONE) for ln in lines]
    return lines
