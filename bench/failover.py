"""Failover and restart: how long the kitchen waits for a hub when one restarts or the leading one dies.

    .venv/bin/python bench/failover.py [--pg postgresql://USER:PASSWORD@127.0.0.1:5432/postgres]
                                       [--open 5000 --closed 3000 --repeat 5]

Makes a fresh database (a temporary SQLite file; with `--pg`, also a new PostgreSQL database, dropped at the end)
and fills it with a day's realistic traffic, decided by a real `OrderHub` and stored through `Store.commit` (the
hub's own commit path, in this process, so filling takes seconds rather than minutes): `--closed` orders earlier
in the day, each cooked, bumped, called and handed over (a few cancelled), then `--open` open orders from the last
40 minutes (some started, some ready and called) and a few just handed over. The simulator's order mix
(`kdsapp.simulate.OrderMix`); every print job marked printed.

Then, with `kds serve` in processes of its own (loopback only; printers write to /dev/null):
- **restart** (SQLite, and PostgreSQL with `--pg`): from starting `kds serve` to the hub listening, and to a counter
  screen's welcome being complete (its last `snapshot.page` received: together they hold every open order; they
  are parsed afterwards to check the count);
- **takeover** (PostgreSQL only): two hubs; a source connected to the following hub; the leading hub is killed
  (SIGKILL, then in other rounds SIGTERM) and at once the source submits an order: the time until its
  `order.accepted` (the follower has noticed, taken the lead, caught up and decided it). The advisory lock is
  watched meanwhile (`pg_locks`, every 10 ms) for when it was released and taken again. The killed hub is started
  again as a follower for the next round.

Targets: restart under 2 s and takeover under 3 s with 5,000 open orders (issue 10). Prints a table (p50, max,
PASS/FAIL) and one JSON object. Figures, not a test: nothing here gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reliability import hello  # noqa: E402
from bench.run import _free_port, _pct  # noqa: E402
from bench.soak import quiet_printers  # noqa: E402
from kds.client import HubClient  # noqa: E402
from kds.config import Role, StoreConfig, load_config  # noqa: E402
from kds.hub import Decision, OrderHub, Session  # noqa: E402
from kds.protocol import Error, ErrorCode, OrderAccepted  # noqa: E402
from kds.store import JOBS, Store, database_url  # noqa: E402
from kdsapp.simulate import OrderMix  # noqa: E402

RESTART_TARGET_S = 2.0
TAKEOVER_TARGET_S = 3.0
SCREEN = "counter-1"
"""The screen whose welcome is timed: the counter sees every open order."""


# ------------------------------------------------------------------------------------------------ filling


class _Clock:
    """The fill's clock: the day goes by as orders come in."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def fill(db: str, config: StoreConfig, *, open_orders: int, closed: int, seed: int = 7) -> dict[str, Any]:
    """A day's traffic into a fresh database, decided by an `OrderHub` and stored with `Store.commit`."""
    t0 = time.perf_counter()
    store = Store(db, store_id=config.store.id)
    store.create_schema()
    if store.shared and not store.try_lead():
        raise SystemExit("another hub leads this database")
    real_now = datetime.now(UTC)
    clock = _Clock(real_now - timedelta(hours=3))
    hub = OrderHub(config, clock=clock)
    hub.restore([], [], 0, [])
    rng = random.Random(seed)
    mix = OrderMix(config, rng=rng, run_id=uuid.uuid4().hex[:6], cancel_share=0.0, amend_share=0.0)
    sessions: dict[str, Session] = {}
    cooks: dict[str, Session] = {}
    for d in config.devices:
        sessions[d.id] = Session(d, 0)
        if d.role is Role.KITCHEN and d.station not in cooks:
            cooks[d.station or ""] = sessions[d.id]
    counter = next(s for s in sessions.values() if s.device.role is Role.COUNTER)
    pending: list[Decision] = []
    counts = {"decisions": 0}

    def flush() -> None:
        hub.seal()
        records = [r for d in pending for r in d.events]
        jobs = [j for d in pending for j in d.jobs]
        store.commit(records, jobs)
        for r in records:
            r.committed()
        pending.clear()

    def act(session: Session, msg: dict[str, Any]) -> dict[str, Any]:
        d = hub.handle_frame(session, json.dumps({"ref": f"r{counts['decisions']}", **msg}))
        counts["decisions"] += 1
        reply: dict[str, Any] = json.loads(d.replies[0][1])
        if reply["type"] == "error":
            raise SystemExit(f"fill: the hub refused {msg['type']}: {reply}")
        pending.append(d)
        if len(pending) >= 300:
            flush()
        return reply

    def submit() -> str:
        planned = mix.next(clock.now)
        reply = act(sessions[planned.source], {"type": "order.submit", "order": planned.order})
        return str(reply["order_id"])

    def cook(order_id: str, *, bump: bool) -> None:
        for ticket in list(hub.orders[order_id].tickets):
            if ticket.station in cooks:
                act(cooks[ticket.station], {"type": "ticket.start", "ticket_id": ticket.id})
                if bump:
                    act(cooks[ticket.station], {"type": "ticket.bump", "ticket_id": ticket.id})

    def hand_over(order_id: str) -> None:
        act(counter, {"type": "order.call", "order_id": order_id})
        act(counter, {"type": "order.handover", "order_id": order_id, "to": "customer"})

    # Earlier in the day: orders that came, were cooked and handed over (3 % cancelled).
    span = timedelta(hours=3) - timedelta(minutes=40)
    for k in range(closed):
        clock.now = real_now - timedelta(hours=3) + span * (k / max(1, closed))
        oid = submit()
        if rng.random() < 0.03:
            act(sessions[hub.orders[oid].source], {"type": "order.cancel", "order_id": oid, "reason": "changed mind"})
            continue
        cook(oid, bump=True)
        hand_over(oid)
    # The rush now: open orders of the last 40 minutes, older ones further along; a few just handed over.
    just_closed = max(1, open_orders // 50)
    live: list[str] = []
    for k in range(open_orders + just_closed):
        clock.now = real_now - timedelta(minutes=40) + timedelta(minutes=39) * (k / (open_orders + just_closed))
        live.append(submit())
    for k, oid in enumerate(live):
        share = k / len(live)
        if k < just_closed:
            cook(oid, bump=True)
            hand_over(oid)
        elif share < 0.3:
            cook(oid, bump=True)
            if rng.random() < 0.5:
                act(counter, {"type": "order.call", "order_id": oid})
        elif share < 0.6:
            cook(oid, bump=False)
    clock.now = real_now
    flush()
    with store.engine.begin() as conn:  # the printers printed everything
        conn.execute(sa.update(JOBS).values(state="printed"))
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("orders", "events", "print_jobs"):  # the planner's statistics, as autovacuum keeps them
            conn.execute(sa.text(f"ANALYZE {table}"))
    events = store.count_events()
    store.close()
    n_open = sum(1 for o in hub.orders.values() if o.is_open)
    return {
        "open": n_open,
        "closed": len(hub.orders) - n_open,
        "events": events,
        "decisions": counts["decisions"],
        "fill_s": round(time.perf_counter() - t0, 1),
    }


# ------------------------------------------------------------------------------------------------ measuring


def _serve(db: str, cfg: Path, port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "kdsapp.cli", "serve", "--db", db, "--port", str(port), "--config", str(cfg)]
    if log is None:
        cmd.append("--quiet")
    err = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)


