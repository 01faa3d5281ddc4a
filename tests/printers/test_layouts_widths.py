"""Every row fits the paper on 58 mm (32 columns) and 80 mm (48 columns) printers, with and without a GB18030 font.

In Kanji (GB18030) mode the printer gives each character of two bytes two columns: "·", "—" and "é" as well as
Chinese. The rows are measured here from the bytes themselves (the GB18030 encoding of each run), not with the
layouts' own arithmetic, so a row that the printer would wrap is caught. Golden files pin the bytes of every layout
on printers without the Chinese font (Chinese rows as pictures); `test_layouts.py` has those with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kds.printing import PrintJob
from printers.decoder import Raster, TextLine, decode
from printers.layouts import StoreLabels, render
from printers.profiles import PrinterProfile, make_profile
from printers.text import width
from tests.printers.test_layouts import CASES, job_of

GOLDEN = Path(__file__).parent / "golden"
PAPERS = (32, 48)


def profile(columns: int, gb18030: bool) -> PrinterProfile:
    return make_profile("default", columns=columns, gb18030=gb18030)


def printed_columns(line: TextLine, gb18030: bool) -> int:
    """Columns the printer gives the row: on a GB18030 printer one per encoded byte, else one per character (two
    for a wide one, which only a picture row holds)."""
    if gb18030:
        return sum(len(r.text.encode("gb18030")) * r.style.w for r in line.runs)
    return sum(width(r.text) * r.style.w for r in line.runs)


@pytest.mark.parametrize("gb18030", [True, False], ids=["gb18030", "plain"])
@pytest.mark.parametrize("columns", PAPERS)
@pytest.mark.parametrize("case", list(CASES))
def test_no_row_is_wider_than_the_paper(
    case: str, columns: int, gb18030: bool, jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    prof = profile(columns, gb18030)
    for page in decode(render(job_of(jobs, case), prof, labels)):
        for e in page.elements:
            if isinstance(e, TextLine):
                cols = printed_columns(e, gb18030)
                assert cols <= columns, f"{e.text!r} takes {cols} columns on a {columns}-column printer"
                assert e.columns == cols, "the decoder counts columns as the printer does"
            elif isinstance(e, Raster):
                assert e.width <= prof.dots


@pytest.mark.parametrize("columns", PAPERS)
def test_the_time_line_of_a_gb18030_ticket_is_one_row(
    columns: int, jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    for case in ("station", "station-amended", "expo"):
        (page,) = decode(render(job_of(jobs, case), profile(columns, True), labels))
        rows = [r for r in page.lines() if "12:05" in r.text and ":00" not in r.text and ":25" not in r.text]
        (row,) = rows
        assert row.text.split()[0] in ("SHELF", "APP") and row.text.endswith("12:05"), row.text
        assert printed_columns(row, True) == columns, "the time sits at the right edge, on the same row"


def test_a_middle_dot_and_an_accent_take_two_columns_in_kanji_mode(labels: StoreLabels) -> None:
    from printers.layouts import Paper

    paper = Paper(profile(32, True))
    paper.pair("crème · café au lait —", "12:05")
    paper.text("·" * 20)
    (page,) = decode(paper.finish())
    first, *dots = page.lines()
    assert first.text.startswith("crème · café au lait —") and first.text.endswith("12:05")
    assert printed_columns(first, True) == 32
    assert [r.text for r in dots] == ["·" * 16, "·" * 4], "20 dots of two bytes fill 32 columns, then wrap"


@pytest.mark.parametrize("columns", PAPERS)
@pytest.mark.parametrize("case", list(CASES))
def test_golden_bytes_without_the_chinese_font(
    case: str, columns: int, jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    data = render(job_of(jobs, case), profile(columns, False), labels)
    path = GOLDEN / f"{case}-{columns}-plain.bin"
    if os.environ.get("KDS_UPDATE_GOLDEN") or not path.exists():
        path.write_bytes(data)
        if not os.environ.get("KDS_UPDATE_GOLDEN"):
            pytest.fail(f"{path.name} did not exist: written now; check it in")
    assert data == path.read_bytes(), f"{case} at {columns} columns changed; review, then KDS_UPDATE_GOLDEN=1"
