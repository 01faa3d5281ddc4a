"""Benchmark of the kitchen screen under the rush (issue 11): a burst into 300 open tickets, key to repaint, memory.

Run with `make bench-terminal`. The hub is a real `kds serve` in its own process (temporary SQLite file, loopback
only, printers writing to /dev/null); a feeding process of its own submits the orders through the real protocol
(kiosk-1) and bumps them from the station's other screen (wok-2).

- **burst**: the real `KitchenApp` (device wok-1, default keys) runs headless in this process at 160x45 with 300
  open wok tickets. Its connection stops reading (`transport.pause_reading()`) while the kiosk submits 100 orders,
  so their 100 `order.created` events wait in the socket; reading resumes and the clock runs from there until the
  screen has been painted with all 100 (400 open). Then another wok screen bumps them, back to 300. Repeated.
- **key to repaint**: → ← ↓ Enter (bump) PgDn, sent as the terminal driver sends keys, timed until the first
  paint after the app has redrawn for it. A bump is shown done at once; its ack and event are awaited before the
  next key, so each press starts from a quiet screen.
- **memory**: a real `kds kitchen --station wok` process on a pseudo-terminal of 160x45 (as in a terminal
  window), fed 300 orders; its VmRSS once the header says "300 open". Also the headless app's whole process.

A paint is Textual's compositor update of the screen; headless, the app also renders it to the terminal's escape
sequences (what a real driver writes), so the cost of a paint is all counted. Figures, not a test: nothing here
gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import random
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from textual import events
from textual._compositor import CompositorUpdate
from textual.screen import Screen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import _free_port, _pct, _wait_port  # noqa: E402
from bench.soak import quiet_printers, rss_mb  # noqa: E402
from kds.client import Backoff, HubClient, LinkState  # noqa: E402
from kds.config import StoreConfig, load_config  # noqa: E402
from kds.protocol import Event, EventKind, OrderAccepted, TicketState  # noqa: E402
from kds.wire import HubFrame  # noqa: E402
from terminals.kitchen.app import KitchenApp, freeze_start_up  # noqa: E402

SIZE = (160, 45)
OPEN = 300
BURST = 100
TARGET_BURST_MS = 100.0
TARGET_KEY_MS = 50.0
TARGET_RSS_MB = 150.0
WOK_DISHES = ["WOK-KUNGPAO", "WOK-MAPO", "WOK-FRIEDRICE", "WOK-BEEF-PEPPER", "WOK-SWEETSOUR", "NDL-BEEF", "NDL-DANDAN"]
KEYS = ["right", "right", "down", "left", "right", "pagedown", "down", "right", "enter", "left"]
"""The cycle of keys pressed (→ ← ↓ Enter PgDn); 50 presses go round it five times."""
KEY_CHARS = {"enter": "\r"}


def wok_orders(n: int, run: str, seed: int = 11) -> list[dict[str, Any]]:
    """n kiosk orders with one to three wok dishes (modifiers, notes, a drink at times; a few rush)."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        items: list[dict[str, Any]] = []
        for sku in rng.sample(WOK_DISHES, rng.randint(1, 3)):
            item: dict[str, Any] = {"sku": sku, "qty": rng.choice([1, 1, 2, 3])}
            if rng.random() < 0.3:
                item["modifiers"] = ["less spicy"]
            if rng.random() < 0.15:
                item["note"] = "no peanuts, allergy at the table"
            items.append(item)
        if rng.random() < 0.5:
            items.append({"sku": "BAR-MILKTEA"})
        dine_in = rng.random() < 0.6
        out.append(
            {
                "key": f"{run}-{k}",
                "channel": "kiosk",
                "fulfilment": {"type": "dine_in", "table": str(rng.randint(1, 48))} if dine_in else {"type": "pickup"},
                "items": items,
                "priority": "rush" if rng.random() < 0.03 else "normal",
            }
        )
    return out


