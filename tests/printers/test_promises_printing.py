"""Tests that fail when a printing promise breaks (issue 13), each written against a fault put in by hand that the
rest of the suite let pass (named in its docstring)."""

from __future__ import annotations

from typing import Any

from kds.config import StoreConfig
from kds.protocol import OrderAccepted
from printers.emulator import EmulatorState, PrinterEmulator
from tests.conftest import shelf_order
from tests.printers.conftest import StartHub, printing_config
from tests.support import until


def crab(key: str) -> dict[str, Any]:
    """A shelf order with one steamed crab: one ticket, for the seafood station (seafood-printer, backup wok)."""
    return shelf_order(key, items=[{"sku": "CRAB-MUD", "weight_g": 650, "cook": "steamed", "tag": f"T-{key}"}])


async def test_a_printer_that_failed_over_takes_its_tickets_back_once_it_answers(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], start_hub: StartHub
) -> None:
    """Fault: `Spooler._back` no longer clears `failed_over` (the printer is told OK again, but `_route` keeps
    sending its tickets to the backup for good)."""
    seafood, wok = emulators["seafood-printer"], emulators["wok-printer"]
    await seafood.set_state(EmulatorState.OFFLINE)  # switched off: connections refused
    store = await start_hub(printing_config(config, emulators))
    shelf = await store.connect("shelf-1")
    first = await shelf.request({"type": "order.submit", "order": crab("back-1")})
    assert isinstance(first, OrderAccepted), first
    await until(lambda: len(wok.jobs) == 1, what="the seafood ticket on the backup (wok) printer")
    assert first.number in wok.jobs[0].text
    assert store.spooler.status()["seafood-printer"]["failed_over"] is True

    await seafood.set_state(EmulatorState.OK)  # switched on again, on the same port
    await until(
        lambda: store.spooler.status()["seafood-printer"]["state"] == "ok", what="the seafood printer heard to be back"
    )
    second = await shelf.request({"type": "order.submit", "order": crab("back-2")})
    assert isinstance(second, OrderAccepted), second
    await until(
        lambda: len(seafood.jobs) + len(wok.jobs) == 2 and store.jobs()[-1]["state"] == "printed",
        what="the second seafood ticket printed",
    )
    assert [second.number in j.text for j in seafood.jobs] == [True], (
        f"once the seafood printer answers again its tickets print on it, not on the backup: seafood printed "
        f"{len(seafood.jobs)}, wok printed {len(wok.jobs)} (target {store.jobs()[-1]['target']})"
    )
    assert len(wok.jobs) == 1
    assert store.jobs()[-1]["target"] == "seafood-printer"
    assert store.spooler.status()["seafood-printer"]["failed_over"] is False
