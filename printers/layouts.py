"""Ticket layouts: pure functions from an order to ESC/POS bytes, rendered through python-escpos's `Dummy` printer.

Each layout takes the order (its `OrderView` document), what it needs of the store (`StoreLabels`) and the printer's
`PrinterProfile`, and returns the bytes of one job ending in a cut. Nothing here does I/O: the spooler sends the
bytes with `printers.transports`, tests compare them with golden files.

Text sits on the printer's grid of columns (32 on 58 mm paper, 42 or 48 on 80 mm); long lines wrap at words and
are never cut. Chinese and accented text come out right on every printer: a printer with a GB18030 font gets text
in Kanji mode (FS &), the others get each row holding characters their code pages lack as a raster image (GS v 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw

from kds.config import StoreConfig
from kds.printing import Banner, Layout, PrintJob, claim_items
from kds.privacy import redact_order
from printers.fonts import cjk_font
from printers.profiles import DOTS_PER_COLUMN, LINE_DOTS, PrinterProfile
from printers.text import char_width, pad_between, width, wrap

KANJI_ON = b"\x1c&"
"""FS &: Kanji (Chinese) character mode: bytes from 0x81 are GB18030 characters."""
KANJI_OFF = b"\x1c."
"""FS .: single-byte code pages (ESC t) again."""
IMAGE_IMPLS = (("bitImageRaster", "bitImageRaster"), ("graphics", "graphics"), ("bitImageColumn", "bitImageColumn"))

CHANNEL = {"app": "APP", "kiosk": "KIOSK", "shelf": "SHELF"}
CHANNEL_PLAIN = {"app": "App", "kiosk": "Kiosk", "shelf": "Shelf-to-table"}


@dataclass(frozen=True, slots=True)
class StoreLabels:
    """What a layout needs to know of the store."""

    name: str
    timezone: str = "Asia/Shanghai"
    stations: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Station id → (name, Chinese name)."""
    status_url: str = "https://m.freshippo.example/order/{order_id}"

    @classmethod
    def from_config(cls, config: StoreConfig) -> StoreLabels:
        """The labels of a store config."""
        return cls(
            name=config.store.name,
            timezone=config.store.timezone,
            stations={s.id: (s.name, s.name_zh) for s in config.stations},
            status_url=config.counter.status_url,
        )

    def station(self, station_id: str) -> tuple[str, str]:
        """(`Wok`, `炒锅`)."""
        return self.stations.get(station_id, (station_id, ""))

    def local(self, iso: str | None, fmt: str = "%H:%M") -> str:
        """A time of the order, in the store's time zone."""
        if not iso:
            return ""
        return datetime.fromisoformat(iso).astimezone(ZoneInfo(self.timezone)).strftime(fmt)


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

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.p = _dummy(profile.escpos_profile())
        self.columns = profile.columns
        self._style: _Style | None = None
        self.p.hw("INIT")
        self.p._raw(KANJI_ON if profile.gb18030 else KANJI_OFF)
        self._style_set(_Style())

    # ---------------------------------------------------------------- text

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
        for row in wrap(text, cols, indent):
            if bar:
                row = _center(row, cols) if align == "center" else row + " " * (cols - width(row))
                style = _Style("left", bold, w, h, True)
            self._row(row, style, cols)

    def bilingual(self, en: str, zh: str, **style: Any) -> None:
        """English and Chinese on one row; on a printer without a Chinese font, the Chinese on its own row (an
        image), so that the English stays crisp text."""
        if not zh:
            self.text(en, **style)
        elif self.profile.gb18030:
            self.text(f"{en} {zh}", **style)
        else:
            self.text(en, **style)
            self.text(zh, **style)

    def pair(self, left: str, right: str, *, bold: bool = False) -> None:
        """`left` and `right` on one row (right-aligned), or two when they do not fit."""
        for row in pad_between(left, right, self.columns):
            self._row(row, _Style(bold=bold), self.columns)

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


