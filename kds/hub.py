"""The hub's decisions: authenticate, validate, route, change state, and choose who gets which event. No I/O.

`OrderHub` is a plain class driven with messages in and `Decision`s out. The websockets server (`kds.server`) and
the database (`kds.store`) are adapters around it: the server commits a decision's `events` to the database and only
then sends its `replies` and broadcasts its events, so nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter

from kds.config import Channel, Device, Role, StoreConfig
from kds.domain import DomainError, Item, Order, Ticket
from kds.jsontext import frame_text, frame_utf8, loads, written
from kds.printing import Banner, PrintJob, claim_items, live_tickets, notice_stations, station_jobs
from kds.privacy import SEES_CUSTOMER, redact_order, redact_text, redact_view, view_for
from kds.protocol import (
    PROTOCOLS,
    ROLE_MESSAGES,
    Ack,
    AllergenInfo,
    CatalogueEntry,
    ClosedOrders,
    Delivery,
    Error,
    ErrorCode,
    ErrorDetail,
    Event,
    EventKind,
    FrameError,
    Hello,
    ItemBump,
    ItemIn,
    MethodInfo,
    OrderAccepted,
    OrderAmend,
    OrderCall,
    OrderCancel,
    OrderFire,
    OrderHandover,
    OrderHold,
    OrderIn,
    OrderQuote,
    OrderQuoted,
    OrderRecall,
    OrderSchedule,
    OrdersClosed,
    OrderStatus,
    OrderSubmit,
    OrderView,
    Pickup,
    Ping,
    Pong,
    PrinterState,
    PrinterStatus,
    PrintLayout,
    PrintRequest,
    Snapshot,
    SnapshotPage,
    StationInfo,
    StatusChanged,
    StoreView,
    TicketBump,
    TicketRecall,
    TicketStart,
    TicketState,
    Welcome,
    order_digest,
    parse_client_frame,
    time_window_problem,
)
from kds.routing import Problem, check_item, route_item
from kds.timing import ESTIMATE_MOVE_S, KitchenLoad, PrepBook, PrepSample, ready_at, to_second

log = logging.getLogger("kds.hub")

Clock = Callable[[], datetime]
CHANNEL_LETTER = {Channel.APP.value: "A", Channel.KIOSK.value: "K", Channel.SHELF.value: "S"}
READS = (Ping, OrdersClosed, OrderQuote)
"""Messages that change nothing: answered from memory even while the database refuses writes."""
RECENT = timedelta(minutes=30)
"""Closed orders and bumped tickets stay in snapshots this long (recall lists, handed-over lists)."""

_EMPTY_SNAPSHOT = len(Snapshot().model_dump_json())
_PLACEHOLDER = len('"\\u0000snapshot\\u0000"')
"""Pages are cut as the hub always cut them: after the welcome's own size with this 22-byte string in the place of
its snapshot (`OrderHub._paged`)."""


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def _record_bytes(rec: EventRecord) -> int:
    # What an event in the replay log costs, roughly: its frames and the order's JSON (characters, not bytes; a
    # kitchen frame made later, when a restored event is replayed, is not counted).
    return (
        len(rec.frame)
        + len(rec.order_json)
        + (len(rec.status_frame) if rec.status_frame else 0)
        + (len(rec.kitchen) if rec.kitchen is not None and rec.kitchen is not rec.frame else 0)
        + 400
    )


@functools.lru_cache(maxsize=64)
def _day_of(prefix: str) -> date:
    """The day of an order id's `YYYYMMDD` prefix (restoring counts thousands of orders of a few days)."""
    return datetime.strptime(prefix, "%Y%m%d").date()


def _kitchen_frame(payload: str) -> str:
    """The kitchen's and monitor's `event` frame for a stored one: `payload` itself when there is nothing to cut."""
    ev = Event.model_validate_json(payload)
    shown = redact_view(ev.order)
    return payload if shown is ev.order else ev.model_copy(update={"order": shown}).model_dump_json()


_ORDER_PARTS = {"items", "tickets"}
assert [*Order.model_fields][-2:] == ["items", "tickets"], "an order's items and tickets are written last"
_ORDER_HEAD = Order.__pydantic_serializer__
_ITEMS = TypeAdapter(list[Item]).serializer
_TICKETS = TypeAdapter(list[Ticket]).serializer
_EVENT = Event.__pydantic_serializer__
_ORDER = {"order"}


def _order_texts(o: Order) -> tuple[bytes, bytes]:
    """`o.model_dump_json()`, and the same for `redact_view(o)` (the very same object when there is nothing to cut),
    as UTF-8.

    Each part of the order is written once by pydantic for both: its fields before its items and tickets as JSON
    data (what kitchens see otherwise, `customer` and `fulfilment`, is cut from that data by `redact_order`, the
    policy over an order's data), its items and its tickets as their JSON texts; orjson joins them
    (`written`)."""
    head: dict[str, Any] = _ORDER_HEAD.to_python(o, mode="json", exclude=_ORDER_PARTS)
    parts = {"items": written(_ITEMS.to_json(o.items)), "tickets": written(_TICKETS.to_json(o.tickets))}
    text = frame_utf8({**head, **parts})
    shown = redact_order(head)
    return text, text if shown is head else frame_utf8({**shown, **parts})


def _json(frame: BaseModel) -> str:
    """`frame.model_dump_json()`, without the cost of its keyword arguments (the frames of every event and ack)."""
    return frame.__pydantic_serializer__.to_json(frame).decode()


def stored_json(text: str) -> Any:
    """Parse JSON the hub stored (order documents, event frames) with orjson, several times faster than the
    standard library; the standard library parses what orjson refuses (`NaN`, a lone surrogate's escape: none of
    it written by the hub). The one difference in what both accept, an integer past 64 bits (orjson gives a float),
    is not in the hub's JSON either: orjson does not write one, and every integer of an order is bounded."""
    try:
        return loads(text)
    except ValueError:
        return json.loads(text)


_V3_KINDS = frozenset((EventKind.ORDER_FIRED, EventKind.ORDER_HELD))
"""Event kinds of protocol 3 (sent to devices that speak it)."""
_HEAD_KEYS = frozenset(("id", "key", "number", "source", "status", "status_seq", "status_at", "status_ready"))
_KINDS: dict[str, EventKind] = {k.value: k for k in EventKind}
_STATUSES: dict[str, OrderStatus] = {s.value: s for s in OrderStatus}
"""Enum members by value: a lookup, not an enum call, for each of the thousands of events restored."""


def _event_head(payload: str) -> dict[str, Any] | None:
    """A stored `event` frame without its order's items and tickets (most of its text), parsed: what a restored
    `EventRecord` needs. None when the frame is not laid out as `OrderHub._event` writes it (then parse it all).

    The hub writes the order last in the frame, and its items and tickets last in the order: the order's fields
    before its items are cut out where `,"items":[` first occurs after `,"order":{` (never inside a JSON string,
    where every quote is escaped; the order's fulfilment and customer have no such key)."""
    start = payload.find(',"order":{')
    end = payload.find(',"items":[', start) if start >= 0 else -1
    if end < 0:
        return None
    try:
        ev = stored_json(payload[:start] + "}")
        doc = stored_json(payload[start + 9 : end] + "}")
    except ValueError:
        return None
    if not isinstance(ev, dict) or not ev.get("stations") or not isinstance(doc, dict):
        return None
    if not doc.keys() >= _HEAD_KEYS:
        return None
    ev["order"] = doc
    return ev


def _told(status: OrderStatus, called: bool, protocol: int, scheduled: OrderStatus | None = None) -> OrderStatus:
    """The status an `order.status` says: a ready order whose number was called is `called` from protocol 2 on; an
    accepted order scheduled for later is `scheduled`, then `fired`, from protocol 3 on (`Order.schedule_status`)."""
    if scheduled is not None and status is OrderStatus.ACCEPTED and protocol >= 3:
        return scheduled
    return OrderStatus.CALLED if status is OrderStatus.READY and called and protocol >= 2 else status


def _doc_schedule(doc: dict[str, Any]) -> OrderStatus | None:
    """`Order.schedule_status` of a stored order's head (see `_event_head`)."""
    schedule = doc.get("schedule")
    if not schedule or doc["status"] != OrderStatus.ACCEPTED.value:
        return None
    return OrderStatus.FIRED if schedule.get("fired_at") else OrderStatus.SCHEDULED


