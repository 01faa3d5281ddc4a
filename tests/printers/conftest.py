"""Printing fixtures: a printer emulator for every configured printer on a free loopback port, a store config that
points the printers at them, and a real hub (websockets + SQLite) running the real spooler."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from kds.client import Backoff, HubClient
from kds.config import StoreConfig, config_from_dict
from kds.hub import OrderHub
from kds.printing import PrintJob
from kds.protocol import PrinterStatus
from kds.server import HubServer
from kds.store import Store
from printers.emulator import PrinterEmulator
from printers.layouts import StoreLabels
from printers.spooler import Spooler
from tests.printers.sample import shift

FAST = {"retry_s": 0.02, "retry_max_s": 0.1, "timeout_s": 2.0}


def dead_port() -> int:
    """A loopback port nothing listens on (a printer that is off)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def printing_config(
    config: StoreConfig,
    emulators: dict[str, PrinterEmulator],
    *,
    down: Collection[str] = frozenset(),
    over: Mapping[str, Mapping[str, Any]] | None = None,
) -> StoreConfig:
    """The sample store with every printer at its emulator (or at a dead port when in `down`), retrying fast; `over`
    maps a printer id to settings that replace its own (e.g. {"wok-printer": {"timeout_s": 0.3}})."""
    over = over or {}
    raw = config.model_dump(mode="json")
    for p in raw["printers"]:
        p.update(FAST)
        p.update(over.get(p["id"], {}))
        p["port"] = dead_port() if p["id"] in down else emulators[p["id"]].port
    return config_from_dict(raw)


@pytest.fixture
async def emulators(config: StoreConfig, tmp_path: Path) -> AsyncIterator[dict[str, PrinterEmulator]]:
    """One emulator per configured printer, each on a free port, writing to tmp_path/<printer id>/."""
    started: dict[str, PrinterEmulator] = {}
    for p in config.printers:
        e = PrinterEmulator(tmp_path / "tickets" / p.id, port=0, columns=p.columns, name=p.id)
        await e.start()
        started[p.id] = e
    yield started
    for e in started.values():
        await e.close()


class PrintingStore:
    """A hub with its spooler, its database, and clients for its devices."""

    def __init__(self, server: HubServer, spooler: Spooler, config: StoreConfig) -> None:
        self.server = server
        self.spooler = spooler
        self.config = config
        self.clients: list[HubClient] = []
        self.printer_frames: dict[HubClient, list[PrinterStatus]] = {}
        """Every printer.status frame each client got, from its welcome on."""

    async def connect(self, device: str) -> HubClient:
        dev = self.config.device(device)
        assert dev is not None
        c = HubClient.for_device(self.server.url, dev, backoff=Backoff(first=0.05, cap=0.5))
        frames: list[PrinterStatus] = []
        c.listeners.append(lambda f: frames.append(f) if isinstance(f, PrinterStatus) else None)
        self.printer_frames[c] = frames
        self.clients.append(c)
        await c.connect(timeout=10)
        return c

    def jobs(self) -> list[dict[str, Any]]:
        return self.server.store.jobs()


StartHub = Callable[..., Any]


@pytest.fixture
async def start_hub(tmp_path: Path) -> AsyncIterator[StartHub]:
    """`await start_hub(config)`: a real hub on a free port, over tmp_path/kds.sqlite3, printing with a Spooler."""
    running: list[PrintingStore] = []

    async def start(config: StoreConfig) -> PrintingStore:
        spooler = Spooler(config)
        server = HubServer(
            OrderHub(config),
            Store(tmp_path / "kds.sqlite3", store_id=config.store.id),
            host="127.0.0.1",
            port=0,
            printing=spooler,
        )
        await server.start()
        ps = PrintingStore(server, spooler, config)
        running.append(ps)
        return ps

    yield start
    for ps in running:
        for c in ps.clients:
            await c.close()
        if not ps.server.stopped.is_set():
            await ps.server.stop()


@pytest.fixture(scope="module")
def jobs(config: StoreConfig) -> dict[str, list[PrintJob]]:
    return shift(config)[1]


@pytest.fixture(scope="module")
def labels(config: StoreConfig) -> StoreLabels:
    return StoreLabels.from_config(config)
