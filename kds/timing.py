"""Kitchen timing: how long each item takes, and when each order will be ready, from the kitchen's live load. No I/O.

- **Prep times** (`PrepBook`). Each item has a configured prep time (`prep_s` of its cooking method or of the item,
  an item's `method_prep_s`, else its station's `prep_s`). The hub learns the real one from the station's bumps:
  each ticket done gives one sample, the time from when a cook could take it to its bump, credited to its slowest
  item (the one that decides when the ticket is done). Samples are kept per station, item and cooking method, the
  last `learn_window` of them per hour of the day and over all hours; the learned figure is the median of the
  middle of them (a trimmed median: a ticket forgotten on the screen or bumped by mistake does not move it), used
  once it rests on `learn_min_samples` (the hour's own first, then all hours'), else the config's.
- **Load** (`KitchenLoad`). Per station: the tickets waiting (with the work each holds) and those started (with when),
  kept up to date as orders change (`track`, one order at a time, so it costs nothing per order already there).
  The station works on `cooks` tickets at once (`[[stations]] cooks`, else the number of its screens connected,
  at least one).
- **Plans** (`KitchenLoad.plan`). When each part of a new order goes to its station: all at once, or, for an order
  wanted later, when it must to be ready then; with fire by prep time each part when it must to finish with the
  slowest (its own work and its station's wait counted). A part that waits is not counted in its station's load.
- **Estimates**. A new ticket at a station is ready when the work ahead of it is done (what waits, and what is left
  of what the cooks are making, shared by the cooks) plus its own work; an order is ready when its last ticket is. A
  waiting ticket's estimate counts the work queued before it; a started one is ready its work after it was started
  (and never in the past: a ticket late on its own estimate is taken to be nearly done, `LATE_LEFT_S`). Kitchens
  often bump without starting: a cook not on a started ticket is taken to be making the oldest waiting one, since
  it could first take it.

Times are aware datetimes (UTC from the hub's clock); the hour of the day is the store's (`tz`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kds.config import StoreConfig
from kds.domain import Item, Order, Ticket
from kds.protocol import TicketState

LATE_LEFT_S = 30.0
"""What a started ticket past its estimated work is taken to still need (it is nearly done, or forgotten)."""
ESTIMATE_MOVE_S = 60.0
"""An order's estimate is updated (and its source told) between two of its status changes only when it moved by at
least this much."""
TRIM = 0.2
"""The share of the samples left out at each end before the median is taken."""


@dataclass(frozen=True, slots=True)
class PrepSample:
    """One ticket done: how long its slowest item took at its station (stored, and learned from)."""

    station: str
    sku: str
    cook: str | None
    seconds: float
    at: datetime
    """When the ticket was done (aware)."""


def trimmed_median(values: Iterable[float], trim: float = TRIM) -> float:
    """The median of the values left when `trim` of them are set aside at each end (at least one value)."""
    v = sorted(values)
    if not v:
        raise ValueError("no values")
    cut = int(len(v) * trim)
    middle = v[cut : len(v) - cut] or v
    n = len(middle)
    return middle[n // 2] if n % 2 else (middle[n // 2 - 1] + middle[n // 2]) / 2


_Key = tuple[str, str, str | None]
"""(station, sku, cooking method)"""


@dataclass(slots=True)
class _Samples:
    all_hours: deque[float]
    by_hour: dict[int, deque[float]] = field(default_factory=dict)


class PrepBook:
    """Prep times per station, item and cooking method: configured, then learned from the bumps (module docstring)."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.tz = ZoneInfo(config.store.timezone)
        self.window = config.timing.learn_window
        self.min_samples = config.timing.learn_min_samples
        self._samples: dict[_Key, _Samples] = {}
        self._learned: dict[tuple[_Key, int], float | None] = {}
        """(key, hour) → the learned figure (None: not enough samples), until the key's next sample."""
        self._configured: dict[_Key, float] = {}
        self._hour: tuple[datetime | None, int] = (None, 0)
        """The last time asked about and its hour of the day (a change asks about one time, many times)."""

    def configured(self, station: str, sku: str, cook: str | None) -> float:
        """The config's prep time for an item cooked this way at this station, in seconds."""
        item = self.config.item(sku)
        if cook and item is not None and cook in item.method_prep_s:
            return float(item.method_prep_s[cook])
        method = self.config.method(cook) if cook else None
        if method is not None and method.prep_s is not None:
            return float(method.prep_s)
        if item is not None and item.prep_s is not None:
            return float(item.prep_s)
        st = self.config.station(station)
        return float(st.prep_s if st is not None else 300)

    def learn(self, samples: Iterable[PrepSample]) -> None:
        """Take in tickets done (oldest first)."""
        for s in samples:
            key = (s.station, s.sku, s.cook)
            kept = self._samples.get(key)
            if kept is None:
                kept = self._samples[key] = _Samples(deque(maxlen=self.window))
            kept.all_hours.append(s.seconds)
            hour = s.at.astimezone(self.tz).hour
            by_hour = kept.by_hour.get(hour)
            if by_hour is None:
                by_hour = kept.by_hour[hour] = deque(maxlen=self.window)
            by_hour.append(s.seconds)
            for h in (hour, -1):
                self._learned.pop((key, h), None)

    def learned(self, station: str, sku: str, cook: str | None, at: datetime) -> tuple[float, int] | None:
        """The learned prep time at the hour of `at` and the samples it rests on, if there are enough."""
        kept = self._samples.get((station, sku, cook))
        if kept is None:
            return None
        hour = at.astimezone(self.tz).hour
        by_hour = kept.by_hour.get(hour)
        if by_hour is not None and len(by_hour) >= self.min_samples:
            return trimmed_median(by_hour), len(by_hour)
        if len(kept.all_hours) >= self.min_samples:
            return trimmed_median(kept.all_hours), len(kept.all_hours)
        return None

    def seconds(self, station: str, sku: str, cook: str | None, at: datetime) -> float:
        """The prep time to plan with: learned when known well enough, else configured."""
        key = (station, sku, cook)
        if key in self._samples:
            if self._hour[0] is not at:
                self._hour = (at, at.astimezone(self.tz).hour)
            hour = self._hour[1]
            try:
                got = self._learned[(key, hour)]
            except KeyError:
                found = self.learned(station, sku, cook, at)
                got = self._learned[(key, hour)] = found[0] if found is not None else None
            if got is not None:
                return got
        try:
            return self._configured[key]
        except KeyError:
            conf = self._configured[key] = self.configured(station, sku, cook)
            return conf

    def item_seconds(self, item: Item, at: datetime) -> float:
        """The prep time of one order line."""
        return self.seconds(item.station, item.sku, item.cook, at)


