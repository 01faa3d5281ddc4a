"""Ticket layouts: pure functions from an order to ESC/POS bytes, rendered through python-escpos's `Dummy` printer.

Each layout takes the order (an `OrderView`, which `render` parses once per job from its `order_json`), what it
needs of the store (`StoreLabels`) and the printer's `PrinterProfile`, and returns the bytes of one job ending in a
cut. Nothing here does I/O: the spooler sends the bytes with `printers.transports`, tests compare them with golden
files.

Text sits on the printer's grid of columns (32 on 58 mm paper, 42 or 48 on 80 mm); long lines wrap at words and
are never cut. Chinese and accented text come out right on every printer: a printer with a GB18030 font gets text
in Kanji mode (FS &), the others get each row holding characters their code pages lack as a raster image (GS v 0).
In Kanji mode the printer gives every character of two bytes two columns ("·", "—", "é" as well as Chinese), so
there a row's width is counted in encoded bytes (`Paper.width`); elsewhere a Chinese character takes two columns.

What a cook reads first comes first and biggest: a failover notice ("FOR SEAFOOD — its printer is down"), the
REPRINT / AMENDED / CANCELLED / RUSH banners, the station, the order number and table, the customer's allergies
(reversed). Tickets are in the printer's language (`kds.i18n.printer_language`): fixed words from
`printers.words`, names of stations, methods, allergens and dishes from the store's config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw

from kds.config import Language, SoldBy, StoreConfig
from kds.i18n import allergen_name, item_names, method_name, printer_language, station_name
from kds.printing import Banner, Layout, PrintJob, claim_items
from kds.privacy import redact_view
from kds.protocol import Delivery, DineIn, ItemChange, ItemView, OrderStatus, OrderView, Pickup, Priority
from printers.fonts import ticket_font
from printers.profiles import DOTS_PER_COLUMN, LINE_DOTS, PrinterProfile
from printers.text import char_width, width, wrap
from printers.words import WORDS

KANJI_ON = b"\x1c&"
"""FS &: Kanji (Chinese) character mode: bytes from 0x81 are GB18030 characters."""
KANJI_OFF = b"\x1c."
"""FS .: single-byte code pages (ESC t) again."""
IMAGE_IMPLS = (("bitImageRaster", "bitImageRaster"), ("graphics", "graphics"), ("bitImageColumn", "bitImageColumn"))

CHANNEL = {"app": "APP", "kiosk": "KIOSK", "shelf": "SHELF"}
CHANNEL_PLAIN = {"app": "App", "kiosk": "Kiosk", "shelf": "Shelf-to-table"}
CURRENCY = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "JPY": "¥"}
""" Currency signs; on a GB18030 printer "¥" is a four-byte character (an image), the full-width "￥" is text."""


@dataclass(frozen=True, slots=True)
class StoreLabels:
    """What a layout needs to know of the store."""

    name: str
    timezone: str = "Asia/Shanghai"
    stations: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Station id → (name, Chinese name)."""
    status_url: str = "https://m.freshippo.example/order/{order_id}"
    currency: str = "CNY"
    config: StoreConfig | None = field(default=None, compare=False, repr=False)
    """The store's config: names in both languages (`kds.i18n`), prices, printers' languages. Without it (labels
    made by hand), names are the order's own and tickets are in English."""

    @classmethod
    def from_config(cls, config: StoreConfig) -> StoreLabels:
        """The labels of a store config."""
        return cls(
            name=config.store.name,
            timezone=config.store.timezone,
            stations={s.id: (s.name, s.name_zh) for s in config.stations},
            status_url=config.counter.status_url,
            currency=config.store.currency,
            config=config,
        )

    def station(self, station_id: str) -> tuple[str, str]:
        """(`Wok`, `炒锅`)."""
        return self.stations.get(station_id, (station_id, ""))

    def station_in(self, station_id: str, lang: str) -> str:
        """The station's name in the ticket's language."""
        if self.config is not None:
            return station_name(self.config, station_id, lang)
        en, zh = self.station(station_id)
        return zh if lang == Language.ZH and zh else en

    def language(self, printer_id: str | None) -> str:
        """The language of a printer's tickets."""
        return printer_language(self.config, printer_id).value if self.config is not None else "en"

    def allergen(self, allergen_id: str, lang: str) -> str:
        """A declared allergen's name in the ticket's language."""
        return allergen_name(self.config, allergen_id, lang) if self.config is not None else allergen_id

    def method(self, it: ItemView, lang: str) -> str:
        """An item's cooking method in the ticket's language."""
        if self.config is not None and it.cook and self.config.method(it.cook) is not None:
            return method_name(self.config, it.cook, lang)
        return it.cook_name or ""

    def names(self, it: ItemView, lang: str) -> tuple[str, str]:
        """An item's name to print first, and the other language's (or "")."""
        first, other = it.name, it.name_zh or ""
        if self.config is not None:
            first, second = item_names(self.config, it.sku, it.name, lang)
            if lang == Language.ZH or not other:
                other = second or ""
        return first, "" if other == first else other

    def local(self, at: datetime | None, fmt: str = "%H:%M") -> str:
        """A time of the order, in the store's time zone."""
        if at is None:
            return ""
        return at.astimezone(ZoneInfo(self.timezone)).strftime(fmt)