def _center(row: str, cols: int) -> str:
    gap = cols - width(row)
    return " " * (gap // 2) + row + " " * (gap - gap // 2)


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


def _row_image(row: str, style: _Style, cols: int, dots: int) -> Image.Image:
    """One row of text as a 1-bit picture the width of the paper, as the printer's own font would print it."""
    cell = DOTS_PER_COLUMN
    img = Image.new("L", (max(1, width(row)) * cell, LINE_DOTS), 255)
    draw = ImageDraw.Draw(img)
    font = cjk_font(LINE_DOTS - 2)
    x = 0
    for ch in row:
        cw = char_width(ch) * cell
        if not ch.isspace() and cw:
            box = draw.textbbox((0, 0), ch, font=font)
            gx = x + (cw - (box[2] - box[0])) // 2 - box[0]
            draw.text((gx, 0), ch, font=font, fill=0)
            if style.bold:  # emphasized: the printer prints each dot twice, one dot to the right
                draw.text((gx + 1, 0), ch, font=font, fill=0)
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


def _fulfilment(doc: dict[str, Any], labels: StoreLabels) -> str:
    f = doc["fulfilment"]
    if f["type"] == "dine_in":
        return f"Table {f['table']}"
    if f["type"] == "pickup":
        return "Pickup" + (f" at {labels.local(f.get('at'))}" if f.get("at") else "")
    return f"Delivery by {labels.local(f.get('due'))}"


def _weight(grams: int | None) -> str:
    if not grams:
        return ""
    return f"{grams / 1000:.2f} kg" if grams >= 1000 else f"{grams} g"


def _item_title(it: dict[str, Any]) -> str:
    return f"{it['qty']} x {it['name']}"


def _item_detail(it: dict[str, Any]) -> str:
    return " · ".join(p for p in (_weight(it.get("weight_g")), it.get("cook_name") or "") if p)


def _banner(paper: Paper, en: str, zh: str = "") -> None:
    paper.bilingual(en, zh, align="center", bold=True, size=2, bar=True)


def _order_head(paper: Paper, doc: dict[str, Any], labels: StoreLabels, number_size: int = 2) -> None:
    if doc["priority"] == "rush":
        _banner(paper, "RUSH", "加急")
    paper.text(doc["number"], align="center", bold=True, size=number_size)
    paper.pair(
        f"{CHANNEL.get(doc['channel'], doc['channel'])} · {_fulfilment(doc, labels)}",
        labels.local(doc["created_at"]),
        bold=True,
    )


def _item_block(paper: Paper, it: dict[str, Any], *, marks: bool) -> None:
    change = it.get("change") if marks else None
    if it["removed"]:
        paper.text("REMOVED - do not make", bold=True, invert=True)
        paper.text(f"X {_item_title(it)}", indent=4)
        return
    if change == "added":
        paper.text("NEW 新加", bold=True, invert=True)
    paper.text(_item_title(it), bold=True, size=(1, 2), indent=4)
    detail = _item_detail(it)
    if detail:
        paper.text(f"    {detail}", bold=True, indent=4)
    if it.get("name_zh") and it["name_zh"] != it["name"]:
        paper.text(f"    {it['name_zh']}", indent=4)
    for m in it.get("modifiers") or []:
        paper.text(f"    + {m}", indent=6)
    declared = [str(a) for a in it.get("declared_allergens") or []]
    contains = [str(a) for a in it.get("allergens") or [] if a not in declared]
    if declared:
        paper.text(f" CUSTOMER ALLERGY: {', '.join(a.upper() for a in declared)} ", invert=True, bold=True, indent=1)
    if contains:
        paper.text(f"    Contains: {', '.join(contains)}", indent=6)
    if it.get("note"):
        paper.text(f"    Note: {it['note']}" + ("  (changed)" if change == "note" else ""), indent=6)
    if it.get("tag"):
        paper.text(f"    Claim tag #{it['tag']}", indent=4)
    if it.get("unrouted"):
        paper.text("    (unrouted: no station set for this item)", indent=4)


def _footer(paper: Paper, lines: Iterable[str]) -> None:
    for line in lines:
        paper.text(line, align="center")


# ------------------------------------------------------------------------------------------------ layouts


def station_ticket(
    doc: dict[str, Any],
    station: str,
    *,
    profile: PrinterProfile,
    labels: StoreLabels,
    banner: Banner | None = None,
    reprint: bool = False,
    job_id: int | None = None,
) -> bytes:
    """The ticket of one station: what it makes of the order, with an AMENDED / CANCELLED / REPRINT banner.

    It shows the order as the station's screen does (`kds.privacy`): a first name at most, no phone, no address.
    """
    doc = redact_order(doc)
    paper = Paper(profile)
    ticket = next((t for t in doc["tickets"] if t["station"] == station), None)
    if reprint or banner is Banner.REPRINT:
        _banner(paper, "REPRINT", "重印")
    if banner is Banner.AMENDED:
        _banner(paper, "AMENDED", "已修改")
    if banner is Banner.CANCELLED:
        _banner(paper, "CANCELLED", "已取消")
    paper.bilingual(*labels.station(station), align="center", bold=True)
    _order_head(paper, doc, labels)
    paper.rule("=")
    items = {i["id"]: i for i in doc["items"]}
    for iid in ticket["items"] if ticket else []:
        it = items.get(iid)
        if it is not None:
            _item_block(paper, it, marks=banner is Banner.AMENDED)
    paper.rule("=")
    if doc.get("note"):
        paper.text(f"Order note: {doc['note']}", bold=True, indent=2)
    customer = (doc.get("customer") or {}).get("name")
    if customer:
        paper.text(f"Customer: {customer}", indent=2)
    if banner is Banner.CANCELLED and doc.get("cancel_reason"):
        paper.text(f"Reason: {doc['cancel_reason']}", indent=2)
    others = [labels.station(t["station"])[0] for t in doc["tickets"] if t["station"] != station]
    if others:
        paper.text("Also at: " + ", ".join(others), indent=2)
    _footer(
        paper,
        [
            f"{ticket['id'] if ticket else doc['id']}" + (f"  job {job_id}" if job_id is not None else ""),
            f"ordered {labels.local(doc['created_at'], '%H:%M:%S')}"
            + (f" · changed {labels.local(doc['amended_at'], '%H:%M:%S')}" if banner is Banner.AMENDED else ""),
        ],
    )
    return paper.finish()


def claim_tags(
    doc: dict[str, Any], *, profile: PrinterProfile, labels: StoreLabels, reprint: bool = False, **_: Any
) -> bytes:
    """One shelf claim tag per tagged item: big order number, tag, item, weight, method, table, QR of the order."""
    paper = Paper(profile)
    items = claim_items(doc)
    for k, it in enumerate(items, start=1):
        if reprint:
            _banner(paper, "REPRINT", "重印")
        paper.bilingual("CLAIM TAG", "取货牌", align="center", bold=True, bar=True)
        big = min(4, max(1, profile.columns // max(1, width(doc["number"]) + 1)))
        paper.text(doc["number"], align="center", bold=True, size=big)
        if it.get("tag"):
            paper.text(f"#{it['tag']}", align="center", bold=True, size=2)
        paper.rule()
        paper.text(it["name"], align="center", bold=True, size=(1, 2))
        if it.get("name_zh") and it["name_zh"] != it["name"]:
            paper.text(it["name_zh"], align="center")
        detail = _item_detail(it)
        if detail:
            paper.text(detail, align="center", bold=True)
        for m in it.get("modifiers") or []:
            paper.text(f"+ {m}", align="center")
        if it.get("note"):
            paper.text(f"Note: {it['note']}", align="center")
        paper.rule()
        paper.text(_fulfilment(doc, labels), align="center", bold=True, size=2)
        paper.qr(doc["id"], module=6 if profile.columns >= 42 else 5)
        _footer(
            paper,
            [f"{doc['id']}  item {it['id']} ({k}/{len(items)})", labels.local(doc["created_at"], "%Y-%m-%d %H:%M")],
        )
        if k < len(items):
            paper.blank()
            if profile.cut is not None:
                paper.p.cut(mode=profile.cut)
                paper._style = None
                paper._style_set(_Style())
    return paper.finish()


def pickup_slip(
    doc: dict[str, Any], *, profile: PrinterProfile, labels: StoreLabels, reprint: bool = False, **_: Any
) -> bytes:
    """The customer's slip: the pickup number, huge, and a QR code to follow the order's status."""
    paper = Paper(profile)
    if reprint:
        _banner(paper, "REPRINT", "重印")
    paper.text(labels.name, align="center", bold=True)
    paper.bilingual("Pickup number", "取餐号", align="center")
    huge = min(6, max(2, profile.columns // max(1, width(doc["number"]))))
    paper.text(doc["number"], align="center", bold=True, size=huge)
    paper.text(f"{CHANNEL_PLAIN.get(doc['channel'], doc['channel'])} · {_fulfilment(doc, labels)}", align="center")
    paper.rule()
    for it in doc["items"]:
        if it["removed"]:
            continue
        detail = _item_detail(it)
        paper.text(_item_title(it) + (f" ({detail})" if detail else ""), indent=4)
    paper.rule()
    paper.bilingual("Scan to follow your order", "扫码查看订单", align="center")
    paper.qr(
        labels.status_url.format(order_id=doc["id"], number=doc["number"]), module=6 if profile.columns >= 42 else 5
    )
    paper.text("We call your number when it is ready.", align="center")
    _footer(paper, [labels.local(doc["created_at"], "%Y-%m-%d %H:%M")])
    return paper.finish()


def expo_ticket(
    doc: dict[str, Any], *, profile: PrinterProfile, labels: StoreLabels, reprint: bool = False, **_: Any
) -> bytes:
    """The expo / runner ticket: the whole order, station by station, to assemble and hand over."""
    paper = Paper(profile)
    if reprint:
        _banner(paper, "REPRINT", "重印")
    if doc["status"] == "cancelled":
        _banner(paper, "CANCELLED", "已取消")
    paper.bilingual("EXPO · RUNNER", "出餐", align="center", bold=True, bar=True)
    _order_head(paper, doc, labels)
    customer = doc.get("customer") or {}
    if customer.get("name") or customer.get("phone"):
        paper.text("Customer: " + " ".join(p for p in (customer.get("name"), customer.get("phone")) if p), indent=2)
    if doc["fulfilment"].get("address"):
        paper.text(f"Address: {doc['fulfilment']['address']}", indent=2)
    items = {i["id"]: i for i in doc["items"]}
    for t in doc["tickets"]:
        paper.rule()
        paper.pair(f"[ ] {' '.join(labels.station(t['station'])).strip()}", t["state"].upper(), bold=True)
        for iid in t["items"]:
            it = items.get(iid)
            if it is None or it["removed"]:
                continue
            detail = _item_detail(it)
            paper.text(f"  {_item_title(it)}" + (f" ({detail})" if detail else ""), indent=6)
            if it.get("tag"):
                paper.text(f"      claim tag #{it['tag']}", indent=6)
    paper.rule("=")
    if doc.get("note"):
        paper.text(f"Order note: {doc['note']}", bold=True, indent=2)
    paper.qr(doc["id"], module=4)
    _footer(paper, [doc["id"], f"ordered {labels.local(doc['created_at'], '%H:%M:%S')}"])
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

Renderer = Callable[..., bytes]
RENDERERS: dict[Layout, Renderer] = {
    Layout.CLAIM_TAG: claim_tags,
    Layout.PICKUP_SLIP: pickup_slip,
    Layout.EXPO: expo_ticket,
}


def render(job: PrintJob, profile: PrinterProfile, labels: StoreLabels) -> bytes:
    """The bytes of a stored print job, for the printer it goes to now."""
    doc = job.order
    if job.layout is Layout.STATION:
        assert job.station is not None
        return station_ticket(
            doc, job.station, profile=profile, labels=labels, banner=job.banner, reprint=job.reprint, job_id=job.id
        )
    return RENDERERS[job.layout](doc, profile=profile, labels=labels, reprint=job.reprint)
