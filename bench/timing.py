"""`make bench-timing`: a simulated day of the sample store, to measure the hub's kitchen timing (issue 14).

The real hub's decisions (`kds.hub.OrderHub`, in process, on a virtual clock: a day takes seconds) serve the
simulator's order mix (`kdsapp.simulate.OrderMix`: app deliveries and pickups, kiosk, shelf-to-table) arriving as a
store's day does: quiet mornings and afternoons, a lunch peak (11:30-13:30) and a dinner peak (17:30-19:30). A
simulated kitchen works the tickets: each station has `--cooks` cooks, each takes the oldest ticket at its station
(rush first) once the hub has fired it, presses start, and bumps it when done. What a dish really takes is not what
the config says: each item has a bias of its own (a log-normal factor around 1.15: the config is optimistic) and
each ticket some noise (±15 %), so the hub must learn. Every stored event is handed to the hub as stored
(`OrderHub.stored`), which is where it learns.

For each order it records the estimate the source was given at accept (`order.accepted`), the one in force halfway
between accept and the order's real ready time, and that ready time; and for deliveries whether the order was ready
(plus the rider's margin) by its due time. The same day runs with `fire_by_prep` off and on (same orders, same
kitchen). Printed as a table and one JSON object; a PNG chart (matplotlib) is written to `--png`.

Targets (issue 14): median absolute error of the estimate at accept under 2 minutes.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kds.config import StoreConfig, load_config  # noqa: E402
from kds.hub import Decision, OrderHub, Session  # noqa: E402
from kds.protocol import Delivery, OrderStatus, TicketState  # noqa: E402
from kdsapp.simulate import OrderMix  # noqa: E402

DAY = datetime(2026, 11, 25, tzinfo=ZoneInfo("Asia/Shanghai"))
OPEN_H, CLOSE_H = 10.0, 21.0
PEAKS = ((11.5, 13.5, 1.2), (17.5, 19.5, 1.5))
"""(from, to, orders per minute) on top of the base rate."""
BASE_PER_MIN = 0.25
COOKS = {"seafood": 10, "wok": 5, "grill": 3, "cold": 4, "bar": 2, "bakery": 2}
"""Tickets each station makes at once (a steamer takes many fish; a wok, one dish per cook). The hub is told (as
many screens as cooks at each station)."""
TICK_S = 15.0
TARGET_MEDIAN_S = 120.0


def rate(hour: float) -> float:
    """Orders per minute at this hour of the day."""
    extra = sum(r * math.sin(math.pi * (hour - a) / (b - a)) ** 2 for a, b, r in PEAKS if a <= hour <= b)
    return BASE_PER_MIN + extra


def arrivals(rng: random.Random, scale: float = 1.0) -> list[datetime]:
    """A day's order times (a Poisson process thinned to the day's rate, times `scale`)."""
    top = (BASE_PER_MIN + max(r for *_, r in PEAKS)) * scale
    t = OPEN_H * 60.0
    out: list[datetime] = []
    while True:
        t += rng.expovariate(top)
        if t >= CLOSE_H * 60.0:
            return out
        if rng.random() < rate(t / 60.0) * scale / top:
            out.append(DAY + timedelta(minutes=t))


@dataclass
class Tracked:
    accepted: datetime
    estimate: datetime
    due: datetime | None
    stations: int
    history: list[tuple[datetime, datetime]] = field(default_factory=list)
    ready: datetime | None = None
    first_part: datetime | None = None


class Day:
    """One simulated day on one hub."""

    def __init__(
        self, config: StoreConfig, plan: list[tuple[datetime, dict[str, Any], str]], cooks: dict[str, int], seed: int
    ):
        self.config = config
        self.now = plan[0][0] if plan else DAY
        self.hub = OrderHub(config, clock=lambda: self.now.astimezone(UTC))
        self.hub.load.screens = cooks
        self.sessions: dict[str, Session] = {}
        self.plan = plan
        self.cooks = cooks
        self.rng = random.Random(seed)
        self.bias: dict[tuple[str, str | None], float] = {}
        self.busy: dict[str, list[str]] = {s.id: [] for s in config.stations}
        self.orders: dict[str, Tracked] = {}
        self.events: list[tuple[datetime, int, str, Any]] = []
        self.n = 0

    def session(self, device: str) -> Session:
        if device not in self.sessions:
            dev = self.config.device(device)
            assert dev is not None and dev.token is not None
            hello: dict[str, Any] = {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value}
            if dev.station:
                hello["station"] = dev.station
            self.sessions[device] = self.hub.connect(json.dumps(hello))[0]
        return self.sessions[device]

    def send(self, device: str, msg: dict[str, Any]) -> Decision:
        self.n += 1
        d = self.hub.handle_frame(self.session(device), json.dumps({**msg, "ref": f"b-{self.n}"}))
        self.stored(d)
        return d

    def stored(self, d: Decision) -> None:
        self.hub.stored(d.events)  # as the server does once the batch is committed
        for rec in d.events:
            t = self.orders.get(rec.order_id)
            o = self.hub.orders.get(rec.order_id)
            if t is None or o is None:
                continue
            if o.ready_at_estimate is not None and (not t.history or t.history[-1][1] != o.ready_at_estimate):
                t.history.append((self.now, o.ready_at_estimate))
            if t.first_part is None and any(k.state is TicketState.DONE for k in o.tickets):
                t.first_part = self.now
            if t.ready is None and o.status is OrderStatus.READY:
                t.ready = self.now

    def at(self, when: datetime, kind: str, what: Any) -> None:
        self.n += 1
        heapq.heappush(self.events, (when, self.n, kind, what))

    def work(self, station: str, sku: str, cook: str | None) -> float:
        """What one ticket really takes (seconds): the config's time, this dish's bias, this ticket's noise."""
        key = (sku, cook)
        if key not in self.bias:
            self.bias[key] = self.rng.lognormvariate(math.log(1.15), 0.18)
        base = self.hub.prep.configured(station, sku, cook)
        return base * self.bias[key] * self.rng.uniform(0.85, 1.15)

    def assign(self) -> None:
        """Free cooks take the oldest fired ticket of their station (rush first)."""
        for station, working in self.busy.items():
            free = self.cooks.get(station, 1) - len(working)
            if free <= 0:
                continue
            queue = []
            for o in self.hub.orders.values():
                if not o.is_open:
                    continue
                for t in o.tickets:
                    if t.station == station and t.state is TicketState.NEW and not t.waiting and t.id not in working:
                        queue.append((0 if o.priority.value == "rush" else 1, t.fired_at or t.created_at, o, t))
            queue.sort(key=lambda q: (q[0], q[1]))
            for _r, _c, o, t in queue[:free]:
                device = f"{station}-1"
                self.send(device, {"type": "ticket.start", "ticket_id": t.id})
                items = [o.item(i) for i in t.items]
                took = max(self.work(station, it.sku, it.cook) for it in items if it is not None and not it.removed)
                working.append(t.id)
                self.at(self.now + timedelta(seconds=took), "done", (station, t.id))

    def run(self) -> list[Tracked]:
        for when, order, source in self.plan:
            self.at(when, "order", (order, source))
        end = DAY + timedelta(hours=CLOSE_H + 3)
        tick = DAY + timedelta(hours=OPEN_H)
        while tick < end:
            self.at(tick, "tick", None)
            tick += timedelta(seconds=TICK_S)
        while self.events:
            self.now, _n, kind, what = heapq.heappop(self.events)
            if kind == "order":
                order, source = what
                d = self.send(source, {"type": "order.submit", "order": order})
                if d.created is not None:
                    o = self.hub.orders[d.created]
                    f = o.fulfilment
                    due = f.due if isinstance(f, Delivery) else None
                    assert o.ready_at_estimate is not None
                    self.orders[o.id] = Tracked(self.now, o.ready_at_estimate, due, len(o.tickets))
            elif kind == "done":
                station, tid = what
                self.busy[station].remove(tid)
                self.send(f"{station}-1", {"type": "ticket.bump", "ticket_id": tid})
            else:
                self.stored(self.hub.fire_due())
            self.assign()
        return list(self.orders.values())