class TimedKitchenApp(KitchenApp):
    """The kitchen screen, telling when it has painted (and what it had redrawn by then)."""

    CSS_PATH = str(ROOT / "terminals/kitchen/kitchen.tcss")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redraws = 0
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[float]]] = []

    def redraw(self, page: int | None = None) -> None:
        """Count redraws."""
        super().redraw(page)
        self.redraws += 1

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)
        if isinstance(renderable, CompositorUpdate) and self.is_headless:
            renderable.render_segments(self.console)  # the escape sequences a real terminal driver would write
        if renderable is None or not self._waiters:
            return
        at = time.perf_counter()
        for waiter in list(self._waiters):
            done, fut = waiter
            if done():
                self._waiters.remove(waiter)
                if not fut.done():
                    fut.set_result(at)

    def painted(self, done: Callable[[], bool]) -> asyncio.Future[float]:
        """The perf_counter() time of the first paint at which `done()` holds."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((done, fut))
        return fut


async def until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait (polling) until `check()` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def submit_all(kiosk: HubClient, orders: list[dict[str, Any]]) -> list[str]:
    """Submit orders, 50 in flight; their order ids."""
    ids: list[str] = []
    for k in range(0, len(orders), 50):
        answers = await asyncio.gather(
            *(kiosk.request({"type": "order.submit", "order": o}, timeout=60) for o in orders[k : k + 50])
        )
        accepted = [a for a in answers if isinstance(a, OrderAccepted)]
        if len(accepted) != len(answers):
            raise SystemExit(f"the hub refused an order: {next(a for a in answers if a not in accepted)}")
        ids += [a.order_id for a in accepted]
    return ids


def open_on(client: HubClient, station: str) -> int:
    """Open tickets of `station` in a client's book."""
    return sum(
        1
        for o in client.book.orders.values()
        for t in o.tickets
        if t.station == station and t.state in (TicketState.NEW, TicketState.STARTED)
    )


async def quiet(app: TimedKitchenApp) -> None:
    """Let the screen settle: nothing pending with the hub, no redraw waiting, a paint since the last redraw."""
    await until(lambda: not app.state.pending and not app._redraw_pending, "a quiet screen")
    await asyncio.sleep(0.05)


async def burst(
    app: TimedKitchenApp, feed: Feeder, run: str, *, seed: int, arrived: list[float]
) -> tuple[float, float]:
    """100 orders whose events wait in the screen's socket, then are read at once: (ms until painted with all of
    them, ms until the first was read). The other screen of the station bumps them away afterwards."""
    conn = app.client._conn
    assert conn is not None
    want = len(app.entries) + BURST
    conn.transport.pause_reading()
    ids = await feed.submit(BURST, run, seed)
    await asyncio.sleep(0.2)
    arrived.clear()
    painted = app.painted(lambda: len(app.entries) == want)
    t0 = time.perf_counter()
    conn.transport.resume_reading()
    at = await asyncio.wait_for(painted, 30)
    first = (arrived[0] - t0) * 1000 if arrived else float("nan")
    await feed.bump(ids)
    await until(lambda: len(app.entries) == want - BURST, "the burst bumped away")
    await quiet(app)
    return (at - t0) * 1000, first


def redrawn_since(app: TimedKitchenApp, count: int) -> Callable[[], bool]:
    """True once the app has redrawn after its `count`th redraw."""
    return lambda: app.redraws > count


