"""The printer emulator over real TCP on loopback: it prints what a layout sends (decoded text, raw bytes, a PNG),
splits jobs at the cut, answers status queries, and can be switched while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from kds.config import StoreConfig
from kds.printing import PrinterState
from printers.decoder import Raster, TextLine
from printers.emulator import EmulatorState, PrinterEmulator
from printers.fonts import cjk_font_path
from printers.layouts import StoreLabels, render
from printers.picture import draw_page
from printers.profiles import make_profile
from printers.spooler import probe, send_job
from printers.transports import NetworkLink
from tests.printers.conftest import printing_config
from tests.printers.sample import shift
from tests.support import until


async def send(e: PrinterEmulator, data: bytes) -> None:
    def go() -> None:
        link = NetworkLink(e.host, e.port, 5)
        try:
            send_job(link, data, confirm=True, timeout=5)
        finally:
            link.close()

    await asyncio.to_thread(go)


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[PrinterEmulator]:
    e = PrinterEmulator(tmp_path / "out", port=0, columns=48, name="test", control_port=0)
    await e.start()
    yield e
    await e.close()


async def test_prints_a_station_ticket_sent_over_tcp(config: StoreConfig, emulator: PrinterEmulator) -> None:
    _, jobs = shift(config)
    job = jobs["shelf.created"][0]
    data = render(job, make_profile(columns=48, gb18030=True), StoreLabels.from_config(config))
    await send(emulator, data)
    await until(lambda: len(emulator.jobs) == 1, what="the ticket")
    printed = emulator.jobs[0]
    text = printed.txt.read_text(encoding="utf-8")
    assert text == printed.text
    assert "S001" in text and "Wok 炒锅" in text and "1 x Australian lobster" in text and "澳洲龙虾" in text
    assert "820 g · Wok-fried with ginger and scallion" in text and "Claim tag #T-1001" in text
    assert printed.bin.read_bytes() == data
    with Image.open(printed.png) as img:
        assert img.width == 48 * 12 + 52 and img.height > 400


async def test_jobs_are_split_at_the_cut_and_the_raw_bytes_kept(config: StoreConfig, emulator: PrinterEmulator) -> None:
    _, jobs = shift(config)
    data = render(jobs["request.claim_tag"][0], make_profile(columns=48, gb18030=True), StoreLabels.from_config(config))
    await send(emulator, data)
    await until(lambda: len(emulator.jobs) == 2, what="two claim tags")
    assert b"".join(j.bin.read_bytes() for j in emulator.jobs) == data, "the .bin files hold exactly what came"
    assert all(j.png.exists() and j.txt.exists() for j in emulator.jobs)
    assert [j.bin.name for j in emulator.jobs] == ["0001.bin", "0002.bin"]


async def test_status_queries_follow_the_switches(config: StoreConfig, emulator: PrinterEmulator) -> None:
    p = config.printer("wok-printer")
    assert p is not None
    p = p.model_copy(update={"port": emulator.port, "timeout_s": 2.0})
    assert (await asyncio.to_thread(probe, p)).state is PrinterState.OK
    for state, expected, words in [
        (EmulatorState.PAPER_OUT, PrinterState.PAPER_OUT, "out of paper"),
        (EmulatorState.COVER_OPEN, PrinterState.ERROR, "cover open"),
        (EmulatorState.OFFLINE, PrinterState.OFFLINE, "refused"),
        (EmulatorState.OK, PrinterState.OK, "ready"),
    ]:
        await emulator.set_state(state)
        health = await asyncio.to_thread(probe, p)
        assert health.state is expected and words in health.message, health


async def test_the_control_port_switches_it(emulator: PrinterEmulator) -> None:
    assert emulator.control_port
    reader, writer = await asyncio.open_connection(emulator.host, emulator.control_port)
    writer.write(b"paper out\n")
    assert b"paper_out" in await reader.readline()
    assert emulator.state is EmulatorState.PAPER_OUT
    writer.write(b"paper in\nstatus\nnonsense\n")
    assert b": ok" in await reader.readline() and b"0 jobs printed" in await reader.readline()
    assert b"unknown command" in await reader.readline()
    writer.close()


async def test_without_paper_it_holds_what_it_gets_and_prints_it_after_refill(
    config: StoreConfig, emulator: PrinterEmulator
) -> None:
    """Like a real printer: a job sent while the paper is out is kept in the buffer, not thrown away. The host that
    gave up waiting for GS r has hung up; the ticket still comes out once the paper is back."""
    await emulator.set_state(EmulatorState.PAPER_OUT)
    _, jobs = shift(config)
    data = render(jobs["shelf.created"][0], make_profile(columns=48, gb18030=True), StoreLabels.from_config(config))
    with pytest.raises(OSError):  # no paper: GS r is not answered; the host gives up
        await asyncio.to_thread(_send_short_timeout, emulator, data)
    assert emulator.jobs == [], "nothing on paper while it is out"
    p = config.printer("wok-printer")
    assert p is not None
    p = p.model_copy(update={"port": emulator.port, "timeout_s": 2.0})
    health = await asyncio.to_thread(probe, p)
    assert health.state is PrinterState.PAPER_OUT, "status queries still say paper out while it holds a job"
    assert emulator.jobs == []

    await emulator.set_state(EmulatorState.OK)
    await until(lambda: len(emulator.jobs) == 1, what="the held ticket, printed after the refill")
    assert emulator.jobs[0].bin.read_bytes() == data and "S001" in emulator.jobs[0].text

    # Switched off while holding a job: a printer's buffer does not survive that.
    await emulator.set_state(EmulatorState.PAPER_OUT)
    with pytest.raises(OSError):
        await asyncio.to_thread(_send_short_timeout, emulator, data)
    await emulator.set_state(EmulatorState.OFFLINE)
    await emulator.set_state(EmulatorState.OK)
    assert len(emulator.jobs) == 1 and emulator.printed == 1


async def test_a_host_still_waiting_gets_its_confirmation_after_the_refill(
    config: StoreConfig, emulator: PrinterEmulator
) -> None:
    """Status queries sent behind a held job are answered at once (paper out); the GS r behind it is answered only
    when the job has printed, after the refill."""
    await emulator.set_state(EmulatorState.PAPER_OUT)
    _, jobs = shift(config)
    data = render(jobs["shelf.created"][0], make_profile(columns=48, gb18030=True), StoreLabels.from_config(config))
    link = await asyncio.to_thread(NetworkLink, emulator.host, emulator.port, 5)
    try:
        await asyncio.to_thread(link.write, data + b"\x1dr\x01" + b"\x10\x04\x04")
        status = await asyncio.to_thread(link.read, 1, 5)
        assert status[0] & 0x60 == 0x60, "DLE EOT 4 behind the held job: paper end, answered at once"
        with pytest.raises(OSError):
            await asyncio.to_thread(link.read, 1, 0.2)  # GS r waits for the paper
        await emulator.set_state(EmulatorState.OK)
        assert await asyncio.to_thread(link.read, 1, 5) == b"\x00", "GS r answered once the job printed"
        assert len(emulator.jobs) == 1 and emulator.jobs[0].bin.read_bytes() == data
    finally:
        link.close()


async def test_a_slow_printer_confirms_only_once_the_data_has_gone_through(config: StoreConfig, tmp_path: Path) -> None:
    """`bytes_per_s`: the emulator takes data at that pace; GS r comes after the job, not before."""
    slow = PrinterEmulator(tmp_path / "slow", port=0, columns=48, name="slow", bytes_per_s=4_000)
    await slow.start()
    try:
        _, jobs = shift(config)
        data = render(jobs["shelf.created"][0], make_profile(columns=48, gb18030=True), StoreLabels.from_config(config))
        assert len(data) > 400
        loop = asyncio.get_running_loop()
        started = loop.time()
        await send(slow, data)
        took = loop.time() - started
        assert took >= len(data) / 4_000 * 0.9, (took, len(data))
        assert len(slow.jobs) == 1 and slow.jobs[0].bin.read_bytes() == data
    finally:
        await slow.close()


def _send_short_timeout(e: PrinterEmulator, data: bytes) -> None:
    link = NetworkLink(e.host, e.port, 0.3)
    try:
        send_job(link, data, confirm=True, timeout=0.3)
    finally:
        link.close()


async def test_chinese_on_a_printer_without_the_font_comes_out_as_images(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: object
) -> None:
    """Through the whole chain: a Chinese item name on the bakery printer (gb18030 = false), by the real spooler."""
    store = await start_hub(printing_config(config, emulators))  # type: ignore[operator]
    kiosk = await store.connect("kiosk-1")
    await kiosk.request(
        {
            "type": "order.submit",
            "order": {
                "key": "zh-1",
                "channel": "kiosk",
                "fulfilment": {"type": "pickup"},
                "items": [{"sku": "BAK-EGGTART", "name": "葡式蛋挞", "qty": 2}],
            },
        }
    )
    bakery = emulators["bakery-printer"]
    assert config.printer("bakery-printer").gb18030 is False  # type: ignore[union-attr]
    await until(lambda: len(bakery.jobs) == 1, what="the bakery ticket")
    job = bakery.jobs[0]
    raw = job.bin.read_bytes()
    assert b"\x1dv0" in raw and "葡式蛋挞".encode("gb18030") not in raw
    # No text in Kanji mode (the bytes FS & may occur inside the images' dots, so the decoded rows are checked).
    assert not any("\u4e00" <= c <= "\u9fff" for e in job.page.lines() for c in e.text), job.text
    rasters = [e for e in job.page.elements if isinstance(e, Raster)]
    assert rasters, "the Chinese rows are raster images"
    assert "2 x" not in job.text or "葡式蛋挞" not in job.text, "the Chinese name is not text"
    assert any(isinstance(e, TextLine) and "Bakery" in e.text for e in job.page.elements), "English stays text"
    # The emulator's picture shows the image rows: ink where each raster row is.
    boxes: list[tuple[object, tuple[int, int, int, int]]] = []
    draw_page(job.page, 48, boxes)
    with Image.open(job.png) as png:
        gray = png.convert("L")
        for e, box in boxes:
            if isinstance(e, Raster):
                dark = sum(gray.crop(box).histogram()[:128])
                assert dark > 50, f"no ink where the raster row {box} is"
    if cjk_font_path() is None:
        pytest.skip("no CJK font on this machine: the images show empty boxes (install fonts-wqy-microhei)")