def halfway(t: Tracked) -> datetime | None:
    """The estimate the source had halfway between accept and ready."""
    if t.ready is None:
        return None
    mid = t.accepted + (t.ready - t.accepted) / 2
    told = [e for at, e in t.history if at <= mid]
    return told[-1] if told else t.estimate


def summary(done: list[Tracked], margin_s: float) -> dict[str, Any]:
    ready = [t for t in done if t.ready is not None]
    at_accept = [abs((t.estimate - t.ready).total_seconds()) for t in ready if t.ready]
    mids = [abs((h - t.ready).total_seconds()) for t in ready if t.ready and (h := halfway(t)) is not None]
    deliveries = [t for t in ready if t.due is not None]
    missed = [t for t in deliveries if t.ready and t.ready + timedelta(seconds=margin_s) > t.due]  # type: ignore[operator]
    spread = [(t.ready - t.first_part).total_seconds() for t in ready if t.ready and t.first_part and t.stations > 1]

    def pct(v: list[float], p: float) -> float:
        return round(sorted(v)[min(len(v) - 1, int(len(v) * p / 100))], 1) if v else 0.0

    return {
        "orders": len(done),
        "ready": len(ready),
        "accept_error_median_s": round(statistics.median(at_accept), 1) if at_accept else None,
        "accept_error_p90_s": pct(at_accept, 90),
        "halfway_error_median_s": round(statistics.median(mids), 1) if mids else None,
        "halfway_error_p90_s": pct(mids, 90),
        "deliveries": len(deliveries),
        "deliveries_missed": len(missed),
        "first_part_waits_median_s": round(statistics.median(spread), 1) if spread else None,
        "accept_bias_median_s": round(
            statistics.median([(t.estimate - t.ready).total_seconds() for t in ready if t.ready]), 1
        )
        if ready
        else None,
        "_errors": at_accept,
        "_mids": mids,
        "_hours": [
            (t.accepted.astimezone(DAY.tzinfo).hour, abs((t.estimate - t.ready).total_seconds()))
            for t in ready
            if t.ready
        ],
    }