def _stored_status(doc: dict[str, Any], protocol: int = PROTOCOLS[-1]) -> str:
    """The `order.status` frame of a stored event's order (`doc`, its fields before its items; see `_event_head`)."""
    status = _STATUSES.get(doc["status"]) or OrderStatus(doc["status"])
    frame = StatusChanged.model_validate(
        {
            "type": "order.status",
            "seq": doc["status_seq"],
            "at": doc["status_at"],
            "order_id": doc["id"],
            "key": doc["key"],
            "number": doc["number"],
            "status": _told(status, doc.get("called_at") is not None, protocol, _doc_schedule(doc)),
            "ready": doc["status_ready"],
            "reason": doc.get("cancel_reason"),
            "ready_at_estimate": doc.get("ready_at_estimate") if status is not OrderStatus.CANCELLED else None,
        }
    )
    return frame.model_dump_json()


def _utf8_len(text: str | bytes) -> int:
    if isinstance(text, bytes):
        return len(text)
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _restored(text: str) -> Order:
    """An order from its stored JSON (a document of an older version, without the fields added since, too), its
    `progress` the status its tickets make."""
    order = Order.model_validate_json(text)
    order.progress = order.derived_status()
    order.told_schedule = order.schedule_status()
    return order


def _as_written(order: Order) -> bool:
    """Whether the stored text an order was restored from is what the hub writes for it: every field was there
    (a document of an older version, with fields missing, is made into JSON again) and its status is the one its
    tickets make (`_restored` sets `progress` to it)."""
    return (
        len(order.model_fields_set | _ORDER_OMITTED) == _ORDER_FIELDS
        and order.status is order.progress
        and all(len(i.model_fields_set) == _ITEM_FIELDS for i in order.items)
        and all(len(t.model_fields_set | _TICKET_OMITTED) == _TICKET_FIELDS for t in order.tickets)
    )


_ORDER_FIELDS, _ITEM_FIELDS, _TICKET_FIELDS = len(Order.model_fields), len(Item.model_fields), len(Ticket.model_fields)
_ORDER_OMITTED = frozenset(("ready_at_estimate", "schedule"))
_TICKET_OMITTED = frozenset(("fire_at", "held", "fired_at"))
"""Fields the hub leaves out of what it writes when they hold nothing (`exclude_if`): a document without them is
written as the hub writes it."""


@dataclass(slots=True, eq=False)
class Session:
    """One authenticated connection, as the hub sees it."""

    device: Device
    floor: int
    """The `seq` of the welcome: the session gets events after it."""
    conn: Any = None
    """The adapter's connection object (opaque to the hub)."""
    origin: tuple[str, int] | None = None
    """For a frame relayed by another hub of the store: (that hub's id, the relayed command's id)."""
    protocol: int = PROTOCOLS[-1]
    """The protocol version agreed in the welcome (the highest both the client and the hub speak)."""

    @property
    def role(self) -> Role:
        """The device's role."""
        return self.device.role

    @property
    def station(self) -> str | None:
        """The station of a kitchen device."""
        return self.device.station


