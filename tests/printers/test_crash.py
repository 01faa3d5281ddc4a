"""Kill the hub (SIGKILL) in the middle of a spool and restart it on its database: every job is printed, none is
lost, and the one that may have printed before the crash is printed again, marked REPRINT."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from kds.config import StoreConfig
from kds.protocol import OrderAccepted
from printers.emulator import PrinterEmulator
from tests.conftest import SAMPLE_CONFIG, app_order
from tests.printers.conftest import FAST
from tests.support import free_port, until
from tests.test_durability import Clients, HubProcess
from tests.test_durability import clients as clients


def config_file(tmp_path: Path, emulators: dict[str, PrinterEmulator], timeout_s: float) -> Path:
    """The sample store config with its printers at the emulators, retrying fast, waiting `timeout_s` for answers."""
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    by_port = {f"port = {9101 + k}": e for k, e in enumerate(emulators.values())}
    for old, e in by_port.items():
        extra = f"retry_s = {FAST['retry_s']}\nretry_max_s = {FAST['retry_max_s']}\ntimeout_s = {timeout_s}"
        text = text.replace(old, f"port = {e.port}\n{extra}")
    assert not re.search(r"port = 910\d", text)
    path = tmp_path / "store.toml"
    path.write_text(text, encoding="utf-8")
    return path


def job_states(db: Path) -> list[tuple[int, str, str, int]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT id, target, state, reprint FROM print_jobs ORDER BY id"))


async def test_kill_the_hub_mid_spool_and_restart(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], tmp_path: Path, clients: Clients
) -> None:
    assert list(emulators) == [p.id for p in config.printers]
    cfg = config_file(tmp_path, emulators, timeout_s=30)
    db, port, log = tmp_path / "kds.sqlite3", free_port(), tmp_path / "hub.log"
    hub = HubProcess(db, port, log, cfg)
    wok, bar = emulators["wok-printer"], emulators["bar-printer"]
    wok.hold = True  # the wok printer prints the first ticket but never confirms it: the hub is left waiting
    await hub.start()
    try:
        kiosk = await clients.connect(hub.url, "kiosk-1")
        numbers = []
        for k in range(5):
            acc = await kiosk.request(
                {
                    "type": "order.submit",
                    "order": app_order(f"crash-{k}", channel="kiosk", fulfilment={"type": "pickup"}),
                },
                expect=OrderAccepted,
            )
            numbers.append(acc.number)
        # Mid-spool: the first wok ticket is on the paper but unconfirmed; four more wait behind it.
        await until(lambda: len(wok.jobs) == 1, what="the first wok ticket printed")
        await until(lambda: any(s == "sending" for _, t, s, _ in job_states(db) if t == "wok-printer"), what="sending")
        await until(lambda: len(bar.jobs) == 5, what="the bar tickets (its printer works)")
        await until(
            lambda: all(s == "printed" for _, t, s, _ in job_states(db) if t == "bar-printer"), what="bar confirmed"
        )
        states = job_states(db)
        assert sum(1 for _, t, s, _ in states if t == "wok-printer" and s == "queued") == 4
        hub.kill()
        wok.hold = False
        await clients.all[0].close()

        hub2 = HubProcess(db, port, log, cfg)
        await hub2.start()
        try:
            await until(lambda: all(s == "printed" for _, _, s, _ in job_states(db)), timeout=20, what="all printed")
            await until(lambda: len(wok.jobs) == 6, what="six wok pages")
        finally:
            hub2.kill()
    finally:
        hub.kill()
    pages = [j.text for j in wok.jobs]
    # The unconfirmed ticket again, marked REPRINT; then the four that waited, in order; nothing twice but that one.
    assert numbers[0] in pages[0] and "REPRINT" not in pages[0]
    assert numbers[0] in pages[1] and "REPRINT" in pages[1]
    assert [next(n for n in numbers if n in p) for p in pages[2:]] == numbers[1:]
    assert all("REPRINT" not in p for p in pages[2:])
    assert len(bar.jobs) == 5, "nothing printed twice where it was confirmed"
    rows = job_states(db)
    assert len(rows) == 10 and [r[3] for r in rows if r[1] == "wok-printer"] == [1, 0, 0, 0, 0]
