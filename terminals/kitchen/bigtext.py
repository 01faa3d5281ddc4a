"""Order and table numbers three rows high, legible from two metres: a 3×5 pixel font drawn with half blocks.

Textual's `Digits` knows 0-9 and A-F only; order numbers start with the channel letter (A, K, S) and table numbers
may hold any letter, so the kitchen draws its own. S and 5, O and 0, I and 1 are drawn differently on purpose.
"""

from __future__ import annotations

from functools import lru_cache

HEIGHT = 3
"""Rows of text a big string takes."""
GLYPH_WIDTH = 3

_FONT: dict[str, tuple[str, str, str, str, str]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"),
    "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..#", "..#", "..#", "#.#", ".#."),
    "K": ("#.#", "#.#", "##.", "#.#", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"),
    "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "Q": (".#.", "#.#", "#.#", "##.", ".##"),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": (".##", "#..", ".#.", "..#", "##."),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#.#", "#.#", "###", "###", "#.#"),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "Z": ("###", "..#", ".#.", "#..", "###"),
    "-": ("...", "...", "###", "...", "..."),
    "/": ("..#", "..#", ".#.", "#..", "#.."),
    ".": ("...", "...", "...", "...", ".#."),
    " ": ("...", "...", "...", "...", "..."),
}
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def _glyph(ch: str) -> tuple[str, str, str]:
    rows = _FONT.get(ch.upper())
    if rows is None:
        rows = _FONT["-"]
    px = [[c == "#" for c in r] for r in rows] + [[False, False, False]]
    return (
        "".join(_HALF[(px[0][x], px[1][x])] for x in range(GLYPH_WIDTH)),
        "".join(_HALF[(px[2][x], px[3][x])] for x in range(GLYPH_WIDTH)),
        "".join(_HALF[(px[4][x], px[5][x])] for x in range(GLYPH_WIDTH)),
    )


def can_draw(text: str) -> bool:
    """True when every character of `text` has a big glyph."""
    return all(c.upper() in _FONT for c in text)


def width(text: str) -> int:
    """Cells a big rendering of `text` takes (one blank column between glyphs)."""
    return len(text) * (GLYPH_WIDTH + 1) - 1 if text else 0


@lru_cache(maxsize=4096)
def big(text: str) -> tuple[str, str, str]:
    """`text` as three rows of half-block characters (unknown characters drawn as a dash)."""
    glyphs = [_glyph(c) for c in text]
    return (
        " ".join(g[0] for g in glyphs),
        " ".join(g[1] for g in glyphs),
        " ".join(g[2] for g in glyphs),
    )