# ------------------------------------------------------------------------------------------------ the paper


@dataclass(frozen=True, slots=True)
class _Style:
    align: str = "left"
    bold: bool = False
    w: int = 1
    h: int = 1
    invert: bool = False


class Paper:
    """One job being laid out: rows of text on the printer's grid, images, QR codes, a cut."""

    def __init__(self, profile: PrinterProfile, lang: str = "en") -> None:
        self.profile = profile
        self.lang = lang
        self.p = _dummy(profile.escpos_profile())
        self.columns = profile.columns
        self.char_width: Callable[[str], int] = _kanji_width if profile.gb18030 else char_width
        self._style: _Style | None = None
        self.p.hw("INIT")
        self.p._raw(KANJI_ON if profile.gb18030 else KANJI_OFF)
        self._style_set(_Style())

    # ---------------------------------------------------------------- text

    def w(self, en: str) -> str:
        """A fixed word in the ticket's language."""
        return WORDS(self.lang, en)

    def width(self, text: str) -> int:
        """Columns `text` takes on this printer."""
        return sum(self.char_width(c) for c in text)

    def text(
        self,
        text: str,
        *,
        align: str = "left",
        bold: bool = False,
        size: int | tuple[int, int] = 1,
        invert: bool = False,
        indent: int = 0,
        bar: bool = False,
    ) -> None:
        """Wrapped text; `size` multiplies width and height (or (w, h)); `bar` inverts the whole row width."""
        w, h = (size, size) if isinstance(size, int) else size
        cols = self.columns // w
        style = _Style(align, bold, w, h, invert or bar)
        for row in wrap(text, cols, indent, self.char_width):
            if bar:
                row = self._center(row, cols) if align == "center" else row + " " * (cols - self.width(row))
                style = _Style("left", bold, w, h, True)
            self._row(row, style, cols)

    def bilingual(self, en: str, zh: str, **style: Any) -> None:
        """English and Chinese on one row; on a printer without a Chinese font, the Chinese on its own row (an
        image), so that the English stays crisp text. A Chinese ticket prints the Chinese only."""
        if zh and self.lang == Language.ZH:
            self.text(zh, **style)
        elif not zh or zh == en:
            self.text(en, **style)
        elif self.profile.gb18030:
            self.text(f"{en} {zh}", **style)
        else:
            self.text(en, **style)
            self.text(zh, **style)

    def pair(self, left: str, right: str, *, bold: bool = False) -> None:
        """`left` and `right` on one row (right-aligned), or two when they do not fit."""
        gap = self.columns - self.width(left) - self.width(right)
        if gap >= 1:
            rows = [left + " " * gap + right]
        else:
            rows = [*wrap(left, self.columns, 0, self.char_width)]
            rows.append(" " * max(0, self.columns - self.width(right)) + right)
        for row in rows:
            self._row(row, _Style(bold=bold), self.columns)

    def _center(self, row: str, cols: int) -> str:
        gap = cols - self.width(row)
        return " " * (gap // 2) + row + " " * (gap - gap // 2)

    def rule(self, ch: str = "-") -> None:
        """A line across the paper."""
        self._row(ch * self.columns, _Style(), self.columns)

    def blank(self, n: int = 1) -> None:
        """Empty rows."""
        self._style_set(_Style())
        self.p.text("\n" * n)

    def _row(self, row: str, style: _Style, cols: int) -> None:
        if self._prints_as_text(row):
            self._style_set(style)
            if self.profile.gb18030:
                self.p._raw(row.encode("gb18030") + b"\n")
            else:
                self.p.text(row + "\n")
        else:
            self._style_set(_Style(align="left"))
            prof = self.profile
            self.p._raw(_row_raster(prof.escpos_profile(), _image_impl(prof), row, style, cols, prof.dots))

    def _prints_as_text(self, row: str) -> bool:
        if self.profile.gb18030:
            # The printer's font covers GBK (two-byte GB18030); rarer characters and emoji go as an image.
            return all(len(c.encode("gb18030")) <= 2 for c in row)
        return all(ord(c) < 128 or _in_code_pages(self.profile.name, c) for c in row)

    def _style_set(self, s: _Style) -> None:
        cur = self._style
        if cur is None or (cur.w, cur.h) != (s.w, s.h):
            self.p.set(custom_size=True, width=s.w, height=s.h)
        if cur is None or cur.bold != s.bold:
            self.p.set(bold=s.bold)
        if cur is None or cur.invert != s.invert:
            self.p.set(invert=s.invert)
        if cur is None or cur.align != s.align:
            self.p.set(align=s.align)
        self._style = s

    # ---------------------------------------------------------------- pictures

    def _image(self, img: Image.Image) -> None:
        self.p.image(img, impl=_image_impl(self.profile), center=False)

    def qr(self, data: str, module: int = 6) -> None:
        """A QR code, centred: drawn by the printer when it can (GS ( k), else sent as an image."""
        self._style_set(_Style(align="center"))
        if self.profile.qr_native:
            self.p.qr(data, size=module, native=True)
            self.p.text("\n")
        else:
            self.p.qr(data, size=module, native=False, center=True)

    def finish(self) -> bytes:
        """Feed and cut (when the printer has a cutter); the job's bytes."""
        self._style_set(_Style())
        if self.profile.cut is not None:
            self.p.cut(mode=self.profile.cut)
        else:
            self.p.print_and_feed(6)
        out: bytes = self.p.output
        return out


def _kanji_width(ch: str) -> int:
    """Columns a character takes in Kanji (GB18030) mode: one per byte, ASCII one, any other character two (one of
    four bytes prints as part of an image, where it takes at most two)."""
    return 1 if ord(ch) < 0x80 else 2


@lru_cache(maxsize=8192)
def _in_code_pages(profile_name: str, ch: str) -> bool:
    encoder = _encoder(profile_name)
    for name in encoder.codepages:
        try:
            if encoder.can_encode(name, ch):
                return True
        except (LookupError, ValueError):  # a code page python cannot encode with
            continue
    return False


def _dummy(profile: Any) -> Any:
    # Imported at the first ticket, not with the module: python-escpos's printer classes take about 0.1 s to load,
    # and a hub loads this module at start, when every tenth of a second keeps the kitchen waiting.
    from escpos.printer import Dummy

    return Dummy(profile=profile)


@lru_cache(maxsize=16)
def _encoder(profile_name: str) -> Any:
    from escpos.magicencode import Encoder

    return Encoder(_dummy(profile_name).profile.get_code_pages())


def _image_impl(profile: PrinterProfile) -> str:
    return next((i for feature, i in IMAGE_IMPLS if profile.features.get(feature)), "bitImageRaster")


@lru_cache(maxsize=2048)
def _row_raster(escpos_profile: Any, impl: str, row: str, style: _Style, cols: int, dots: int) -> bytes:
    """The printer's bytes for a row drawn as a picture. Kept: the same dish names and cooking methods come back on
    ticket after ticket, and drawing one (then turning it into raster bytes) costs milliseconds of the hub's CPU."""
    d = _dummy(escpos_profile)
    d.image(_row_image(row, style, cols, dots), impl=impl, center=False)
    out: bytes = d.output
    return out


@lru_cache(maxsize=4)
def _glyph_top(size: int) -> int:
    """Where to draw so that a full-height hanzi sits in the middle of the 24-dot row, whatever the font's ascent."""
    box = ticket_font(size).getbbox("国")
    return int((LINE_DOTS - (box[3] - box[1])) // 2 - box[1])


def _row_image(row: str, style: _Style, cols: int, dots: int) -> Image.Image:
    """One row of text as a 1-bit picture the width of the paper, as the printer's own font would print it."""
    cell = DOTS_PER_COLUMN
    img = Image.new("L", (max(1, width(row)) * cell, LINE_DOTS), 255)
    draw = ImageDraw.Draw(img)
    font = ticket_font(LINE_DOTS - 2)
    top = _glyph_top(LINE_DOTS - 2)
    x = 0
    for ch in row:
        cw = char_width(ch) * cell
        if not ch.isspace() and cw:
            box = draw.textbbox((0, 0), ch, font=font)
            gx = x + (cw - (box[2] - box[0])) // 2 - box[0]
            draw.text((gx, top), ch, font=font, fill=0)
            if style.bold:  # emphasized: the printer prints each dot twice, one dot to the right
                draw.text((gx + 1, top), ch, font=font, fill=0)
        x += cw
    if (style.w, style.h) != (1, 1):
        img = img.resize((img.width * style.w, LINE_DOTS * style.h), Image.Resampling.NEAREST)
    line = Image.new("L", (dots, img.height + 6), 255)  # the gap below a row of text
    free = dots - img.width
    left = free // 2 if style.align == "center" else free if style.align == "right" else 0
    line.paste(img, (max(0, left), 0))
    if style.invert:
        line = Image.eval(line, lambda v: 255 - v)
    return line.point(lambda v: 255 if v >= 128 else 0).convert("1")


# ------------------------------------------------------------------------------------------------ pieces


def _fulfilment(paper: Paper, order: OrderView, labels: StoreLabels) -> str:
    f = order.fulfilment
    if isinstance(f, DineIn):
        return f"{paper.w('Table')} {f.table}"
    if isinstance(f, Pickup):
        return f"{paper.w('Pickup at')} {labels.local(f.at)}" if f.at else paper.w("Pickup")
    return f"{paper.w('Delivery by')} {labels.local(f.due)}"


def _weight(grams: int | None) -> str:
    if not grams:
        return ""
    return f"{grams / 1000:.2f} kg" if grams >= 1000 else f"{grams} g"


def _item_title(it: ItemView, name: str | None = None) -> str:
    return f"{it.qty} x {name if name is not None else it.name}"


def _item_detail(paper: Paper, it: ItemView, labels: StoreLabels) -> str:
    return " · ".join(p for p in (_weight(it.weight_g), labels.method(it, paper.lang)) if p)


def _declared(items: Iterable[ItemView]) -> list[str]:
    """The allergens customers declared on these items, each once."""
    seen: dict[str, None] = {}
    for it in items:
        if not it.removed:
            for a in it.declared_allergens:
                seen[a] = None
    return list(seen)


def _allergy_heading(paper: Paper, labels: StoreLabels, allergens: list[str]) -> None:
    """The customer's allergies, big and reversed: a cook cannot miss them."""
    if allergens:
        names = ", ".join(labels.allergen(a, paper.lang).upper() for a in allergens)
        paper.text(f"{paper.w('ALLERGY')}: {names}", align="center", bold=True, size=2, bar=True)


def _banner(paper: Paper, en: str) -> None:
    paper.bilingual(en, WORDS(Language.ZH, en), align="center", bold=True, size=2, bar=True)


def _notice(paper: Paper, notice: str | None) -> None:
    """The failover notice at the very top: this ticket is another station's."""
    if notice:
        paper.text(notice, align="center", bold=True, size=2, bar=True)
        paper.blank()


def _order_head(paper: Paper, order: OrderView, labels: StoreLabels, number_size: int = 3) -> None:
    if order.priority is Priority.RUSH:
        _banner(paper, "RUSH")
    size = min(number_size, max(1, paper.columns // max(1, paper.width(order.number) + 1)))
    paper.text(order.number, align="center", bold=True, size=size)
    where = _fulfilment(paper, order, labels)
    paper.text(where, align="center", bold=True, size=2 if isinstance(order.fulfilment, DineIn) else (1, 2))
    channel = paper.w(CHANNEL.get(order.channel.value, order.channel.value))
    paper.pair(channel, labels.local(order.created_at), bold=True)


def _money(paper: Paper, labels: StoreLabels, cents: int) -> str:
    sign = CURRENCY.get(labels.currency, labels.currency + " ")
    if sign == "¥" and paper.profile.gb18030:
        sign = "￥"
    return f"{sign}{cents / 100:.2f}"


def _prices(paper: Paper, it: ItemView, labels: StoreLabels) -> int | None:
    """The price rows of a claim tag: weight × price per kg = line price, the processing fee, the total."""
    cfg = labels.config
    cat = cfg.item(it.sku) if cfg is not None else None
    fee = it.fee_cents
    if cat is None and not fee:
        return None
    line = 0
    if cat is not None:
        if cat.sold_by is SoldBy.WEIGHT and it.weight_g:
            line = round(cat.price_cents * it.weight_g / 1000) * it.qty
            paper.pair(
                f"{_weight(it.weight_g)} x {_money(paper, labels, cat.price_cents)}/{paper.w('kg')}",
                _money(paper, labels, line),
            )
        else:
            line = cat.price_cents * it.qty
            paper.pair(f"{it.qty} x {_money(paper, labels, cat.price_cents)}", _money(paper, labels, line))
    if fee:
        paper.pair(paper.w("Processing fee"), _money(paper, labels, fee))
    paper.pair(paper.w("Total"), _money(paper, labels, line + fee), bold=True)
    return line + fee


def _item_block(paper: Paper, it: ItemView, labels: StoreLabels, *, marks: bool) -> None:
    change = it.change if marks else None
    first, other = labels.names(it, paper.lang)
    if it.removed:
        paper.text(paper.w("REMOVED - do not make"), bold=True, invert=True)
        paper.text(f"X {_item_title(it, first)}", indent=4)
        return
    if change is ItemChange.ADDED:
        paper.text("NEW 新加" if paper.lang != Language.ZH else paper.w("NEW"), bold=True, invert=True)
    paper.text(_item_title(it, first), bold=True, size=(1, 2), indent=4)
    detail = _item_detail(paper, it, labels)
    if detail:
        paper.text(f"    {detail}", bold=True, indent=4)
    if other:
        paper.text(f"    {other}", indent=4)
    for m in it.modifiers:
        paper.text(f"    + {m}", indent=6)
    declared = it.declared_allergens
    contains = [a for a in it.allergens if a not in declared]
    if declared:
        names = ", ".join(labels.allergen(a, paper.lang).upper() for a in declared)
        paper.text(f" {paper.w('CUSTOMER ALLERGY')}: {names} ", invert=True, bold=True, indent=1)
    if contains:
        names = ", ".join(labels.allergen(a, paper.lang).lower() for a in contains)
        paper.text(f"    {paper.w('Contains')}: {names}", indent=6)
    if it.note:
        changed = f"  ({paper.w('changed')})" if change is ItemChange.NOTE else ""
        paper.text(f"    {paper.w('Note')}: {it.note}{changed}", indent=6)
    if it.tag:
        paper.text(f"    {paper.w('Claim tag')} #{it.tag}", indent=4)
    if it.unrouted:
        paper.text(f"    ({paper.w('unrouted: no station set for this item')})", indent=4)


def _footer(paper: Paper, lines: Iterable[str]) -> None:
    for line in lines:
        paper.text(line, align="center")


# ------------------------------------------------------------------------------------------------ layouts


def station_ticket(
    order: OrderView,
    station: str,
    *,
    profile: PrinterProfile,
    labels: StoreLabels,
    banner: Banner | None = None,
    reprint: bool = False,
    job_id: int | None = None,
    lang: str = "en",
    notice: str | None = None,
) -> bytes:
    """The ticket of one station: what it makes of the order, with a failover notice and an AMENDED / CANCELLED /
    REPRINT banner on top, then the station, the order number and table, the customer's allergies.

    It shows the order as the station's screen does (`kds.privacy`): a first name at most, no phone, no address.
    """
    order = redact_view(order)
    paper = Paper(profile, lang)
    ticket = next((t for t in order.tickets if t.station == station), None)
    _notice(paper, notice)
    if reprint or banner is Banner.REPRINT:
        _banner(paper, "REPRINT")
    if banner is Banner.AMENDED:
        _banner(paper, "AMENDED")
    if banner is Banner.CANCELLED:
        _banner(paper, "CANCELLED")
    if lang == Language.ZH:
        paper.text(labels.station_in(station, lang), align="center", bold=True, size=2)
    else:
        paper.bilingual(*labels.station(station), align="center", bold=True, size=2)
    _order_head(paper, order, labels)
    items = {i.id: i for i in order.items}
    mine = [items[iid] for iid in (ticket.items if ticket else []) if iid in items]
    _allergy_heading(paper, labels, _declared(mine))
    paper.rule("=")
    for it in mine:
        _item_block(paper, it, labels, marks=banner is Banner.AMENDED)
    paper.rule("=")
    if order.note:
        paper.text(f"{paper.w('Order note')}: {order.note}", bold=True, indent=2)
    customer = order.customer.name if order.customer is not None else None
    if customer:
        paper.text(f"{paper.w('Customer')}: {customer}", indent=2)
    if banner is Banner.CANCELLED and order.cancel_reason:
        paper.text(f"{paper.w('Reason')}: {order.cancel_reason}", indent=2)
    others = [labels.station_in(t.station, lang) for t in order.tickets if t.station != station]
    if others:
        paper.text(f"{paper.w('Also at')}: " + ", ".join(others), indent=2)
    changed = f" · {paper.w('changed')} {labels.local(order.amended_at, '%H:%M:%S')}"
    _footer(
        paper,
        [
            f"{ticket.id if ticket else order.id}" + (f"  {paper.w('job')} {job_id}" if job_id is not None else ""),
            f"{paper.w('ordered')} {labels.local(order.created_at, '%H:%M:%S')}"
            + (changed if banner is Banner.AMENDED else ""),
        ],
    )
    return paper.finish()


def claim_tags(
    order: OrderView,
    *,
    profile: PrinterProfile,
    labels: StoreLabels,
    reprint: bool = False,
    lang: str = "en",
    notice: str | None = None,
) -> bytes:
    """One shelf claim tag per tagged item: big order number, tag, the station it goes to, the customer's allergy,
    item, weight, method, price and processing fee, table, QR of the order."""
    paper = Paper(profile, lang)
    items = claim_items(order)
    for k, it in enumerate(items, start=1):
        _notice(paper, notice)
        if reprint:
            _banner(paper, "REPRINT")
        paper.bilingual("CLAIM TAG", WORDS(Language.ZH, "CLAIM TAG"), align="center", bold=True, bar=True)
        big = min(4, max(1, profile.columns // max(1, paper.width(order.number) + 1)))
        paper.text(order.number, align="center", bold=True, size=big)
        if it.tag:
            paper.text(f"#{it.tag}", align="center", bold=True, size=2)
        if it.station:
            paper.text(f"{paper.w('To')}: {labels.station_in(it.station, lang)}", align="center", bold=True, size=2)
        _allergy_heading(paper, labels, _declared([it]))
        paper.rule()
        first, other = labels.names(it, lang)
        paper.text(first, align="center", bold=True, size=(1, 2))
        if other:
            paper.text(other, align="center")
        detail = _item_detail(paper, it, labels)
        if detail:
            paper.text(detail, align="center", bold=True)
        for m in it.modifiers:
            paper.text(f"+ {m}", align="center")
        if it.note:
            paper.text(f"{paper.w('Note')}: {it.note}", align="center")
        paper.rule()
        if _prices(paper, it, labels) is not None:
            paper.rule()
        paper.text(_fulfilment(paper, order, labels), align="center", bold=True, size=2)
        paper.qr(order.id, module=6 if profile.columns >= 42 else 5)
        _footer(
            paper,
            [
                f"{order.id}  {paper.w('item')} {it.id} ({k}/{len(items)})",
                labels.local(order.created_at, "%Y-%m-%d %H:%M"),
            ],
        )
        if k < len(items):
            paper.blank()
            if profile.cut is not None:
                paper.p.cut(mode=profile.cut)
                paper._style = None
                paper._style_set(_Style())
    return paper.finish()


def pickup_slip(
    order: OrderView,
    *,
    profile: PrinterProfile,
    labels: StoreLabels,
    reprint: bool = False,
    lang: str = "en",
    notice: str | None = None,
) -> bytes:
    """The customer's slip: the pickup number, huge, and a QR code to follow the order's status."""
    paper = Paper(profile, lang)
    _notice(paper, notice)
    if reprint:
        _banner(paper, "REPRINT")
    paper.text(labels.name, align="center", bold=True)
    paper.bilingual("Pickup number", WORDS(Language.ZH, "Pickup number"), align="center")
    huge = min(6, max(2, profile.columns // max(1, paper.width(order.number))))
    paper.text(order.number, align="center", bold=True, size=huge)
    channel = paper.w(CHANNEL_PLAIN.get(order.channel.value, order.channel.value))
    paper.text(f"{channel} · {_fulfilment(paper, order, labels)}", align="center")
    paper.rule()
    for it in order.items:
        if it.removed:
            continue
        detail = _item_detail(paper, it, labels)
        name = labels.names(it, lang)[0]
        paper.text(_item_title(it, name) + (f" ({detail})" if detail else ""), indent=4)
    paper.rule()
    paper.bilingual("Scan to follow your order", WORDS(Language.ZH, "Scan to follow your order"), align="center")
    paper.qr(labels.status_url.format(order_id=order.id, number=order.number), module=6 if profile.columns >= 42 else 5)
    paper.text(paper.w("We call your number when it is ready."), align="center")
    _footer(paper, [labels.local(order.created_at, "%Y-%m-%d %H:%M")])
    return paper.finish()


def expo_ticket(
    order: OrderView,
    *,
    profile: PrinterProfile,
    labels: StoreLabels,
    reprint: bool = False,
    lang: str = "en",
    notice: str | None = None,
) -> bytes:
    """The expo / runner ticket: the whole order, station by station, to assemble and hand over; the customer's
    allergies on top and at each item, so the runner says them at the table."""
    paper = Paper(profile, lang)
    _notice(paper, notice)
    if reprint:
        _banner(paper, "REPRINT")
    if order.status is OrderStatus.CANCELLED:
        _banner(paper, "CANCELLED")
    paper.bilingual("EXPO · RUNNER", WORDS(Language.ZH, "EXPO · RUNNER"), align="center", bold=True, bar=True)
    _order_head(paper, order, labels)
    _allergy_heading(paper, labels, _declared(order.items))
    customer = order.customer
    if customer is not None and (customer.name or customer.phone):
        who = " ".join(p for p in (customer.name, customer.phone) if p)
        paper.text(f"{paper.w('Customer')}: {who}", indent=2)
    if isinstance(order.fulfilment, Delivery) and order.fulfilment.address:
        paper.text(f"{paper.w('Address')}: {order.fulfilment.address}", indent=2)
    items = {i.id: i for i in order.items}
    for t in order.tickets:
        paper.rule()
        if lang == Language.ZH:
            station = labels.station_in(t.station, lang)
        else:
            station = " ".join(labels.station(t.station)).strip()
        paper.pair(f"[ ] {station}", WORDS(lang, t.state.value).upper(), bold=True)
        for iid in t.items:
            it = items.get(iid)
            if it is None or it.removed:
                continue
            detail = _item_detail(paper, it, labels)
            name = labels.names(it, lang)[0]
            paper.text(f"  {_item_title(it, name)}" + (f" ({detail})" if detail else ""), indent=6)
            declared = it.declared_allergens
            if declared:
                names = ", ".join(labels.allergen(a, lang).upper() for a in declared)
                paper.text(f"   {paper.w('CUSTOMER ALLERGY')}: {names} ", invert=True, bold=True, indent=3)
            if it.tag:
                paper.text(f"      {paper.w('claim tag')} #{it.tag}", indent=6)
    paper.rule("=")
    if order.note:
        paper.text(f"{paper.w('Order note')}: {order.note}", bold=True, indent=2)
    paper.qr(order.id, module=4)
    _footer(paper, [order.id, f"{paper.w('ordered')} {labels.local(order.created_at, '%H:%M:%S')}"])
    return paper.finish()


def test_page(printer_id: str, name: str, profile: PrinterProfile, *, at: str) -> bytes:
    """`kds printers test NAME`: what the printer is, its grid, accents and Chinese, a QR code."""
    paper = Paper(profile)
    paper.bilingual("TEST PAGE", "测试页", align="center", bold=True, size=2, bar=True)
    paper.text(printer_id, align="center", bold=True, size=2)
    if name:
        paper.text(name, align="center")
    paper.rule()
    paper.pair("profile", profile.name)
    paper.pair("columns", f"{profile.columns} ({profile.dots} dots)")
    paper.pair("Chinese", "GB18030 text" if profile.gb18030 else "raster images")
    paper.pair("QR codes", "native (GS ( k)" if profile.qr_native else "images")
    paper.rule()
    paper.text("".join(str(k % 10) for k in range(1, profile.columns + 1)))
    paper.text("Accents: crème brûlée, jalapeño, Ærø, ß")
    paper.text("中文: 澳洲龙虾 姜葱炒 清蒸 刺身")
    paper.text("bold", bold=True)
    paper.text(" inverted ", invert=True)
    paper.text("double", size=2)
    paper.qr(f"kds:test/{printer_id}", module=4)
    _footer(paper, [at])
    return paper.finish()


# ------------------------------------------------------------------------------------------------ dispatch


class Renderer(Protocol):
    """A layout printed at the counter's printer (claim tags, pickup slip, expo ticket)."""

    def __call__(
        self,
        order: OrderView,
        *,
        profile: PrinterProfile,
        labels: StoreLabels,
        reprint: bool = False,
        lang: str = "en",
        notice: str | None = None,
    ) -> bytes: ...


RENDERERS: dict[Layout, Renderer] = {
    Layout.CLAIM_TAG: claim_tags,
    Layout.PICKUP_SLIP: pickup_slip,
    Layout.EXPO: expo_ticket,
}


def banner_of(job: PrintJob) -> tuple[Banner | None, str | None]:
    """The job's banner (AMENDED, CANCELLED, REPRINT) and its failover notice ("FOR SEAFOOD — its printer is down"):
    the job's `failover` text, set by the spooler when it prints on a backup printer, or a `banner` that is not one
    of the `Banner` values."""
    notice: str | None = getattr(job, "failover", None) or None
    raw: Any = job.banner
    if raw is None or raw == "":
        return None, notice
    try:
        return Banner(raw), notice
    except ValueError:
        return None, notice or str(raw)


def render(job: PrintJob, profile: PrinterProfile, labels: StoreLabels) -> bytes:
    """The bytes of a stored print job, for the printer it goes to now (in that printer's language)."""
    order = OrderView.model_validate_json(job.order_json)  # once per job: the layouts read this object
    banner, notice = banner_of(job)
    lang = labels.language(job.target)
    if job.layout is Layout.STATION:
        assert job.station is not None
        return station_ticket(
            order,
            job.station,
            profile=profile,
            labels=labels,
            banner=banner,
            reprint=job.reprint,
            job_id=job.id,
            lang=lang,
            notice=notice,
        )
    return RENDERERS[job.layout](order, profile=profile, labels=labels, reprint=job.reprint, lang=lang, notice=notice)
