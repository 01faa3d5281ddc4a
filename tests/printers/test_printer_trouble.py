"""Issue 12, printing: a slow printer finishes its queue (each ticket once), a printer that never confirms does not
hold the queue, a ticket on a backup printer says whose it is and the backup's station is told, and a screen that
reconnects to a restarted hub drops a printer alert that no longer holds. Real hub, real SQLite, real ESC/POS over
TCP to printer emulators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kds.client import HubClient
from kds.config import Language, StoreConfig, config_from_dict
from kds.hub import OrderHub
from kds.printing import failover_banner
from kds.protocol import OrderAccepted, PrinterStatus
from kds.server import HubServer
from kds.store import Store
from kds.wire import HubFrame
from printers.emulator import EmulatorState, PrinterEmulator
from printers.spooler import Spooler
from terminals.kitchen.printer_alert import PrinterAlert
from tests.conftest import app_order, shelf_order
from tests.printers.conftest import PrintingStore, StartHub, printing_config
from tests.printers.sample import shift
from tests.support import until


def screen_alert(client: HubClient, frames: list[PrinterStatus]) -> PrinterAlert:
    """The wok screen's printer alert, fed every printer.status frame the client got and gets."""
    alert = PrinterAlert("wok")
    for f in frames:
        alert.apply(f)

    def feed(f: HubFrame) -> None:
        if isinstance(f, PrinterStatus):
            alert.apply(f)

    client.listeners.append(feed)
    return alert


def wok_jobs(store: PrintingStore) -> list[dict[str, Any]]:
    return [j for j in store.jobs() if j["printer"] == "wok-printer"]


async def submit_kiosk_orders(store: PrintingStore, n: int, prefix: str) -> list[str]:
    kiosk = await store.connect("kiosk-1")
    numbers = []
    for k in range(n):
        order = app_order(f"{prefix}-{k}", channel="kiosk", fulfilment={"type": "pickup"})
        numbers.append((await kiosk.request({"type": "order.submit", "order": order}, expect=OrderAccepted)).number)
    return numbers


# ------------------------------------------------------------------------------------------------ a slow printer


