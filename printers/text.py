"""Text on a fixed grid of columns: how wide a string prints, and wrapping at words without losing anything.

Chinese (and other East Asian wide) characters take two columns, like the printer's 24 × 24 dot Kanji font; other
characters one. Wrapping breaks at spaces, between wide characters, and inside a word only when the word alone is
wider than the line: text is never cut off.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=4096)
def char_width(ch: str) -> int:
    """Columns one character takes: 2 for wide East Asian characters, 0 for combining marks, else 1."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns a string takes."""
    return sum(char_width(c) for c in text)


def is_wide(ch: str) -> bool:
    """A wide (two-column) character, e.g. Chinese."""
    return char_width(ch) == 2


def _tokens(text: str) -> list[str]:
    """Words, runs of spaces, and each wide character on its own (a line may break between two of them)."""
    out: list[str] = []
    word = ""
    for ch in text:
        if ch == " ":
            if word and not word.endswith(" "):
                out.append(word)
                word = ""
            word += ch
        elif is_wide(ch):
            if word:
                out.append(word)
                word = ""
            out.append(ch)
        else:
            if word.endswith(" "):
                out.append(word)
                word = ""
            word += ch
    if word:
        out.append(word)
    return out


def wrap(text: str, columns: int, indent: int = 0, cw: Callable[[str], int] = char_width) -> list[str]:
    """Lines of at most `columns` columns; continuation lines start with `indent` spaces. `cw` counts the columns
    of one character (a GB18030 printer in Chinese mode counts its bytes: `printers.layouts`)."""

    def wd(s: str) -> int:
        return sum(cw(c) for c in s)

    if columns - indent < 2:
        indent = 0
    lines: list[str] = []
    text = " ".join(text.splitlines())
    lead = min(len(text) - len(text.lstrip(" ")), max(0, columns - 2))
    line = " " * lead
    for tok in _tokens(text[lead:]):
        if tok.isspace():
            if line.strip():
                line += " "
            continue
        if wd(line) + wd(tok) <= columns:
            line += tok
            continue
        if line.strip():
            lines.append(line.rstrip())
            line = " " * indent
        # A word wider than a whole line is broken, never cut.
        while wd(line) + wd(tok) > columns:
            room = columns - wd(line)
            take = ""
            for ch in tok:
                if wd(take) + cw(ch) > room:
                    break
                take += ch
            if not take:  # not even one character fits after the indent
                take = tok[0]
            lines.append(line + take)
            tok = tok[len(take) :]
            line = " " * indent
        line += tok
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def pad_between(left: str, right: str, columns: int) -> list[str]:
    """`left` and `right` on one line, right-aligned; on two lines when they do not fit together."""
    gap = columns - width(left) - width(right)
    if gap >= 1:
        return [left + " " * gap + right]
    return [*wrap(left, columns), " " * max(0, columns - width(right)) + right]
