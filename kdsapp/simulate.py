"""`kds simulate`: a realistic Hema-like order mix fed through the real protocol, and a simulated kitchen.

Three parts:
- `OrderMix` makes the orders (pure, seeded): ~60 % app orders (deliveries due in 30–45 minutes, or pickups),
  ~25 % kiosk orders (dine-in with a table, or takeaway), ~15 % shelf-to-table seafood (weighed live seafood with a
  cooking method, a claim tag and a table). Rush orders, notes, allergens, modifiers, Chinese item names.
- `run_simulation` sends them open-loop at `rate` orders per second from the config's source devices (one
  `HubClient` each), measures the acknowledgement latency (order.submit sent → order.accepted received), and has a
  share of the orders later cancelled or amended by their source.
- `run_kitchen_bots` plays the kitchen and the counter (start, bump, call, hand over) so a demo keeps flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from kds.client import Backoff, HubClient, NotConnected, Refused
from kds.config import CatalogueItem, Channel, Device, Role, SoldBy, StoreConfig
from kds.protocol import (
    Ack,
    Error,
    ErrorCode,
    Event,
    OrderAccepted,
    OrderStatus,
    OrderView,
    Priority,
    TicketState,
    TicketView,
    Welcome,
)
from kds.view import CLOSED
from kds.wire import Answer, HubFrame

DEFAULT_ORDERS = 100
CHANNEL_SHARES: dict[Channel, float] = {Channel.APP: 0.60, Channel.KIOSK: 0.25, Channel.SHELF: 0.15}
RUSH_SHARE = 0.08
ZH_NAMES_SHARE = 0.3
"""Orders whose item names are sent in Chinese (the customer used the app or kiosk in Chinese)."""

CATEGORY_WEIGHTS = {
    "hot_dishes": 3.0,
    "noodles_congee": 2.0,
    "grill": 1.5,
    "cold": 1.5,
    "drinks": 3.0,
    "bakery": 1.5,
    "seasonal": 0.3,
}
MODIFIERS = {
    "hot_dishes": ["less spicy", "extra spicy", "no coriander", "less oil", "no MSG", "少辣", "不要香菜"],
    "noodles_congee": ["no coriander", "no scallion", "extra noodles", "less salt", "加辣", "不要葱"],
    "grill": ["extra spicy", "no cumin", "well done", "medium rare", "少盐"],
    "cold": ["no wasabi", "extra ginger", "less vinegar", "sauce on the side"],
    "drinks": ["less sugar", "half sugar", "no ice", "less ice", "hot", "少冰", "去冰", "三分糖"],
    "bakery": ["warm it up", "cut in half", "gift box"],
    "live_seafood": ["less garlic", "extra garlic", "no chili", "head in congee", "少盐", "多放蒜"],
}
# Allergies customers declare most often (only those the store declares in [[allergens]] are used).
DECLARED_ALLERGENS = ["peanut", "shellfish", "gluten", "sesame", "dairy", "egg", "tree_nuts"]
CUSTOMERS = [
    "王芳",
    "李伟",
    "张敏",
    "刘洋",
    "陈静",
    "杨磊",
    "赵丽",
    "黄强",
    "周婷",
    "吴军",
    "Wang Fang",
    "Li Wei",
    "Zhang Min",
    "Chen Jing",
    "Emma",
    "Lucas",
    "Sophie",
    "Daniel",
]
ADDRESSES = [
    "浦东新区金桥路1688号3栋1201室",
    "碧云路199弄12号601",
    "Jinqiao Rd 1688, Bldg 3, Rm 1201",
    "Green City, Lane 500, No. 7",
    "新金桥路58号银东大厦18楼前台",
    "Biyun International Community, Bldg 5-2101",
]
ORDER_NOTES = {
    Channel.APP: [
        "Please call when you arrive",
        "Leave it at the reception",
        "请放门口，不要敲门",
        "Cutlery for 3",
        "No cutlery please",
        "Birthday dinner, thanks!",
        "请尽快送达",
    ],
    Channel.KIOSK: ["Serve the drinks first", "High chair please", "Birthday, bring a candle", "分开装", "快一点"],
    Channel.SHELF: [
        "Split into two plates",
        "Serve the lobster head as congee afterwards",
        "请快一点，孩子饿了",
        "Photo before cooking please",
        "Extra bowls for 4",
    ],
}
ITEM_NOTES = ["Sauce on the side", "Cut into small pieces for a child", "Very hot please", "酱汁分开", "不要太咸"]
AMEND_NOTES = [
    "Customer called: no coriander on anything",
    "改为少辣",
    "Customer will be 10 minutes late",
    "Pack everything to take away",
    "Add two extra bowls",
]
CANCEL_REASONS = [
    "customer cancelled in the app",
    "payment refunded",
    "customer left",
    "顾客取消",
    "ordered twice by mistake",
]
COOK_S: dict[str, tuple[float, float]] = {
    "seafood": (8.0, 20.0),
    "wok": (4.0, 10.0),
    "grill": (6.0, 14.0),
    "cold": (3.0, 8.0),
    "bar": (1.5, 4.0),
    "bakery": (2.0, 6.0),
}
"""How long the simulated kitchen takes for a ticket, per station, in seconds at speed 1."""


class SimulationError(Exception):
    """The simulation cannot run (no hub, no source devices, refused tokens)."""


# ------------------------------------------------------------------------------------------------ the order mix


@dataclass(slots=True)
class PlannedOrder:
    """One order the simulator will submit, and what its source will do with it afterwards."""

    index: int
    source: str
    order: dict[str, Any]
    followup: dict[str, Any] | None = None
    """The order.cancel or order.amend its source sends later (without `order_id`), if any."""
    followup_after: float = 0.0
    """Seconds after acceptance before the follow-up, as a share of the configured delay range (0–1)."""

    @property
    def channel(self) -> str:
        """The order's channel."""
        return str(self.order["channel"])


