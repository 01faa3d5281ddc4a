"""`kds demo`: a hub on a temporary database, the simulator, a simulated kitchen, and a screen in front.

The store's printers are printer emulators on their configured loopback ports (`printers.emulator`): the hub's
spooler prints every ticket to them, and each ticket is saved as a picture under `var/demo-tickets/<printer>/`.

Everything runs in one process and one event loop: the hub (`HubServer` on a free loopback port, SQLite in a
temporary directory that is removed at the end), the order simulator at `rate` orders/s, the kitchen and counter
bots, and in front either a station's kitchen screen (`view="kitchen"`, the default: a second screen of that station,
beside the simulated cook who bumps on the first) or the live view of every station (`view="live"`, the store's
monitor device). Quitting the screen (or Ctrl+C) stops all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.app import App

from kds.client import HubClient
from kds.config import Role, StoreConfig
from kds.hub import OrderHub
from kds.server import HubServer
from kds.store import Store
from kdsapp.simulate import SimulationError, SimulationOptions, run_kitchen_bots, run_simulation
from terminals.live_view import LiveView


def _log_to(path: Path) -> logging.Handler:
    # The terminal belongs to the live view: the hub's log goes to a file next to the database.
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return handler


async def demo(
    config: StoreConfig,
    *,
    rate: float,
    port: int,
    speed: float,
    workdir: Path,
    drive: Callable[[Any], Awaitable[None]] | None = None,
    tickets: Path | None = None,
    view: str = "kitchen",
    station: str = "wok",
    counter_bot: bool = True,
) -> int:
    """Run hub, simulator, kitchen bots and a screen until the screen exits; returns the exit code.

    `drive` runs the app instead of `app.run_async()` (tests drive it with Pilot).
    """
    if view == "live":
        device = next((d for d in config.devices if d.role is Role.MONITOR), None)
        if device is None:
            print("kds demo: the config has no monitor device for the live view", file=sys.stderr)
            return 2
    else:
        at_station = [d for d in config.devices if d.role is Role.KITCHEN and d.station == station]
        if not at_station:
            known = ", ".join(sorted({d.station for d in config.devices if d.station}))
            print(f"kds demo: no kitchen device for station {station!r} (stations: {known})", file=sys.stderr)
            return 2
        # The simulated cook uses the station's first device; the person gets the second screen when there is one.
        device = at_station[1] if len(at_station) > 1 else at_station[0]
    from printers.emulator import EmulatorGroup, start_emulators
    from printers.spooler import Spooler

    tickets = tickets or workdir / "tickets"
    emulators: EmulatorGroup | None = None
    if config.printers:
        try:
            emulators = await start_emulators(config, tickets)
            print(f"kds demo: ticket pictures go to {tickets}/<printer>/NNNN.png", flush=True)
        except OSError as exc:
            print(f"kds demo: printer ports busy ({exc.strerror or exc}); printing to whatever listens there")
    server = HubServer(
        OrderHub(config),
        Store(workdir / "demo.sqlite3", store_id=config.store.id, busy_timeout_ms=config.limits.db_busy_timeout_ms),
        host="127.0.0.1",
        port=port,
        printing=Spooler(config) if config.printers else None,
    )
    try:
        await server.start()
    except OSError as exc:  # BindError: the port is taken (its message says so, and what to do)
        print(f"kds demo: {exc.strerror or exc}", file=sys.stderr)
        if emulators is not None:
            await emulators.close()
        return 1
    client = HubClient.for_device(server.url, device, client_name=f"kds-demo-{view}")
    app: App[Any]
    if view == "live":
        app = LiveView(client, extra=f"simulator {rate:g}/s")
    else:
        from terminals.kitchen.app import create_app

        app = create_app(
            client,
            station=station,
            keymap=dict(device.keymap),
            keymap_replaces_defaults=device.keymap_replaces_defaults,
            language=config.language_of(device.id),
            config=config,
            hub_label=f"demo hub {server.url}",
        )
    stop = asyncio.Event()
    sim = asyncio.create_task(
        run_simulation(
            config,
            SimulationOptions(
                hub=server.url,
                rate=rate,
                forever=True,
                progress=False,
                summary=False,
                stop=stop,
            ),
        ),
        name="demo-simulator",
    )
    bots = asyncio.create_task(
        run_kitchen_bots(config, server.url, speed=speed, stop=stop, counter=counter_bot), name="demo-kitchen"
    )
    failure: list[str] = []

    def died(task: asyncio.Task[object]) -> None:
        if not task.cancelled() and task.exception() is not None and not stop.is_set():
            failure.append(f"{task.get_name()}: {task.exception()}")
            app.exit(return_code=1)

    sim.add_done_callback(died)
    bots.add_done_callback(died)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, app.exit)
    try:
        await (drive(app) if drive is not None else app.run_async())
    finally:
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        done, pending = await asyncio.wait({sim, bots}, timeout=15)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        accepted = sim.result().accepted if sim in done and not sim.exception() else None
        await client.close()
        await server.stop()
        if emulators is not None:
            await emulators.close()
    for f in failure:
        print(f"kds demo: {f}", file=sys.stderr)
    if accepted is not None:
        print(f"kds demo: stopped after {accepted} simulated orders; the temporary database is removed.")
    if emulators is not None:
        printed = sum(len(e.jobs) for e in emulators.emulators.values())
        print(f"kds demo: {printed} tickets printed; pictures in {tickets}/<printer>/NNNN.png")
    return app.return_code or 0


def run_demo(
    config: StoreConfig,
    *,
    rate: float = 1.0,
    port: int = 0,
    speed: float = 1.0,
    view: str = "kitchen",
    station: str = "wok",
    counter_bot: bool = True,
) -> int:
    """Run the demo until `q` or Ctrl+C; returns the exit code."""
    if rate <= 0:
        print("kds demo: --rate must be above 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kds-demo-") as tmp:
        handler = _log_to(Path(tmp) / "demo.log")
        try:
            tickets = Path("var/demo-tickets").resolve()
            return asyncio.run(
                demo(
                    config,
                    rate=rate,
                    port=port,
                    speed=speed,
                    workdir=Path(tmp),
                    tickets=tickets,
                    view=view,
                    station=station,
                    counter_bot=counter_bot,
                )
            )
        except KeyboardInterrupt:
            return 0
        except SimulationError as exc:
            print(f"kds demo: {exc}", file=sys.stderr)
            return 1
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
