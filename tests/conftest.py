"""Shared fixtures: the sample store config, a real hub on loopback with a real SQLite file, real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kds.client import Backoff, HubClient
from kds.config import StoreConfig, load_config
from kds.hub import OrderHub
from kds.server import HubServer
from kds.store import Store
from tests import pg

ROOT = Path(__file__).resolve().parent.parent
FAST = Backoff(first=0.05, cap=0.2)
SAMPLE_CONFIG = ROOT / "config" / "store.toml"


@pytest.fixture(scope="session")
def config() -> StoreConfig:
    """The shipped sample store."""
    return load_config(SAMPLE_CONFIG)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """A fresh database for one test: a SQLite file, then (same test again) a PostgreSQL database."""
    if request.param == "sqlite":
        yield tmp_path / "kds.sqlite3"
        return
    pg.need()
    with pg.fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """A database with no tables (for migration tests): a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield tmp_path / "empty.sqlite3"
        return
    pg.need()
    with pg.empty_database() as url:
        yield url


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A fresh PostgreSQL database, for tests that need one (several hubs on one store, its own faults)."""
    pg.need()
    with pg.fresh_database() as url:
        yield url


def pytest_sessionstart(session: pytest.Session) -> None:
    """Where PostgreSQL is required (CI), a server that does not answer stops the run at once, with the reason."""
    if pg.required():
        why = pg.unavailable()
        if why is not None:
            pytest.exit(f"{pg.REQUIRE}=1 but PostgreSQL cannot be used: {why}", returncode=1)


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_template() -> Iterator[None]:
    yield
    pg.drop_template()


@pytest.fixture
async def hub(config: StoreConfig, db_path: Path | str) -> AsyncIterator[HubServer]:
    """A real hub on 127.0.0.1 (free port) over a real database (SQLite file or PostgreSQL)."""
    server = HubServer(OrderHub(config), Store(db_path, store_id=config.store.id), host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


ClientFactory = Callable[..., Any]


@pytest.fixture
async def connect(hub: HubServer, devices: Devices) -> AsyncIterator[ClientFactory]:
    """`await connect("wok-1")`: a connected HubClient for a device of the sample config (closed after the test)."""

    async def factory(device_id: str, url: str | None = None, **kwargs: Any) -> HubClient:
        return await devices.connect(url or hub.url, device_id, **kwargs)

    yield factory


def shelf_order(key: str, **over: Any) -> dict[str, Any]:
    """A shelf-to-table lobster order: ginger-scallion (wok) and sashimi (cold)."""
    order: dict[str, Any] = {
        "key": key,
        "channel": "shelf",
        "fulfilment": {"type": "dine_in", "table": "12"},
        "items": [
            {"sku": "LOB-AUS", "weight_g": 800, "cook": "ginger_scallion", "tag": "T-1001"},
            {
                "sku": "LOB-AUS",
                "weight_g": 700,
                "cook": "sashimi",
                "tag": "T-1002",
                "allergens": ["shellfish"],
            },
        ],
    }
    order.update(over)
    return order


FIXED_DAY_DUE = "2026-11-25T12:30:00+08:00"
"""The due time of `fixed_app_order`: within the time window of a hub whose clock is fixed on 2026-11-25."""
REAL_DUE = (datetime.now(UTC) + timedelta(minutes=30)).replace(second=0, microsecond=0).isoformat()
"""The due time of `app_order`: half an hour after the tests started, by the real clock, the same for the whole run
(a resubmission must be the same order, due time and all)."""


def app_order(key: str, *, due: str | None = None, **over: Any) -> dict[str, Any]:
    """An app delivery: a wok dish and a drink, due at `REAL_DUE` (a hub refuses a due time more than a year before
    its clock or two months after it, so a fixed date would fail real-clock hubs one day)."""
    order: dict[str, Any] = {
        "key": key,
        "channel": "app",
        "fulfilment": {"type": "delivery", "due": due or REAL_DUE},
        "items": [
            {"sku": "WOK-KUNGPAO", "qty": 2},
            {"sku": "BAR-MILKTEA", "qty": 1, "modifiers": ["less sugar"]},
        ],
    }
    order.update(over)
    return order


def fixed_app_order(key: str, **over: Any) -> dict[str, Any]:
    """`app_order` due on 2026-11-25, for a hub whose clock is fixed on that day (its texts and snapshots stay the
    same from one year to the next)."""
    return app_order(key, due=FIXED_DAY_DUE, **over)


class Devices:
    """Makes HubClients for devices of the sample config, on any hub URL; closes them all at the end."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.clients: list[HubClient] = []

    async def connect(self, url: str, device: str, *, backoff: Backoff = FAST, **kw: Any) -> HubClient:
        """A connected client of `device` on the hub(s) at `url` (comma-separated for failover)."""
        dev = self.config.device(device)
        assert dev is not None, device
        c = HubClient.for_device(url, dev, backoff=backoff, **kw)
        self.clients.append(c)
        await c.connect(timeout=10)
        return c

    async def close(self) -> None:
        """Close every client made."""
        for c in self.clients:
            await c.close()


@pytest.fixture
async def servers() -> AsyncIterator[list[HubServer]]:
    """Hubs a test started (stopped at the end, whatever happened)."""
    started: list[HubServer] = []
    yield started
    for s in started:
        if not s.stopped.is_set():
            await s.stop()


async def clocked_hub(config: StoreConfig, db_path: Path | str, servers: list[HubServer], clock: Any) -> HubServer:
    """A real hub on 127.0.0.1 (free port) whose clock is `clock` (a test moves it), started, stopped by `servers`."""
    server = HubServer(OrderHub(config, clock=clock), Store(db_path, store_id=config.store.id), port=0)
    servers.append(server)
    await server.start()
    return server


@pytest.fixture
async def devices(config: StoreConfig) -> AsyncIterator[Devices]:
    """`await devices.connect(url, "wok-1")`, closed after the test."""
    d = Devices(config)
    try:
        yield d
    finally:
        await d.close()
