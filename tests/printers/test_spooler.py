"""The spooler in a real hub, printing over TCP to printer emulators: tickets for the stations, requests from the
counter, order per printer, failover to the backup, paper out then refilled, and the screens told about it all."""

from __future__ import annotations

from typing import Any

from kds.client import HubClient
from kds.config import StoreConfig
from kds.protocol import Ack, Error, ErrorCode, OrderAccepted, PrinterStatus
from printers.emulator import EmulatorState, PrinterEmulator
from tests.conftest import app_order, shelf_order
from tests.printers.conftest import PrintingStore, StartHub, printing_config
from tests.support import until


def statuses(store: PrintingStore, client: HubClient) -> list[PrinterStatus]:
    """Every printer.status frame the client got (parsed into the protocol model as it came)."""
    return store.printer_frames[client]


def trouble(frames: list[PrinterStatus]) -> list[PrinterStatus]:
    """The frames about a printer in trouble (a screen also gets every printer's current state at connect)."""
    return [f for f in frames if not f.ok]


def texts(e: PrinterEmulator) -> list[str]:
    return [j.text for j in e.jobs]


async def test_station_tickets_print_and_the_counter_prints_on_request(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    store = await start_hub(printing_config(config, emulators))
    shelf, counter = await store.connect("shelf-1"), await store.connect("counter-1")
    acc = await shelf.request({"type": "order.submit", "order": shelf_order("p-1")}, expect=OrderAccepted)
    number, oid = acc.number, acc.order_id
    wok, cold = emulators["wok-printer"], emulators["cold-printer"]
    await until(lambda: len(wok.jobs) == 1 and len(cold.jobs) == 1, what="the wok and cold tickets")
    assert number in wok.jobs[0].text and "800 g" in wok.jobs[0].text and "#T-1001" in wok.jobs[0].text
    assert "Sashimi" in cold.jobs[0].text and "SHELLFISH" in cold.jobs[0].text
    assert wok.jobs[0].png.stat().st_size > 1000 and wok.jobs[0].bin.read_bytes().startswith(b"\x10\x04")
    await until(lambda: all(j["state"] == "printed" for j in store.jobs()), what="jobs marked printed")

    for layout in ("claim_tag", "pickup_slip", "expo", "station"):
        await counter.request({"type": "print.request", "order_id": oid, "layout": layout}, expect=Ack)
    desk = emulators["counter-printer"]
    await until(lambda: len(desk.jobs) == 4 and len(wok.jobs) == 2 and len(cold.jobs) == 2, what="requests")
    tag1, tag2, slip, expo = texts(desk)
    assert "CLAIM TAG" in tag1 and "#T-1001" in tag1 and "#T-1002" in tag2, "one claim tag per item, cut apart"
    assert "Pickup number" in slip and number in slip and "[QR code: https://" in slip
    assert "EXPO" in expo and "[ ] Wok" in expo
    assert "REPRINT" in wok.jobs[1].text and "REPRINT" in cold.jobs[1].text

    err = await counter.request({"type": "print.request", "order_id": "20261125-S999", "layout": "expo"}, expect=Error)
    assert err.code is ErrorCode.NOT_FOUND


async def test_amended_and_cancelled_tickets(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    store = await start_hub(printing_config(config, emulators))
    app = await store.connect("app-backend")
    acc = await app.request({"type": "order.submit", "order": app_order("p-2")}, expect=OrderAccepted)
    await app.request({"type": "order.amend", "order_id": acc.order_id, "add": [{"sku": "WOK-MAPO"}]})
    await app.request({"type": "order.cancel", "order_id": acc.order_id, "reason": "rider unavailable"})
    wok, bar = emulators["wok-printer"], emulators["bar-printer"]
    await until(lambda: len(wok.jobs) == 3 and len(bar.jobs) == 2, what="new, amended, cancelled tickets")
    first, amended, cancelled = texts(wok)
    assert "AMENDED" not in first and "AMENDED" in amended and "Mapo tofu" in amended
    assert "CANCELLED" in cancelled and "rider unavailable" in cancelled
    assert "CANCELLED" in bar.jobs[1].text, "the bar's ticket was not amended, but it is cancelled"


async def test_jobs_for_one_printer_keep_their_order(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    store = await start_hub(printing_config(config, emulators))
    kiosk = await store.connect("kiosk-1")
    numbers = []
    for k in range(6):
        acc = await kiosk.request(
            {
                "type": "order.submit",
                "order": app_order(f"p-order-{k}", channel="kiosk", fulfilment={"type": "pickup"}),
            },
            expect=OrderAccepted,
        )
        numbers.append(acc.number)
    wok = emulators["wok-printer"]
    await until(lambda: len(wok.jobs) == 6, what="six wok tickets")
    printed = [next(n for n in numbers if n in j.text) for j in wok.jobs]
    assert printed == numbers


async def test_failover_to_the_backup_when_the_printer_is_off_and_the_station_is_told(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    # seafood-printer is off (nothing listens); its backup is wok-printer.
    cfg = printing_config(config, emulators, down={"seafood-printer"})
    store = await start_hub(cfg)
    seafood, wok_screen, counter = (
        await store.connect("seafood-1"),
        await store.connect("wok-1"),
        await store.connect("counter-1"),
    )
    told, wok_told, counter_told = statuses(store, seafood), statuses(store, wok_screen), statuses(store, counter)
    shelf = await store.connect("shelf-1")
    acc = await shelf.request(
        {
            "type": "order.submit",
            "order": shelf_order("p-3", items=[{"sku": "CRAB-MUD", "weight_g": 650, "cook": "steamed", "tag": "T-7"}]),
        },
        expect=OrderAccepted,
    )
    wok = emulators["wok-printer"]
    await until(lambda: len(wok.jobs) == 1, what="the seafood ticket on the backup printer")
    assert acc.number in wok.jobs[0].text and "Seafood" in wok.jobs[0].text
    await until(
        lambda: any("print on Wok station printer (wok-printer) until it is back" in f.message for f in told),
        what="failover notice",
    )
    first = trouble(told)[0]
    assert first.printer == "seafood-printer" and first.stations == ["seafood", "wok"]
    assert first.ok is False and first.state == "offline"
    assert trouble(counter_told), "the counter is told too"
    assert any(f.printer == "seafood-printer" for f in trouble(wok_told)), "the wok: its printer takes them"
    await until(lambda: store.jobs()[0]["state"] == "printed", what="the job marked printed")
    rows = store.jobs()
    assert rows[0]["printer"] == "seafood-printer" and rows[0]["target"] == "wok-printer"
    seafood_printer = cfg.printer("seafood-printer")
    assert seafood_printer is not None
    assert rows[0]["state"] == "printed" and rows[0]["attempts"] == seafood_printer.max_failures

    # While it is off, its next tickets go straight to the backup.
    await shelf.request(
        {
            "type": "order.submit",
            "order": shelf_order("p-4", items=[{"sku": "CRAB-MUD", "weight_g": 600, "cook": "steamed"}]),
        }
    )
    await until(lambda: len(wok.jobs) == 2, what="the next seafood ticket on the backup")
    await until(lambda: store.jobs()[-1]["state"] == "printed", what="the second job marked printed")
    assert store.jobs()[-1]["attempts"] == 0 and store.jobs()[-1]["target"] == "wok-printer"

    # A device that connects now hears about the trouble right after its welcome.
    late = await store.connect("seafood-1")
    frames = statuses(store, late)
    await until(lambda: bool(trouble(frames)), what="the current trouble, right after the welcome")
    assert trouble(frames)[0].printer == "seafood-printer"


async def test_paper_out_then_refilled_prints_the_waiting_ticket(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    wok = emulators["wok-printer"]
    await wok.set_state(EmulatorState.PAPER_OUT)
    store = await start_hub(printing_config(config, emulators))
    wok_screen = await store.connect("wok-1")
    told = statuses(store, wok_screen)
    app = await store.connect("app-backend")
    acc = await app.request({"type": "order.submit", "order": app_order("p-5")}, expect=OrderAccepted)
    await until(lambda: any(f.state == "paper_out" for f in told), what="the paper-out notice")
    first = trouble(told)[0]
    assert first.printer == "wok-printer" and first.ok is False and "out of paper" in first.message
    await until(lambda: store.spooler.status()["wok-printer"]["failures"] >= 3, what="a few retries")
    await until(lambda: len(emulators["bar-printer"].jobs) == 1, what="the bar ticket: other printers are not held up")
    assert wok.jobs == [], "nothing prints without paper"

    await wok.set_state(EmulatorState.OK)
    await until(lambda: len(wok.jobs) == 1, what="the ticket once the paper is back")
    assert acc.number in wok.jobs[0].text and "REPRINT" not in wok.jobs[0].text
    await until(lambda: [f for f in told if f.printer == "wok-printer"][-1].ok is True, what="the all-clear")
    own = [f for f in told if f.printer == "wok-printer"]  # it also hears of the printers it backs up
    assert own[-1].state == "ok" and "printing again" in own[-1].message


async def test_cover_open_is_an_error_for_the_screens(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    await emulators["bar-printer"].set_state(EmulatorState.COVER_OPEN)
    store = await start_hub(printing_config(config, emulators))
    bar_screen = await store.connect("bar-1")
    told = statuses(store, bar_screen)
    kiosk = await store.connect("kiosk-1")
    await kiosk.request(
        {"type": "order.submit", "order": app_order("p-6", channel="kiosk", fulfilment={"type": "pickup"})}
    )
    await until(lambda: any(f.state == "error" for f in told), what="the cover-open notice")
    assert "cover open" in trouble(told)[0].message


async def test_a_stopped_spooler_started_again_prints_what_waited(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    """A hub that loses the lead of its store stops its spooler, and starts it again when it leads again: the
    tickets of the orders stored meanwhile print then, once each."""
    store = await start_hub(printing_config(config, emulators))
    shelf = await store.connect("shelf-1")
    wok = emulators["wok-printer"]
    await shelf.request({"type": "order.submit", "order": shelf_order("before")})
    await until(lambda: len(wok.jobs) == 1, what="the first wok ticket")
    await until(lambda: all(j["state"] == "printed" for j in store.jobs()), what="the first jobs marked printed")
    await store.spooler.stop()
    acc = await shelf.request({"type": "order.submit", "order": shelf_order("while-stopped")}, expect=OrderAccepted)
    waiting = [j for j in store.jobs() if j["state"] != "printed"]
    assert waiting and len(wok.jobs) == 1, "stored, not printed while the spooler is stopped"
    await store.spooler.start(store.server.store, store.server.run_db, store.server.printer_status)
    await until(lambda: len(wok.jobs) == 2, what="the waiting wok ticket")
    await until(lambda: all(j["state"] == "printed" for j in store.jobs()), what="every job printed")
    assert acc.number in wok.jobs[1].text and "REPRINT" not in wok.jobs[1].text
    assert len(wok.jobs) == 2, "nothing printed twice"


async def test_a_queue_prints_in_batches_and_a_failure_marks_only_the_ticket_on_its_way(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    """Jobs that wait for one printer go out together on one connection (one status query), each confirmed before the
    next is sent: when one is not confirmed, it alone is printed again marked REPRINT; those behind it were never
    sent, are not counted as attempted, and print plainly."""
    wok = emulators["wok-printer"]
    wok.hold = True  # prints what it gets, never confirms it
    cfg = printing_config(
        config,
        emulators,
        # Batching, not a slow printer: the wait for a confirmation is timeout_s alone, not also the bytes at 500 B/s.
        over={"wok-printer": {"timeout_s": 0.3, "max_failures": 99, "max_resends": 99, "slowest_bytes_per_s": 10**7}},
    )
    store = await start_hub(cfg)
    kiosk = await store.connect("kiosk-1")
    numbers = []
    for k in range(3):
        order = app_order(f"batch-{k}", channel="kiosk", fulfilment={"type": "pickup"})
        numbers.append((await kiosk.request({"type": "order.submit", "order": order}, expect=OrderAccepted)).number)

    def wok_jobs() -> list[dict[str, Any]]:
        return [j for j in store.jobs() if j["printer"] == "wok-printer"]

    # The first attempt took the first ticket alone (or all three); the second takes all three, and fails on the first.
    await until(lambda: len(wok_jobs()) == 3 and wok_jobs()[0]["attempts"] >= 2, what="two failed attempts")
    first, second, third = wok_jobs()
    assert first["state"] == "queued" and first["reprint"], first
    assert [j["state"] for j in (second, third)] == ["queued", "queued"]
    assert not second["reprint"] and not third["reprint"] and second["attempts"] == third["attempts"] == 0
    assert all(numbers[0] in j.text for j in wok.jobs), "only the first ticket went out while the printer held"

    wok.hold = False
    await until(lambda: all(j["state"] == "printed" for j in wok_jobs()), what="the three wok tickets printed")
    held = len(wok.jobs) - 3
    after = [j.text for j in wok.jobs[held:]]
    assert [next(n for n in numbers if n in t) for t in after] == numbers, "in order"
    assert "REPRINT" in after[0] and "REPRINT" not in after[1] and "REPRINT" not in after[2]
    assert [j["reprint"] for j in wok_jobs()] == [True, False, False]
