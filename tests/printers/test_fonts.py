"""Chinese on printers without a GB18030 font: drawn with the CJK font the project ships, and refused loudly (never
rows of empty boxes) when no CJK font can be had."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kds.config import StoreConfig
from printers.decoder import Raster, TextLine, decode
from printers.fonts import NoCJKFont, find_cjk_font, font_problems, ticket_font
from printers.layouts import Paper, _glyph_top, _row_raster
from printers.profiles import make_profile
from tests.conftest import ROOT, SAMPLE_CONFIG

PLAIN = make_profile("default", columns=48, gb18030=False)


def _clear() -> None:
    for cached in (find_cjk_font, ticket_font, _glyph_top, _row_raster):
        cached.cache_clear()


@pytest.fixture
def no_font(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("KDS_CJK_FONT", "/nonexistent/NoSuchFont.ttc")
    _clear()
    yield None
    monkeypatch.undo()
    _clear()


def _config_with_file_printer(tmp_path: Path, out: Path) -> Path:
    """The sample store plus a file printer without a Chinese font (its test page prints Chinese as pictures)."""
    path = tmp_path / "store.toml"
    path.write_text(
        SAMPLE_CONFIG.read_text()
        + f'\n[[printers]]\nid = "file-printer"\ntransport = "file"\npath = "{out}"\nstatus_query = false\n'
        + "gb18030 = false\ncolumns = 48\n"
    )
    return path


def _printers_test(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdsapp.cli", "printers", "test", "file-printer", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )


def test_printers_test_fails_loudly_when_the_cjk_font_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "lp0"
    config = _config_with_file_printer(tmp_path, out)
    proc = _printers_test(config, KDS_CJK_FONT=str(tmp_path / "missing.ttc"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "file-printer prints Chinese as pictures and cannot" in proc.stderr
    assert "missing.ttc is not a font file" in proc.stderr
    assert "test page printed" not in proc.stdout
    assert not out.exists() or out.read_bytes() == b"", "nothing was sent to the printer"


def test_printers_test_prints_chinese_with_the_shipped_font(tmp_path: Path) -> None:
    out = tmp_path / "lp0"
    proc = _printers_test(_config_with_file_printer(tmp_path, out))
    assert proc.returncode == 0, proc.stderr
    assert "test page printed on file-printer" in proc.stdout
    (page,) = decode(out.read_bytes())
    assert any(isinstance(e, TextLine) and "TEST PAGE" in e.text for e in page.elements)
    rasters = [e for e in page.elements if isinstance(e, Raster)]
    assert rasters and all(any(r.data) for r in rasters), "the Chinese rows are pictures with ink"
    # The row "中文: 澳洲龙虾 …": 澳 洲 龙 虾 sit in the 24-dot cells from column 6; glyphs, not four equal boxes.
    row = rasters[-1]
    ink = [sum(row.black(x, y) for x in range(x0, x0 + 24) for y in range(24)) for x0 in (72, 96, 120, 144)]
    assert len(set(ink)) == 4 and min(ink) > 0, ink


def test_the_font_comes_with_the_project() -> None:
    path = find_cjk_font()
    assert "site-packages" in str(path) or "KDS_CJK_FONT" in os.environ, path
    assert "pylopdf-fonts-zh-cn" in (ROOT / "pyproject.toml").read_text()


def _ink(ch: str) -> int:
    paper = Paper(PLAIN)
    paper.text(ch)
    (page,) = decode(paper.finish())
    (raster,) = [e for e in page.elements if isinstance(e, Raster)]
    return sum(raster.black(x, y) for x in range(raster.width) for y in range(raster.height))


def test_chinese_rows_are_glyphs_not_empty_boxes() -> None:
    _clear()
    one, lobster, chicken = _ink("一"), _ink("澳"), _ink("鸡")
    # An empty box (a font without the glyph) has the same ink whatever the character; real glyphs differ, and
    # "一" (one stroke) has far less ink than "澳" (sixteen).
    assert len({one, lobster, chicken}) == 3, (one, lobster, chicken)
    assert 0 < one < lobster / 2


@pytest.mark.usefixtures("no_font")
def test_without_a_cjk_font_a_chinese_row_is_refused_not_drawn_as_boxes(config: StoreConfig) -> None:
    paper = Paper(PLAIN)
    with pytest.raises(NoCJKFont, match="is not a font file"):
        paper.text("澳洲龙虾")
    paper = Paper(make_profile("default", columns=48, gb18030=True))
    paper.text("澳洲龙虾")  # a printer with its own Chinese font needs none
    assert "澳洲龙虾".encode("gb18030") in paper.finish()
    (problem,) = font_problems(config)
    assert "grill-printer, bar-printer, bakery-printer" in problem and "is not a font file" in problem
