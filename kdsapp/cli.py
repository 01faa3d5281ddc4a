"""The `kds` command line: serve, simulate, demo, schema. Every command has --help and works with no flags."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kds.collector import young_only
from kds.config import DEFAULT_CONFIG_PATH, ConfigError, Role, StoreConfig, exposures, load_config
from kds.printing import PrintSink

if TYPE_CHECKING:
    from kds.store import Store

DEFAULT_HUB = "ws://127.0.0.1:8765"
DEFAULT_DB = Path("var/kds.sqlite3")
CA_FILE_ENV = "KDS_CA_FILE"


def _config(path: str | Path, *, hub: bool = True) -> StoreConfig:
    """The store config; `hub=False` for the commands that are clients of a hub (its secrets may live there)."""
    try:
        return load_config(path, check_secrets=hub)
    except ConfigError as exc:
        print(f"kds: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _ca_file(args: argparse.Namespace) -> str | None:
    """The CA file that verifies a `wss://` hub: --ca-file, else KDS_CA_FILE (checked: a bad one stops here)."""
    from kds.tls import TlsError, client_context

    ca = args.ca_file or os.environ.get(CA_FILE_ENV) or None
    if ca is not None:
        try:
            client_context(ca)
        except TlsError as exc:
            raise SystemExit(f"kds: --ca-file (or {CA_FILE_ENV}): {exc.message}") from None
    return ca


def _hub(args: argparse.Namespace) -> str:
    """--hub, checked: a URL that is no hub's address (http://…) stops here with what to give instead."""
    from kds.client import hub_url_problem

    problem = hub_url_problem(args.hub)
    if problem is not None:
        print(f"kds {args.command}: --hub {problem}", file=sys.stderr)
        raise SystemExit(2)
    return str(args.hub)


def version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("hema-kds")
    except PackageNotFoundError:
        from kds import __version__

        return __version__