class OrderMix:
    """Makes realistic orders from the store's catalogue and source devices. Pure and seeded: no I/O."""

    def __init__(
        self,
        config: StoreConfig,
        *,
        rng: random.Random,
        run_id: str,
        cancel_share: float = 0.03,
        amend_share: float = 0.05,
    ) -> None:
        self.config = config
        self.rng = rng
        self.run_id = run_id
        self.cancel_share = cancel_share
        self.amend_share = amend_share
        self.tz = ZoneInfo(config.store.timezone)
        self.sources: dict[Channel, list[Device]] = {
            ch: [d for d in config.devices if d.role is Role.SOURCE and ch in d.channels] for ch in Channel
        }
        self.channels = [ch for ch in CHANNEL_SHARES if self.sources[ch]]
        if not self.channels:
            raise SimulationError('the config has no source device (role = "source" with channels)')
        self.weights = [CHANNEL_SHARES[ch] for ch in self.channels]
        # Kitchen dishes: sold by the piece, no cooking method to choose. Shelf goods: those with cooking methods.
        self.dishes = [i for i in config.catalogue if not i.methods and i.sold_by is SoldBy.EACH]
        self.dish_weights = [CATEGORY_WEIGHTS.get(i.category, 1.0) for i in self.dishes]
        self.sides = [i for i in self.dishes if i.category in ("drinks", "bakery", "hot_dishes")] or self.dishes
        self.shelf_goods = [i for i in config.catalogue if i.methods]
        if not self.dishes:
            raise SimulationError("the catalogue has no item that can be ordered without a cooking method")
        if not self.shelf_goods and Channel.SHELF in self.channels:
            k = self.channels.index(Channel.SHELF)
            del self.channels[k], self.weights[k]
        self.count = 0
        self.tag = rng.randint(1000, 8999)

    @property
    def source_ids(self) -> list[str]:
        """Every source device the mix may use."""
        return [d.id for ch in self.channels for d in self.sources[ch]]

    def next(self, now: datetime | None = None) -> PlannedOrder:
        """The next order (its key is unique within the run)."""
        now = (now or datetime.now(UTC)).astimezone(self.tz)
        rng = self.rng
        channel = rng.choices(self.channels, self.weights)[0]
        source = rng.choice(self.sources[channel])
        index = self.count
        self.count += 1
        zh = rng.random() < (0.5 if channel is Channel.SHELF else ZH_NAMES_SHARE)
        if channel is Channel.APP:
            order = self._app(now, zh)
        elif channel is Channel.KIOSK:
            order = self._kiosk(now, zh)
        else:
            order = self._shelf(zh)
        order = {"key": f"sim-{self.run_id}-{index:06d}", "channel": channel.value, **order}
        if rng.random() < RUSH_SHARE:
            order["priority"] = "rush"
        if rng.random() < 0.2:
            order["note"] = rng.choice(ORDER_NOTES[channel])
        planned = PlannedOrder(index, source.id, order)
        roll = rng.random()
        if roll < self.cancel_share:
            planned.followup = self.cancellation()
        elif roll < self.cancel_share + self.amend_share:
            planned.followup = self.amendment(order)
        planned.followup_after = rng.random()
        return planned

    # -- channels

    def _customer(self, phone: bool) -> dict[str, Any]:
        c: dict[str, Any] = {"name": self.rng.choice(CUSTOMERS)}
        if phone:
            c["phone"] = f"1{self.rng.choice('3589')}{self.rng.randint(0, 9)}****{self.rng.randint(0, 9999):04d}"
        return c

    def _app(self, now: datetime, zh: bool) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.7:
            due = now + timedelta(minutes=rng.randint(30, 45))
            fulfilment: dict[str, Any] = {
                "type": "delivery",
                "due": due.isoformat(timespec="seconds"),
                "address": rng.choice(ADDRESSES),
            }
        else:
            fulfilment = {"type": "pickup"}
            if rng.random() < 0.6:
                fulfilment["at"] = (now + timedelta(minutes=rng.randint(15, 40))).isoformat(timespec="seconds")
        items = self._dishes(rng.choices([1, 2, 3, 4, 5], [2, 4, 3, 2, 1])[0], zh)
        return {"fulfilment": fulfilment, "customer": self._customer(phone=True), "items": items}

    def _kiosk(self, now: datetime, zh: bool) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.6:
            fulfilment: dict[str, Any] = {"type": "dine_in", "table": str(rng.randint(1, 48))}
        else:
            fulfilment = {"type": "pickup"}
        order: dict[str, Any] = {
            "fulfilment": fulfilment,
            "items": self._dishes(rng.choices([1, 2, 3, 4], [3, 4, 2, 1])[0], zh),
        }
        if rng.random() < 0.4:
            order["customer"] = self._customer(phone=False)
        return order

    def _shelf(self, zh: bool) -> dict[str, Any]:
        rng = self.rng
        goods = rng.sample(self.shelf_goods, k=min(len(self.shelf_goods), rng.choices([1, 2, 3], [5, 3, 1])[0]))
        items = [self._shelf_item(g, zh) for g in goods]
        if rng.random() < 0.4:
            items.extend(self._dishes(rng.randint(1, 2), zh, pool=self.sides))
        return {
            "fulfilment": {"type": "dine_in", "table": str(rng.randint(1, 48))},
            "customer": self._customer(phone=rng.random() < 0.5),
            "items": items,
        }

    # -- items

    def _name(self, item: CatalogueItem, zh: bool) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.15:
            return {}  # the hub fills in the catalogue name
        return {"name": item.name_zh if zh and item.name_zh else item.name}

    def _decorate(self, line: dict[str, Any], item: CatalogueItem) -> dict[str, Any]:
        rng = self.rng
        mods = MODIFIERS.get(item.category, [])
        if mods and rng.random() < 0.3:
            line["modifiers"] = rng.sample(mods, k=min(len(mods), rng.choice([1, 1, 2])))
        declared = [a for a in DECLARED_ALLERGENS if self.config.allergen(a) is not None]
        if declared and rng.random() < 0.05:
            line["allergens"] = [rng.choice(declared)]
        if rng.random() < 0.05:
            line["note"] = rng.choice(ITEM_NOTES)
        return line

    def _dishes(self, n: int, zh: bool, pool: list[CatalogueItem] | None = None) -> list[dict[str, Any]]:
        rng = self.rng
        picked = rng.choices(self.dishes, self.dish_weights, k=n) if pool is None else rng.choices(pool, k=n)
        lines: list[dict[str, Any]] = []
        for item in {i.sku: i for i in picked}.values():  # one line per SKU
            qty = rng.choices([1, 2, 3, 4], [8, 3, 1, 0.3])[0]
            lines.append(self._decorate({"sku": item.sku, **self._name(item, zh), "qty": qty}, item))
        return lines

    def _shelf_item(self, item: CatalogueItem, zh: bool) -> dict[str, Any]:
        rng = self.rng
        line: dict[str, Any] = {"sku": item.sku, **self._name(item, zh)}
        if item.sold_by is SoldBy.WEIGHT:
            lo = item.min_weight_g or 300
            hi = item.max_weight_g or max(lo, 1500)
            # Most pieces are on the small side of the plausible range; weights to the nearest 5 g.
            w = rng.triangular(lo, hi, lo + (hi - lo) * 0.3)
            line["weight_g"] = min(hi, max(lo, int(round(w / 5) * 5)))
        else:
            line["qty"] = rng.choice([1, 2, 2, 3, 4, 6])
        line["cook"] = rng.choice(item.methods)
        self.tag = 1000 + (self.tag - 999) % 9000
        line["tag"] = f"T-{self.tag}"
        return self._decorate(line, item)

    # -- follow-ups

    def cancellation(self) -> dict[str, Any]:
        """An order.cancel (its `order_id` is added once the order is accepted)."""
        return {"type": "order.cancel", "reason": self.rng.choice(CANCEL_REASONS)}

    def amendment(self, order: dict[str, Any]) -> dict[str, Any]:
        """An order.amend of this order: add an item, remove one, swap one, or change a note."""
        rng = self.rng
        n_items = len(order["items"])
        kinds = ["add", "note", "item_note"] + (["remove", "swap"] if n_items >= 2 else [])
        kind = rng.choice(kinds)
        msg: dict[str, Any] = {"type": "order.amend"}
        # Item ids are the positions of the submitted lines, from "1".
        if kind in ("add", "swap"):
            msg["add"] = self._dishes(1, False, pool=self.sides)
        if kind in ("remove", "swap"):
            msg["remove"] = [str(rng.randint(1, n_items))]
        if kind == "note":
            msg["note"] = rng.choice(AMEND_NOTES)
        if kind == "item_note":
            msg["item_notes"] = {str(rng.randint(1, n_items)): rng.choice(ITEM_NOTES)}
        return msg