def ticket_work(book: PrepBook, order: Order, ticket: Ticket, at: datetime) -> float:
    """The work a ticket holds: its slowest item not yet done (a station makes a ticket's items side by side)."""
    work = 0.0
    for iid in ticket.items:
        it = order.item(iid)
        if it is not None and not it.removed and it.done_at is None:
            work = max(work, book.seconds(it.station, it.sku, it.cook, at))
    return work


def slowest_item(book: PrepBook, order: Order, ticket: Ticket, at: datetime) -> Item | None:
    """The item of the ticket that decides when it is done (of all its live items, done or not)."""
    live = [it for iid in ticket.items if (it := order.item(iid)) is not None and not it.removed]
    return max(live, key=lambda it: book.item_seconds(it, at), default=None)


@dataclass(slots=True)
class _Waiting:
    work: float
    since: datetime | None = None
    """When a cook could first take it (None: not yet)."""


@dataclass(slots=True)
class _Station:
    waiting: dict[str, _Waiting] = field(default_factory=dict)
    """Ticket id → its work and since when a cook could take it, in the order the tickets came."""
    waiting_s: float = 0.0
    started: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    """Ticket id → (its work, when it was started)."""
    last_done: deque[datetime] = field(default_factory=lambda: deque(maxlen=8))
    """The station's latest bumps: when a cook last became free (for the samples)."""

    def in_hand(self, cooks: int, now: datetime) -> list[tuple[str, float, datetime]]:
        """The waiting tickets the free cooks are taken to be making (kitchens often bump without starting): the
        oldest, one per cook not on a started ticket, each since a cook could first take it."""
        free = cooks - len(self.started)
        out: list[tuple[str, float, datetime]] = []
        if free <= 0:
            return out
        for tid, w in self.waiting.items():
            if w.since is None:
                w.since = now
            out.append((tid, w.work, w.since))
            if len(out) == free:
                break
        return out

    def left(self, cooks: int, now: datetime) -> float:
        """The work left at the station: what waits, and what is left of what the cooks are making."""
        total = self.waiting_s
        for _tid, work, since in self.in_hand(cooks, now):
            total -= work - max(LATE_LEFT_S, work - (now - since).total_seconds())
        for work, started in self.started.values():
            total += max(LATE_LEFT_S, work - (now - started).total_seconds())
        return max(0.0, total)