def chart(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Error of the estimates by hour of the day and their spread, with fire by prep time off and on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, r in results.items():
        by_hour: dict[int, list[float]] = {}
        for h, e in r["_hours"]:
            by_hour.setdefault(h, []).append(e / 60)
        hours = sorted(by_hour)
        colour = "C0" if name.endswith("off") else "C1"
        medians = [statistics.median(by_hour[h]) for h in hours]
        p90s = [sorted(by_hour[h])[int(len(by_hour[h]) * 0.9)] for h in hours]
        left.plot(hours, medians, marker="o", color=colour, label=f"{name}: median")
        left.plot(hours, p90s, ls="--", color=colour, label=f"{name}: p90")
        right.hist([e / 60 for e in r["_errors"]], bins=40, alpha=0.5, color=colour, label=name)
    left.axhline(TARGET_MEDIAN_S / 60, color="grey", lw=0.8, ls=":", label="target: median 2 min")
    left.set(xlabel="hour of the day (order accepted)", ylabel="|estimate at accept - ready| (min)",
             title="Ready-time estimate error by hour")  # fmt: skip
    right.set(xlabel="|estimate at accept - ready| (min)", ylabel="orders", title="Error at accept, whole day")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="the day's orders x this (the cooks stay)")
    ap.add_argument("--png", type=Path, default=ROOT / "var" / "bench-timing.png")
    args = ap.parse_args(argv)
    config = load_config(ROOT / "config" / "store.toml")
    rng = random.Random(args.seed)
    mix = OrderMix(config, rng=rng, run_id="day", cancel_share=0, amend_share=0)
    plan = []
    for when in arrivals(rng, args.scale):
        p = mix.next(when)
        plan.append((when, p.order, p.source))
    results: dict[str, dict[str, Any]] = {}
    for name, on in (("fire by prep off", False), ("fire by prep on", True)):
        cfg = config.model_copy(update={"timing": config.timing.model_copy(update={"fire_by_prep": on})})
        done = Day(cfg, plan, COOKS, args.seed).run()
        results[name] = summary(done, cfg.timing.rider_margin_s)
    chart(results, args.png)
    cooks = ", ".join(f"{k} {v}" for k, v in COOKS.items())
    print(f"A simulated day: {len(plan)} orders; cooks: {cooks} (bench/timing.py --seed {args.seed})")
    print(
        f"  {'':22} {'at accept p50/p90':>20} {'halfway p50/p90':>18} {'deliveries missed':>18} {'parts wait p50':>15}"
    )
    for name, r in results.items():
        a = f"{r['accept_error_median_s'] / 60:.1f}/{r['accept_error_p90_s'] / 60:.1f} min"
        h = f"{r['halfway_error_median_s'] / 60:.1f}/{r['halfway_error_p90_s'] / 60:.1f} min"
        m = f"{r['deliveries_missed']} of {r['deliveries']}"
        s = f"{r['first_part_waits_median_s'] / 60:.1f} min"
        print(f"  {name:22} {a:>20} {h:>18} {m:>18} {s:>15}")
    best = results["fire by prep off"]["accept_error_median_s"]
    met = best is not None and best < TARGET_MEDIAN_S
    print(f"  target: median error at accept under 2 min: {'met' if met else 'NOT met'}; chart: {args.png}")
    print(json.dumps({k: {n: v for n, v in r.items() if not n.startswith("_")} for k, r in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