async def test_a_slow_printer_prints_every_ticket_once(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    """A printer that takes 700 bytes a second, slower than `timeout_s` allows for a ticket: the spooler waits in
    proportion to each ticket's bytes (`slowest_bytes_per_s`, 500 by default), so the three tickets print once each,
    none marked REPRINT, none sent twice."""
    wok = emulators["wok-printer"]
    wok.bytes_per_s = 700
    store = await start_hub(printing_config(config, emulators, over={"wok-printer": {"timeout_s": 0.25}}))
    numbers = await submit_kiosk_orders(store, 3, "slow")
    await until(
        lambda: len(wok_jobs(store)) == 3 and all(j["state"] == "printed" for j in wok_jobs(store)),
        timeout=30,
        what="the three wok tickets printed",
    )
    sizes = [len(j.bin.read_bytes()) for j in wok.jobs]
    assert all(size / 700 > 0.4 for size in sizes), ("each ticket takes longer than timeout_s at 700 B/s", sizes)
    texts = [j.text for j in wok.jobs]
    assert len(texts) == 3, texts
    assert [next(n for n in numbers if n in t) for t in texts] == numbers, "each ticket once, in order"
    assert not any("REPRINT" in t for t in texts)
    assert [(j["attempts"], j["reprint"]) for j in wok_jobs(store)] == [(0, False)] * 3


async def test_a_printer_that_never_confirms_does_not_hold_the_queue(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    """The wok printer (no backup) prints what it gets but never confirms: each ticket is sent once and again once
    marked REPRINT (`max_resends` 1), then recorded printed-but-unconfirmed with the station told, and the next
    ticket gets its turn. No storm of reprints, no ticket stuck behind another."""
    wok = emulators["wok-printer"]
    wok.hold = True
    cfg = printing_config(
        config, emulators, over={"wok-printer": {"timeout_s": 0.3, "max_failures": 99, "slowest_bytes_per_s": 1e6}}
    )
    store = await start_hub(cfg)
    wok_screen = await store.connect("wok-1")
    numbers = await submit_kiosk_orders(store, 3, "stuck")
    await until(
        lambda: len(wok_jobs(store)) == 3 and all(j["state"] == "printed" for j in wok_jobs(store)),
        timeout=20,
        what="every wok ticket through the queue",
    )
    texts = [j.text for j in wok.jobs]
    for n in numbers:
        copies = [t for t in texts if n in t]
        assert len(copies) == 2 and "REPRINT" not in copies[0] and "REPRINT" in copies[1], (n, len(copies))
    rows = wok_jobs(store)
    assert all(j["attempts"] == 2 and j["reprint"] for j in rows), rows
    assert all("unconfirmed" in j["last_error"] for j in rows), rows
    frames = store.printer_frames[wok_screen]
    await until(
        lambda: any(not f.ok and "did not confirm ticket" in f.message for f in frames),
        what="the wok screen told to check its tickets",
    )


async def test_a_stuck_ticket_goes_to_the_backup_after_its_resends(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    """With a backup, a ticket sent `max_resends` + 1 times without a confirmation takes its printer's queue to the
    backup, without waiting for `max_failures` (99 here)."""
    emulators["seafood-printer"].hold = True
    cfg = printing_config(
        config,
        emulators,
        over={"seafood-printer": {"timeout_s": 0.3, "max_failures": 99, "slowest_bytes_per_s": 1e6, "max_resends": 1}},
    )
    store = await start_hub(cfg)
    shelf = await store.connect("shelf-1")
    item = {"sku": "CRAB-MUD", "weight_g": 650, "cook": "steamed"}
    acc = await shelf.request(
        {"type": "order.submit", "order": shelf_order("stuck-crab", items=[item])}, expect=OrderAccepted
    )
    wok = emulators["wok-printer"]
    await until(lambda: any(acc.number in j.text for j in wok.jobs), what="the seafood ticket on the backup")
    assert len(emulators["seafood-printer"].jobs) == 2, "sent twice to its own printer, then to the backup"
    await until(lambda: store.jobs()[0]["state"] == "printed", what="confirmed by the backup")
    assert store.jobs()[0]["target"] == "wok-printer" and store.jobs()[0]["reprint"]


# ------------------------------------------------------------------------------------------------ failover


def test_the_failover_banner_names_the_station_in_the_backups_language(config: StoreConfig) -> None:
    _, jobs = shift(config)
    job = next(j for j in jobs["shelf.created"] if j.station == "wok")
    job.station, job.printer = "seafood", "seafood-printer"
    assert failover_banner(config, job, "wok-printer") == "FOR SEAFOOD & STEAM — its printer is down"
    raw = config.model_dump(mode="json")
    for p in raw["printers"]:
        if p["id"] == "wok-printer":
            p["language"] = Language.ZH.value
    zh = config_from_dict(raw)
    assert failover_banner(zh, job, "wok-printer") == "代海鲜蒸档打印 — 其打印机故障"


async def test_a_ticket_on_the_backup_says_whose_it_is_and_the_backups_station_is_told(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    """The seafood printer is off: its ticket prints on the wok printer with a FOR SEAFOOD banner, and the wok
    screens hear that their printer is printing the seafood station's tickets (and hear it is over when it is)."""
    store = await start_hub(printing_config(config, emulators, down={"seafood-printer"}))
    wok_screen = await store.connect("wok-1")
    frames = store.printer_frames[wok_screen]
    alert = screen_alert(wok_screen, frames)
    shelf = await store.connect("shelf-1")
    item = {"sku": "CRAB-MUD", "weight_g": 650, "cook": "steamed", "tag": "T-9"}
    acc = await shelf.request(
        {"type": "order.submit", "order": shelf_order("crab-on-wok", items=[item])}, expect=OrderAccepted
    )
    wok = emulators["wok-printer"]
    await until(lambda: len(wok.jobs) == 1, what="the seafood ticket on the wok printer")
    assert acc.number in wok.jobs[0].text
    await until(
        lambda: any(not f.ok and "print on Wok station printer (wok-printer)" in f.message for f in frames),
        what="the wok screen told its printer prints the seafood tickets",
    )
    told = next(f for f in frames if not f.ok and "(wok-printer)" in f.message)
    assert told.printer == "seafood-printer" and "wok" in told.stations
    assert "seafood-printer" in alert.troubles and "print on Wok station printer" in alert.text
    text = " ".join(wok.jobs[0].text.split())
    assert "FOR SEAFOOD & STEAM" in text and "its printer is down" in text, wok.jobs[0].text
    assert "FOR SEAFOOD" in emulators["wok-printer"].jobs[0].bin.read_bytes().decode("gb18030", errors="replace")


# ------------------------------------------------------------------------------------------------ stale alerts


async def test_a_screen_reconnecting_to_a_restarted_hub_drops_an_alert_that_no_longer_holds(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], tmp_path: Path
) -> None:
    """Paper out on the wok printer: the wok screen shows the alert. The paper is put back while the hub is down;
    the hub restarts (same port, same database) and the screen reconnects by itself: the frames after its welcome
    carry every printer's current state, so the alert goes."""
    wok = emulators["wok-printer"]
    await wok.set_state(EmulatorState.PAPER_OUT)
    cfg = printing_config(config, emulators)

    async def hub(port: int) -> PrintingStore:
        spooler = Spooler(cfg)
        server = HubServer(
            OrderHub(cfg),
            Store(tmp_path / "kds.sqlite3", store_id=cfg.store.id),
            host="127.0.0.1",
            port=port,
            printing=spooler,
        )
        await server.start()
        return PrintingStore(server, spooler, cfg)

    first = await hub(0)
    try:
        screen = await first.connect("wok-1")
        alert = screen_alert(screen, first.printer_frames[screen])
        app = await first.connect("app-backend")
        await app.request({"type": "order.submit", "order": app_order("stale-alert")})
        await until(lambda: "wok-printer" in alert.troubles, what="the paper-out alert on the wok screen")
        assert "paper out" in alert.text
        port = first.server.port
        await first.server.stop()
        await wok.set_state(EmulatorState.OK)
        second = await hub(port)
        try:
            await until(lambda: not alert.troubles, timeout=10, what="the stale alert cleared after reconnecting")
            assert alert.text == ""
            await until(lambda: len(wok.jobs) == 1, what="the waiting ticket printed by the restarted hub")
        finally:
            await screen.close()
            await second.server.stop()
    finally:
        if not first.server.stopped.is_set():
            await first.server.stop()
