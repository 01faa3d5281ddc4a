"""What a cook (or runner) reads first comes first and biggest: the failover notice, the station, the number and
table, the customer's allergies; claim tags say where the product goes and what it costs; tickets are in the
printer's language."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from kds.config import StoreConfig, config_from_dict
from kds.printing import Banner, PrintJob
from printers.decoder import TextLine, decode
from printers.layouts import StoreLabels, banner_of, render
from printers.profiles import PrinterProfile, make_profile
from tests.printers.test_layouts import gb, job_of

FAILOVER = "FOR SEAFOOD — its printer is down"


def rows_of(job: PrintJob, prof: PrinterProfile, labels: StoreLabels) -> list[TextLine]:
    (page,) = decode(render(job, prof, labels))
    return page.lines()


def big(row: TextLine, w: int = 2) -> bool:
    return all(r.style.w >= w and r.style.h >= w and r.style.bold for r in row.runs if r.text.strip())


def with_banner(job: PrintJob, banner: Any) -> PrintJob:
    return dataclasses.replace(job, banner=banner)


def with_failover(job: PrintJob, text: str) -> PrintJob:
    """The job as the spooler sends it to a backup printer: its `failover` text set (`kds.printing.failover_banner`)."""
    if "failover" in {f.name for f in dataclasses.fields(PrintJob)}:
        return dataclasses.replace(job, failover=text)
    return with_banner(job, text)


def with_items(job: PrintJob, **fields: Any) -> PrintJob:
    order = job.order
    changed = order.model_copy(update={"items": [it.model_copy(update=fields) for it in order.items]})
    return dataclasses.replace(job, order_json=changed.model_dump_json())


@pytest.mark.parametrize("columns", [32, 48])
@pytest.mark.parametrize("case", ["station", "station-amended", "expo", "claim_tag"])
def test_a_failover_notice_is_big_and_reversed_at_the_very_top(
    case: str, columns: int, jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    job = with_failover(job_of(jobs, case), FAILOVER)
    assert banner_of(job)[1] == FAILOVER
    (page, *_) = decode(render(job, gb(columns), labels))
    rows = page.lines()
    notice = list(itertools.takewhile(lambda r: r.text.strip(), rows))  # the rows above the first gap
    text = " ".join(r.text.strip() for r in notice)
    assert text == FAILOVER, [r.text for r in rows[:5]]
    assert all(big(r) and r.runs[0].style.invert for r in notice)
    assert all(r.align == "left" and r.columns == columns for r in notice), "a reversed bar across the paper"


def test_a_banner_value_stays_a_banner_and_reprint_comes_under_the_notice(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    assert banner_of(with_banner(job_of(jobs, "station"), "amended")) == (Banner.AMENDED, None)
    assert banner_of(with_banner(job_of(jobs, "station"), FAILOVER)) == (None, FAILOVER)
    amended = with_failover(with_banner(job_of(jobs, "station"), Banner.AMENDED), FAILOVER)
    assert banner_of(amended) == (Banner.AMENDED, FAILOVER)
    job = dataclasses.replace(with_failover(job_of(jobs, "station"), FAILOVER), reprint=True)
    rows = [r.text.strip() for r in rows_of(job, gb(48), labels)]
    assert rows[0].startswith("FOR SEAFOOD") and any(r.startswith("REPRINT") for r in rows[1:4])


def test_the_station_ticket_puts_the_station_number_table_and_customer_allergy_on_top(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    job = next(j for j in jobs["app.created"] if j.station == "wok")  # the customer declared sesame
    rows = rows_of(job, gb(32), labels)
    station = next(r for r in rows if r.text.startswith("Wok"))
    number = next(r for r in rows if r.text == "A002")
    allergy = next(r for r in rows if "ALLERGY: SESAME" in r.text and "CUSTOMER" not in r.text)
    first_item = next(r for r in rows if "Kung pao chicken" in r.text)
    assert big(station) and big(number, 3) and big(allergy) and allergy.runs[0].style.invert
    assert rows.index(station) < rows.index(number) < rows.index(allergy) < rows.index(first_item)


def test_the_expo_ticket_shows_the_customer_allergy(jobs: dict[str, list[PrintJob]], labels: StoreLabels) -> None:
    rows = rows_of(job_of(jobs, "expo"), gb(48), labels)
    heading = next(r for r in rows if r.text.strip() == "ALLERGY: SESAME")
    assert big(heading) and heading.runs[0].style.invert
    at_item = rows[next(k for k, r in enumerate(rows) if "Kung pao chicken" in r.text) + 1]
    assert "CUSTOMER ALLERGY: SESAME" in at_item.text and at_item.runs[0].style.invert


def test_the_claim_tag_names_the_station_the_allergy_and_the_price(
    jobs: dict[str, list[PrintJob]], labels: StoreLabels
) -> None:
    job = with_items(job_of(jobs, "claim_tag"), declared_allergens=["shellfish"])
    first, second = decode(render(job, gb(48), labels))
    rows = first.lines()
    to = next(r for r in rows if r.text == "To: Wok")
    assert big(to)
    allergy = next(r for r in rows if r.text.strip() == "ALLERGY: SHELLFISH")
    assert big(allergy) and allergy.runs[0].style.invert
    text = first.text(48)
    # 820 g of lobster at ¥798.00 per kg is ¥654.36; the processing fee (ginger and scallion) ¥25.00.
    assert "820 g x ￥798.00/kg" in text and "￥654.36" in text
    assert "Processing fee                           ￥25.00" in text
    assert "Total                                   ￥679.36" in text
    assert "To: Cold kitchen & sashimi" in " ".join(r.text for r in second.lines())
    assert "Processing fee                           ￥50.00" in second.text(48)  # the sashimi fee of this SKU


def test_the_claim_tag_price_is_in_the_store_currency(config: StoreConfig, jobs: dict[str, list[PrintJob]]) -> None:
    raw = config.model_dump(mode="json")
    raw["store"]["currency"] = "USD"
    labels = StoreLabels.from_config(config_from_dict(raw))
    plain = make_profile("default", columns=48, gb18030=False)
    (first, _) = decode(render(job_of(jobs, "claim_tag"), plain, labels))
    text = first.text(48)
    assert "820 g x $798.00/kg" in text and "$654.36" in text and "￥" not in text


def test_a_chinese_printer_prints_chinese_words_and_names(config: StoreConfig, jobs: dict[str, list[PrintJob]]) -> None:
    raw = config.model_dump(mode="json")
    for p in raw["printers"]:
        if p["id"] in ("wok-printer", "counter-printer"):
            p["language"] = "zh"
    labels = StoreLabels.from_config(config_from_dict(raw))
    job = next(j for j in jobs["app.created"] if j.station == "wok")
    assert job.target == "wok-printer"
    rows = rows_of(job, gb(48), labels)
    text = "\n".join(r.text for r in rows)
    station = next(r for r in rows if r.text == "炒锅")
    assert big(station)
    assert "送达时间 12:40" in text and "过敏: 芝麻" in text and "顾客过敏: 芝麻" in text
    dish = next(r for r in rows if "宫保鸡丁" in r.text)
    assert dish.text.strip() == "2 x 宫保鸡丁" and "Kung pao chicken" in rows[rows.index(dish) + 1].text
    assert "含: 花生" in text and "整单备注:" in text and "其他档口: 水吧" in text
    assert "Wok" not in text and "Delivery" not in text and "ALLERGY" not in text
    # The expo ticket on the counter printer is Chinese too; a printer without a language prints English.
    expo = "\n".join(r.text for r in rows_of(job_of(jobs, "expo"), gb(48), labels))
    assert "出餐" in expo and "[ ] 炒锅" in expo and "加急" in expo and "EXPO" not in expo
    bar = next(j for j in jobs["app.created"] if j.station == "bar")
    assert "Drinks bar" in "\n".join(r.text for r in rows_of(bar, gb(48), labels))