class KitchenLoad:
    """What each station has to do, kept up to date order by order, and the ready times it makes."""

    def __init__(self, book: PrepBook, screens: Mapping[str, int] | None = None) -> None:
        self.book = book
        self.config = book.config
        self.screens: Mapping[str, int] = screens if screens is not None else {}
        """Station → its kitchen screens connected (the server keeps it): the station's cooks when the config does
        not say."""
        self._stations: dict[str, _Station] = {}
        self._tickets: dict[str, tuple[str, str]] = {}
        """Ticket id → (station, "waiting" or "started"): where the ticket counts now."""
        self._of_order: dict[str, list[str]] = {}
        self._cooks = {s.id: s.cooks for s in self.config.stations}

    def cooks(self, station: str) -> int:
        """Tickets the station works on at once."""
        fixed = self._cooks.get(station)
        return fixed if fixed is not None else max(1, self.screens.get(station, 0))

    def _station(self, station: str) -> _Station:
        st = self._stations.get(station)
        if st is None:
            st = self._stations[station] = _Station()
        return st

    # ---------------------------------------------------------------- keeping count

    def forget(self, order_id: str) -> None:
        """The order left (closed, evicted, undone): its tickets no longer count."""
        for tid in self._of_order.pop(order_id, ()):
            self._drop(tid)

    def _drop(self, tid: str) -> None:
        where = self._tickets.pop(tid, None)
        if where is None:
            return
        st = self._stations[where[0]]
        if where[1] == "waiting":
            gone = st.waiting.pop(tid, None)
            st.waiting_s -= gone.work if gone is not None else 0.0
            if not st.waiting:
                st.waiting_s = 0.0  # no drift from float sums
        else:
            st.started.pop(tid, None)

    def track(self, order: Order, now: datetime) -> None:
        """The order is new or changed: count its tickets where they are now (waiting, started, or not at all). A
        ticket still waiting keeps its place in its station's queue."""
        if not order.is_open:
            self.forget(order.id)
            return
        counted: list[str] = []
        for t in order.tickets:
            where = self._tickets.get(t.id)
            if t.waiting:  # not at its station yet: no load there
                if where is not None:
                    self._drop(t.id)
            elif t.state is TicketState.NEW:
                st = self._station(t.station)
                work = ticket_work(self.book, order, t, now)
                if where == (t.station, "waiting"):
                    w = st.waiting[t.id]
                    st.waiting_s += work - w.work
                    w.work = work
                else:
                    if where is not None:
                        self._drop(t.id)
                    st.waiting[t.id] = _Waiting(work)
                    st.waiting_s += work
                    self._tickets[t.id] = (t.station, "waiting")
                counted.append(t.id)
            elif t.state is TicketState.STARTED:
                if where is not None:
                    self._drop(t.id)
                started = t.started_at or now
                self._station(t.station).started[t.id] = (ticket_work(self.book, order, t, started), started)
                self._tickets[t.id] = (t.station, "started")
                counted.append(t.id)
            elif where is not None:
                self._drop(t.id)
        for tid in self._of_order.pop(order.id, ()):
            if tid not in counted:
                self._drop(tid)
        if counted:
            self._of_order[order.id] = counted
        for t in order.tickets:  # a cook free there takes the oldest waiting ticket from now
            here = self._stations.get(t.station)
            if here is not None:
                here.in_hand(self.cooks(t.station), now)

    def done(self, station: str, at: datetime) -> None:
        """A ticket of the station was done at `at` (a cook is free from then)."""
        self._station(station).last_done.append(at)

    # ---------------------------------------------------------------- estimates

    def left(self, station: str, now: datetime) -> float:
        """Seconds of work the station has before it could start a new ticket, shared by its cooks."""
        st = self._stations.get(station)
        cooks = self.cooks(station)
        return st.left(cooks, now) / cooks if st is not None else 0.0

    def plan(
        self,
        order: Order,
        now: datetime,
        *,
        wanted: datetime | None,
        by_prep: bool,
        soon_s: float,
        ahead_s: float,
    ) -> tuple[dict[str, datetime | None], dict[str, datetime]]:
        """When each station's part of a new order goes to its station (None: now), and when each will be done.

        All parts aim to finish together: at once when the order is wanted as soon as possible, else at `wanted`
        (a pickup's time, a delivery's due less the rider's margin), but never before the slowest part could be
        done. With `by_prep`, each part fires its own work and its station's wait before that (the slowest at once
        when nothing is wanted later); without it every part fires when the slowest must. A part due to fire within
        `soon_s` fires now; an order wanted so late that it would fire more than `ahead_s` from now waits (it is
        scheduled), sooner it is taken as wanted as soon as possible."""
        need: dict[str, float] = {}
        for t in order.tickets:
            if t.state is not TicketState.CANCELLED:
                need[t.station] = self.left(t.station, now) + ticket_work(self.book, order, t, now)
        longest = max(need.values(), default=0.0)
        finish = now + timedelta(seconds=longest)
        if wanted is not None and (wanted - finish).total_seconds() > ahead_s:
            finish = wanted
        fire: dict[str, datetime | None] = {}
        done: dict[str, datetime] = {}
        for station, seconds in need.items():
            start = finish - timedelta(seconds=seconds if by_prep else longest)
            go = start if (start - now).total_seconds() > soon_s else None
            fire[station] = go
            done[station] = (go or now) + timedelta(seconds=seconds)
        return fire, done

    def estimate(self, order: Order, now: datetime) -> dict[str, datetime]:
        """Each open ticket's ready time for an order that is counted (`track`)."""
        out: dict[str, datetime] = {}
        for t in order.tickets:
            if t.fire_at is not None and not t.held and t.state is TicketState.NEW:
                # Waiting to fire: ready its work after it goes to its station (counted then).
                out[t.station] = t.fire_at + timedelta(seconds=ticket_work(self.book, order, t, t.fire_at))
                continue
            where = self._tickets.get(t.id)
            if where is None:
                continue
            st = self._stations[where[0]]
            if where[1] == "started":
                work, started = st.started[t.id]
                out[t.station] = max(started + timedelta(seconds=work), now + timedelta(seconds=LATE_LEFT_S))
                continue
            cooks = self.cooks(t.station)
            in_hand = {tid: (work, since) for tid, work, since in st.in_hand(cooks, now)}
            if t.id in in_hand:
                work, since = in_hand[t.id]
                out[t.station] = max(since + timedelta(seconds=work), now + timedelta(seconds=LATE_LEFT_S))
                continue
            ahead = 0.0
            for tid, w in st.waiting.items():
                if tid == t.id:
                    break
                work = w.work
                if tid in in_hand:
                    work = max(LATE_LEFT_S, work - (now - in_hand[tid][1]).total_seconds())
                ahead += work
            for work, started in st.started.values():
                ahead += max(LATE_LEFT_S, work - (now - started).total_seconds())
            own = st.waiting[t.id].work
            out[t.station] = now + timedelta(seconds=ahead / cooks + own)
        return out

    def sample(self, order: Order, ticket: Ticket, *, max_s: float) -> PrepSample | None:
        """What a ticket just done teaches: the time from when a cook could take it (it came, or was started, or
        the station's cook became free, whichever is last) to its bump, for its slowest item. None when it cannot
        be told (no time, or longer than `max_s`: forgotten on the screen)."""
        done = ticket.done_at
        if done is None:
            return None
        st = self._station(ticket.station)
        begin = ticket.created_at
        started = ticket.started_at
        if started is not None and started < done:
            begin = max(begin, started)
        else:
            # Not started by hand: a cook took it when one became free (the station's latest bump before it).
            cooks = self.cooks(ticket.station)
            before = [d for d in st.last_done if d < done]
            if len(before) >= cooks:
                begin = max(begin, sorted(before)[-cooks])
        seconds = (done - begin).total_seconds()
        item = slowest_item(self.book, order, ticket, done)
        if item is None or not 0 < seconds <= max_s:
            return None
        return PrepSample(ticket.station, item.sku, item.cook, seconds, done)


def to_second(t: datetime) -> datetime:
    """A time to the nearest whole second (estimates are not more precise than that)."""
    return (t + timedelta(microseconds=500_000)).replace(microsecond=0)


def ready_at(times: Mapping[str, datetime]) -> datetime | None:
    """An order is ready when its last ticket is (to the second)."""
    last = max(times.values(), default=None)
    return to_second(last) if last is not None else None