@contextlib.contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause Python's cyclic garbage collector while thousands of documents are parsed or rebuilt: they hold no
    cycles, and the collector would walk the growing heap over and over (about a third of a restart's time).

    With `freeze`, what was built is frozen at the end (`gc.freeze`, as `kds.collector` does during service): the
    restored state is long-lived and free of cycles, and the collector would otherwise walk all of it at its next
    pass, then again in each older generation (55 ms for 5,000 orders, each one a dozen tracked models, dicts, sets
    and lists)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if freeze:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()


@dataclass(slots=True)
class EventRecord:
    """One state change: what is stored and what each audience receives."""

    seq: int
    at: datetime
    kind: EventKind
    order_id: str
    source: str
    stations: frozenset[str]
    """Stations that see the event: those holding a ticket of the order before or after the change."""
    status: OrderStatus
    frame: str
    """The `event` frame for counter devices: the order as the source sent it."""
    status_frame: str | None
    """The `order.status` frame for the order's source, when the status changed."""
    order_json: str
    """The order after the change (`OrderView` JSON), for the database."""
    order: Order | None = None
    """The live order (adapters must not keep it; it changes after the event)."""
    dropped: bool = False
    """Set when the database refused the order (see `OrderHub.withdraw`) or the commit failed: nobody gets it."""
    size: int = 0
    """What it costs in the replay log (set when it enters the log)."""
    kitchen: str | None = None
    """The `event` frame for kitchen and monitor devices (see `kitchen_frame`), once made."""
    status_frame_v2: str | None = None
    """The `order.status` frame for sources of protocols 1 and 2, when it differs (a `scheduled` or `fired` order is
    `accepted` to them)."""
    samples: list[PrepSample] = field(default_factory=list)
    """Prep times the change taught (tickets done: `kds.timing`), stored with it and learned once it is stored."""

    def kitchen_frame(self) -> str:
        """The `event` frame for kitchen and monitor devices: the customer's data cut (`kds.privacy`); the same
        object as `frame` when there is nothing to cut. Made once (on first use for events restored from the
        database: most are never replayed)."""
        if self.kitchen is None:
            self.kitchen = _kitchen_frame(self.frame)
        return self.kitchen

    def committed(self) -> None:
        """The event is stored: drop what only the commit needed (the live order, the order's JSON)."""
        self.order = None
        self.order_json = ""

    def frame_for(self, session: Session) -> str | None:
        """What this session gets of the event, if anything."""
        if self.seq <= session.floor or self.dropped:
            return None
        if self.kind in _V3_KINDS and session.protocol < 3:
            return None  # kinds of protocol 3: older devices see the order with their next event
        role = session.device.role
        if role is Role.COUNTER:
            return self.frame
        if role is Role.MONITOR:
            return self.kitchen_frame()
        if role is Role.KITCHEN:
            return self.kitchen_frame() if session.device.station in self.stations else None
        if role is Role.SOURCE and self.source == session.device.id:
            if self.kind is EventKind.ORDER_CALLED and session.protocol < 2:
                return None  # `called` is protocol 2: for a protocol 1 source the order stays `ready`
            if session.protocol < 3 and self.status_frame_v2 is not None:
                return self.status_frame_v2
            return self.status_frame
        return None


@dataclass(slots=True)
class Decision:
    """What the hub decided for one incoming frame.

    The adapter must store `events` durably first, then send `replies` in order and broadcast `events`.
    """

    replies: list[tuple[Session, str]] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    close: tuple[int, str] | None = None
    """Close the connection with this code and reason after the replies."""
    created: str | None = None
    """The id of the order this decision created, if any."""
    jobs: list[PrintJob] = field(default_factory=list)
    """Print jobs, stored in the same transaction as `events` and handed to the spooler after the commit."""
    ref: str | None = None
    """The `ref` of the frame decided (for a retryable error when its batch cannot be stored)."""
    write: bool = False
    """The frame asked for a change (anything but a read): it depends on, and may change, the hub's state."""
    welcome: bool = False
    """A welcome (and its replay): built from the hub's state as it was at connect time."""
    refused: bool = False
    """The answer is an error (the server logs those at most once per device per interval)."""


@dataclass(slots=True)
class Window:
    """What the decisions since the last commit changed, to undo them if their commit fails (`OrderHub.rollback`)."""

    seq: int
    job_seq: int
    numbers: dict[date, int]
    orders: dict[str, str | None] = field(default_factory=dict)
    """Order id → its state before the window (`OrderView` JSON), or None for an order created in the window."""


@dataclass(slots=True)
class PrinterNotice:
    """A `printer.status` frame and who gets it: the kitchen screens of the printer's stations and of the stations
    whose printer takes its tickets when it fails (`kds.printing.notice_stations`), and the counter."""

    printer: str
    stations: frozenset[str]
    frame: str
    ok: bool

    def frame_for(self, session: Session) -> str | None:
        """What this session gets of the notice, if anything."""
        role = session.device.role
        if role is Role.COUNTER or (role is Role.KITCHEN and session.device.station in self.stations):
            return self.frame
        return None


class AuthError(Exception):
    """A `hello` that is refused; the adapter closes with `close_code`."""

    def __init__(
        self,
        close_code: int,
        code: ErrorCode,
        message: str,
        loc: list[str | int],
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.frame = error_frame(None, code, message, errors or [{"loc": loc, "msg": message}])


def ack_frame(ref: str, seq: int | None) -> str:
    """An `ack` frame: `seq` of the event the action made, or None when it changed nothing."""
    return _json(Ack(type="ack", ref=ref, seq=seq))


def unavailable_frame(ref: str | None) -> str:
    """The answer to a change the hub cannot store now (database fault): nothing was done, send it again."""
    return error_frame(
        ref,
        ErrorCode.UNAVAILABLE,
        "the hub cannot store changes right now (database fault): nothing was done; send the same frame again",
        [{"loc": [], "msg": "retry"}],
    )


def error_frame(
    ref: str | None,
    code: ErrorCode | str,
    message: str,
    errors: Iterable[dict[str, Any]] = (),
    *,
    retry_after_s: int | None = None,
) -> str:
    """An `error` frame (`retry_after_s` only when given)."""
    return _error(ref, code, message, errors, retry_after_s=retry_after_s).model_dump_json()


def _error(
    ref: str | None,
    code: ErrorCode | str,
    message: str,
    errors: Iterable[dict[str, Any]] = (),
    **more: Any,
) -> Error:
    return Error(
        type="error",
        ref=ref,
        code=ErrorCode(code),
        message=message,
        errors=[ErrorDetail(loc=e["loc"], msg=e["msg"]) for e in errors],
        **more,
    )


class OrderHub:
    """All orders of one store, and every decision about them."""

    def __init__(
        self,
        config: StoreConfig,
        *,
        clock: Clock = utc_now,
        replay_window: int | None = None,
    ) -> None:
        self.config = config
        self.limits = config.limits
        self.clock = clock
        self.tz = ZoneInfo(config.store.timezone)
        self.seq = 0
        self.orders: dict[str, Order] = {}
        self.keys: dict[tuple[str, str], tuple[str, str, str | None]] = {}
        """(source, key) → (order_id, number, digest of the order as submitted): the idempotency index of the orders
        in memory (the database answers for the others when the batch is committed)."""
        self.numbers: dict[date, int] = {}
        self.log: deque[EventRecord] = deque()
        """The tail of the event log, for resumes: at most `replay_events` events and `replay_memory_bytes`."""
        self.log_max = replay_window if replay_window is not None else self.limits.replay_events
        self.log_bytes = 0
        self.writable = True
        """False while the database refuses writes: changes are answered `unavailable`, reads go on."""
        self.window = Window(0, 0, {})
        self._store_view: dict[Role, StoreView] = {}
        self.job_seq = 0
        """The id of the last print job made (restored from the database)."""
        self.printer_trouble: dict[str, PrinterNotice] = {}
        """Printers in trouble now: their last notice, sent again to every device that connects."""
        self.printer_ok: dict[str, PrinterNotice] = {}
        """Printers last heard to be fine: their last notice, also sent to every device that connects."""
        self._texts: dict[str, tuple[Order, int, str]] = {}
        """Order id → (the order, its `version`, its `OrderView` JSON) while the order is unchanged (every change of
        an order raises its version; a rolled back or replaced order is another object): what a commit window keeps
        to undo a change (`_touch`), and the size of the order in a snapshot page. Filled from the database's text
        on restore and by every event; orders leave it when they leave memory."""
        self._shown_texts: dict[str, tuple[Order, int, str | bytes]] = {}
        """The same for the order as kitchens and monitors see it (`redact_view`): the very same text when there is
        nothing to cut."""
        self.prep = PrepBook(config)
        """Prep times: configured, then learned from the bumps (`stored` takes them in once they are stored)."""
        self.load = KitchenLoad(self.prep)
        """What each station has to do (every order in memory counted as it changes): the ready-time estimates."""
        self.due: dict[str, datetime] = {}
        """Order id → when the first of its waiting tickets is due to fire (held ones wait for a hand): what
        `fire_due` looks at."""

    # ------------------------------------------------------------------ restore

    def restore(
        self,
        orders: Iterable[str],
        events: Iterable[tuple[int, str]],
        seq: int,
        keys: Iterable[tuple[str, str, str, str]],
        *,
        last_job: int = 0,
    ) -> None:
        """Rebuild state from the database: order documents (their JSON text), the tail of the event log, the last
        seq, keys."""
        with collector_paused(freeze=True):  # thousands of objects and no cycles among them
            self._restore(orders, events, seq, keys, last_job)

    def _restore(
        self,
        orders: Iterable[str],
        events: Iterable[tuple[int, str]],
        seq: int,
        keys: Iterable[tuple[str, str, str, str]],
        last_job: int,
    ) -> None:
        self.seq = seq
        self.job_seq = last_job
        for text in orders:
            order = _restored(text)
            self._remember(order)
            if _as_written(order):
                self._texts[order.id] = (order, order.version, text)
            elif order.progress is not None and order.status is not order.progress:
                order.status = order.progress  # (an older document's status is derived again, as it always was)
        # Recent keys only count the day's numbers; the database answers for keys of orders not in memory.
        for _source, _key, order_id, number in keys:
            self._count_number(order_id, number)
        # The replay log keeps the newest events within its bounds (as `_log_append` would): only those are
        # parsed, newest first, and the older ones skipped unread.
        tail: list[EventRecord] = []
        total = 0
        for s, payload in reversed(events if isinstance(events, list) else list(events)):
            if len(tail) >= self.log_max:
                break
            rec = self._record_from_payload(s, payload)
            if tail and total + rec.size > self.limits.replay_memory_bytes:
                break
            tail.append(rec)
            total += rec.size
        for rec in reversed(tail):
            self._log_append(rec)
        self.window = Window(self.seq, self.job_seq, dict(self.numbers))

    def apply_external(self, seq: int, payload: str) -> EventRecord:
        """Take in an event another hub of the store decided and stored (a replica keeping up).

        The event carries the whole order after the change, so the order is replaced; the key index, the day's
        numbers and the event log follow, so this hub can welcome, resume and (once it leads) decide like the other.
        """
        ev = stored_json(payload)
        rec = self._record_from_payload(seq, payload, ev)
        order = Order.model_validate(ev["order"])
        order.progress = order.derived_status()
        order.told_schedule = order.schedule_status()
        shown = redact_view(order)
        rec.kitchen = payload if shown is order else Event.model_validate({**ev, "order": shown}).model_dump_json()
        rec.order = order
        self._remember(order)
        self.seq = max(self.seq, seq)
        self._log_append(rec)
        return rec

    def _log_append(self, rec: EventRecord) -> None:
        if not rec.size:
            rec.size = _record_bytes(rec)
        self.log.append(rec)
        self.log_bytes += rec.size
        while len(self.log) > self.log_max or (self.log_bytes > self.limits.replay_memory_bytes and len(self.log) > 1):
            self.log_bytes -= self.log.popleft().size

    # ------------------------------------------------------------------ commit windows (undo a failed commit)

    def seal(self) -> Window:
        """End the current window: the adapter is about to commit what was decided in it. Returns it for `rollback`."""
        done = self.window
        self.window = Window(self.seq, self.job_seq, dict(self.numbers))
        return done

    def _touch(self, o: Order) -> None:
        """Remember an order's state before the first change in this window."""
        if o.id not in self.window.orders:
            self.window.orders[o.id] = self._order_json(o)

    def rollback(self, windows: Iterable[Window]) -> None:
        """Undo the decisions of these windows, newest first: their commit failed, nobody was told of them.

        Orders go back to their state before the windows (those created in them are forgotten with their keys),
        and so do `seq`, the day's numbers, the print-job ids and the event log.
        """
        for w in windows:
            for oid, before in w.orders.items():
                gone = self.orders.pop(oid, None)
                self.load.forget(oid)
                self.due.pop(oid, None)
                self._texts.pop(oid, None)
                self._shown_texts.pop(oid, None)
                if gone is not None and self.keys.get((gone.source, gone.key), ("",))[0] == oid:
                    del self.keys[(gone.source, gone.key)]
                if before is not None:
                    self._remember(_restored(before))
            self.seq = w.seq
            self.job_seq = w.job_seq
            self.numbers = dict(w.numbers)
            while self.log and self.log[-1].seq > w.seq:
                rec = self.log.pop()
                rec.dropped = True
                self.log_bytes -= rec.size
        self.window = Window(self.seq, self.job_seq, dict(self.numbers))

    def _remember(self, order: Order) -> None:
        """Hold an order stored by this hub or another one: the order, its key, the day's count."""
        self.orders[order.id] = order
        self.keys[(order.source, order.key)] = (order.id, order.number, order.digest)
        self._count_number(order.id, order.number)
        self.load.track(order, self.clock())
        self._index_due(order)

    def _count_number(self, order_id: str, number: str) -> None:
        day = _day_of(order_id.split("-", 1)[0])
        n = int(number[1:])
        if n > self.numbers.get(day, 0):
            self.numbers[day] = n

    def _record_from_payload(self, s: int, payload: str, ev: dict[str, Any] | None = None) -> EventRecord:
        if ev is None:
            ev = _event_head(payload) or stored_json(payload)
        doc = ev["order"]
        status = _STATUSES.get(doc["status"]) or OrderStatus(doc["status"])
        rec = EventRecord(
            seq=s,
            at=datetime.fromisoformat(ev["at"]),
            kind=_KINDS.get(ev["kind"]) or EventKind(ev["kind"]),
            order_id=doc["id"],
            source=doc["source"],
            stations=frozenset(ev.get("stations") or [t["station"] for t in doc["tickets"]]),
            status=status,
            frame=payload,
            status_frame=None,
            order_json="",
        )
        if ev.get("status_changed") or doc.get("status_seq") == s:  # (a call changes no status, but is told)
            rec.status_frame = _stored_status(doc)
            if _doc_schedule(doc) is not None:
                rec.status_frame_v2 = _stored_status(doc, 2)
        # Stored already, so like a committed event it holds no copy of the order; it is counted in the replay
        # log as a new event is (the order's JSON is the frame's tail), so a restarted hub keeps the same events.
        start = payload.find(',"order":{')
        rec.size = _record_bytes(rec) + (len(payload) - start - 10 if start >= 0 else len(payload))
        return rec

    # ------------------------------------------------------------------ connect

    def connect(self, frame: str | bytes, conn: Any = None) -> tuple[Session, Decision]:
        """Authenticate a first frame; the welcome (and replay) are in the decision. Raises AuthError."""
        try:
            msg = parse_client_frame(frame)
        except FrameError as exc:
            raise AuthError(
                4000, ErrorCode.BAD_HELLO, f"bad hello: {exc.message}", ["type"], exc.errors or None
            ) from None
        if not isinstance(msg, Hello):
            raise AuthError(4000, ErrorCode.BAD_HELLO, "the first frame must be a hello", ["type"])
        common = set(msg.protocols) & set(PROTOCOLS)
        if not common:
            speaks = ", ".join(map(str, PROTOCOLS))
            raise AuthError(
                4000,
                ErrorCode.BAD_HELLO,
                f"no protocol version in common: this hub speaks {speaks}",
                ["protocols"],
            )
        dev = self.config.device(msg.device)
        if dev is None or not dev.verify(msg.token):
            raise AuthError(4001, ErrorCode.UNAUTHORIZED, "unknown device or wrong token", ["token"])
        if msg.role is not dev.role:
            raise AuthError(
                4003,
                ErrorCode.FORBIDDEN,
                f"device {dev.id} has role {dev.role.value}, not {msg.role}",
                ["role"],
            )
        if dev.role is Role.KITCHEN and msg.station not in (None, dev.station):
            raise AuthError(
                4003,
                ErrorCode.FORBIDDEN,
                f"device {dev.id} is at station {dev.station}, not {msg.station}",
                ["station"],
            )
        session = Session(dev, self.seq, conn, protocol=max(common))
        d = Decision(welcome=True)
        welcome, replay = self._welcome(session, msg.resume_from)
        d.replies.append((session, welcome))
        d.replies.extend((session, f) for f in replay)
        # Every printer's state as last heard (the spooler reports each one at its start), the good ones too: a
        # screen that reconnects (to this hub, or to one that restarted) drops an alert that no longer holds.
        for p in self.config.printers:
            notice = self.printer_trouble.get(p.id) or self.printer_ok.get(p.id)
            f = notice.frame_for(session) if notice is not None else None
            if f is not None:
                d.replies.append((session, f))
        d.logs.append(
            f"device {dev.id} ({dev.role.value}) connected, protocol {session.protocol}, "
            f"resume_from={msg.resume_from} seq={self.seq}"
        )
        return session, d

    def _welcome(self, session: Session, resume_from: int) -> tuple[str, list[str]]:
        first = self.log[0].seq if self.log else self.seq + 1
        resumable = 0 < resume_from <= self.seq and resume_from >= first - 1
        replay: list[str] = []
        if resumable:
            probe = Session(session.device, resume_from, protocol=session.protocol)
            budget = self.limits.replay_max_bytes
            for rec in self.log:
                if rec.seq > resume_from:
                    f = rec.frame_for(probe)
                    if f is not None:
                        replay.append(f)
                        budget -= len(f)
                        if budget < 0:
                            # Cheaper to start afresh than to replay this much: a snapshot instead.
                            resumable, replay = False, []
                            break
        dev = session.device
        now = self.clock()

        def welcome(pages: int, snapshot: Snapshot | None) -> Welcome:
            return Welcome(
                type="welcome",
                protocol=session.protocol,
                seq=self.seq,
                device=dev.id,
                role=dev.role,
                station=dev.station,
                resumed=resumable,
                replay=len(replay),
                pages=pages,
                snapshot=snapshot,
                store=self.store_view(dev.role),
                server_time=now,
            )

        if resumable:
            return welcome(0, None).model_dump_json(), replay
        orders = self._snapshot_orders(session)
        if dev.role is Role.SOURCE:
            statuses = [self._status(o, session.protocol).model_dump_json() for o in orders]
            return self._paged(welcome, statuses, "statuses")
        return self._paged(welcome, [self._order_text(o, dev.role) for o in orders], "orders")

    def _paged(
        self, welcome: Callable[[int, Snapshot], Welcome], parts: Sequence[str | bytes], field: str
    ) -> tuple[str, list[str]]:
        """The welcome and the `snapshot.page` frames that carry the rest of its snapshot: `parts`, the JSON of
        each order or status (its snapshot's `field`), none of the frames much larger than `snapshot_page_bytes`
        (a page holds at least one)."""
        limit = self.limits.snapshot_page_bytes
        head = _utf8_len(welcome(0, Snapshot()).model_dump_json()) - _EMPTY_SNAPSHOT + _PLACEHOLDER
        pages: list[list[str | bytes]] = [[]]
        room = max(limit - head, limit // 4)
        for p in parts:
            size = _utf8_len(p) + 1
            if pages[-1] and size > room:
                pages.append([])
                room = limit
            pages[-1].append(p)
            room -= size

        def snapshot(texts: list[str | bytes]) -> dict[str, Any]:
            data = Snapshot().model_dump(mode="json")
            data[field] = [written(t) for t in texts]
            return data

        n = len(pages) - 1
        first = welcome(n, Snapshot()).model_dump(mode="json")
        first["snapshot"] = snapshot(pages[0])
        rest = []
        for k, texts in enumerate(pages[1:], start=1):
            page = SnapshotPage(type="snapshot.page", seq=self.seq, page=k, pages=n, snapshot=Snapshot())
            data = page.model_dump(mode="json")
            data["snapshot"] = snapshot(texts)
            rest.append(frame_text(data))
        return frame_text(first), rest

    def snapshot(self, session: Session) -> Snapshot:
        """What a device needs right now: open orders it may see, and the last few closed ones (`snapshot_closed`,
        of the last 30 minutes and still in memory; `orders.closed` fetches more)."""
        orders = self._snapshot_orders(session)
        if session.device.role is Role.SOURCE:
            return Snapshot(statuses=[self._status(o, session.protocol) for o in orders])
        return Snapshot(orders=[view_for(session.device.role, o) for o in orders])

    def _order_json(self, o: Order) -> str:
        """The JSON of an order (`OrderView`), written once per version."""
        hit = self._texts.get(o.id)
        if hit is not None and hit[0] is o and hit[1] == o.version:
            return hit[2]
        text = o.model_dump_json()
        self._texts[o.id] = (o, o.version, text)
        return text

    def _order_text(self, o: Order, role: Role) -> str | bytes:
        """The JSON of an order as a device of this role may see it (`view_for`), written once per version (as
        UTF-8 when an event wrote the kitchens' cut copy: it is only ever embedded in other frames)."""
        if role in SEES_CUSTOMER:
            return self._order_json(o)
        hit = self._shown_texts.get(o.id)
        if hit is not None and hit[0] is o and hit[1] == o.version:
            return hit[2]
        text = redact_text(o, self._order_json(o))
        self._shown_texts[o.id] = (o, o.version, text)
        return text

    def _snapshot_orders(self, session: Session) -> list[Order]:
        """The orders of a snapshot for this session, oldest first."""
        now = self.clock()
        dev = session.device
        mine = [
            o
            for o in self.orders.values()
            if (dev.role is not Role.KITCHEN or dev.station in o.stations())
            and (dev.role is not Role.SOURCE or o.source == dev.id)
        ]
        closed = [o for o in mine if not o.is_open and now - o.updated_at <= RECENT]
        closed.sort(key=lambda o: o.updated_at, reverse=True)
        orders = [o for o in mine if o.is_open] + closed[: self.limits.snapshot_closed]
        orders.sort(key=lambda o: o.created_at)
        return orders

    def _closed(self, session: Session, msg: OrdersClosed) -> Decision:
        """`orders.closed`: closed orders in memory, newest first, at most `limit` and about one page of bytes."""
        dev = session.device
        found = [
            o
            for o in self.orders.values()
            if not o.is_open
            and (dev.role is not Role.KITCHEN or dev.station in o.stations())
            and (msg.before is None or o.updated_at < msg.before)
        ]
        found.sort(key=lambda o: o.updated_at, reverse=True)
        texts: list[str | bytes] = []
        room = self.limits.snapshot_page_bytes
        for o in found[: msg.limit]:
            text = self._order_text(o, dev.role)
            room -= _utf8_len(text) + 1
            if texts and room < 0:
                break
            texts.append(text)
        more = len(found) > len(texts)
        data = ClosedOrders(type="orders.closed.list", ref=msg.ref, more=more, orders=[]).model_dump(mode="json")
        data["orders"] = [written(t) for t in texts]
        return Decision(replies=[(session, frame_text(data))])

    def store_view(self, role: Role) -> StoreView:
        """The store as a device of this role sees it (stations; the catalogue for sources and the counter)."""
        cached = self._store_view.get(role)
        if cached is not None:
            return cached
        c = self.config
        sells = role in (Role.SOURCE, Role.COUNTER)
        view = StoreView(
            id=c.store.id,
            name=c.store.name,
            timezone=c.store.timezone,
            currency=c.store.currency,
            stations=[
                StationInfo(
                    id=s.id,
                    name=s.name,
                    name_zh=s.name_zh,
                    warn_after_s=s.timers.warn_after_s,
                    late_after_s=s.timers.late_after_s,
                )
                for s in c.stations
            ],
            counter_warn_after_s=c.counter.timers.warn_after_s,
            counter_late_after_s=c.counter.timers.late_after_s,
            language=c.store.language.value,
            allergens=[AllergenInfo(id=a.id, name=a.name, name_zh=a.name_zh) for a in c.allergens],
            methods=[
                MethodInfo(id=m.id, name=m.name, name_zh=m.name_zh, station=m.station, fee_cents=m.fee_cents)
                for m in c.methods
            ]
            if sells
            else [],
            catalogue=[
                CatalogueEntry(
                    sku=i.sku,
                    name=i.name,
                    name_zh=i.name_zh,
                    category=i.category,
                    barcode=i.barcode,
                    sold_by=i.sold_by.value,
                    price_cents=i.price_cents,
                    min_weight_g=i.min_weight_g,
                    max_weight_g=i.max_weight_g,
                    methods={m: i.fee_for(mm) for m in i.methods if (mm := c.method(m)) is not None},
                    allergens=list(i.allergens),
                )
                for i in c.catalogue
            ]
            if sells
            else [],
        )
        self._store_view[role] = view
        return view

    # ------------------------------------------------------------------ frames

    def handle_frame(self, session: Session, frame: str | bytes) -> Decision:
        """Parse and apply one frame from an authenticated session."""
        try:
            msg = parse_client_frame(frame)
        except FrameError as exc:
            d = self._error(session, exc.ref, exc.code, exc.message, exc.errors)
            d.ref = exc.ref
            return d
        return self.handle(session, msg)

    def handle(self, session: Session, msg: Any) -> Decision:
        """Apply one parsed message from an authenticated session."""
        d = self._decide(session, msg)
        d.ref = getattr(msg, "ref", None)
        d.write = not isinstance(msg, READS)
        return d

    def _decide(self, session: Session, msg: Any) -> Decision:
        kind: str = msg.type
        ref: str | None = getattr(msg, "ref", None)
        if kind not in ROLE_MESSAGES[session.role]:
            return self._error(
                session,
                ref,
                ErrorCode.FORBIDDEN,
                f"a {session.role.value} device may not send {kind}",
                [{"loc": ["type"], "msg": "not allowed"}],
            )
        try:
            if isinstance(msg, OrderSubmit):
                return self._submit(session, msg)
            if isinstance(msg, OrderQuote):
                return self._quote(session, msg)
            if isinstance(msg, Ping):
                return Decision(replies=[(session, Pong(type="pong", ref=msg.ref, seq=self.seq).model_dump_json())])
            if isinstance(msg, OrdersClosed):
                return self._closed(session, msg)
            if not self.writable and not isinstance(msg, READS):
                return self._unavailable(session, ref)
            if isinstance(msg, OrderCancel):
                return self._cancel(session, msg)
            if isinstance(msg, OrderAmend):
                return self._amend(session, msg)
            if isinstance(msg, TicketStart | TicketBump | ItemBump | TicketRecall):
                return self._kitchen(session, msg)
            if isinstance(msg, OrderCall | OrderHandover | OrderRecall):
                return self._counter(session, msg)
            if isinstance(msg, OrderFire | OrderHold):
                return self._fire_or_hold(session, msg)
            if isinstance(msg, PrintRequest):
                return self._print(session, msg)
        except DomainError as exc:
            # A state conflict names the order or ticket it is about.
            loc = list(exc.loc) or [next((f for f in ("ticket_id", "order_id") if hasattr(msg, f)), "type")]
            return self._error(session, ref, exc.code, exc.message, [{"loc": loc, "msg": exc.message}])
        return self._error(session, ref, ErrorCode.UNKNOWN_TYPE, f"{kind} is not accepted after hello")

    def _unavailable(self, session: Session, ref: str | None) -> Decision:
        return Decision(
            replies=[(session, unavailable_frame(ref))],
            logs=[f"error to {session.device.id}: unavailable (ref={ref!a})"],
            refused=True,
        )

    def _error(
        self,
        session: Session,
        ref: str | None,
        code: ErrorCode | str,
        message: str,
        errors: Iterable[dict[str, Any]] = (),
    ) -> Decision:
        c = code.value if isinstance(code, ErrorCode) else code
        return Decision(
            replies=[(session, error_frame(ref, code, message, errors))],
            logs=[f"error to {session.device.id}: {c}: {message} (ref={ref!a})"],
            refused=True,
        )

    # ------------------------------------------------------------------ orders

    def _submit(self, session: Session, msg: OrderSubmit) -> Decision:
        dev = session.device
        o = msg.order
        digest = order_digest(o)
        known = self.keys.get((dev.id, o.key))
        if known is not None:
            if known[2] is not None and known[2] != digest:
                return self._key_conflict(session, msg.ref, o.key, known)
            held = self.orders.get(known[0])
            frame = OrderAccepted(
                type="order.accepted",
                ref=msg.ref,
                order_id=known[0],
                number=known[1],
                duplicate=True,
                ready_at_estimate=held.ready_at_estimate if held is not None else None,
            )
            return Decision(
                replies=[(session, frame.model_dump_json())],
                logs=[f"duplicate submit {o.key!r} from {dev.id} → {known[1]}"],
            )
        if not self.writable:
            return self._unavailable(session, msg.ref)  # (a resubmission of a stored order is answered above)
        now = self.clock()
        refused = self._check_order(session, msg.ref, o, now)
        if refused is not None:
            return refused
        day = now.astimezone(self.tz).date()
        n = self.numbers.get(day, 0) + 1
        self.numbers[day] = n
        number = f"{CHANNEL_LETTER[o.channel.value]}{n:03d}"
        order_id = f"{day:%Y%m%d}-{number}"
        order = self._new_order(o, order_id, number, dev.id, digest, now)
        self._plan(order, now)
        self.window.orders[order_id] = None
        self.orders[order_id] = order
        self.keys[(dev.id, o.key)] = (order_id, number, digest)
        d = Decision()
        d.created = order_id
        rec = self._event(EventKind.ORDER_CREATED, order, frozenset(), None)
        d.events.append(rec)
        d.jobs = self._station_jobs(rec, [t.station for t in order.tickets if not t.waiting], None)
        accepted = OrderAccepted(
            type="order.accepted",
            ref=msg.ref,
            order_id=order_id,
            number=number,
            duplicate=False,
            ready_at_estimate=order.ready_at_estimate,
        )
        d.replies.append((session, _json(accepted)))
        stations = ",".join(f"{t.station}×{len(t.items)}" for t in order.tickets)
        unrouted = sum(1 for i in order.items if i.unrouted)
        d.logs.append(
            f"accepted {number} ({order_id}) {o.channel.value} from {dev.id} key={o.key!r} → {stations}"
            + (f" [{unrouted} unrouted]" if unrouted else "")
        )
        return d

    def _quote(self, session: Session, msg: OrderQuote) -> Decision:
        """When the order would be ready if it came now: from the kitchen's load, nothing stored or counted."""
        now = self.clock()
        refused = self._check_order(session, msg.ref, msg.order, now)
        if refused is not None:
            return refused
        draft = self._new_order(msg.order, "quote", "Q000", session.device.id, None, now)
        times = self._plan(draft, now)
        when = ready_at(times)
        assert when is not None  # an order has at least one item, so one ticket
        frame = OrderQuoted(
            type="order.quoted",
            ref=msg.ref,
            ready_at_estimate=when,
            stations={station: to_second(t) for station, t in sorted(times.items())},
        )
        return Decision(replies=[(session, _json(frame))])

    def _plan(self, order: Order, now: datetime) -> dict[str, datetime]:
        """When each part of a new order goes to its station (`KitchenLoad.plan`), its estimate, and its schedule when
        every part waits (an order for later); returns when each part will be done."""
        timing = self.config.timing
        f = order.fulfilment
        wanted = (
            f.at
            if isinstance(f, Pickup)
            else f.due - timedelta(seconds=timing.rider_margin_s)
            if isinstance(f, Delivery)
            else None
        )
        fire, done = self.load.plan(
            order,
            now,
            wanted=wanted - timedelta(seconds=timing.schedule_slack_s) if wanted is not None else None,
            by_prep=timing.fire_by_prep,
            soon_s=float(timing.fire_soon_s),
            ahead_s=float(timing.schedule_ahead_s),
        )
        for t in order.tickets:
            t.fire_at = fire.get(t.station)
        if wanted is not None and order.tickets and all(t.waiting for t in order.tickets):
            order.schedule = OrderSchedule(wanted_at=wanted)
        order.ready_at_estimate = ready_at(done)
        return done

    def _new_order(
        self, o: OrderIn, order_id: str, number: str, source: str, digest: str | None, now: datetime
    ) -> Order:
        return Order.create(
            now,
            [self._item_fields(str(k), it) for k, it in enumerate(o.items, start=1)],
            id=order_id,
            number=number,
            key=o.key or order_id,
            source=source,
            channel=o.channel,
            fulfilment=o.fulfilment,
            customer=o.customer,
            priority=o.priority,
            note=o.note,
            digest=digest,
        )

    def _check_order(self, session: Session, ref: str, o: OrderIn, now: datetime) -> Decision | None:
        """The refusal of an order this device may not send or that the store cannot make, if it is one."""
        dev = session.device
        if o.channel not in dev.channels:
            allowed = ", ".join(c.value for c in dev.channels)
            return self._error(
                session,
                ref,
                ErrorCode.FORBIDDEN,
                f"device {dev.id} may not submit {o.channel.value} orders",
                [{"loc": ["order", "channel"], "msg": f"allowed: {allowed}"}],
            )
        problems = self._check_items(("order", "items"), o.items)
        f = o.fulfilment
        when = ("due", f.due) if isinstance(f, Delivery) else ("at", f.at) if isinstance(f, Pickup) else None
        if when is not None and when[1] is not None and (why := time_window_problem(when[1], now)) is not None:
            problems.insert(0, Problem(("order", "fulfilment", when[0]), why))
        cap = self.limits.max_items_per_order
        if len(o.items) > cap:
            problems.append(Problem(("order", "items"), f"{len(o.items)} lines: an order may hold at most {cap}"))
        if problems:
            return self._invalid(session, ref, problems)
        return None

    def _key_conflict(self, session: Session, ref: str, key: str, known: tuple[str, str, str | None]) -> Decision:
        """The source used this key for another order: refused, naming the order the key belongs to."""
        message = (
            f"key {key!r} was used for another order ({known[1]}, {known[0]}): a resubmission must be the same order;"
            " a new order needs a new key"
        )
        errors = [{"loc": ["order", "key"], "msg": message}]
        frame = _error(ref, ErrorCode.CONFLICT, message, errors, key=key, order_id=known[0], number=known[1])
        return Decision(
            replies=[(session, frame.model_dump_json())],
            logs=[f"error to {session.device.id}: conflict: key {key!r} reused for another order → {known[1]}"],
            refused=True,
        )

    def _check_items(self, loc: tuple[str | int, ...], items: list[ItemIn]) -> list[Problem]:
        problems: list[Problem] = []
        for k, it in enumerate(items):
            problems.extend(check_item(self.config, (*loc, k), it.sku, it.weight_g, it.cook, it.allergens))
        return problems

    def _invalid(self, session: Session, ref: str | None, problems: list[Problem]) -> Decision:
        where = ".".join(str(p) for p in problems[0].loc)
        return self._error(
            session,
            ref,
            ErrorCode.INVALID_ORDER,
            f"{where}: {problems[0].msg}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            [p.as_dict() for p in problems],
        )

    def _make_item(self, item_id: str, it: ItemIn) -> Item:
        return Item(**self._item_fields(item_id, it))

    def _item_fields(self, item_id: str, it: ItemIn) -> dict[str, Any]:
        """The fields of the `Item` an order line makes (validated when the item is built: by `Item`, or with its
        whole order by `Order.create`)."""
        cat = self.config.item(it.sku)
        assert cat is not None
        route = route_item(self.config, it.sku, it.cook)
        method = self.config.method(it.cook) if it.cook else None
        allergens = list(dict.fromkeys([*cat.allergens, *it.allergens]))
        return {
            "id": item_id,
            "sku": it.sku,
            "name": it.name or cat.name,
            "name_zh": cat.name_zh,
            "qty": it.qty,
            "weight_g": it.weight_g,
            "cook": it.cook,
            "cook_name": method.name if method else None,
            "fee_cents": cat.fee_for(method) if method else 0,
            "modifiers": it.modifiers,
            "allergens": allergens,
            "declared_allergens": list(dict.fromkeys(it.allergens)),
            "note": it.note,
            "tag": it.tag,
            "station": route.station,
            "unrouted": route.unrouted,
        }

    def _order_for(self, session: Session, order_id: str, loc: str = "order_id") -> Order:
        o = self.orders.get(order_id)
        if o is None:
            raise DomainError(ErrorCode.NOT_FOUND.value, f"no open order {order_id!r}", (loc,))
        if session.role is Role.SOURCE and o.source != session.device.id:
            raise DomainError(ErrorCode.FORBIDDEN.value, f"order {o.number} was not submitted by this device", (loc,))
        return o

    def _cancel(self, session: Session, msg: OrderCancel) -> Decision:
        o = self._order_for(session, msg.order_id)
        self._touch(o)
        before = o.stations()
        live = live_tickets(o)
        changed = o.cancel(msg.reason, self.clock())
        d = self._applied(session, msg.ref, o, EventKind.ORDER_CANCELLED, before, changed)
        if d.events:
            d.jobs = self._station_jobs(d.events[0], live, Banner.CANCELLED)
        return d

    def _amend(self, session: Session, msg: OrderAmend) -> Decision:
        o = self._order_for(session, msg.order_id)
        amend_ref = f"{session.device.id}:{msg.ref}"
        if amend_ref in o.amend_refs:
            # A resend (the client's queue after a lost ack): already applied.
            return Decision(replies=[(session, ack_frame(msg.ref, None))])
        if not o.is_open:
            raise DomainError(ErrorCode.CONFLICT.value, f"order {o.number} is {o.status.value}: cannot amend it")
        problems = self._check_items(("add",), msg.add)
        for k, iid in enumerate(msg.remove):
            it = o.item(iid)
            if it is None:
                problems.append(Problem(("remove", k), f"no item {iid!r} in order {o.number}"))
        for iid in msg.item_notes:
            it = o.item(iid)
            if it is None or it.removed:
                problems.append(Problem(("item_notes", iid), f"no live item {iid!r} in order {o.number}"))
        cap = self.limits.max_items_per_order
        if msg.add and len(o.items) + len(msg.add) > cap:
            problems.append(
                Problem(
                    ("add",),
                    f"order {o.number} holds {len(o.items)} lines (removed ones included); adding {len(msg.add)} "
                    f"would pass the limit of {cap} lines per order",
                )
            )
        if not (msg.add or msg.remove or msg.item_notes or msg.note is not None):
            problems.append(Problem((), "nothing to change: give add, remove, note or item_notes"))
        if not problems:
            left = [i for i in o.live_items() if i.id not in set(msg.remove)]
            if not left and not msg.add:
                problems.append(Problem(("remove",), "that would leave the order empty; cancel it instead"))
        if problems:
            return self._invalid(session, msg.ref, problems)
        effective = (
            bool(msg.add)
            or any(not it.removed for it in (o.item(i) for i in msg.remove) if it is not None)
            or any(it.note != (text or None) for i, text in msg.item_notes.items() if (it := o.item(i)) is not None)
            or (msg.note is not None and (msg.note or None) != o.note)
        )
        if not effective:
            return Decision(replies=[(session, ack_frame(msg.ref, None))])
        self._touch(o)
        before = o.stations()
        start = o.next_item_id()
        added = [self._make_item(str(start + k), it) for k, it in enumerate(msg.add)]
        touched = o.amend(added, list(msg.remove), msg.note, dict(msg.item_notes), self.clock())
        o.amend_refs = [*o.amend_refs[-49:], amend_ref]
        d = self._applied(session, msg.ref, o, EventKind.ORDER_AMENDED, before, True)
        # Each touched station gets its ticket again: AMENDED, or CANCELLED when the amendment emptied it.
        rec = d.events[0]
        emptied = {t.station for t in o.tickets if t.station in touched and t.state is TicketState.CANCELLED}
        d.jobs = self._station_jobs(rec, touched - emptied, Banner.AMENDED) + self._station_jobs(
            rec, emptied, Banner.CANCELLED
        )
        what = [f"+{len(added)} items"] if added else []
        what += [f"-{len(msg.remove)} items"] if msg.remove else []
        what += ["order note"] if msg.note is not None else []
        what += [f"{len(msg.item_notes)} item notes"] if msg.item_notes else []
        d.logs.append(f"amended {o.number} ({o.id}) from {session.device.id}: {', '.join(what)}")
        return d

    def _kitchen(self, session: Session, msg: TicketStart | TicketBump | ItemBump | TicketRecall) -> Decision:
        order_id, _, station = msg.ticket_id.rpartition("/")
        o = self.orders.get(order_id)
        t: Ticket | None = o.ticket_at(station) if o else None
        if o is None or t is None:
            raise DomainError(ErrorCode.NOT_FOUND.value, f"no ticket {msg.ticket_id!r}", ("ticket_id",))
        if station != session.station:
            raise DomainError(
                ErrorCode.FORBIDDEN.value,
                f"ticket {msg.ticket_id} belongs to station {station}, this device is at {session.station}",
                ("ticket_id",),
            )
        self._touch(o)
        before = o.stations()
        now = self.clock()
        item_id: str | None = None
        was_done = t.state is TicketState.DONE
        if isinstance(msg, TicketStart):
            kind, changed = EventKind.TICKET_STARTED, o.start(t, now)
        elif isinstance(msg, TicketBump):
            kind, changed = EventKind.TICKET_BUMPED, o.bump(t, now)
        elif isinstance(msg, ItemBump):
            kind, changed, item_id = EventKind.ITEM_BUMPED, o.bump_item(t, msg.item_id, now), msg.item_id
        else:
            kind, changed = EventKind.TICKET_RECALLED, o.recall_ticket(t, now)
        sample = None
        if t.state is TicketState.DONE and not was_done:
            # A ticket done: how long it took teaches its slowest item's prep time (once the bump is stored).
            sample = self.load.sample(o, t, max_s=self.config.timing.learn_max_s)
            self.load.done(station, now)
        d = self._applied(session, msg.ref, o, kind, before, changed, ticket=t.id, item=item_id)
        if sample is not None and d.events:
            d.events[-1].samples.append(sample)
        return d

    def _index_due(self, o: Order) -> None:
        first = None
        if o.is_open:
            for t in o.tickets:
                if t.fire_at is not None and not t.held and t.state is TicketState.NEW:
                    first = t.fire_at if first is None else min(first, t.fire_at)
        if first is None:
            self.due.pop(o.id, None)
        else:
            self.due[o.id] = first

    def fire_due(self) -> Decision:
        """Fire the waiting tickets whose time has come (the server asks every `FIRE_TICK_S`): one `order.fired` event
        per order, its station tickets printed."""
        d = Decision(write=True)
        if not self.writable:
            return d
        now = self.clock()
        for oid in [oid for oid, at in self.due.items() if at <= now]:
            o = self.orders.get(oid)
            if o is None:
                self.due.pop(oid, None)
                continue
            self._touch(o)
            before = o.stations()
            go = [t for t in o.tickets if t.fire_at is not None and not t.held and t.fire_at <= now]
            fired = [t for t in go if o.fire(t, now)]
            if not fired:
                self._index_due(o)
                continue
            rec = self._event(EventKind.ORDER_FIRED, o, before, fired[0].id if len(fired) == 1 else None)
            d.events.append(rec)
            d.jobs += self._station_jobs(rec, [t.station for t in fired], None)
            d.logs.append(f"fired {o.number}: {', '.join(t.station for t in fired)}")
        return d

    def _fire_or_hold(self, session: Session, msg: OrderFire | OrderHold) -> Decision:
        o = self._order_for(session, msg.order_id)
        station = msg.station
        if session.role is Role.KITCHEN:
            if station is not None and station != session.station:
                raise DomainError(
                    ErrorCode.FORBIDDEN.value, f"this device is at {session.station}, not {station}", ("station",)
                )
            station = session.station
        if station is not None:
            t = o.ticket_at(station)
            if t is None:
                raise DomainError(
                    ErrorCode.NOT_FOUND.value, f"order {o.number} has no ticket at {station}", ("station",)
                )
            targets = [t]
        else:
            targets = [t for t in o.tickets if t.state is TicketState.NEW]
        self._touch(o)
        before = o.stations()
        now = self.clock()
        if isinstance(msg, OrderFire):
            fired = [t for t in targets if o.fire(t, now)]
            d = self._applied(session, msg.ref, o, EventKind.ORDER_FIRED, before, bool(fired))
            if d.events:
                d.jobs = self._station_jobs(d.events[-1], [t.station for t in fired], None)
            return d
        if not targets:
            raise DomainError(ErrorCode.CONFLICT.value, f"order {o.number} has no ticket left to hold", ("order_id",))
        held = [t for t in targets if o.hold(t, now)]
        return self._applied(session, msg.ref, o, EventKind.ORDER_HELD, before, bool(held))

    def stored(self, records: Iterable[EventRecord]) -> None:
        """These events are stored: learn the prep times they taught."""
        for rec in records:
            if rec.samples and not rec.dropped:
                self.prep.learn(rec.samples)

    def _counter(self, session: Session, msg: OrderCall | OrderHandover | OrderRecall) -> Decision:
        o = self._order_for(session, msg.order_id)
        self._touch(o)
        before = o.stations()
        now = self.clock()
        if isinstance(msg, OrderCall):
            kind, changed = EventKind.ORDER_CALLED, o.call(now)
        elif isinstance(msg, OrderHandover):
            kind, changed = EventKind.ORDER_HANDED_OVER, o.handover(msg.to, now)
        else:
            kind, changed = EventKind.ORDER_RECALLED, o.recall_handover(now)
        return self._applied(session, msg.ref, o, kind, before, changed)

    def _applied(
        self,
        session: Session,
        ref: str,
        o: Order,
        kind: EventKind,
        before: frozenset[str],
        changed: bool,
        ticket: str | None = None,
        item: str | None = None,
    ) -> Decision:
        d = Decision()
        if changed:
            rec = self._event(kind, o, before, ticket, item_id=item)
            d.events.append(rec)
            d.replies.append((session, ack_frame(ref, rec.seq)))
        else:
            d.replies.append((session, ack_frame(ref, None)))
        return d

    # ------------------------------------------------------------------ printing

    def _next_job_id(self) -> int:
        self.job_seq += 1
        return self.job_seq

    def _station_jobs(self, rec: EventRecord, stations: Iterable[str], banner: Banner | None) -> list[PrintJob]:
        assert rec.order is not None, "an event this hub just made carries its order"
        return station_jobs(
            self.config,
            rec.kind.value,
            rec.order,
            stations,
            banner,
            next_id=self._next_job_id,
            at=rec.at,
            order_json=rec.order_json,
        )

    def _print(self, session: Session, msg: PrintRequest) -> Decision:
        o = self._order_for(session, msg.order_id)
        order_json = self._order_json(o)
        now = self.clock()
        reason = f"print.request from {session.device.id}"
        if msg.layout is PrintLayout.STATION:
            live = live_tickets(o)
            jobs = station_jobs(
                self.config,
                reason,
                o,
                live,
                Banner.REPRINT,
                next_id=self._next_job_id,
                at=now,
                order_json=order_json,
            )
            if not jobs:
                raise DomainError(
                    ErrorCode.CONFLICT.value,
                    f"order {o.number} has no live station ticket on a printer"
                    if live
                    else f"order {o.number} has no live station ticket",
                    ("order_id",),
                )
        else:
            printer = self.config.counter.printer
            if printer is None:
                raise DomainError(
                    ErrorCode.CONFLICT.value, "the counter has no printer in the store config", ("layout",)
                )
            if msg.layout is PrintLayout.CLAIM_TAG and not claim_items(o):
                raise DomainError(ErrorCode.CONFLICT.value, f"order {o.number} has no shelf item to tag", ("order_id",))
            jobs = [
                PrintJob(
                    id=self._next_job_id(),
                    printer=printer,
                    layout=msg.layout,
                    order_id=o.id,
                    station=None,
                    banner=None,
                    created_at=now,
                    order_json=order_json,
                    reason=reason,
                )
            ]
        return Decision(
            replies=[(session, ack_frame(msg.ref, None))],
            jobs=jobs,
            logs=[f"{reason}: {msg.layout.value} of {o.number} → " + ", ".join(j.describe() for j in jobs)],
        )

    def printer_status(self, printer: str, state: PrinterState, message: str) -> PrinterNotice:
        """A printer got into trouble or out of it (the spooler says so): the notice to send."""
        notice = self._printer_notice(printer, state, message)
        if notice.ok:
            self.printer_trouble.pop(printer, None)
            self.printer_ok[printer] = notice
        else:
            self.printer_ok.pop(printer, None)
            self.printer_trouble[printer] = notice
        return notice

    def _printer_notice(self, printer: str, state: PrinterState, message: str) -> PrinterNotice:
        ok = state is PrinterState.OK
        stations = notice_stations(self.config, printer)
        frame = PrinterStatus(
            type="printer.status",
            printer=printer,
            stations=stations,
            ok=ok,
            state=state,
            message=message,
            at=self.clock(),
        )
        return PrinterNotice(printer, frozenset(stations), frame.model_dump_json(), ok)

    # ------------------------------------------------------------------ events

    def _event(
        self,
        kind: EventKind,
        o: Order,
        before: frozenset[str],
        ticket_id: str | None,
        *,
        item_id: str | None = None,
    ) -> EventRecord:
        self.seq += 1
        at = o.updated_at
        status_now = o.status
        status_changed = status_now is not o.progress
        scheduled = o.schedule_status()
        schedule_changed = scheduled is not o.told_schedule
        estimate = None
        self._index_due(o)
        if not o.is_open:
            self.load.forget(o.id)
        else:
            # Counted where its tickets are now. A new order's estimate was made as it came (`_submit`); the others'
            # follow the kitchen until the order is ready (then it is kept: what was promised, for the record).
            self.load.track(o, at)
            if kind is not EventKind.ORDER_CREATED and status_now is not OrderStatus.READY:
                estimate = ready_at(self.load.estimate(o, at))
        # The source hears of its order's estimate with every status, and when it moved by ESTIMATE_MOVE_S or more.
        moved = estimate is not None and (
            status_changed
            or schedule_changed
            or o.ready_at_estimate is None
            or abs((estimate - o.ready_at_estimate).total_seconds()) >= ESTIMATE_MOVE_S
        )
        if moved:
            o.ready_at_estimate = estimate
        # The source hears of a status change (protocol 3: scheduled, fired), and (protocol 2) of its ready order being
        # called.
        if status_changed or schedule_changed or kind is EventKind.ORDER_CALLED or moved:
            o.told_schedule = scheduled
            o.progress = status_now
            o.status_seq = self.seq
            o.status_at = at
            o.status_ready = o.stations_done()
        order_utf8, shown_utf8 = _order_texts(o)
        order_json = order_utf8.decode()
        self._texts[o.id] = (o, o.version, order_json)
        self._shown_texts[o.id] = (o, o.version, order_json if shown_utf8 is order_utf8 else shown_utf8)
        stations = before | o.stations()
        event = Event(
            type="event",
            seq=self.seq,
            at=at,
            kind=kind,
            ticket_id=ticket_id,
            item_id=item_id,
            stations=sorted(stations),
            status_changed=status_changed,
            order=o,
        )
        # One frame per audience, the order in it written once: the counter's (its order's text is also what the
        # database stores), and the kitchens' and monitors' (the same frame when there is nothing to cut).
        head = _EVENT.to_python(event, mode="json", exclude=_ORDER)
        frame = frame_text({**head, "order": written(order_utf8)})
        kitchen = frame if shown_utf8 is order_utf8 else frame_text({**head, "order": written(shown_utf8)})
        rec = EventRecord(
            seq=self.seq,
            at=at,
            kind=kind,
            order_id=o.id,
            source=o.source,
            stations=stations,
            status=o.status,
            frame=frame,
            kitchen=kitchen,
            status_frame=_json(self._status(o)) if o.status_seq == self.seq else None,
            status_frame_v2=_json(self._status(o, 2)) if o.status_seq == self.seq and scheduled is not None else None,
            order_json=order_json,
            order=o,
        )
        self._log_append(rec)
        return rec

    @staticmethod
    def _status(o: OrderView, protocol: int = PROTOCOLS[-1]) -> StatusChanged:
        """The `order.status` frame a source gets for an order (as of its last status change or call), in this
        protocol version: a ready order whose number was called is `called` from version 2 on, else `ready`."""
        return StatusChanged(
            type="order.status",
            seq=o.status_seq,
            at=o.status_at or o.updated_at,
            order_id=o.id,
            key=o.key,
            number=o.number,
            status=_told(
                o.status, o.called_at is not None, protocol, o.schedule_status() if isinstance(o, Order) else None
            ),
            ready=list(o.status_ready),
            reason=o.cancel_reason,
            ready_at_estimate=o.ready_at_estimate if o.status is not OrderStatus.CANCELLED else None,
        )

    def withdraw(self, d: Decision, existing: tuple[str, str, str | None]) -> None:
        """The database already holds an order with this decision's key (older than the in-memory key index):
        `existing` is its (order_id, number, digest).

        Forget the order just created, and answer as for any resubmission: the existing order's id and number, or
        `conflict` when the stored order was another one (its digest differs).
        """
        assert d.created is not None
        order = self.orders.pop(d.created, None)
        self.load.forget(d.created)
        self.due.pop(d.created, None)
        for rec in d.events:
            rec.dropped = True
        for job in d.jobs:
            job.dropped = True
        d.jobs = []
        if order is not None:
            self.keys[(order.source, order.key)] = existing
            self._texts.pop(order.id, None)
            self._shown_texts.pop(order.id, None)
        d.events = []
        if order is not None and existing[2] is not None and existing[2] != order.digest:
            replies = []
            for session, frame in d.replies:
                ref = OrderAccepted.model_validate_json(frame).ref
                c = self._key_conflict(session, ref, order.key, existing)
                replies.extend(c.replies)
                d.logs = c.logs
            d.replies = replies
            d.refused = True
            return
        d.replies = [
            (
                session,
                OrderAccepted.model_validate_json(frame)
                .model_copy(update={"order_id": existing[0], "number": existing[1], "duplicate": True})
                .model_dump_json(),
            )
            for session, frame in d.replies
        ]
        d.logs = [f"duplicate submit (older key) → {existing[1]} ({existing[0]})"]

    # ------------------------------------------------------------------ housekeeping

    def evict(self) -> tuple[int, list[Order]]:
        """Let orders leave memory (they stay in the database): closed ones `closed_keep_s` after they closed, open
        ones older than `open_max_age_h` (returned, for the log: somebody forgot them). Returns (closed, stale)."""
        now = self.clock()
        keep = timedelta(seconds=self.limits.closed_keep_s)
        max_age = timedelta(hours=self.limits.open_max_age_h)
        closed = [o for o in self.orders.values() if not o.is_open and now - o.updated_at > keep]
        stale = [o for o in self.orders.values() if o.is_open and now - o.created_at > max_age]
        for o in (*closed, *stale):
            del self.orders[o.id]
            self.load.forget(o.id)
            self.due.pop(o.id, None)
            self._texts.pop(o.id, None)
            self._shown_texts.pop(o.id, None)
            if self.keys.get((o.source, o.key), ("",))[0] == o.id:
                del self.keys[(o.source, o.key)]
        today = now.astimezone(self.tz).date()
        for day in [d for d in self.numbers if (today - d).days > 2]:
            del self.numbers[day]
        return len(closed), stale