async def _listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kds serve exited with {proc.returncode}")
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.005)
            continue
        w.close()
        return
    raise TimeoutError(f"nothing listening on {port} after {timeout:g} s")


async def _welcome(url: str, config: StoreConfig, device: str) -> tuple[float, int]:
    """Say hello, read the welcome and every snapshot page: when the last one arrived (perf_counter), and the
    number of orders they carry (counted afterwards: parsing is the screen's time, not the hub's)."""
    async with ws_connect(url, max_size=None, open_timeout=30) as c:
        await c.send(json.dumps(hello(config, device)))
        w = json.loads(await asyncio.wait_for(c.recv(), 60))
        if w.get("type") != "welcome":
            raise SystemExit(f"{device}: no welcome: {w}")
        pages = [await asyncio.wait_for(c.recv(), 60) for _ in range(w["pages"])]
        done = time.perf_counter()
    return done, len(w["snapshot"]["orders"]) + sum(len(json.loads(p)["snapshot"]["orders"]) for p in pages)


async def restart_runs(db: str, cfg: Path, config: StoreConfig, repeat: int) -> list[dict[str, float]]:
    """Start `kds serve` on the filled database `repeat` times: time to listening, and to a complete welcome."""
    runs = []
    for _ in range(repeat):
        port = _free_port()
        t0 = time.perf_counter()
        proc = _serve(db, cfg, port)
        try:
            await _listening(port, proc)
            t_listen = time.perf_counter() - t0
            done, orders = await _welcome(f"ws://127.0.0.1:{port}", config, SCREEN)
            t_welcome = done - t0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        runs.append({"listening_s": round(t_listen, 3), "welcome_s": round(t_welcome, 3), "orders": orders})
    return runs