class _Version(argparse.Action):
    """--version: read from the package metadata only when asked (not at every start of every command)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def default_device(config: StoreConfig, role: Role, station: str | None = None) -> tuple[str, str | None]:
    """The sample config's first device of this role (and station): its id and token (None when the config keeps
    only its hash, or the token lives elsewhere)."""
    for d in config.devices:
        if d.role is role and (station is None or d.station == station):
            return d.id, d.secret
    raise SystemExit(f"kds: no {role.value} device{' for station ' + station if station else ''} in the config")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)


# ------------------------------------------------------------------------------------------------ serve


async def run_hub(
    config: StoreConfig,
    db: str | Path,
    host: str,
    port: int,
    ready: asyncio.Event | None = None,
    timings: Path | None = None,
) -> None:
    """Run a hub until cancelled or SIGINT/SIGTERM; with `timings`, write when each new order passed each step in
    the hub to that file as JSON lines once it stops (`kds.server.OrderTiming`)."""
    from kds.hub import OrderHub
    from kds.server import HubServer
    from kds.store import Store
    from kds.tls import server_context

    # Nothing here touches the database or the disk: `server.start` takes the port first, and opens the store
    # only once it has it (a hub that cannot start leaves no file, table or lock behind).
    server = HubServer(
        OrderHub(config),
        Store(db, store_id=config.store.id, busy_timeout_ms=config.limits.db_busy_timeout_ms),
        host=host,
        port=port,
        printing=_spooler(config),
        tls=server_context(config.tls.cert_file, config.tls.key_file) if config.tls else None,
    )
    # What the hub loads on start (thousands of orders, the replay log) lives as long as it runs and holds no
    # cycles: the cyclic collector is kept out of it (it would walk them all again at every full collection, and
    # did so over and over while they were being loaded: a third of the start-up time).
    gc.disable()
    try:
        await server.start()
    except BaseException:
        await server.stop()  # the store's connections and lock, the database thread
        raise
    finally:
        gc.freeze()
        young_only()
        gc.enable()
    print(
        f"kds hub for {config.store.name} ({config.store.id}) on {server.url}, database {server.store.shown_url}",
        flush=True,
    )
    for note in exposures(config, host):
        print(f"kds serve: warning: {note}", file=sys.stderr, flush=True)
    if timings is not None:
        server.timings = []
    if ready is not None:
        ready.set()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    stopped = asyncio.ensure_future(server.stopped.wait())
    try:
        await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopped.cancel()
        if not server.stopped.is_set():
            await server.stop()
        if timings is not None and server.timings is not None:
            timings.write_text("".join(json.dumps(dataclasses.asdict(t)) + "\n" for t in server.timings))
    if server.failed is not None:
        raise SystemExit(f"kds: hub stopped: {server.failed}")


def _spooler(config: StoreConfig) -> PrintSink | None:
    """The print spooler for the config's printers (None when it has none); a bad printer profile stops here."""
    if not config.printers:
        return None
    from printers.fonts import font_problems
    from printers.profiles import check_profiles
    from printers.spooler import Spooler

    problems = check_profiles(config) + font_problems(config)
    if problems:
        print("kds: the printers cannot print:\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        raise SystemExit(2)
    return Spooler(config)


def cmd_serve(args: argparse.Namespace) -> int:
    """kds serve."""
    _logging(not args.quiet)
    # The cyclic collector stays out of the whole start, the imports of the database and server libraries too
    # (they allocate much and free little): `run_hub` freezes what start-up made and turns it on again.
    gc.disable()
    try:
        config = _config(args.config)
        from kds.server import BindError
        from kds.store import SchemaError, StoreBusy, StoreUnavailable
        from kds.tls import TlsError

        try:
            asyncio.run(run_hub(config, args.db, args.host, args.port, timings=args.timings))
        except (BindError, StoreUnavailable, SchemaError, StoreBusy) as exc:
            print(f"kds serve: {exc}", file=sys.stderr)
            return 2
        except TlsError as exc:
            print(f"kds serve: [tls] {exc.message}", file=sys.stderr)
            return 2
        return 0
    finally:
        gc.enable()


def cmd_db(args: argparse.Namespace) -> int:
    """kds db upgrade | current | stale."""
    from kds.store import SchemaError, Store, StoreUnavailable

    config = _config(args.config)
    try:
        store = Store(args.db, store_id=config.store.id)
    except StoreUnavailable as exc:
        print(f"kds db: {exc}", file=sys.stderr)
        return 2
    try:
        store.check_open()
        return _db_action(args, config, store)
    except (StoreUnavailable, SchemaError) as exc:
        print(f"kds db: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _db_action(args: argparse.Namespace, config: StoreConfig, store: Store) -> int:
    """The action of `kds db` on an open store."""
    if args.action == "stale":
        from datetime import UTC, datetime, timedelta

        hours = config.limits.open_max_age_h
        stale = store.stale_orders(now=datetime.now(UTC), older_than=timedelta(hours=hours))
        for o in stale:
            print(f"{o['number']:>6}  {o['id']}  {o['status']:<10} since {o['created_at']}  from {o['source']}")
        print(f"{len(stale)} open orders older than {hours:g} h (no longer on the screens)")
    elif args.action == "upgrade":
        before, after = store.upgrade()
        print(f"database {store.shown_url}: schema {before or 'empty'} → {after}")
    else:
        state = store.schema_state()
        where = (
            "up to date"
            if state.current == state.head
            else ("newer than this hub" if state.current and state.current not in state.known else "needs upgrade")
        )
        print(
            f"database {store.shown_url}: schema {state.current or 'empty'}, this hub's newest {state.head} ({where})"
        )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """kds token."""
    import secrets

    from kds.config import hash_token

    token = secrets.token_urlsafe(24)
    print(f"token: {token}")
    print("for the device's [[devices]] entry in the store config (instead of token = ...):")
    print(f'token_hash = "{hash_token(token)}"')
    return 0


# ------------------------------------------------------------------------------------------------ schema


def cmd_schema(args: argparse.Namespace) -> int:
    """kds schema [--asyncapi] [--compact]."""
    if args.asyncapi:
        from kds.asyncapi import asyncapi

        document = asyncapi()
    else:
        from kds.protocol import json_schema

        document = json_schema()
    print(json.dumps(document, indent=2 if not args.compact else None, ensure_ascii=False))
    return 0


# ------------------------------------------------------------------------------------------------ simulate / demo


def cmd_simulate(args: argparse.Namespace) -> int:
    """kds simulate."""
    from kdsapp.simulate import SimulationError, SimulationOptions, run_simulation

    config = _config(args.config, hub=False)
    opts = SimulationOptions(
        hub=_hub(args),
        ca_file=_ca_file(args),
        rate=args.rate,
        duration=args.duration,
        orders=args.orders,
        seed=args.seed,
        cancel_share=args.cancels,
        amend_share=args.amends,
    )
    try:
        report = asyncio.run(run_simulation(config, opts))
    except SimulationError as exc:
        print(f"kds simulate: {exc}", file=sys.stderr)
        return 2
    return 0 if report.errors == 0 and report.accepted == report.sent else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """kds demo."""
    from kdsapp.demo import run_demo

    config = _config(args.config)
    return run_demo(
        config,
        rate=args.rate,
        port=args.port,
        view=args.view,
        station=args.station,
        counter_bot=not args.no_counter_bot,
    )


# ------------------------------------------------------------------------------------------------ terminals


def _terminal_device(args: argparse.Namespace, config: StoreConfig, role: Role, station: str | None) -> tuple[str, str]:
    device, token = args.device, args.token
    if device is None:
        device, default_token = default_device(config, role, station)
        token = token or default_token
    elif token is None:
        dev = config.device(device)
        if dev is None:
            raise SystemExit(f"kds: device {device!r} is not in {args.config}; give --token")
        token = dev.secret
    # A config that keeps only token hashes (or the hub's own token_env/token_file): the token comes from --token or
    # the environment.
    token = token or os.environ.get("KDS_TOKEN")
    if not token:
        raise SystemExit(f"kds: the config does not give {device}'s token here: give --token or set KDS_TOKEN")
    return device, token


def cmd_kitchen(args: argparse.Namespace) -> int:
    """kds kitchen."""
    from terminals.kitchen.app import run_kitchen

    hub = _hub(args)
    config = _config(args.config, hub=False)
    if config.station(args.station) is None:
        known = ", ".join(s.id for s in config.stations)
        raise SystemExit(f"kds: unknown station {args.station!r} (stations: {known})")
    device, token = _terminal_device(args, config, Role.KITCHEN, args.station)
    dev = config.device(device)
    return run_kitchen(
        hub=hub,
        device=device,
        token=token,
        station=args.station,
        queue_path=Path(args.queue or f"var/queue-{device}.jsonl"),
        keymap=dict(dev.keymap) if dev else {},
        config=config,
        ca_file=_ca_file(args),
    )


def cmd_counter(args: argparse.Namespace) -> int:
    """kds counter."""
    hub = _hub(args)
    from terminals.counter.app import run_counter

    config = _config(args.config, hub=False)
    device, token = _terminal_device(args, config, Role.COUNTER, None)
    return run_counter(
        hub=hub,
        device=device,
        token=token,
        queue_path=Path(args.queue or f"var/queue-{device}.jsonl"),
        ca_file=_ca_file(args),
        config=config,
    )


# ------------------------------------------------------------------------------------------------ printers


def cmd_printer_emulator(args: argparse.Namespace) -> int:
    """kds printer-emulator."""
    from printers.emulator import run_emulator_cli

    _logging(args.verbose)
    config = _config(args.config) if args.all else None
    return run_emulator_cli(
        out=Path(args.out),
        host=args.host,
        port=args.port,
        columns=args.columns,
        control_port=args.control_port,
        config=config,
        keep=not args.discard,
        bytes_per_s=args.bytes_per_s,
    )


def _queued_jobs(config: StoreConfig, db: str | None) -> dict[str, int]:
    """Each printer's jobs in the hub's store not yet printed (none when there is no database yet)."""
    if not config.printers or not db or ("://" not in db and not Path(db).exists()):
        return {}
    from kds.store import Store

    store = Store(db, store_id=config.store.id)
    try:
        store.create_schema()
        counts: dict[str, int] = {}
        for row in store.jobs():
            if row["state"] != "printed":
                counts[row["target"]] = counts.get(row["target"], 0) + 1
        return counts
    finally:
        store.close()


def cmd_printers_status(args: argparse.Namespace) -> int:
    """kds printers status."""
    import sqlalchemy as sa

    from kds.store import SchemaError, StoreUnavailable, database_url, open_problem
    from printers.admin import printers_status

    config = _config(args.config)
    try:
        return printers_status(config, queued=_queued_jobs(config, args.db), as_json=args.json)
    except (StoreUnavailable, SchemaError) as exc:
        problem = str(exc)
    except sa.exc.OperationalError as exc:  # the database of the queued jobs does not open
        problem = open_problem(database_url(args.db, make_dir=False), exc)
    print(f"kds printers status: {problem}", file=sys.stderr)
    return 2


def cmd_printers_test(args: argparse.Namespace) -> int:
    """kds printers test NAME."""
    from printers.admin import print_test_page

    return print_test_page(_config(args.config), args.name)


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    """The `kds` argument parser."""
    p = argparse.ArgumentParser(prog="kds", description="Kitchen display system for hybrid store-restaurants.")
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="store config TOML (default: %(default)s)")

    def with_ca_file(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--ca-file",
            default=None,
            metavar="PATH",
            help=f"PEM CA certificate that verifies a wss:// hub (default: ${CA_FILE_ENV}, else the system's trusted "
            "roots)",
        )

    s = sub.add_parser("serve", help="run the order hub", description="Run the order hub (websockets server).")
    with_config(s)
    s.add_argument("--db", default=str(DEFAULT_DB), help="SQLite file path or database URL (default: %(default)s)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    s.add_argument("--port", type=int, default=8765, help="port to listen on (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="log warnings only")
    s.add_argument(
        "--timings",
        type=Path,
        default=None,
        metavar="FILE",
        help="write when each new order was received, decided, committed and delivered (CLOCK_MONOTONIC seconds)"
        " to FILE as JSON lines when the hub stops: for bench/run.py --anatomy",
    )
    s.set_defaults(func=cmd_serve)

    db = sub.add_parser(
        "db",
        help="database schema: upgrade or show the current revision",
        description="Migrate the hub's database (SQLite file or PostgreSQL URL) to this version's schema.",
    )
    db.add_argument(
        "action",
        choices=["upgrade", "current", "stale"],
        help="upgrade to the newest schema, show it, or list the open orders older than open_max_age_h (which the hub "
        "no longer holds in memory: close or cancel them)",
    )
    with_config(db)
    db.add_argument("--db", default=str(DEFAULT_DB), help="SQLite file path or database URL (default: %(default)s)")
    db.set_defaults(func=cmd_db)

    tk = sub.add_parser(
        "token",
        help="make a new device token and the token_hash line for the config",
        description=(
            "Print a new random device token (give it to the device: --token, or KDS_TOKEN) and the token_hash line "
            "to put in its [[devices]] entry instead of token, so that the config does not hold the token itself."
        ),
    )
    tk.set_defaults(func=cmd_token)

    sc = sub.add_parser(
        "schema",
        help="print the JSON Schema of every protocol message (or the AsyncAPI document)",
        description=(
            "Print the JSON Schema (draft 2020-12) of every message of the wire protocol; it loads as is in standard "
            "validators (ajv in strict mode, Python jsonschema). With --asyncapi, print the protocol's AsyncAPI 3.0 "
            "document instead (docs/asyncapi.json is its published copy)."
        ),
    )
    sc.add_argument("--compact", action="store_true", help="one line")
    sc.add_argument(
        "--asyncapi", action="store_true", help="the AsyncAPI 3.0 document: the endpoint, send/receive, every message"
    )
    sc.set_defaults(func=cmd_schema)

    sim = sub.add_parser(
        "simulate",
        help="feed a realistic order mix through the real protocol",
        description="Feed a Hema-like mix of app, kiosk and shelf-to-table orders to a hub.",
    )
    with_config(sim)
    sim.add_argument("--hub", default=DEFAULT_HUB, help="hub URL (default: %(default)s)")
    with_ca_file(sim)
    sim.add_argument("--rate", type=float, default=5.0, help="orders per second (default: %(default)s)")
    sim.add_argument("--duration", type=float, default=None, help="seconds to run")
    sim.add_argument(
        "--orders",
        type=int,
        default=None,
        help="number of orders to send (default: 100 unless --duration is given)",
    )
    sim.add_argument("--seed", type=int, default=None, help="random seed for a repeatable mix")
    sim.add_argument("--cancels", type=float, default=0.03, help="share of orders later cancelled")
    sim.add_argument("--amends", type=float, default=0.05, help="share of orders later amended")
    sim.set_defaults(func=cmd_simulate)

    d = sub.add_parser(
        "demo",
        help="hub + simulator + printers + a kitchen screen, from one command",
        description=(
            "Start a hub on a temporary database with printer emulators, feed it simulated orders and a simulated "
            "kitchen, and open a station screen (or the live view of every station)."
        ),
    )
    with_config(d)
    d.add_argument("--rate", type=float, default=1.0, help="orders per second (default: %(default)s)")
    d.add_argument("--port", type=int, default=0, help="hub port (default: a free one; 8765 to open terminals beside)")
    d.add_argument(
        "--view",
        choices=["kitchen", "live"],
        default="kitchen",
        help="kitchen: a station's screen (default); live: every station at a glance",
    )
    d.add_argument("--station", default="wok", help="the station of the kitchen view (default: %(default)s)")
    d.add_argument(
        "--no-counter-bot",
        action="store_true",
        help="leave the counter to a person (run `kds counter` beside the demo)",
    )
    d.set_defaults(func=cmd_demo)

    pe = sub.add_parser(
        "printer-emulator",
        help="a network receipt printer that saves each ticket as text and as a picture",
        description=(
            "A network ESC/POS printer on TCP: answers status queries, writes each job (split at the cut) as "
            "NNNN.bin (raw bytes), NNNN.txt (decoded text) and NNNN.png (picture of the paper) into --out. "
            "Switch it while it runs by typing, or sending to the control port, one of: paper out, paper in, "
            "cover open, cover close, offline, online, status."
        ),
    )
    with_config(pe)
    pe.add_argument("--port", type=int, default=9100, help="TCP port (default: %(default)s)")
    pe.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    pe.add_argument("--out", default="var/printer", help="folder for the tickets (default: %(default)s)")
    pe.add_argument("--columns", type=int, default=48, help="paper width in columns: 32, 42 or 48 (default: 48)")
    pe.add_argument(
        "--control-port", type=int, default=None, help="port for control commands (default: the printer port + 100)"
    )
    pe.add_argument(
        "--all", action="store_true", help="emulate every network printer of --config on this machine instead"
    )
    pe.add_argument("--verbose", action="store_true", help="log every job")
    pe.add_argument(
        "--discard",
        action="store_true",
        help="answer and confirm like a printer but write no files, only count the jobs (benchmarks)",
    )
    pe.add_argument(
        "--bytes-per-s",
        type=float,
        default=None,
        help="take data only this fast, like a slow (serial) printer, confirming once it has gone through",
    )
    pe.set_defaults(func=cmd_printer_emulator)

    pr = sub.add_parser("printers", help="the store's printers: status, test page", description="The store's printers.")
    prs = pr.add_subparsers(dest="printers_command", required=True, metavar="ACTION")
    st = prs.add_parser(
        "status",
        help="every configured printer's state",
        description="Ask every configured printer for its status (paper, cover, reachable) and count its queued jobs.",
    )
    with_config(st)
    st.add_argument("--db", default=str(DEFAULT_DB), help="the hub's database, for queued jobs (default: %(default)s)")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=cmd_printers_status)
    tp = prs.add_parser("test", help="print a test page on one printer", description="Print a test page on a printer.")
    with_config(tp)
    tp.add_argument("name", help="printer id from the config (e.g. wok-printer)")
    tp.set_defaults(func=cmd_printers_test)

    def with_device(sp: argparse.ArgumentParser) -> None:
        with_config(sp)
        sp.add_argument(
            "--hub", default=DEFAULT_HUB, help="hub URL, or several separated by commas (default: %(default)s)"
        )
        sp.add_argument("--device", default=None, help="device id (default: the config's device for this screen)")
        sp.add_argument("--token", default=None, help="device token (default: from the config, else $KDS_TOKEN)")
        with_ca_file(sp)
        sp.add_argument(
            "--queue", default=None, help="file of actions waiting for the hub (default: var/queue-DEVICE.jsonl)"
        )

    k = sub.add_parser(
        "kitchen",
        help="the kitchen station screen",
        description="A station's ticket screen, driven by keys or a bump bar.",
    )
    k.add_argument("--station", required=True, help="station id (seafood, wok, grill, cold, bar, bakery…)")
    with_device(k)
    k.set_defaults(func=cmd_kitchen)

    c = sub.add_parser(
        "counter",
        help="the counter screen: shelf-to-table intake, expo and handover",
        description="The counter: take shelf-to-table and walk-up orders, assemble, call and hand over orders.",
    )
    with_device(c)
    c.set_defaults(func=cmd_counter)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kds` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