# ------------------------------------------------------------------------------------------------ the simulation


@dataclass
class SimulationOptions:
    """What `kds simulate` does (the CLI's flags, plus knobs for the demo and the tests)."""

    hub: str
    ca_file: str | None = None
    """The CA file that verifies a `wss://` hub (None: the system's trusted roots)."""
    rate: float = 5.0
    """Orders per second (open loop: sends do not wait for answers)."""
    duration: float | None = None
    orders: int | None = None
    """Orders to send; DEFAULT_ORDERS when neither this nor `duration` is given."""
    seed: int | None = None
    cancel_share: float = 0.03
    amend_share: float = 0.05
    progress: bool = True
    """Show a progress line (on stderr) while running."""
    summary: bool = True
    """Print the summary (and its JSON line) on stdout at the end."""
    forever: bool = False
    """Run until `stop` is set, ignoring `orders` and `duration` (the demo)."""
    stop: asyncio.Event | None = None
    followup_delay: tuple[float, float] = (0.5, 3.0)
    """Seconds after acceptance before the source cancels or amends an order."""
    request_timeout: float = 10.0
    connect_timeout: float = 5.0
    run_id: str | None = None
    """Part of every idempotency key; random per run when not given."""
    out: TextIO | None = None
    """Where the summary goes (stdout when None)."""
    err: TextIO | None = None
    """Where progress goes (stderr when None)."""


