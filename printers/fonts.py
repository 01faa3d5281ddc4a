"""Fonts for pictures of text: Chinese lines sent as raster images, and the emulator's picture of the paper.

The CJK font ships with the project: Noto Sans SC (SIL Open Font License 1.1), from the PyPI package
`pylopdf-fonts-zh-cn`, a dependency in pyproject.toml, so that `pip install` is all a store needs. It is looked up
first, so that every machine draws the same pictures. `KDS_CJK_FONT=/path/to/font.ttc` picks another font (and when
that file is missing, that is an error, not a silent fallback). Without the package, system fonts are tried
(WenQuanYi Micro Hei, Noto Sans CJK, Droid Sans Fallback...).

When no CJK font is found, Chinese would print as rows of empty boxes: that is refused loudly instead.
`ticket_font` raises `NoCJKFont` (the job fails with that message, the test page is not sent), and `font_problems`
names the printers that would need it, for the hub to refuse to start.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import ImageFont

if TYPE_CHECKING:
    from kds.config import StoreConfig

log = logging.getLogger("printers.fonts")

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont

CJK_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
MONO_CANDIDATES = {
    False: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    ),
    True: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
    ),
}
INSTALL_HINT = (
    "reinstall the project (pip install -e .) so that its font package pylopdf-fonts-zh-cn is there, "
    "or set KDS_CJK_FONT to a CJK font file (.ttf, .otf, .ttc)"
)


class NoCJKFont(RuntimeError):
    """No font to draw Chinese with: a ticket would show empty boxes."""


def _packaged() -> Path | None:
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        return None
    path = Path(pylopdf_fonts_zh_cn.sans_path())
    return path if path.is_file() else None


def _system() -> Path | None:
    for c in CJK_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    for root in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts"):
        if root.is_dir():
            for f in sorted(root.rglob("*")):
                n = f.name.lower()
                if f.suffix.lower() in (".ttc", ".ttf", ".otf") and any(
                    k in n for k in ("wqy", "cjk", "droidsansfallback")
                ):
                    return f
    return None


@lru_cache(maxsize=1)
def find_cjk_font() -> Path:
    """The CJK font file for Chinese raster lines: KDS_CJK_FONT, else the shipped one, else a system font.
    Raises `NoCJKFont` (with what to do) when there is none, or when KDS_CJK_FONT names a file that is not there."""
    env = os.environ.get("KDS_CJK_FONT")
    if env:
        if Path(env).is_file():
            return Path(env)
        raise NoCJKFont(f"KDS_CJK_FONT={env} is not a font file; set it to a CJK font file or unset it")
    path = _packaged() or _system()
    if path is None:
        raise NoCJKFont(f"no CJK font found: Chinese would print as empty boxes; {INSTALL_HINT}")
    return path


def cjk_font_path() -> Path | None:
    """`find_cjk_font`, or None when there is none."""
    try:
        return find_cjk_font()
    except NoCJKFont:
        return None


@lru_cache(maxsize=16)
def ticket_font(size: int) -> FontType:
    """The CJK font at `size` pixels, for tickets. Raises `NoCJKFont` when there is none: a ticket never gets a row
    of empty boxes."""
    path = find_cjk_font()
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as exc:
        raise NoCJKFont(f"cannot read the CJK font {path}: {exc}") from exc


_warned = False


@lru_cache(maxsize=16)
def cjk_font(size: int) -> FontType:
    """The CJK font at `size` pixels for the emulator's picture; Pillow's default font (no Chinese glyphs) when
    there is none, with a warning."""
    global _warned
    try:
        return ticket_font(size)
    except NoCJKFont as exc:
        if not _warned:
            _warned = True
            log.warning("%s", exc)
        return ImageFont.load_default(size)


def font_problems(config: StoreConfig) -> list[str]:
    """Why the config's printers cannot print Chinese: printers without a GB18030 font print it as pictures, and
    every ticket has Chinese (station and dish names), so those need a CJK font. Empty when all is well."""
    plain = [p.id for p in config.printers if not p.gb18030]
    if not plain:
        return []
    try:
        ticket_font(22)
    except NoCJKFont as exc:
        return [f"printers {', '.join(plain)} have no GB18030 font and print Chinese as pictures, but {exc}"]
    return []


@lru_cache(maxsize=8)
def mono_font(size: int, bold: bool = False) -> FontType:
    """A monospaced Latin font for the emulator's picture (Pillow's default font when none is installed)."""
    for c in MONO_CANDIDATES[bold]:
        if Path(c).is_file():
            return ImageFont.truetype(c, size)
    path = cjk_font_path()
    if path is not None:
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)
