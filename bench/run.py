"""`make bench`: the hub under the rush, side by side with a bare relay and the durable floor, in one run.

Three servers carry the same orders to the same kitchen screens, each in its own process on loopback:

- **hub**: `kds serve` on a fresh SQLite file (WAL, synchronous=FULL), every station's printer configured and
  answering (one `kds printer-emulator --discard` process per printer, so the spooler's cost is counted);
- **floor**: the least any durable hub must do: a websockets server that parses each order, commits each batch to
  SQLite (WAL, synchronous=FULL) in a thread, then broadcasts the frame to every screen and acknowledges it;
- **relay**: the same without the database: parse, broadcast to every screen, acknowledge.

The hub sends an order only to the screens of the stations it touches; floor and relay send it to every screen.
Latency is measured from the moment a source sends an order to the moment each screen that gets it has read it.
Screens are light probes in a process of their own (`--probe`): they say hello, read every frame and note when a new
order arrives (no parsing), so the load generator costs the machine little next to the servers. Sources send
`order.submit` frames with a `ref` and wait for the answer to that ref.

Runs (targets of issue 11, on 2 cores):
- paced: 200 orders/s for 10 s with 50 screens; 500 orders/s for 10 s with 6 screens. Hub p99 <= 1.5x the floor's.
- flat out: 5,000 orders from 8 sources with 16 orders in flight each, 30 screens connected: >= 2,000 durably
  accepted orders/s on SQLite; >= 1,000 on PostgreSQL (with `PG=postgresql://… make bench`, or
  KDS_TEST_POSTGRES_URL, on a fresh database made and dropped by the run).

Prints a readable table and one JSON object. Figures, not a test: nothing here gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kds.config import StoreConfig, Transport, load_config  # noqa: E402

TOKEN = "bench-token"
PRINTING = True
ANATOMY = False
"""`--anatomy`: the hub writes when each order passed each of its steps (`kds serve --timings`), and each paced run
of the hub reports where an order's time went, delivery by delivery."""
"""`--no-printers`: nothing listens where the printers are (the spooler finds them off and backs off): what printing
costs the hub, by difference."""
KEY = re.compile(rb'"key": ?"(bench-[^"]+)"')
COMPRESSION: str | None = "deflate"
"""Per-message deflate offered by the probes and sources (as HubClient does) and accepted by the floor and relay."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def _now() -> float:
    # CLOCK_MONOTONIC: one clock for every process of the machine (sources and probes are separate processes).
    return time.clock_gettime(time.CLOCK_MONOTONIC)


async def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def _orders(config: StoreConfig, n: int, run: str) -> list[dict[str, Any]]:
    """A fixed, varied order mix over the whole kiosk catalogue (two to four lines each)."""
    each = [i for i in config.catalogue if not i.methods and i.sold_by.value == "each"]
    out = []
    for k in range(n):
        lines = [each[(k * 7 + j * 13) % len(each)] for j in range(2 + k % 3)]
        out.append(
            {
                "key": f"bench-{run}-{k}",
                "channel": "kiosk",
                "fulfilment": {"type": "dine_in", "table": str(1 + k % 40)},
                "items": [{"sku": i.sku, "qty": 1 + (k + j) % 2} for j, i in enumerate(lines)],
            }
        )
    return out


# ------------------------------------------------------------------------------------------------ the store


@dataclass
class Floor:
    """Who connects: `screens` kitchen probes spread over the stations, `sources` kiosks."""

    screens: list[tuple[str, str]]
    """(device id, station)."""
    sources: list[str]


def make_floor(config: StoreConfig, screens: int, sources: int) -> Floor:
    stations = [s.id for s in config.stations]
    return Floor(
        screens=[(f"bench-screen-{k}", stations[k % len(stations)]) for k in range(screens)],
        sources=[f"bench-kiosk-{k}" for k in range(sources)],
    )


def bench_config(tmp: Path, floor: Floor, printer_ports: dict[str, int]) -> Path:
    """The sample store with the bench's devices, each printer on its emulator's port, and rate limits out of the
    way (a kiosk never sends 250 orders a second; the bench's eight do)."""
    text = (ROOT / "config/store.toml").read_text(encoding="utf-8")
    for pid, port in printer_ports.items():
        text = re.sub(rf'(id = "{re.escape(pid)}"(?:\n(?!\[).*)*?\nport = )\d+', rf"\g<1>{port}", text)
    extra = ["", "# ---- bench devices"]
    for dev, station in floor.screens:
        extra += ["[[devices]]", f'id = "{dev}"', f'token = "{TOKEN}"', 'role = "kitchen"', f'station = "{station}"']
    for dev in floor.sources:
        extra += ["[[devices]]", f'id = "{dev}"', f'token = "{TOKEN}"', 'role = "source"', 'channels = ["kiosk"]']
    extra += ["[limits]", "frames_per_s = 1000000", "frame_burst = 1000000", "max_connections = 5000", ""]
    path = tmp / "store.toml"
    path.write_text(text + "\n".join(extra), encoding="utf-8")
    load_config(path)  # refuse a broken bench config here, not in the hub
    return path


# ------------------------------------------------------------------------------------------------ probes (screens)


async def probe_main(url: str, screens: list[tuple[str, str]], out: Path) -> None:
    """`--probe`: connect every screen, print "ready", note arrivals until stdin says "stop" and the frames stop."""
    arrivals: list[tuple[bytes, int, float]] = []
    last = [_now()]

    async def screen(k: int, dev: str, station: str) -> None:
        async with connect(url, max_size=None, compression=COMPRESSION, ping_interval=None) as ws:
            hello = {"type": "hello", "device": dev, "token": TOKEN, "role": "kitchen", "station": station}
            await ws.send(json.dumps(hello))
            welcome = json.loads(await ws.recv())
            for _ in range(int(welcome.get("pages") or 0)):
                await ws.recv()
            ready.put_nowait(k)
            async for frame in ws:
                t = _now()
                data = frame.encode() if isinstance(frame, str) else frame
                if b'"order.created"' in data or b'"order.submit"' in data:
                    m = KEY.search(data)
                    if m:
                        arrivals.append((m.group(1), k, t))
                        last[0] = t

    ready: asyncio.Queue[int] = asyncio.Queue()
    tasks = [asyncio.create_task(screen(k, d, s)) for k, (d, s) in enumerate(screens)]
    for _ in screens:
        got = asyncio.ensure_future(ready.get())
        done, _pending = await asyncio.wait({got, *tasks}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if got not in done:
            got.cancel()
            for t in tasks:
                failed = t.exception() if t.done() else None
                if failed is not None:
                    raise failed
            raise TimeoutError("screens did not connect")
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    deadline = _now() + 15
    while _now() < deadline and _now() - last[0] < 0.5:
        await asyncio.sleep(0.05)
    for t in tasks:
        t.cancel()
    out.write_text(json.dumps([(key.decode(), k, t) for key, k, t in arrivals]))


class Probes:
    """The probe process, from the load's side."""

    def __init__(self, url: str, screens: list[tuple[str, str]], tmp: Path) -> None:
        self.out = tmp / f"arrivals-{uuid.uuid4().hex[:6]}.json"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--probe", url, json.dumps(screens), str(self.out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def ready(self) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError(f"screens did not connect (probe said {line!r})")

    async def arrivals(self) -> list[tuple[str, int, float]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        await asyncio.to_thread(self.proc.wait, 60)
        return [tuple(a) for a in json.loads(self.out.read_text())]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------------------------ sources


class Source:
    """One source connection: `order.submit` frames with a ref, each answered by the frame that carries that ref."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[bool]] = {}
        self.refs = itertools.count()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, device: str) -> Source:
        ws = await connect(url, max_size=None, compression=COMPRESSION, ping_interval=None)
        await ws.send(json.dumps({"type": "hello", "device": device, "token": TOKEN, "role": "source"}))
        welcome = json.loads(await ws.recv())
        for _ in range(int(welcome.get("pages") or 0)):
            await ws.recv()
        return cls(ws)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                msg = json.loads(frame)
                fut = self.waiting.pop(msg.get("ref") or "", None)
                if fut is not None and not fut.done():
                    fut.set_result(msg.get("type") == "order.accepted")

    async def submit(self, order: dict[str, Any]) -> bool:
        ref = f"o{next(self.refs)}"
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting[ref] = fut
        await self.ws.send(json.dumps({"type": "order.submit", "ref": ref, "order": order}))
        return await asyncio.wait_for(fut, 60)

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)


# ------------------------------------------------------------------------------------------------ one run


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


async def drive(
    url: str,
    floor: Floor,
    orders: list[dict[str, Any]],
    tmp: Path,
    *,
    rate: float | None,
    in_flight: int,
    server_pid: int,
    raw: bool = False,
) -> dict[str, Any]:
    """Connect the screens and sources, send the orders (paced at `rate`, or flat out with `in_flight` per source),
    and measure acknowledgements and order-to-screen latency."""
    probes = Probes(url, floor.screens, tmp)
    sources: list[Source] = []
    try:
        await probes.ready()
        sources = [await Source.open(url, d) for d in floor.sources]
        sent: dict[str, float] = {}
        acks: list[float] = []
        refused = 0
        cpu0 = _cpu_s(server_pid)
        t0 = _now()

        async def one(src: Source, order: dict[str, Any], at: float | None) -> None:
            nonlocal refused
            if at is not None:
                await asyncio.sleep(max(0.0, at - _now()))
            t = sent[order["key"]] = _now()
            if await src.submit(order):
                acks.append((_now() - t) * 1000)
            else:
                refused += 1

        if rate:
            await asyncio.gather(*(one(sources[k % len(sources)], o, t0 + k / rate) for k, o in enumerate(orders)))
        else:
            queue = iter(orders)

            async def worker(src: Source) -> None:
                for o in queue:
                    await one(src, o, None)

            await asyncio.gather(*(worker(s) for s in sources for _ in range(in_flight)))
        elapsed = _now() - t0
        cpu = _cpu_s(server_pid) - cpu0
        arrivals = await probes.arrivals()
    finally:
        for s in sources:
            await s.close()
        probes.kill()
    screen_ms = [(t - sent[key]) * 1000 for key, _k, t in arrivals if key in sent]
    kept = {"_sent": sent, "_arrivals": arrivals} if raw else {}
    return {
        **kept,
        "orders": len(orders),
        "rate": rate,
        "screens": len(floor.screens),
        "sources": len(floor.sources),
        "in_flight": None if rate else in_flight * len(floor.sources),
        "accepted": len(acks),
        "refused": refused,
        "seconds": round(elapsed, 3),
        "accepted_per_s": round(len(acks) / elapsed, 1),
        "server_cpu_ms_per_order": round(cpu * 1000 / max(1, len(acks)), 3),
        "ack_p50_ms": round(_pct(acks, 50), 2),
        "ack_p99_ms": round(_pct(acks, 99), 2),
        "deliveries": len(screen_ms),
        "screen_p50_ms": round(_pct(screen_ms, 50), 2),
        "screen_p99_ms": round(_pct(screen_ms, 99), 2),
        "screen_max_ms": round(max(screen_ms), 2) if screen_ms else float("nan"),
    }


def _nice() -> None:
    os.nice(10)


def _printers(config: StoreConfig) -> list[tuple[str, int]]:
    return [(p.id, p.columns) for p in config.printers if p.transport is Transport.NETWORK]


async def run_hub(
    config: StoreConfig,
    floor: Floor,
    orders: list[dict[str, Any]],
    *,
    rate: float | None,
    in_flight: int,
    db: str | None = None,
) -> dict[str, Any]:
    """The real hub in its own process, its printers answering in theirs."""
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        ports = {pid: _free_port() for pid, _ in _printers(config)}
        emulators = [
            subprocess.Popen(
                [
                    sys.executable, "-m", "kdsapp.cli", "printer-emulator", "--discard",
                    "--port", str(ports[pid]), "--control-port", str(_free_port()),
                    "--columns", str(columns), "--out", str(tmp / pid),
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                preexec_fn=_nice,  # a real printer has a processor of its own: the emulators take what is left
            )
            for pid, columns in _printers(config)
            if PRINTING
        ]  # fmt: skip
        try:
            for p in ports.values() if PRINTING else ():
                await _wait_port(p)  # the printers answer before the hub's first look at them (no "offline" at start)
        except BaseException:
            for e in emulators:
                e.kill()
                e.wait(timeout=10)
            raise
        port = _free_port()
        path = bench_config(tmp, floor, ports)
        spy = os.environ.get("KDS_BENCH_PROFILE")  # a folder: the hub runs under py-spy, one profile per run
        prefix = (
            [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "-r", "250", "--nonblocking",
             *(["--gil"] if os.environ.get("KDS_BENCH_PROFILE_GIL") else []),  # only the thread holding the GIL
             "--threads", "-o", f"{spy}/hub-{uuid.uuid4().hex[:6]}.txt", "--"]
            if spy else []
        )  # fmt: skip
        proc = subprocess.Popen(
            [
                *prefix, sys.executable, "-m", "kdsapp.cli", "serve", "--quiet", "--config", str(path),
                "--db", db or str(tmp / "bench.sqlite3"), "--port", str(port),
                *(["--timings", str(tmp / "timings.jsonl")] if ANATOMY else []),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await _wait_port(port)
            result = await drive(
                f"ws://127.0.0.1:{port}",
                floor,
                orders,
                tmp,
                rate=rate,
                in_flight=in_flight,
                server_pid=proc.pid,
                raw=ANATOMY,
            )
            result["printed"] = _printed(tmp)
        finally:
            if spy:
                proc.send_signal(signal.SIGINT)  # py-spy writes its profile on Ctrl+C, and stops the hub
            else:
                proc.terminate()
            proc.wait(timeout=30)
            for e in emulators:
                e.kill()  # nothing of theirs to keep (--discard)
                e.wait(timeout=10)
        if ANATOMY:
            sent, arrivals = result.pop("_sent"), result.pop("_arrivals")
            timings = [json.loads(line) for line in (tmp / "timings.jsonl").read_text().splitlines()]
            result["anatomy"] = anatomy(sent, arrivals, timings)
        return result


ANATOMY_STEPS = (
    ("source to hub", "sent", "received"),
    ("decide", "received", "decided"),
    ("wait for the commit before", "decided", "commit_started"),
    ("commit", "commit_started", "committed"),
    ("deliver", "committed", "delivered"),
    ("hub to screen", "delivered", "read"),
    ("total", "sent", "read"),
)
"""The steps of an order's way to a screen, between two of its times (`kds.server.OrderTiming`, and the bench's)."""


def anatomy(
    sent: dict[str, float], arrivals: list[tuple[str, int, float]], timings: list[dict[str, Any]]
) -> dict[str, Any]:
    """Where the time of each delivery (an order read by one screen) went, step by step: p50, p90 and p99 of each step
    in ms, and the mean of each step over the slowest 1 % of deliveries. The times are all `CLOCK_MONOTONIC`."""
    hub = {t["key"]: t for t in timings}
    rows = [{**hub[key], "sent": sent[key], "read": t} for key, _k, t in arrivals if key in hub and key in sent]
    out: dict[str, Any] = {"deliveries": len(rows)}
    if not rows:
        return out
    steps = {name: [(r[b] - r[a]) * 1000 for r in rows] for name, a, b in ANATOMY_STEPS}
    slow_from = _pct(steps["total"], 99)
    slow = [k for k, v in enumerate(steps["total"]) if v >= slow_from]
    for name, values in steps.items():
        out[name] = {
            "p50_ms": round(_pct(values, 50), 2),
            "p90_ms": round(_pct(values, 90), 2),
            "p99_ms": round(_pct(values, 99), 2),
            "slowest_1pct_mean_ms": round(sum(values[k] for k in slow) / len(slow), 2),
        }
    return out


def _anatomy_table(title: str, a: dict[str, Any]) -> str:
    lines = [f"  {title}: where the time of {a['deliveries']} deliveries went (ms)"]
    lines.append(f"    {'step':<28} {'p50':>7} {'p90':>7} {'p99':>7}   slowest 1 %: mean")
    for name, _a, _b in ANATOMY_STEPS:
        r = a.get(name)
        if r is not None:
            lines.append(
                f"    {name:<28} {r['p50_ms']:>7} {r['p90_ms']:>7} {r['p99_ms']:>7}   {r['slowest_1pct_mean_ms']:>7}"
            )
    return "\n".join(lines)


def _printed(tmp: Path) -> int | None:
    # The emulators write no files (--discard); the spooler's ledger in the hub's database says what printed.
    with contextlib.suppress(sqlite3.Error):
        db = sqlite3.connect(tmp / "bench.sqlite3")
        try:
            return int(db.execute("SELECT count(*) FROM print_jobs WHERE state = 'printed'").fetchone()[0])
        finally:
            db.close()
    return None


async def run_baseline(
    kind: str, floor: Floor, orders: list[dict[str, Any]], *, rate: float | None, in_flight: int
) -> dict[str, Any]:
    """The floor or the relay in its own process."""
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        port = _free_port()
        proc = subprocess.Popen([sys.executable, __file__, f"--{kind}-server", str(port), str(tmp / "floor.sqlite3")])
        try:
            await _wait_port(port)
            return await drive(
                f"ws://127.0.0.1:{port}", floor, orders, tmp, rate=rate, in_flight=in_flight, server_pid=proc.pid
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# ------------------------------------------------------------------------------------------------ floor and relay


async def baseline_server(port: int, db_path: str | None) -> None:
    """The relay (db_path None) or the durable floor: hello answered with a bare welcome; each `order.submit` parsed,
    (floor: committed with its batch to SQLite in a thread,) broadcast to every screen, then acknowledged."""
    screens: set[ServerConnection] = set()
    pending: list[tuple[ServerConnection, str, str, str]] = []
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    db: sqlite3.Connection | None = None
    executor = ThreadPoolExecutor(max_workers=1)
    if db_path is not None:
        db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, payload TEXT)")

    def write(rows: list[tuple[str, str]]) -> None:
        assert db is not None
        db.execute("BEGIN")
        db.executemany("INSERT INTO events (key, payload) VALUES (?, ?)", rows)
        db.execute("COMMIT")

    def deliver(conn: ServerConnection, ref: str, frame: str) -> None:
        broadcast(screens, frame)
        broadcast([conn], json.dumps({"type": "order.accepted", "ref": ref}))

    async def committer() -> None:
        while True:
            await wake.wait()
            wake.clear()
            while pending:
                batch = pending[:]
                del pending[:]
                await loop.run_in_executor(executor, write, [(key, frame) for _c, _r, key, frame in batch])
                for conn, ref, _key, frame in batch:
                    deliver(conn, ref, frame)

    async def handler(conn: ServerConnection) -> None:
        hello = json.loads(await conn.recv())
        await conn.send(json.dumps({"type": "welcome", "pages": 0}))
        if hello.get("role") == "kitchen":
            screens.add(conn)
            await conn.wait_closed()
            screens.discard(conn)
            return
        async for frame in conn:
            assert isinstance(frame, str), "the bench's clients send text frames"
            msg = json.loads(frame)
            ref, key = msg["ref"], msg["order"]["key"]
            if db is None:
                deliver(conn, ref, frame)
            else:
                pending.append((conn, ref, key, frame))
                wake.set()

    task = asyncio.create_task(committer())
    async with serve(handler, "127.0.0.1", port, max_size=None, compression=COMPRESSION, ping_interval=None):
        await asyncio.Future()
    task.cancel()


# ------------------------------------------------------------------------------------------------ the whole run


async def _pg_database(url: str) -> tuple[str, str]:
    """A fresh database on the PostgreSQL server at `url`: (its URL, its name)."""
    import sqlalchemy as sa

    from kds.store import database_url

    name = f"kds_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(database_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name, name


def _pg_drop(url: str, name: str) -> None:
    import sqlalchemy as sa

    from kds.store import database_url

    admin = sa.create_engine(database_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(ROOT / "config/store.toml")
    run = f"{os.getpid()}-{time.time_ns()}"
    out: dict[str, Any] = {"cores": os.cpu_count(), "paced": [], "flat_out": {}}
    for rate, screens in ((200.0, 50), (500.0, 6)):
        if args.only and f"paced{rate:.0f}" not in args.only:
            continue
        floor = make_floor(config, screens, 1)
        n = round(rate * args.seconds)
        kinds = ("hub",) if args.hub_only else ("relay", "floor", "hub")
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for r in range(args.repeat):
            # Interleaved, so that a slow moment of the machine falls on all three alike.
            for kind in kinds:
                orders = _orders(config, n, f"{run}-{kind}-{rate:.0f}-{r}")
                if kind == "hub":
                    got = await run_hub(config, floor, orders, rate=rate, in_flight=1)
                else:
                    got = await run_baseline(kind, floor, orders, rate=rate, in_flight=1)
                runs[kind].append(got)
                print(f"  paced {rate:.0f}/s x {screens} screens, {kind} #{r + 1}: {got}", file=sys.stderr)
                if "anatomy" in got:
                    title = f"paced {rate:.0f}/s x {screens} screens, hub #{r + 1}"
                    print(_anatomy_table(title, got["anatomy"]), file=sys.stderr)
        row: dict[str, Any] = {"rate": rate, "screens": screens, **{k: _median(v) for k, v in runs.items()}}
        if not args.hub_only:
            row["hub_over_floor_p99"] = round(row["hub"]["screen_p99_ms"] / row["floor"]["screen_p99_ms"], 2)
            row["hub_over_relay_p99"] = round(row["hub"]["screen_p99_ms"] / row["relay"]["screen_p99_ms"], 2)
        out["paced"].append(row)
    if args.only and "flat" not in args.only:
        return out
    floor = make_floor(config, 30, args.sources)
    flat = out["flat_out"]
    flats: dict[str, list[dict[str, Any]]] = {"floor": [], "sqlite": []}
    for r in range(args.repeat):
        if not args.hub_only:
            got = await run_baseline(
                "floor",
                floor,
                _orders(config, args.orders, f"{run}-flat-floor-{r}"),
                rate=None,
                in_flight=args.in_flight,
            )
            flats["floor"].append(got)
            print(f"  flat out, floor #{r + 1}: {got}", file=sys.stderr)
        got = await run_hub(
            config, floor, _orders(config, args.orders, f"{run}-flat-{r}"), rate=None, in_flight=args.in_flight
        )
        flats["sqlite"].append(got)
        print(f"  flat out, hub on SQLite #{r + 1}: {got}", file=sys.stderr)
    flat.update({k: _median(v) for k, v in flats.items() if v})
    pg = args.pg or os.environ.get("PG") or os.environ.get("KDS_TEST_POSTGRES_URL")
    if pg:
        url, name = await _pg_database(pg)
        try:
            flat["postgresql"] = await run_hub(
                config, floor, _orders(config, args.orders, f"{run}-pg"), rate=None, in_flight=args.in_flight, db=url
            )
        finally:
            _pg_drop(pg, name)
        print(f"  flat out, hub on PostgreSQL: {flat['postgresql']}", file=sys.stderr)
    return out


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over repeated runs (and the runs themselves)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = sorted(r[key] for r in runs if isinstance(r.get(key), int | float))
            out[key] = values[len(values) // 2] if values else value
        else:
            out[key] = value
    out["repeats"] = len(runs)
    if len(runs) > 1:
        out["runs"] = runs
    return out


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    rows: list[tuple[str, str, str]] = []
    for row in out["paced"]:
        head = f"{row['rate']:.0f}/s x {row['screens']} screens"
        for kind in ("relay", "floor", "hub"):
            r = row[kind]
            rows.append(
                (
                    f"{head}: {kind} order-to-screen p50 / p99 / max ms",
                    f"{r['screen_p50_ms']} / {r['screen_p99_ms']} / {r['screen_max_ms']}",
                    f"{r['deliveries']} deliveries, server CPU {r['server_cpu_ms_per_order']} ms/order",
                )
            )
        ratio = row["hub_over_floor_p99"]
        rows.append((f"{head}: hub p99 / floor p99", f"{ratio:.2f}", f"target <= 1.5: {_verdict(ratio <= 1.5)}"))
        rows.append((f"{head}: hub p99 / relay p99", f"{row['hub_over_relay_p99']:.2f}", ""))
        rows.append((f"{head}: hub ack p50 / p99 ms", f"{row['hub']['ack_p50_ms']} / {row['hub']['ack_p99_ms']}", ""))
    flat = out["flat_out"]
    fl = flat["floor"]
    rows.append(("flat out, 30 screens: floor accepted orders/s", f"{fl['accepted_per_s']:.0f}", ""))
    for engine, target in (("sqlite", 2000), ("postgresql", 1000)):
        r = flat.get(engine)
        if r is None:
            rows.append(
                (f"flat out, 30 screens: hub on {engine} accepted orders/s", "not run", "set PG=postgresql://…")
            )
            continue
        rows.append(
            (
                f"flat out, 30 screens: hub on {engine} accepted orders/s",
                f"{r['accepted_per_s']:.0f}",
                f"target >= {target}: {_verdict(r['accepted_per_s'] >= target)}; "
                f"ack p50/p99 {r['ack_p50_ms']}/{r['ack_p99_ms']} ms; CPU {r['server_cpu_ms_per_order']} ms/order; "
                f"refused {r['refused']}",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(
        f"\nhub (SQLite WAL, synchronous=FULL, printers answering) vs durable floor vs bare relay; "
        f"{out['cores']} cores; {args.seconds:.0f} s per paced run; flat out: {args.sources} sources x "
        f"{args.in_flight} in flight, {args.orders} orders; medians of {args.repeat} interleaved runs"
    )
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>22}  {note}")
    print(json.dumps(out))


def main() -> None:
    """`make bench`."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=5000, help="orders in the flat-out runs")
    ap.add_argument("--sources", type=int, default=8, help="source connections in the flat-out runs")
    ap.add_argument("--in-flight", type=int, default=16, help="orders in flight per source in the flat-out runs")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each paced run")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each kind, interleaved; medians are reported")
    ap.add_argument("--pg", default=None, help="PostgreSQL server URL for the flat-out run on PostgreSQL")
    ap.add_argument("--only", nargs="*", default=None, help="runs to make: paced200 paced500 flat (default: all)")
    ap.add_argument(
        "--no-printers", action="store_true", help="no printer answers (what printing costs, by difference)"
    )
    ap.add_argument("--hub-only", action="store_true", help="the hub's runs only (no floor or relay): quick looks")
    ap.add_argument(
        "--anatomy",
        action="store_true",
        help="where each order's time went in the hub's runs, step by step (kds serve --timings; printed per run)",
    )
    ap.add_argument("--probe", nargs=3, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--relay-server", nargs=2, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--floor-server", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    global PRINTING, ANATOMY
    PRINTING = not args.no_printers
    ANATOMY = args.anatomy
    if args.probe is not None:
        url, screens, path = args.probe
        asyncio.run(probe_main(url, [tuple(s) for s in json.loads(screens)], Path(path)))
        return
    if args.relay_server is not None:
        asyncio.run(baseline_server(int(args.relay_server[0]), None))
        return
    if args.floor_server is not None:
        asyncio.run(baseline_server(int(args.floor_server[0]), args.floor_server[1]))
        return
    out = asyncio.run(main_async(args))
    if args.only or args.hub_only:
        print(json.dumps(out))
    else:
        report(out, args)


if __name__ == "__main__":
    main()