@dataclass
class SimulationReport:
    """What a simulation did and how fast the hub acknowledged it."""

    run_id: str
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    errors: int = 0
    cancels: int = 0
    amends: int = 0
    too_late: int = 0
    """Cancels/amends refused because the order was already handed over or cancelled (a race with the kitchen)."""
    channels: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)
    """Idempotency key → order id, for every accepted order."""
    elapsed_s: float = 0.0
    send_span_s: float = 0.0
    """From the first send to the last."""
    interrupted: bool = False
    """Stopped by Ctrl+C before the end: the figures are for what was done until then."""

    def percentile(self, p: float) -> float:
        """Acknowledgement latency percentile (nearest rank), in ms; NaN when nothing was accepted."""
        if not self.latencies_ms:
            return math.nan
        values = sorted(self.latencies_ms)
        return values[max(0, min(len(values) - 1, math.ceil(p / 100 * len(values)) - 1))]

    @property
    def p50_ms(self) -> float:
        """Median acknowledgement latency, ms."""
        return self.percentile(50)

    @property
    def p99_ms(self) -> float:
        """99th percentile acknowledgement latency, ms."""
        return self.percentile(99)

    @property
    def achieved_rate(self) -> float:
        """Orders sent per second, from the first send to the last."""
        return (self.sent - 1) / self.send_span_s if self.send_span_s > 0 else float(self.sent)

    def progress_line(self) -> str:
        """`sent 120  accepted 119  errors 0  p50 3.1 ms  p99 9.8 ms`."""
        return (
            f"sent {self.sent}  accepted {self.accepted}  errors {self.errors}  "
            f"p50 {_ms(self.p50_ms)}  p99 {_ms(self.p99_ms)}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The one-line JSON summary."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 3)

        return {
            "run_id": self.run_id,
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "cancels": self.cancels,
            "amends": self.amends,
            "too_late": self.too_late,
            "channels": dict(sorted(self.channels.items())),
            "p50_ms": num(self.p50_ms),
            "p99_ms": num(self.p99_ms),
            "max_ms": num(max(self.latencies_ms)) if self.latencies_ms else None,
            "elapsed_s": round(self.elapsed_s, 3),
            "achieved_rate": round(self.achieved_rate, 1),
            "interrupted": self.interrupted,
        }

    def summary(self) -> str:
        """The human summary printed at the end."""
        mix = ", ".join(f"{ch} {n}" for ch, n in sorted(self.channels.items(), key=lambda kv: -kv[1]))
        lines = [
            f"sent {self.sent}  accepted {self.accepted}  errors {self.errors}"
            + (
                f"  ({mix}; {self.cancels} cancelled, {self.amends} amended"
                + (f", {self.too_late} too late" if self.too_late else "")
                + ")"
                if self.sent
                else ""
            ),
            f"acknowledgement latency p50 {_ms(self.p50_ms)}  p99 {_ms(self.p99_ms)}  "
            f"({self.achieved_rate:.1f} orders/s over {self.send_span_s:.1f} s)",
        ]
        if self.interrupted:
            lines.insert(0, "interrupted: figures up to the interruption")
        return "\n".join(lines)


