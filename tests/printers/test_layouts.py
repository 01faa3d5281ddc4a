"""Layouts: golden bytes at 32, 42 and 48 columns, and what the bytes mean when read back by the decoder.

The golden files are what the layouts produce today (`tests/printers/golden/`); a change to a layout shows up here
as a diff to review, then `KDS_UPDATE_GOLDEN=1 make test` writes the new files. The other tests read the bytes back
(`printers.decoder`) and check what a cook would check: the number is big, the items are bold, allergens are
inverted, nothing is cut off, Chinese prints as GB18030 text or as an image depending on the printer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from kds.config import StoreConfig
from kds.printing import Banner, Layout, PrintJob
from printers.decoder import Page, QRCode, Raster, TextLine, decode
from printers.layouts import StoreLabels, render
from printers.profiles import PrinterProfile, make_profile
from printers.text import width
from tests.printers.sample import shift

GOLDEN = Path(__file__).parent / "golden"
WIDTHS = (32, 42, 48)
CASES = {
    "station": ("shelf.created", 0),
    "station-amended": ("app.amended", 0),
    "station-cancelled": ("kiosk.cancelled", 1),
    "station-reprint": ("request.station", 1),
    "claim_tag": ("request.claim_tag", 0),
    "pickup_slip": ("request.pickup_slip", 0),
    "expo": ("request.expo", 0),
}


def gb(columns: int) -> PrinterProfile:
    return make_profile("default", columns=columns, gb18030=True)


def job_of(jobs: dict[str, list[PrintJob]], case: str) -> PrintJob:
    step, k = CASES[case]
    return jobs[step][k]


def lines(page: Page) -> list[TextLine]:
    return page.lines()


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("case", list(CASES))
def test_golden_bytes(case: str, columns: int, jobs: dict[str, list[PrintJob]], labels: StoreLabels) -> None:
    data = render(job_of(jobs, case), gb(columns), labels)
    path = GOLDEN / f"{case}-{columns}.bin"
    if os.environ.get("KDS_UPDATE_GOLDEN") or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
        if not os.environ.get("KDS_UPDATE_GOLDEN"):
            pytest.fail(f"{path.name} did not exist: written now; check it in")
    assert data == path.read_bytes(), f"{case} at {columns} columns changed; review, then KDS_UPDATE_GOLDEN=1"
    assert data == render(job_of(jobs, case), gb(columns), labels), "rendering is not deterministic"


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_row_fits_the_paper_and_the_job_ends_with_a_cut(
    case: str, columns: int, jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    data = render(job_of(jobs, case), gb(columns), labels)
    assert data.startswith(b"\x1b@\x1c&"), "init, then Kanji mode on a GB18030 printer"
    assert data.endswith(b"\x1dV\x01"), "a partial cut ends the job"
    pages = decode(data)
    for page in pages:
        assert page.cut == "partial"
        for line in page.lines():
            assert line.columns <= columns, f"{line.text!r} is {line.columns} columns wide on {columns}"


@pytest.mark.parametrize("columns", WIDTHS)
def test_station_ticket_reads_like_a_ticket(columns: int, jobs: dict[str, list[PrintJob]], labels: StoreLabels) -> None:
    job = job_of(jobs, "station-reprint")  # the cold ticket of the shelf lobster, reprinted
    (page,) = decode(render(job, gb(columns), labels))
    text = page.text(columns)
    rows = lines(page)
    number = next(r for r in rows if r.text == "S001")
    assert (number.runs[0].style.w, number.runs[0].style.h) == (3, 3) and number.runs[0].style.bold
    assert number.align == "center"
    banner = next(r for r in rows if "REPRINT" in r.text)
    assert banner.runs[0].style.invert and rows.index(banner) == 0
    # The station, big, then the number, then the table, big: what the cook reads first.
    station = next(r for r in rows if "Cold kitchen" in r.text)
    table = next(r for r in rows if r.text == "Table 12")
    assert station.runs[0].style.w == 2 and table.runs[0].style.w == 2
    assert rows.index(banner) < rows.index(station) < rows.index(number) < rows.index(table)
    item = next(r for r in rows if "Australian rock lobster" in r.text)
    assert item.runs[0].style.bold and item.runs[0].style.h == 2
    assert "700 g · Sashimi" in text and "澳洲龙虾" in text
    # The dish's own allergens are listed plainly; what a customer declared is inverted (see the next test).
    contains = next(r for r in rows if "Contains:" in r.text)
    assert "shellfish" in contains.text and not contains.runs[0].style.invert
    assert not any("CUSTOMER ALLERGY" in r.text for r in rows)
    assert "Claim tag #T-1002" in text and "Table 12" in text and "Customer: Mei" in text
    assert "Chen" not in text, "a station ticket shows the customer's first name only"
    # The long note is wrapped at words, and every word of it is there.
    note = job.order.items[1].note
    assert note is not None
    assert " ".join(text.split()).count(" ".join(note.split())) == 1 or all(w in text for w in note.split())
    words = [w for r in rows for w in r.text.split()]
    for w in note.split():
        assert w in words, f"{w!r} was cut"


def test_an_allergy_the_customer_declared_is_inverted_and_apart_from_what_the_dish_contains(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    job = next(j for j in jobs["app.created"] if j.station == "wok")  # kung pao, the customer said sesame
    rows = lines(decode(render(job, gb(48), labels))[0])
    declared = next(r for r in rows if "CUSTOMER ALLERGY" in r.text)
    assert declared.runs[0].style.invert and "SESAME" in declared.text
    contains = next(r for r in rows if "Contains:" in r.text)
    assert "peanut" in contains.text and "sesame" not in contains.text and not contains.runs[0].style.invert


def test_station_tickets_show_a_first_name_and_no_phone_or_address_the_expo_ticket_shows_them(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    # The app delivery of Wang L., phone 138****5521, to Biyun Rd 199: its wok and bar tickets, then the expo.
    stations = [j for j in jobs["app.created"] + jobs["app.amended"] if j.layout is Layout.STATION]
    assert {j.station for j in stations} == {"wok", "bar"}
    assert all("138****5521" in j.order_json for j in stations), "the job keeps the order as stored"
    for job in stations:
        for columns in WIDTHS:
            data = render(job, gb(columns), labels)
            text = " ".join(p.text(columns) for p in decode(data))
            assert b"5521" not in data and b"Biyun" not in data, f"{job.describe()} prints the phone or address"
            assert "5521" not in text and "Biyun" not in text and "Wang L." not in text
            assert "Customer: Wang" in text and "Delivery by 12:40" in text
    expo = job_of(jobs, "expo")
    text = decode(render(expo, gb(48), labels))[0].text(48)
    assert "Customer: Wang L. 138****5521" in text and "Address: Biyun Rd 199" in text


def test_amended_and_cancelled_tickets_say_so(jobs: dict[str, list[PrintJob]], labels: StoreLabels) -> None:
    (amended,) = decode(render(job_of(jobs, "station-amended"), gb(48), labels))
    text = amended.text(48)
    assert text.lstrip().startswith("AMENDED")
    assert "NEW" in text and "1 x Mapo tofu" in text and "Note: one of them without chili (changed)" in text
    (cancelled,) = decode(render(job_of(jobs, "station-cancelled"), gb(32), labels))
    text = cancelled.text(32)
    assert "CANCELLED" in text.splitlines()[0] and "Reason: customer left" in text
    assert job_of(jobs, "station-cancelled").banner is Banner.CANCELLED


def test_claim_tags_one_per_tagged_item_with_a_qr_code_of_the_order(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    job = job_of(jobs, "claim_tag")
    pages = decode(render(job, gb(42), labels))
    assert [p.cut for p in pages] == ["partial", "partial"], "each tag is cut off on its own"
    for page, tag in zip(pages, ("T-1001", "T-1002"), strict=True):
        text = page.text(42)
        assert f"#{tag}" in text and "Table 12" in text
        big = next(r for r in page.lines() if r.text == "S001")
        assert big.runs[0].style.w >= 3
        (qr,) = [e for e in page.elements if isinstance(e, QRCode)]
        assert qr.data == job.order_id


def test_pickup_slip_number_is_huge_and_the_qr_opens_the_status_page(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    job = job_of(jobs, "pickup_slip")
    for columns in WIDTHS:
        (page,) = decode(render(job, gb(columns), labels))
        number = next(r for r in page.lines() if r.text == "K003")
        assert number.runs[0].style.w >= 6 and number.columns <= columns
        (qr,) = [e for e in page.elements if isinstance(e, QRCode)]
        assert qr.data == labels.status_url.format(order_id=job.order_id, number="K003")


def test_expo_ticket_lists_every_station(jobs: dict[str, list[PrintJob]], labels: StoreLabels) -> None:
    (page,) = decode(render(job_of(jobs, "expo"), gb(48), labels))
    text = page.text(48)
    assert "[ ] Wok" in text and "[ ] Drinks bar" in text and "RUSH" in text and "A002" in text
    assert "Kung pao chicken" in text and "Biyun Rd 199" in text


def test_chinese_on_a_printer_without_the_font_is_an_image(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    job = job_of(jobs, "station")  # the wok ticket: station 炒锅, item 澳洲龙虾
    plain = make_profile("default", columns=48, gb18030=False)
    data = render(job, plain, labels)
    assert b"\x1c." in data[:4] and b"\x1c&" not in data, "Kanji mode off"
    assert b"\x1dv0" in data, "raster bit image (GS v 0)"
    assert "澳洲龙虾".encode("gb18030") not in data
    (page,) = decode(data)
    rasters = [e for e in page.elements if isinstance(e, Raster)]
    assert len(rasters) >= 2 and all(r.width == plain.dots for r in rasters)
    assert all(any(r.data) for r in rasters), "the images have ink"
    assert "Australian lobster" in page.text(48), "the Latin rows are still text"
    on_gb = render(job, gb(48), labels)
    assert b"\x1dv0" not in on_gb and "澳洲龙虾".encode("gb18030") in on_gb


def test_accents_print_through_a_code_page_without_the_chinese_font(labels: StoreLabels, config: StoreConfig) -> None:
    _, jobs = shift(config)
    job = jobs["app.created"][1]  # the bar ticket; its order note has "crème" and "café"
    plain = make_profile("default", columns=32, gb18030=False)
    data = render(job, plain, labels)
    (page,) = decode(data)
    text = page.text(32)
    assert "crème" in text and "café" in text, text
    assert b"\x1bt" in data, "a code page was selected (ESC t)"


def test_a_printer_without_native_qr_gets_the_code_as_an_image(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    simple = make_profile("POS-5890", columns=32, gb18030=True)  # python-escpos: no qrCode feature, no cutter
    assert not simple.qr_native and simple.cut is None
    data = render(job_of(jobs, "pickup_slip"), simple, labels)
    assert b"\x1d(k" not in data and b"\x1dv0" in data and b"\x1dV" not in data
    pages = decode(data)
    assert len(pages) == 1 and pages[0].cut is None


def test_layout_names_match_the_protocol() -> None:
    assert {layout.value for layout in Layout} == {"station", "claim_tag", "pickup_slip", "expo"}
    assert width("澳洲") == 4


@pytest.mark.parametrize("case", list(CASES))
def test_a_ticket_prints_the_order_not_its_spelling(
    case: str, jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    # The layouts read the parsed `OrderView`: the same order spelled otherwise (keys sorted, indented, non-ASCII
    # escaped) prints the same bytes as the hub's text of it.
    job = job_of(jobs, case)
    respelled = dataclasses.replace(
        job, order_json=json.dumps(json.loads(job.order_json), indent=2, sort_keys=True, ensure_ascii=True)
    )
    assert respelled.order_json != job.order_json
    assert render(respelled, gb(48), labels) == render(job, gb(48), labels)
