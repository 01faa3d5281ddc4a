"""Fonts for pictures of text: Chinese lines sent as raster images, and the emulator's picture of the paper.

The CJK font is WenQuanYi Micro Hei (Debian package `fonts-wqy-microhei`, installed by `.ci/run`): small (1.6 MB
download), covers GB18030's common hanzi and Latin, and stays legible at the printer's 24-dot line height.
`KDS_CJK_FONT=/path/to/font.ttc` picks another; Noto Sans CJK and Droid Sans Fallback are found too. Without any,
Chinese lines still go out as images but show empty boxes, and a warning says which package to install.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

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
INSTALL_HINT = "install the Debian package fonts-wqy-microhei, or set KDS_CJK_FONT to a CJK font file"


@lru_cache(maxsize=1)
def cjk_font_path() -> Path | None:
    """The CJK font file used for Chinese raster lines, or None when the machine has none."""
    env = os.environ.get("KDS_CJK_FONT")
    if env:
        if Path(env).is_file():
            return Path(env)
        log.warning("KDS_CJK_FONT=%s is not a file; looking for a CJK font elsewhere", env)
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


_warned = False


@lru_cache(maxsize=16)
def cjk_font(size: int) -> FontType:
    """The CJK font at `size` pixels; Pillow's default font (no Chinese glyphs) when there is none, with a warning."""
    global _warned
    path = cjk_font_path()
    if path is not None:
        return ImageFont.truetype(str(path), size)
    if not _warned:
        _warned = True
        log.warning("no CJK font found: Chinese text prints as empty boxes; %s", INSTALL_HINT)
    return ImageFont.load_default(size)


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