def _ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f} ms"


class _Run:
    """One simulation run's moving parts."""

    def __init__(self, config: StoreConfig, opts: SimulationOptions) -> None:
        if opts.rate <= 0:
            raise SimulationError("--rate must be above 0")
        self.config = config
        self.opts = opts
        run_id = opts.run_id or f"{datetime.now(UTC):%H%M%S}{secrets.token_hex(2)}"
        self.report = SimulationReport(run_id)
        self.mix = OrderMix(
            config,
            rng=random.Random(opts.seed),
            run_id=run_id,
            cancel_share=opts.cancel_share,
            amend_share=opts.amend_share,
        )
        self.clients: dict[str, HubClient] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stop = opts.stop or asyncio.Event()
        self.err = opts.err or sys.stderr

    async def connect(self) -> None:
        for dev_id in self.mix.source_ids:
            dev = self.config.device(dev_id)
            assert dev is not None
            self.clients[dev_id] = HubClient.for_device(
                self.opts.hub,
                dev,
                client_name="kds-simulate",
                backoff=Backoff(first=0.1, cap=2.0),
                request_timeout=self.opts.request_timeout,
                ca_file=self.opts.ca_file,
            )
        try:
            await asyncio.gather(*(c.connect(self.opts.connect_timeout) for c in self.clients.values()))
        except Refused as exc:
            raise SimulationError(str(exc)) from None
        except TimeoutError:
            raise SimulationError(
                f"no hub reachable at {self.opts.hub} within {self.opts.connect_timeout:g} s "
                "(start one with `kds serve`, or give --hub)"
            ) from None

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _fail(self, what: str) -> None:
        self.report.errors += 1
        if len(self.report.error_samples) < 20:
            self.report.error_samples.append(what)

    async def _request(self, client: HubClient, msg: dict[str, Any]) -> Answer:
        # A dropped connection is retried with the same frame: the key (or the action) is idempotent on the hub.
        for attempt in range(3):
            try:
                return await client.request(dict(msg))
            except (NotConnected, TimeoutError):
                if attempt == 2 or self.stop.is_set():
                    raise
                with contextlib.suppress(TimeoutError, Refused):
                    await client.wait_online(self.opts.connect_timeout)
        raise AssertionError("unreachable")

    async def submit(self, planned: PlannedOrder) -> None:
        r = self.report
        client = self.clients[planned.source]
        msg = {"type": "order.submit", "ref": f"{planned.order['key']}", "order": planned.order}
        r.sent += 1
        r.channels[planned.channel] += 1
        t0 = time.perf_counter()
        try:
            answer = await self._request(client, msg)
        except (NotConnected, TimeoutError) as exc:
            self._fail(f"{planned.order['key']}: no answer ({type(exc).__name__}: {exc})")
            return
        if not isinstance(answer, OrderAccepted):
            code, message = (answer.code.value, answer.message) if isinstance(answer, Error) else (answer.type, "")
            self._fail(f"{planned.order['key']}: {code}: {message}")
            return
        r.latencies_ms.append((time.perf_counter() - t0) * 1000)
        r.accepted += 1
        r.duplicates += answer.duplicate
        r.orders[planned.order["key"]] = answer.order_id
        if planned.followup is not None:
            self._spawn(self.followup(planned, answer.order_id))

    async def followup(self, planned: PlannedOrder, order_id: str) -> None:
        assert planned.followup is not None
        lo, hi = self.opts.followup_delay
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), lo + (hi - lo) * planned.followup_after)
        if self.stop.is_set() and self.opts.forever:
            return
        msg = {**planned.followup, "order_id": order_id}
        try:
            answer = await self._request(self.clients[planned.source], msg)
        except (NotConnected, TimeoutError) as exc:
            self._fail(f"{msg['type']} {order_id}: no answer ({type(exc).__name__})")
            return
        if isinstance(answer, Ack):
            if msg["type"] == "order.cancel":
                self.report.cancels += 1
            else:
                self.report.amends += 1
        elif isinstance(answer, Error) and answer.code is ErrorCode.CONFLICT:
            self.report.too_late += 1
        else:
            code, message = (answer.code.value, answer.message) if isinstance(answer, Error) else (answer.type, "")
            self._fail(f"{msg['type']} {order_id}: {code}: {message}")

    async def send_all(self) -> None:
        opts = self.opts
        loop = asyncio.get_running_loop()
        limit = None if opts.forever else opts.orders
        if limit is None and opts.duration is None and not opts.forever:
            limit = DEFAULT_ORDERS
        start = loop.time()
        first_sent: float | None = None
        i = 0
        while not self.stop.is_set():
            if limit is not None and i >= limit:
                break
            due = start + i / opts.rate
            if not opts.forever and opts.duration is not None and due - start >= opts.duration:
                break
            now = loop.time()
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), due - now)
                continue
            # Open loop: every order due by now goes out without waiting for earlier answers.
            self._spawn(self.submit(self.mix.next()))
            sent_at = loop.time()
            first_sent = first_sent if first_sent is not None else sent_at
            self.report.send_span_s = sent_at - first_sent
            i += 1
            if i % 64 == 0:
                await asyncio.sleep(0)  # let the sends flow while catching up

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def show_progress(self) -> None:
        tty = self.err.isatty()
        every = 0.25 if tty else 5.0
        while True:
            await asyncio.sleep(every)
            self._print_progress(tty)

    def _print_progress(self, tty: bool, final: bool = False) -> None:
        line = self.report.progress_line()
        if tty:
            self.err.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        elif not final:
            self.err.write(line + "\n")
        self.err.flush()