def hub_process(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """`kds serve` on a fresh SQLite file, printers to /dev/null."""
    cfg = tmp / "store.toml"
    cfg.write_text(quiet_printers((ROOT / "config/store.toml").read_text(encoding="utf-8")), encoding="utf-8")
    db = tmp / "kds.sqlite3"
    cmd = [sys.executable, "-m", "kdsapp.cli", "serve", "--quiet", "--db", str(db), "--port", str(port)]
    return subprocess.Popen(
        [*cmd, "--config", str(cfg)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process this bench started."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def feeder(url: str, config_path: str) -> None:
    """The feeding side, in a process of its own (so its clients' memory and work are not the screen's): a kiosk
    submits orders, the station's other screen (wok-2) sees them arrive and bumps them. Commands on stdin, one JSON
    object a line: {"submit": N, "run": …, "seed": …} answers the order ids once wok-2 has them all;
    {"bump": [ids]} answers once the hub has bumped them."""
    config = load_config(config_path)
    kiosk = HubClient.for_device(url, config.device("kiosk-1"))  # type: ignore[arg-type]
    other = HubClient.for_device(url, config.device("wok-2"))  # type: ignore[arg-type]
    await kiosk.connect()
    await other.connect()
    while line := await asyncio.to_thread(sys.stdin.readline):
        cmd = json.loads(line)
        if "submit" in cmd:
            want = open_on(other, "wok") + cmd["submit"]
            answer: Any = await submit_all(kiosk, wok_orders(cmd["submit"], cmd["run"], seed=cmd["seed"]))
            # The other screen of the station has them all: the hub has sent them to every wok screen.
            await until(at_least(other, want), "the orders at the other screen")
        else:
            await asyncio.gather(
                *(other.request({"type": "ticket.bump", "ticket_id": f"{i}/wok"}, timeout=60) for i in cmd["bump"])
            )
            answer = "bumped"
        print(json.dumps(answer), flush=True)
    await kiosk.close()
    await other.close()


def at_least(client: HubClient, n: int) -> Callable[[], bool]:
    """True once the client's book holds n open wok tickets."""
    return lambda: open_on(client, "wok") >= n


class Feeder:
    """The feeding process, driven from the bench."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, url: str, config_path: Path) -> Feeder:
        """Start it (connected when the first command is answered)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--feeder",
            url,
            str(config_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        return cls(proc)

    async def ask(self, cmd: dict[str, Any]) -> Any:
        """Send a command and wait for its answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if not line:
            raise SystemExit("the feeding process stopped")
        return json.loads(line)

    async def submit(self, n: int, run: str, seed: int) -> list[str]:
        """Submit n orders; their ids once the station's other screen has them."""
        ids: list[str] = await self.ask({"submit": n, "run": run, "seed": seed})
        return ids

    async def bump(self, ids: list[str]) -> None:
        """Bump these orders' wok tickets."""
        await self.ask({"bump": ids})

    async def stop(self) -> None:
        """Close its stdin and wait for it."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def bench_screen(
    config: StoreConfig, config_path: Path, url: str, *, bursts: int, presses: int
) -> dict[str, Any]:
    """The headless screen: bursts into 300 open tickets, and key to repaint."""
    feed = await Feeder.start(url, config_path)
    client = HubClient.for_device(url, config.device("wok-1"), backoff=Backoff(first=0.05, cap=0.3))  # type: ignore[arg-type]
    app = TimedKitchenApp(client, station="wok", close_client=True)
    freeze_start_up()  # as `kds kitchen` does (run_kitchen)
    burst_ms: list[float] = []
    first_frame_ms: list[float] = []
    key_ms: dict[str, list[float]] = {k: [] for k in dict.fromkeys(KEYS)}
    arrived: list[float] = []

    def on_frame(frame: HubFrame) -> None:
        if isinstance(frame, Event) and frame.kind is EventKind.ORDER_CREATED:
            arrived.append(time.perf_counter())

    async with app.run_test(size=SIZE):
        await until(lambda: client.state is LinkState.ONLINE and app._welcomed, "the screen online")
        client.listeners.insert(0, on_frame)
        run = f"bench-{os.getpid()}-{time.time_ns()}"
        await feed.submit(OPEN, run, seed=11)
        await until(lambda: len(app.entries) == OPEN, f"{OPEN} tickets on the screen")
        await quiet(app)
        rss_loaded = rss_mb(os.getpid())

        for b in range(bursts):
            total, first = await burst(app, feed, f"{run}-burst{b}", seed=100 + b, arrived=arrived)
            burst_ms.append(total)
            first_frame_ms.append(first)

        driver = app._driver
        assert driver is not None
        for n in range(presses):
            key = KEYS[n % len(KEYS)]
            await quiet(app)
            painted = app.painted(redrawn_since(app, app.redraws))
            t0 = time.perf_counter()
            driver.send_message(events.Key(key, KEY_CHARS.get(key)))
            at = await asyncio.wait_for(painted, 10)
            key_ms[key].append((at - t0) * 1000)
        await quiet(app)
        rss_end = rss_mb(os.getpid())
    await feed.stop()
    every = [v for vs in key_ms.values() for v in vs]
    return {
        "burst_ms": burst_ms,
        "burst_first_frame_ms": first_frame_ms,
        "key_ms": {k: v for k, v in key_ms.items()},
        "key_all_ms": every,
        "headless_rss_mb": {"with_300_open": rss_loaded, "at_end": rss_end},
    }


async def bench_process_rss(config: StoreConfig, url: str, tmp: Path) -> dict[str, Any]:
    """A real `kds kitchen` process on a pseudo-terminal of 160x45: its memory with 300 open tickets."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    cmd = [sys.executable, "-m", "kdsapp.cli", "kitchen", "--station", "wok", "--hub", url]
    proc = subprocess.Popen(
        [*cmd, "--queue", str(tmp / "queue-wok-1.jsonl")],
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()
    lock = threading.Lock()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            with lock:
                seen.extend(data)
                del seen[:-200_000]

    def shows(text: str) -> bool:
        with lock:
            return text.encode() in seen

    threading.Thread(target=drain, daemon=True).start()
    kiosk = HubClient.for_device(url, config.device("kiosk-1"))  # type: ignore[arg-type]
    try:
        await until(lambda: shows(" 0 open"), "the kitchen process on screen", timeout=60)
        await asyncio.sleep(1.0)
        idle = rss_mb(proc.pid)
        await kiosk.connect()
        await submit_all(kiosk, wok_orders(OPEN, f"rss-{os.getpid()}-{time.time_ns()}"))
        await until(lambda: shows(f" {OPEN} open"), f"'{OPEN} open' on the kitchen process's screen", timeout=60)
        await asyncio.sleep(3.0)  # a few clock ticks (each redraws the page)
        loaded = rss_mb(proc.pid)
        hwm = peak_mb(proc.pid)
    finally:
        await kiosk.close()
        stop(proc)
        os.close(master)
    return {"idle_mb": idle, "with_300_open_mb": loaded, "peak_mb": hwm}


def peak_mb(pid: int) -> float:
    """Peak resident memory of a process, MB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(bursts: int, presses: int) -> dict[str, Any]:
    """Both parts, each against a fresh hub."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for name in ("screen", "process"):
            part = tmp / name
            part.mkdir()
            port = _free_port()
            hub = hub_process(part, port)
            try:
                await _wait_port(port)
                config = load_config(part / "store.toml")
                url = f"ws://127.0.0.1:{port}"
                if name == "screen":
                    out.update(await bench_screen(config, part / "store.toml", url, bursts=bursts, presses=presses))
                else:
                    out["process_rss_mb"] = await bench_process_rss(config, url, part)
            finally:
                stop(hub)
    return out


def report(r: dict[str, Any]) -> dict[str, Any]:
    """Print the table; return the JSON summary."""
    burst, keys, proc = r["burst_ms"], r["key_all_ms"], r["process_rss_mb"]
    checks = {
        "burst_100_into_300_open_ms": (max(burst), TARGET_BURST_MS),
        "key_to_repaint_ms": (max(keys), TARGET_KEY_MS),
        "kitchen_process_rss_mb": (proc["with_300_open_mb"], TARGET_RSS_MB),
    }
    print(f"\nKitchen screen (wok, {SIZE[0]}x{SIZE[1]}, {OPEN} open tickets), {os.cpu_count()} CPUs")
    print(f"{'measure':<44}{'p50':>9}{'p99':>9}{'max':>9}   target")
    print("-" * 84)

    def row(name: str, vals: list[float], target: str = "") -> None:
        print(f"{name:<44}{_pct(vals, 50):>9.1f}{_pct(vals, 99):>9.1f}{max(vals):>9.1f}   {target}")

    row(f"burst of {BURST} events → painted, ms (x{len(burst)})", burst, f"< {TARGET_BURST_MS:.0f} ms")
    row("  of which: resume → first event read, ms", r["burst_first_frame_ms"])
    row(f"key → repaint, all keys, ms (x{len(keys)})", keys, f"< {TARGET_KEY_MS:.0f} ms")
    for k, vals in r["key_ms"].items():
        if vals:
            row(f"  {k} (x{len(vals)})", vals)
    print(
        f"{'kds kitchen process RSS, MB':<44}{'':>9}{'':>9}{proc['with_300_open_mb']:>9.1f}   < {TARGET_RSS_MB:.0f} MB"
        f"  (idle {proc['idle_mb']:.1f}, peak {proc['peak_mb']:.1f})"
    )
    h = r["headless_rss_mb"]
    name = "headless app (bench process) RSS, MB"
    print(f"{name:<44}{'':>18}{h['with_300_open']:>9.1f}   (at the end {h['at_end']:.1f})")
    verdicts = {name: "PASS" if value < target else "FAIL" for name, (value, target) in checks.items()}
    for name, v in verdicts.items():
        print(f"{name}: {v} ({checks[name][0]:.1f} < {checks[name][1]:.0f})")
    return {
        "size": list(SIZE),
        "open": OPEN,
        "burst": BURST,
        "burst_ms": {"p50": _pct(burst, 50), "max": max(burst), "runs": burst},
        "burst_first_frame_ms": {"p50": _pct(r["burst_first_frame_ms"], 50)},
        "key_ms": {"p50": _pct(keys, 50), "p99": _pct(keys, 99), "max": max(keys), "presses": len(keys)},
        "key_ms_by_key": {k: {"p50": _pct(v, 50), "max": max(v)} for k, v in r["key_ms"].items() if v},
        "process_rss_mb": proc,
        "headless_rss_mb": h,
        "targets": {name: target for name, (_v, target) in checks.items()},
        "verdict": verdicts,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--feeder"]:
        asyncio.run(feeder(sys.argv[2], sys.argv[3]))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bursts", type=int, default=7, help="bursts of 100 into 300 open (default: %(default)s)")
    ap.add_argument("--presses", type=int, default=50, help="key presses (default: %(default)s)")
    args = ap.parse_args()
    result = asyncio.run(main(args.bursts, args.presses))
    print(json.dumps(report(result)))