class _LockWatch:
    """Who holds the store's advisory lock, polled every 10 ms: when it was released and when taken again."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(database_url(url), isolation_level="AUTOCOMMIT")
        self.conn = self.engine.connect()

    def holder(self) -> int | None:
        pid = self.conn.execute(
            sa.text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted LIMIT 1")
        ).scalar()
        return int(pid) if pid is not None else None

    async def watch(self, before: int | None, t0: float, out: dict[str, float], stop: asyncio.Event) -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            h = self.holder()
            now = time.perf_counter() - t0
            if h != before and "released_s" not in out:
                out["released_s"] = round(now, 3)
            if h is not None and h != before:
                out["taken_s"] = round(now, 3)
                return
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


async def _order_through(client: HubClient, label: str, deadline_s: float = 120.0) -> OrderAccepted:
    """Submit one order and wait for its acceptance, sending it again after a retryable answer."""
    order = {"key": label, "channel": "app", "fulfilment": {"type": "pickup"}, "items": [{"sku": "WOK-MAPO"}]}
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            r = await client.request({"type": "order.submit", "order": order}, timeout=deadline_s)
        except Exception:  # not connected (yet): try again shortly
            await asyncio.sleep(0.02)
            continue
        if isinstance(r, OrderAccepted):
            return r
        if not isinstance(r, Error) or r.code not in (ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED):
            raise SystemExit(f"takeover: the order was refused: {r}")
        await asyncio.sleep(0.02)
    raise TimeoutError("takeover: no order.accepted in time")


async def takeover_runs(url: str, cfg: Path, config: StoreConfig, repeat: int, logs: Path) -> dict[str, list[Any]]:
    """Two hubs; kill the leader (SIGKILL, then SIGTERM rounds); time until the follower accepts an order."""
    ports = [_free_port(), _free_port()]
    procs: list[subprocess.Popen[bytes] | None] = [None, None]
    watch = _LockWatch(url)
    out: dict[str, list[Any]] = {"SIGKILL": [], "SIGTERM": []}
    try:
        for i in (0, 1):  # the first one started leads
            procs[i] = _serve(url, cfg, ports[i], logs / f"hub{i}.log")
            await _listening(ports[i], procs[i])  # type: ignore[arg-type]
        lead = 0
        await asyncio.sleep(1.0)
        for sig in (signal.SIGKILL, signal.SIGTERM):
            for k in range(repeat):
                follow = 1 - lead
                leader = procs[lead]
                assert leader is not None
                src = HubClient.for_device(f"ws://127.0.0.1:{ports[follow]}", config.device("app-backend"))  # type: ignore[arg-type]
                await src.connect(timeout=30)
                await _order_through(src, f"warm-{sig.name}-{k}-{uuid.uuid4().hex[:6]}")  # the relay works
                holder = watch.holder()
                times: dict[str, float] = {}
                stop = asyncio.Event()
                t0 = time.perf_counter()
                os.kill(leader.pid, sig)
                watcher = asyncio.ensure_future(watch.watch(holder, t0, times, stop))
                await _order_through(src, f"take-{sig.name}-{k}-{uuid.uuid4().hex[:6]}")
                times["accepted_s"] = round(time.perf_counter() - t0, 3)
                await asyncio.wait_for(watcher, 10)
                stop.set()
                await src.close()
                leader.wait(timeout=30)
                out[sig.name].append(times)
                # The old leader comes back as a follower; the next round kills the new leader.
                procs[lead] = _serve(url, cfg, ports[lead], logs / f"hub{lead}.log")
                await _listening(ports[lead], procs[lead])  # type: ignore[arg-type]
                await asyncio.sleep(1.0)
                lead = follow
    finally:
        for p in procs:
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        watch.close()
    return out


# ------------------------------------------------------------------------------------------------ reporting


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(_pct(values, 50), 3), "max": round(max(values), 3)}


@contextmanager
def _pg_database(pg: str) -> Iterator[str]:
    name = f"kds_failover_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(database_url(pg), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(database_url(pg)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def run(pg: str | None, open_orders: int, closed: int, repeat: int, only: str | None = None) -> dict[str, Any]:
    """Fill each database, measure, clean up."""
    result: dict[str, Any] = {
        "targets": {"restart_s": RESTART_TARGET_S, "takeover_s": TAKEOVER_TARGET_S, "open_orders": open_orders},
        "fill": {},
        "restart": {},
        "takeover": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "store.toml"
        cfg.write_text(quiet_printers((ROOT / "config/store.toml").read_text(encoding="utf-8")), encoding="utf-8")
        config = load_config(cfg)
        db = str(Path(tmp) / "failover.sqlite3")
        if only != "takeover" or not pg:
            result["fill"]["sqlite"] = fill(db, config, open_orders=open_orders, closed=closed)
            print(f"filled SQLite: {result['fill']['sqlite']}", file=sys.stderr, flush=True)
            result["restart"]["sqlite"] = await restart_runs(db, cfg, config, repeat)
        if pg:
            with _pg_database(pg) as url:
                result["fill"]["postgresql"] = fill(url, config, open_orders=open_orders, closed=closed)
                print(f"filled PostgreSQL: {result['fill']['postgresql']}", file=sys.stderr, flush=True)
                if only != "takeover":
                    result["restart"]["postgresql"] = await restart_runs(url, cfg, config, repeat)
                if only != "restart":
                    result["takeover"] = await takeover_runs(url, cfg, config, repeat, Path(tmp))
    return result


def report(result: dict[str, Any]) -> list[str]:
    """The readable table, with a summary (p50/max, PASS/FAIL) added to `result`."""
    t = result["targets"]
    fill_sql = next(iter(result["fill"].values()))
    lines = [
        f"\nfailover and restart: {fill_sql['open']:,} open orders, {fill_sql['closed']:,} closed, "
        f"{fill_sql['events']:,} events; targets: restart < {t['restart_s']:g} s, takeover < {t['takeover_s']:g} s",
        f"  {'what':<56} {'p50':>8} {'max':>8}  {'target':>7}  result",
    ]
    summary: dict[str, Any] = {}

    def row(name: str, values: list[float], target: float | None) -> None:
        s = _stats(values)
        verdict = "" if target is None else ("PASS" if s["max"] < target else "FAIL")
        if target is not None:
            s["pass"] = verdict == "PASS"
        summary[name] = s
        tgt = f"< {target:g} s" if target is not None else ""
        lines.append(f"  {name:<56} {s['p50']:>6.2f} s {s['max']:>6.2f} s  {tgt:>7}  {verdict}")

    for backend, runs in result["restart"].items():
        n = runs[0]["orders"]
        row(f"restart on {backend}: hub listening", [r["listening_s"] for r in runs], None)
        row(f"restart on {backend}: {SCREEN} has its {n:,} orders", [r["welcome_s"] for r in runs], t["restart_s"])
    for sig, runs in result["takeover"].items():
        if not runs:
            continue
        row(f"takeover after {sig}: lock released", [r.get("released_s", float("nan")) for r in runs], None)
        row(f"takeover after {sig}: lock taken by the follower", [r.get("taken_s", float("nan")) for r in runs], None)
        row(f"takeover after {sig}: order accepted via the follower", [r["accepted_s"] for r in runs], t["takeover_s"])
    result["summary"] = summary
    return lines


def main() -> None:
    """Parse arguments, run, print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", default=os.environ.get("KDS_TEST_POSTGRES_URL"), help="a PostgreSQL server URL")
    ap.add_argument("--open", type=int, default=5000, help="open orders in the database")
    ap.add_argument("--closed", type=int, default=3000, help="orders closed earlier in the day")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each measurement")
    ap.add_argument("--only", choices=["restart", "takeover"], help="one of the two measurements")
    args = ap.parse_args()
    result = asyncio.run(run(args.pg or None, args.open, args.closed, max(1, args.repeat), args.only))
    for line in report(result):
        print(line)
    if not args.pg:
        print("  (takeover needs PostgreSQL: --pg postgresql://… or PG=… make bench-failover)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