async def run_simulation(config: StoreConfig, opts: SimulationOptions) -> SimulationReport:
    """Send the order mix to the hub at `opts.rate` orders/s; return (and print) what happened.

    Raises SimulationError when the hub cannot be reached or refuses the sources.
    """
    run = _Run(config, opts)
    started = time.perf_counter()
    await run.connect()
    progress = asyncio.ensure_future(run.show_progress()) if opts.progress else None
    try:
        await run.send_all()
        await run.drain()
    except asyncio.CancelledError:
        run.report.interrupted = True
        raise
    finally:
        run.report.elapsed_s = time.perf_counter() - started
        if progress is not None:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
            run._print_progress(run.err.isatty(), final=True)
        for t in list(run.tasks):
            t.cancel()
        await run.close()
        if opts.summary:
            out = opts.out or sys.stdout
            print(run.report.summary(), file=out)
            print(json.dumps(run.report.as_dict(), ensure_ascii=False), file=out, flush=True)
            for sample in run.report.error_samples[:5]:
                print(f"  error: {sample}", file=run.err)
    return run.report


# ------------------------------------------------------------------------------------------------ the simulated kitchen


class _Bot:
    """One simulated device: watches its client's book and acts after randomized delays."""

    def __init__(self, client: HubClient, rng: random.Random, speed: float) -> None:
        self.client = client
        self.rng = rng
        self.speed = speed
        self.watch: dict[str, OrderView] = {}
        """What this bot may act on, by ticket id (kitchen) or order id (counter): the latest order document."""
        self.plan: dict[str, tuple[str, float]] = {}
        """Id → (the state the plan was made for, when to act)."""
        self.busy: set[str] = set()
        self.acting: set[asyncio.Task[None]] = set()
        client.listeners.append(self._on_frame)

    def _on_frame(self, frame: HubFrame) -> None:
        if isinstance(frame, Welcome):
            self.watch.clear()
            self._see(self.client.book.orders.values())
        elif isinstance(frame, Event):
            self._see([frame.order])

    def _see(self, orders: Iterable[OrderView]) -> None:
        raise NotImplementedError

    def _delay(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi) / self.speed

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        tick = max(0.02, min(0.2, 0.2 / self.speed))
        while not stop.is_set():
            now = loop.time()
            for key in list(self.watch):
                state = self._state(key)
                planned = self.plan.get(key)
                if planned is None or planned[0] != state:
                    self.plan[key] = (state, now + self._wait_for(key, state))
                elif now >= planned[1] and key not in self.busy:
                    self.busy.add(key)
                    # Until the event shows the new state, act again only after a grace period.
                    self.plan[key] = (state, now + 2.0 / self.speed)
                    task = asyncio.ensure_future(self._act(key, state))
                    self.acting.add(task)
                    task.add_done_callback(self.acting.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
        await asyncio.gather(*self.acting, return_exceptions=True)

    async def _act(self, key: str, state: str) -> None:
        try:
            msg = self._action(key, state)
            if msg is not None:
                # Refusals (an order cancelled meanwhile) and a dropped link are part of a kitchen's day.
                with contextlib.suppress(NotConnected, TimeoutError):
                    await self.client.request(msg)
        finally:
            self.busy.discard(key)

    def _state(self, key: str) -> str:
        raise NotImplementedError

    def _wait_for(self, key: str, state: str) -> float:
        raise NotImplementedError

    def _action(self, key: str, state: str) -> dict[str, Any] | None:
        raise NotImplementedError


class _Cook(_Bot):
    """A station screen's cook: starts new tickets, bumps them after the cooking time."""

    def __init__(self, client: HubClient, station: str, rng: random.Random, speed: float) -> None:
        self.station = station
        super().__init__(client, rng, speed)

    def _see(self, orders: Iterable[OrderView]) -> None:
        for o in orders:
            for t in o.tickets:
                if t.station != self.station:
                    continue
                if o.status in CLOSED or t.state in (TicketState.DONE, TicketState.CANCELLED):
                    self.watch.pop(t.id, None)
                    self.plan.pop(t.id, None)
                else:
                    self.watch[t.id] = o

    def _ticket(self, key: str) -> TicketView:
        return next(t for t in self.watch[key].tickets if t.id == key)

    def _state(self, key: str) -> str:
        return self._ticket(key).state.value

    def _wait_for(self, key: str, state: str) -> float:
        if state == "new":
            return self._delay(0.3, 2.0) * (0.5 if self.watch[key].priority is Priority.RUSH else 1.0)
        lo, hi = COOK_S.get(self.station, (3.0, 8.0))
        return self._delay(lo, hi)

    def _action(self, key: str, state: str) -> dict[str, Any] | None:
        return {"type": "ticket.start" if state == "new" else "ticket.bump", "ticket_id": key}


class _Runner(_Bot):
    """The counter: calls pickup numbers of ready orders and hands orders over."""

    def _see(self, orders: Iterable[OrderView]) -> None:
        for o in orders:
            if o.status is OrderStatus.READY:
                self.watch[o.id] = o
            else:
                self.watch.pop(o.id, None)
                self.plan.pop(o.id, None)

    def _state(self, key: str) -> str:
        o = self.watch[key]
        return "called" if o.called_at else "ready"

    def _wait_for(self, key: str, state: str) -> float:
        return self._delay(0.5, 2.0) if state == "ready" else self._delay(1.0, 4.0)

    def _action(self, key: str, state: str) -> dict[str, Any] | None:
        o = self.watch[key]
        kind = o.fulfilment.type
        if state == "ready" and kind == "pickup":
            return {"type": "order.call", "order_id": key}
        to = {"delivery": "rider", "dine_in": "runner"}.get(kind, "customer")
        return {"type": "order.handover", "order_id": key, "to": to}


async def run_kitchen_bots(
    config: StoreConfig,
    hub_url: str,
    *,
    speed: float = 1.0,
    stop: asyncio.Event,
    seed: int | None = None,
    counter: bool = True,
) -> None:
    """Play the kitchen and the counter until `stop` is set.

    One kitchen client per station (the config's first kitchen device of each station) starts and bumps tickets
    after a randomized cooking time (seconds, divided by `speed`); the counter (the first counter device) calls
    ready pickup orders and hands orders over (unless `counter` is False: a person runs the counter). Raises
    SimulationError when the hub cannot be reached.
    """
    rng = random.Random(seed)
    bots: list[_Bot] = []
    seen: set[str] = set()
    for dev in config.devices:
        if dev.role is Role.KITCHEN and dev.station and dev.station not in seen:
            seen.add(dev.station)
            client = HubClient.for_device(
                hub_url,
                dev,
                client_name="kds-kitchen-bot",
                backoff=Backoff(first=0.1, cap=2.0),
            )
            bots.append(_Cook(client, dev.station, random.Random(rng.random()), speed))
    runner = next((d for d in config.devices if d.role is Role.COUNTER), None) if counter else None
    if runner is not None:
        client = HubClient.for_device(
            hub_url,
            runner,
            client_name="kds-counter-bot",
            backoff=Backoff(first=0.1, cap=2.0),
        )
        bots.append(_Runner(client, random.Random(rng.random()), speed))
    try:
        try:
            await asyncio.gather(*(b.client.connect() for b in bots))
        except (TimeoutError, Refused) as exc:
            raise SimulationError(f"kitchen bots: {exc}") from None
        await asyncio.gather(*(b.run(stop) for b in bots))
    finally:
        await asyncio.gather(*(b.client.close() for b in bots))
