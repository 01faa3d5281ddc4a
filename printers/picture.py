"""A picture of the paper: a decoded page drawn dot for dot as a 203 dpi thermal printer would print it."""

from __future__ import annotations

from functools import lru_cache

import qrcode
from PIL import Image, ImageDraw, ImageOps

from printers.decoder import Feed, Page, QRCode, Raster, Style, TextLine
from printers.fonts import cjk_font, mono_font
from printers.profiles import DOTS_PER_COLUMN, LINE_DOTS
from printers.text import char_width

MARGIN = 24
EC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}


@lru_cache(maxsize=4096)
def _glyph(ch: str, style: Style, kanji: bool = False) -> Image.Image:
    """One character in its cell, scaled as the printer scales its font (GS !, ESC !). In Chinese mode (`kanji`,
    FS &) every character that is not ASCII takes two columns, as a GB18030 printer prints it ("·", "¥", "—")."""
    columns = 2 if kanji and not ch.isascii() else char_width(ch)
    cw = columns * DOTS_PER_COLUMN
    fg, bg = (255, 0) if style.invert else (0, 255)
    cell = Image.new("L", (max(cw, 1), LINE_DOTS), bg)
    if not ch.isspace() and cw:
        draw = ImageDraw.Draw(cell)
        if columns == 2:
            font = cjk_font(LINE_DOTS - 2)
            stroke = 1 if style.bold else 0
            ref = font.getbbox("国")  # the font's ink box: centred in the line whatever the font's own baseline
            y = (LINE_DOTS - (ref[3] - ref[1])) // 2 - ref[1]
        else:
            font = mono_font(20, bold=style.bold)
            stroke = 0
            y = (LINE_DOTS - 20) // 2 - 1
        box = draw.textbbox((0, 0), ch, font=font)
        x = (cw - (box[2] - box[0])) // 2 - box[0]
        draw.text((x, y), ch, font=font, fill=fg, stroke_width=stroke, stroke_fill=fg)
    if style.underline:
        ImageDraw.Draw(cell).line([(0, LINE_DOTS - 2), (cw, LINE_DOTS - 2)], fill=fg, width=2)
    if (style.w, style.h) != (1, 1):
        cell = cell.resize((cell.width * style.w, LINE_DOTS * style.h), Image.Resampling.NEAREST)
    return cell


def _x(align: str, used: int, dots: int) -> int:
    free = max(0, dots - used)
    return free // 2 if align == "center" else free if align == "right" else 0


def draw_page(
    page: Page, columns: int, boxes: list[tuple[object, tuple[int, int, int, int]]] | None = None
) -> Image.Image:
    """The page as a picture of the paper roll, `columns` wide; `boxes` gets each element's box on the picture."""
    dots = columns * DOTS_PER_COLUMN
    parts: list[tuple[int, Image.Image]] = []  # (x, image) stacked from the top
    gaps: list[int] = []
    for e in page.elements:
        if isinstance(e, TextLine):
            line_h = e.height - 6
            img = Image.new("L", (dots, line_h), 255)
            x = _x(e.align, e.columns * DOTS_PER_COLUMN, dots)
            for run in e.runs:
                for ch in run.text:
                    g = _glyph(ch, run.style, run.kanji)
                    if x + g.width <= dots:
                        img.paste(g, (x, line_h - g.height))
                    x += g.width
            parts.append((0, img))
            gaps.append(6)
        elif isinstance(e, Raster):
            bits = Image.frombytes("1", ((e.width + 7) // 8 * 8, e.height), e.data).crop((0, 0, e.width, e.height))
            img = ImageOps.invert(bits.convert("L"))
            if e.scale != (1, 1):
                img = img.resize((img.width * e.scale[0], img.height * e.scale[1]), Image.Resampling.NEAREST)
            parts.append((_x(e.align, img.width, dots), img))
            gaps.append(0)
        elif isinstance(e, QRCode):
            qr = qrcode.QRCode(box_size=max(1, e.module), border=0, error_correction=EC.get(e.ec, EC["L"]))
            qr.add_data(e.data)
            qr.make(fit=True)
            img = qr.make_image().get_image().convert("L")
            parts.append((_x(e.align, img.width, dots), img))
            gaps.append(8)
        elif isinstance(e, Feed):
            parts.append((0, Image.new("L", (1, max(0, e.dots)), 255)))
            gaps.append(0)
    height = sum(img.height + gap for (_, img), gap in zip(parts, gaps, strict=True))
    paper = Image.new("L", (dots + 2 * MARGIN, height + 2 * MARGIN), 255)
    y = MARGIN
    for (x, img), gap, e in zip(parts, gaps, page.elements, strict=True):
        paper.paste(img.crop((0, 0, min(img.width, dots - x), img.height)), (MARGIN + x, y))
        if boxes is not None:  # on the framed picture: 2 dots of frame
            boxes.append((e, (MARGIN + x + 2, y + 2, MARGIN + x + 2 + img.width, y + 2 + img.height)))
        y += img.height + gap
    framed = Image.new("RGB", (paper.width + 4, paper.height + 4), (170, 170, 170))
    framed.paste(paper.convert("RGB"), (2, 2))
    return framed
