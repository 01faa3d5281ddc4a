"""The wire protocol: every frame the hub accepts or sends, as pydantic models.

This module is the contract that apps and kiosks of other vendors are written against. `kds schema` prints the JSON
Schema generated from these models, and the hub validates every incoming frame with `parse_client_frame`. The hub
builds every outgoing frame from these models too (`kds.hub`; its orders are `OrderView`s, `kds.domain`), and
pydantic writes their text: one definition of each frame.

Naming: requests are imperative (`order.submit`, `ticket.bump`), events are past tense (`ticket.bumped`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    WrapSerializer,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from kds.config import Channel, Role
from kds.jsontext import dumps_sorted

PROTOCOL_VERSION = 3
"""The newest protocol version this hub speaks (what `welcome.protocol` says to a client that speaks it too)."""
PROTOCOLS: tuple[int, ...] = (1, 2, 3)
"""Every protocol version this hub speaks, oldest first. A `hello` states the versions the client speaks
(`protocols`, default `[1]`); the welcome names the highest both speak. Version 2: `order.status` may say `called`.
Version 3: `order.status` may say `scheduled` and `fired`; events of kind `order.fired` and `order.held`."""
MAX_FRAME_BYTES = 64 * 1024
"""Frames larger than this close the connection with CLOSE_TOO_LARGE."""

MAX_ITEMS = 100
MAX_REF = 64

# ----------------------------------------------------------------------------- rules for strings, numbers, times

WHITE_SPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
"""The characters stripped from both ends of every client string but `ref` (Python's `str.strip()`, Unicode white
space: ASCII space, tab, CR, LF, VT, FF, U+001C-U+001F, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
U+202F, U+205F, U+3000)."""


def _char_class(chars: str) -> str:
    """A regex character class body (ECMA 262, Python and Rust alike) matching exactly `chars`."""
    codes = sorted(map(ord, chars))
    parts: list[str] = []
    start = prev = codes[0]
    for c in [*codes[1:], -1]:
        if c == prev + 1:
            prev = c
            continue
        parts.append(f"\\u{start:04x}" if start == prev else f"\\u{start:04x}-\\u{prev:04x}")
        start = prev = c
    return "".join(parts)


NOT_BLANK = f"[^{_char_class(WHITE_SPACE)}]"
"""The JSON Schema `pattern` of a string that must not be empty: it holds a character that is not white space
(what is left once the hub strips white space is not empty)."""

Ref = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=MAX_REF)]
"""A client correlation id, echoed in the answer exactly as sent (never stripped)."""
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=NOT_BLANK)]
ShortText = Annotated[str, Field(max_length=500)]


def _whole_number(value: Any) -> Any:
    """A JSON number without a fraction written as a float (`2.0`, `1e2`) is that integer, as JSON Schema's
    `"type": "integer"` says; booleans, strings and fractions stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE = BeforeValidator(_whole_number)
"""On every integer field of a client frame, with `strict=True`: a JSON integer, or a number with a zero fraction
(`2.0`); never `true`, `"2"` or `2.5`."""
Version = Annotated[int, Field(strict=True, ge=1), WHOLE]
"""A protocol version (`hello.protocols`)."""


TIME_PAST_MAX = timedelta(days=366)
"""A `due` or `at` may be at most this much before the hub's clock (a late order is still made; a wrong year,
century or unit is refused)."""
TIME_FUTURE_MAX = timedelta(days=60)
"""A `due` or `at` may be at most this much after the hub's clock."""

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_PLAIN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
"""The usual shape of a time (what the hub echoes, `isoformat`, and what clients send: an upper-case `T` and `Z`, no
leap second, no digits past the sixth, an offset within a day), which `datetime.fromisoformat` reads exactly as the
general rules below do, in a quarter of their time (a restart reads thousands; every order carries one or two)."""
RFC3339_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
"""The JSON Schema `pattern` of a time a client sends (the shape of RFC 3339's `date-time`, offset required)."""


def _client_time(value: Any) -> datetime:
    """A time a client sends: exactly an RFC 3339 `date-time` with an offset, in UTC.

    A leap second (`:60`) is taken as :59.999999 of the same minute; digits of a second past the sixth are cut.
    """
    if isinstance(value, datetime):  # (a model built in Python)
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError("time_offset", "a time needs an offset (Z or +08:00)")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "time_type", "a time must be an RFC 3339 string with an offset, such as 2026-11-25T12:40:00+08:00"
        )
    if _PLAIN_TIME.fullmatch(value):  # the same time as below, sooner
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except (ValueError, OverflowError):
            raise PydanticCustomError("time_range", "not a valid date, time or offset") from None
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise PydanticCustomError(
            "time_format", "not an RFC 3339 time with an offset (2026-11-25T12:40:00+08:00 or 2026-11-25T04:40:00Z)"
        )
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    if second == 60:  # a leap second
        second, micro = 59, 999_999
    sign, oh, om = m.group(8), m.group(9), m.group(10)
    try:
        offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1) if sign else timedelta()
        if sign and (int(oh) > 23 or int(om) > 59):
            raise ValueError("offset out of range")
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone(offset)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise PydanticCustomError("time_range", "not a valid date, time or offset") from None


def _utc_text(t: datetime) -> str:
    return _time_text(t if t.utcoffset() == _ZERO else t.astimezone(UTC))


_ZERO = timedelta(0)


_TEXTS: dict[int, tuple[datetime, str]] = {}
_TEXTS_MAX = 8192


def _time_text(t: datetime) -> str:
    """`t.isoformat()`, remembered for the time object itself: an order's times are the same few objects in every
    frame and document written of it (three for each event), and `isoformat` of an aware time costs more than the
    rest of writing it. Keyed by identity and holding the object, so a key is never another time's."""
    hit = _TEXTS.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    if len(_TEXTS) >= _TEXTS_MAX:
        _TEXTS.clear()
    text = t.isoformat()
    _TEXTS[id(t)] = (t, text)
    return text


HubTime = Annotated[datetime, PlainSerializer(_time_text, return_type=str, when_used="json")]
"""A time the hub writes (`created_at`, an event's `at`…): ISO 8601 in the offset it holds, as `datetime.isoformat`
writes it (`2026-11-25T02:00:00+00:00`; pydantic's own serialiser would write `Z` for UTC). The text of every frame
and stored document depends on it: a client that re-serialises a frame gets the same bytes."""


def _is_none(value: Any) -> bool:
    return value is None


def _is_false(value: Any) -> bool:
    return value is False


ClientTime = Annotated[
    AwareDatetime,
    BeforeValidator(_client_time),
    PlainSerializer(_utc_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
"""A time a client sends (`due`, `at`, `before`): RFC 3339 with an offset; kept and echoed in UTC (`+00:00`)."""


def time_window_problem(t: datetime, now: datetime) -> str | None:
    """Why a `due` or `at` is too far from the hub's clock `now`, if it is."""
    if t < now - TIME_PAST_MAX:
        return f"{_utc_text(t)} is more than {TIME_PAST_MAX.days} days before the hub's clock ({_utc_text(now)})"
    if t > now + TIME_FUTURE_MAX:
        return f"{_utc_text(t)} is more than {TIME_FUTURE_MAX.days} days after the hub's clock ({_utc_text(now)})"
    return None


class CloseCode:
    """Websocket close codes the hub uses (4xxx: application-defined).

    4000-4009: the hub refuses this device or frame; reconnecting the same way will not help. 4010 and up: a
    passing condition; reconnect (with backoff) and resume with `resume_from`.
    """

    BAD_HELLO = 4000
    UNAUTHORIZED = 4001
    FORBIDDEN = 4003
    TOO_LARGE = 4009
    HUB_SHUTTING_DOWN = 4010
    TOO_SLOW = 4011
    """The device did not read what the hub sent (over the outgoing byte cap, or stalled)."""
    TOO_MANY_CONNECTIONS = 4012
    """The hub (or this device) has as many connections as its limits allow."""
    RETRY = 4013
    """The welcome this connection got was withdrawn (the database refused a write meanwhile): connect again."""
    INTERNAL = 4014
    """The hub failed while sending to this connection; it went on serving the others."""
    RATE_LIMITED = 4029
    """Too many frames, too many new connections from one address, or a device locked out after wrong tokens."""


class ErrorCode(StrEnum):
    """The `code` of an `error` frame."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_ORDER = "invalid_order"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    UNAUTHORIZED = "unauthorized"
    BAD_HELLO = "bad_hello"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    """The hub could not store the change (database fault): nothing was done; send the same frame again later."""
    RATE_LIMITED = "rate_limited"
    """Too many frames or connections: this one was not processed."""
    LOCKED_OUT = "locked_out"
    """(After `hello`.) Too many wrong tokens for this device lately: connect again after `retry_after_s`."""
    TOO_MANY_CONNECTIONS = "too_many_connections"


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _listed_as(schema: dict[str, Any], *names: str) -> None:
    """List a model's properties (and its required ones) in the schema in this order, not in the order of its
    fields: a frame the hub writes with its largest field last is published as it always was."""
    props = schema["properties"]
    schema["properties"] = {n: props[n] for n in names if n in props} | props
    if "required" in schema:
        schema["required"] = [n for n in names if n in schema["required"]]


class _Frame(_Msg):
    """A frame the hub sends (or a part of one): its strings are kept exactly as the hub wrote them (a `ref` is
    echoed as sent, white space and all), so parsing a frame and writing it again gives the same text."""

    model_config = ConfigDict(str_strip_whitespace=False)


# --------------------------------------------------------------------------------------------- order content


class Priority(StrEnum):
    """How urgent an order is; rush orders jump ahead on the screens."""

    NORMAL = "normal"
    RUSH = "rush"


class Delivery(_Msg):
    """Delivered by a rider by `due` (the time promised to the customer)."""

    type: Literal["delivery"]
    due: ClientTime
    """RFC 3339 with an offset; within the hub's time window ([`TIME_PAST_MAX`, `TIME_FUTURE_MAX`]); echoed in UTC."""
    address: ShortText | None = None


class Pickup(_Msg):
    """Picked up at the counter."""

    type: Literal["pickup"]
    at: ClientTime | None = None
    """When the customer plans to come, if they said (the same rules as `Delivery.due`)."""


class DineIn(_Msg):
    """Served at a table in the store."""

    type: Literal["dine_in"]
    table: Annotated[str, Field(min_length=1, max_length=16, pattern=NOT_BLANK)]


Fulfilment = Annotated[Delivery | Pickup | DineIn, Field(discriminator="type")]


class Customer(_Msg):
    """Who the order is for (optional; shown on the counter screen and slips)."""

    name: Annotated[str, Field(max_length=80)] | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None


class ItemIn(_Msg):
    """One line of an order as a source sends it."""

    sku: Annotated[str, Field(min_length=1, max_length=32, pattern=NOT_BLANK)]
    name: Annotated[str, Field(max_length=120)] | None = None
    """Display name in any language; the catalogue's name when omitted."""
    qty: Annotated[int, Field(strict=True, ge=1, le=99), WHOLE] = 1
    weight_g: Annotated[int, Field(strict=True, gt=0), WHOLE] | None = None
    """Weight of weighed goods (live seafood, meat), in grams; required for them, refused for others."""
    cook: Annotated[str, Field(min_length=1, max_length=40, pattern=NOT_BLANK)] | None = None
    """Cooking method id; required when the item has cooking methods."""
    modifiers: Annotated[list[Annotated[str, Field(max_length=80)]], Field(max_length=20)] = Field(
        default_factory=list, json_schema_extra={"default": []}
    )
    allergens: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=20)] = Field(
        default_factory=list, json_schema_extra={"default": []}
    )
    """Allergies the customer declared for this line: ids of the store's declared allergens (`welcome.store.
    allergens`); anything else is refused with `invalid_order`."""
    note: ShortText | None = None
    tag: Annotated[str, Field(min_length=1, max_length=32, pattern=NOT_BLANK)] | None = None
    """Claim-tag id of a shelf item (printed at the seafood counter, travels with the product)."""


class OrderIn(_Msg):
    """An order as a source submits it."""

    key: Annotated[str, Field(min_length=1, max_length=64, pattern=NOT_BLANK)]
    """Idempotency key, unique per source: a resubmission with the same key and the same order creates nothing new;
    with a different order it is refused (`conflict`)."""
    channel: Channel
    fulfilment: Fulfilment
    customer: Customer | None = None
    priority: Priority = Priority.NORMAL
    note: ShortText | None = None
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_ITEMS)]


def order_digest(order: OrderIn) -> str:
    """The digest of an order as submitted: SHA-256 of its canonical JSON (every field with its default filled in,
    strings stripped, times in UTC, object keys sorted, no white space), the first 32 hex digits. Two submissions
    that say the same thing (`"qty": 1` or no `qty`, `+08:00` or the same instant in `Z`) have the same digest."""
    text = dumps_sorted(order.model_dump(mode="json"))  # the same bytes as json.dumps(sort_keys, compact, UTF-8)
    return hashlib.sha256(text).hexdigest()[:32]


# --------------------------------------------------------------------------------------------- client -> hub


class Hello(_Msg):
    """First frame of every connection.

    Fields this hub does not know are ignored (not refused, unlike in every other client frame), so that a client
    written for a newer protocol can say what it speaks to an older hub and be answered in a version both know.
    """

    model_config = ConfigDict(extra="ignore")

    type: Literal["hello"]
    device: Id
    token: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
    role: Role
    station: Id | None = None
    resume_from: Annotated[int, Field(strict=True, ge=0), WHOLE] = 0
    """Last `seq` this client applied; 0 for a fresh snapshot."""
    client: Annotated[str, Field(max_length=80)] | None = None
    """Free text naming the client software, for the logs."""
    protocols: Annotated[list[Version], Field(min_length=1, max_length=16)] = [1]
    """The protocol versions the client speaks (default `[1]`); `welcome.protocol` is the highest one the hub speaks
    too, and none in common is `bad_hello` (close 4000) naming the versions the hub speaks."""


class OrderSubmit(_Msg):
    """Submit a new order (role source or counter)."""

    type: Literal["order.submit"]
    ref: Ref
    order: OrderIn


class OrderDraft(OrderIn):
    """An order as a source would submit it, to ask when it would be ready (`order.quote`): its `key` may be left
    out (nothing is stored)."""

    key: Annotated[str, Field(min_length=1, max_length=64, pattern=NOT_BLANK)] | None = None  # type: ignore[assignment]


class OrderQuote(_Msg):
    """Ask when an order would be ready if it were submitted now (role source or counter): answered `order.quoted`
    from the kitchen's load at this moment, or `error` as `order.submit` would be; nothing is stored."""

    type: Literal["order.quote"]
    ref: Ref
    order: OrderDraft


class OrderCancel(_Msg):
    """Cancel an order that has not been handed over (its source, or the counter)."""

    type: Literal["order.cancel"]
    ref: Ref
    order_id: Id
    reason: ShortText | None = None


class OrderAmend(_Msg):
    """Change an open order: add items, remove items, change notes. The stations see the changes marked."""

    type: Literal["order.amend"]
    ref: Ref
    order_id: Id
    add: Annotated[list[ItemIn], Field(max_length=MAX_ITEMS)] = Field(
        default_factory=list, json_schema_extra={"default": []}
    )
    remove: Annotated[list[Id], Field(max_length=MAX_ITEMS)] = Field(
        default_factory=list, json_schema_extra={"default": []}
    )
    """Item ids to remove."""
    note: ShortText | None = None
    """New order note (omit to keep; empty string clears)."""
    item_notes: Annotated[dict[Id, ShortText], Field(max_length=MAX_ITEMS)] = {}
    """New note per item id."""


class TicketStart(_Msg):
    """A cook starts a ticket (role kitchen, own station only)."""

    type: Literal["ticket.start"]
    ref: Ref
    ticket_id: Id


class TicketBump(_Msg):
    """A cook bumps a ticket: all its items are done."""

    type: Literal["ticket.bump"]
    ref: Ref
    ticket_id: Id


class ItemBump(_Msg):
    """A cook bumps one item of a ticket; the ticket is done when all its items are."""

    type: Literal["item.bump"]
    ref: Ref
    ticket_id: Id
    item_id: Id


class TicketRecall(_Msg):
    """A cook reopens a bumped ticket."""

    type: Literal["ticket.recall"]
    ref: Ref
    ticket_id: Id


class OrderFire(_Msg):
    """Send an order's waiting tickets to their stations now (scheduled for later, fired by prep time, or held): the
    counter, any of them or one station's (`station`); a kitchen, its own station's."""

    type: Literal["order.fire"]
    ref: Ref
    order_id: Id
    station: Id | None = None


class OrderHold(_Msg):
    """Hold an order's tickets not started yet until they are fired by hand (`order.fire`): the counter, all of them
    or one station's (`station`); a kitchen, its own station's."""

    type: Literal["order.hold"]
    ref: Ref
    order_id: Id
    station: Id | None = None


class OrderCall(_Msg):
    """The counter calls an order's number (ready for pickup)."""

    type: Literal["order.call"]
    ref: Ref
    order_id: Id


class HandoverTo(StrEnum):
    """Who took the order at the counter."""

    CUSTOMER = "customer"
    RUNNER = "runner"
    RIDER = "rider"


class OrderHandover(_Msg):
    """The counter hands an order over."""

    type: Literal["order.handover"]
    ref: Ref
    order_id: Id
    to: HandoverTo = HandoverTo.CUSTOMER


class OrderRecall(_Msg):
    """The counter takes back a handed-over order (handed over by mistake)."""

    type: Literal["order.recall"]
    ref: Ref
    order_id: Id


class PrintLayout(StrEnum):
    """What a `print.request` prints."""

    STATION = "station"
    """Every station ticket of the order again, marked REPRINT, each on its station's printer."""
    CLAIM_TAG = "claim_tag"
    """The claim tags of the order's shelf items (one per tagged item), on the counter's printer."""
    PICKUP_SLIP = "pickup_slip"
    """The customer's pickup slip (pickup number, QR code of the order's status), on the counter's printer."""
    EXPO = "expo"
    """The expo / runner ticket of the whole order, on the counter's printer."""


class PrintRequest(_Msg):
    """The counter asks for a ticket to be printed (answered with `ack` once the job is stored)."""

    type: Literal["print.request"]
    ref: Ref
    order_id: Id
    layout: PrintLayout


class Ping(_Msg):
    """Liveness check; answered with `pong`."""

    type: Literal["ping"]
    ref: Ref | None = None


class OrdersClosed(_Msg):
    """Ask for orders closed lately (handed over or cancelled), newest first: the counter's and the monitor's recall
    list, a kitchen's orders of its station. Snapshots hold only the last few (`snapshot_closed`); this pages back."""

    type: Literal["orders.closed"]
    ref: Ref
    limit: Annotated[int, Field(strict=True, ge=1, le=200), WHOLE] = 50
    before: ClientTime | None = None
    """Only orders closed before this time (the `updated_at` of the oldest order of the previous answer)."""


ClientMessage = Annotated[
    Hello
    | OrderSubmit
    | OrderQuote
    | OrderCancel
    | OrderAmend
    | TicketStart
    | TicketBump
    | ItemBump
    | TicketRecall
    | OrderFire
    | OrderHold
    | OrderCall
    | OrderHandover
    | OrderRecall
    | PrintRequest
    | Ping
    | OrdersClosed,
    Field(discriminator="type"),
]
CLIENT_TYPES: dict[str, type[_Msg]] = {
    "hello": Hello,
    "order.submit": OrderSubmit,
    "order.quote": OrderQuote,
    "order.cancel": OrderCancel,
    "order.amend": OrderAmend,
    "ticket.start": TicketStart,
    "ticket.bump": TicketBump,
    "item.bump": ItemBump,
    "ticket.recall": TicketRecall,
    "order.fire": OrderFire,
    "order.hold": OrderHold,
    "order.call": OrderCall,
    "order.handover": OrderHandover,
    "order.recall": OrderRecall,
    "print.request": PrintRequest,
    "ping": Ping,
    "orders.closed": OrdersClosed,
}

ROLE_MESSAGES: dict[Role, frozenset[str]] = {
    Role.SOURCE: frozenset({"order.submit", "order.quote", "order.cancel", "order.amend", "ping"}),
    Role.KITCHEN: frozenset(
        {
            "ticket.start",
            "ticket.bump",
            "item.bump",
            "ticket.recall",
            "order.fire",
            "order.hold",
            "ping",
            "orders.closed",
        }
    ),
    Role.COUNTER: frozenset(
        {
            "order.submit",
            "order.quote",
            "order.cancel",
            "order.amend",
            "order.fire",
            "order.hold",
            "order.call",
            "order.handover",
            "order.recall",
            "print.request",
            "ping",
            "orders.closed",
        }
    ),
    Role.MONITOR: frozenset({"ping", "orders.closed"}),
}
"""Which messages each role may send (after `hello`)."""


# --------------------------------------------------------------------------------------------- hub -> client


class OrderStatus(StrEnum):
    """An order's status, derived from its tickets and the counter's actions."""

    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    CALLED = "called"
    """Only in `order.status` (protocol 2 and later): a ready order whose number the counter called (`order.call`),
    so the app can say "your order is being called at the counter". In `OrderView` (and for protocol 1 sources) a
    called order stays `ready`, with `called_at` set."""
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"
    SCHEDULED = "scheduled"
    """Only in `order.status` (protocol 3 and later): an order for later (a pickup `at`, a delivery `due`) whose
    tickets wait to be fired (`OrderView.schedule`). In `OrderView` (and for older sources) it is `accepted`."""
    FIRED = "fired"
    """Only in `order.status` (protocol 3 and later): a scheduled order whose tickets went to the kitchen, nothing of it
    started yet. In `OrderView` (and for older sources) it is `accepted`."""


class TicketState(StrEnum):
    """A station ticket's state: new → started → done; recall reopens; cancelled when its items are gone."""

    NEW = "new"
    STARTED = "started"
    DONE = "done"
    CANCELLED = "cancelled"


class ItemChange(StrEnum):
    """How an amendment touched an item (shown marked on the screens until the ticket is bumped)."""

    ADDED = "added"
    REMOVED = "removed"
    NOTE = "note"


class ItemView(_Frame):
    """An order line as the hub shows it."""

    id: str
    sku: str
    name: str
    name_zh: str
    qty: int
    weight_g: int | None
    cook: str | None
    cook_name: str | None
    fee_cents: int
    modifiers: list[str]
    allergens: list[str]
    note: str | None
    tag: str | None
    station: str
    unrouted: bool
    """True when nothing routed the item and it went to the store's default station."""
    removed: bool
    done_at: HubTime | None
    change: ItemChange | None
    declared_allergens: list[str] = []
    """Allergies the customer declared for this line; `allergens` lists these and the dish's own ingredients."""


class TicketView(_Frame):
    """The part of an order one station makes."""

    id: str
    station: str
    state: TicketState
    items: list[str]
    """Ids of the order's items made at this station."""
    created_at: HubTime
    started_at: HubTime | None
    done_at: HubTime | None
    recalled_at: HubTime | None
    amended_at: HubTime | None
    fire_at: Annotated[HubTime | None, Field(exclude_if=_is_none)] = None
    """While the ticket waits to go to its station: when it will (an order for later, or a part of an order fired by
    prep time so that all its parts finish together). Left out once it is fired, and for tickets fired at once."""
    held: Annotated[bool, Field(exclude_if=_is_false)] = False
    """Held (`order.hold`): it waits until it is fired by hand, whatever `fire_at` says. Left out when false."""
    fired_at: Annotated[HubTime | None, Field(exclude_if=_is_none)] = None
    """When a ticket that waited went to its station (its age on the screens counts from then); left out for a
    ticket fired at once."""

    @property
    def waiting(self) -> bool:
        """Not yet at its station: due to fire at `fire_at`, or held until fired by hand."""
        return self.fire_at is not None or self.held


def _without_nulls(value: Any, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
    """A fulfilment as orders carry it: its fields that are not null (a pickup with no `at` is `{"type":"pickup"}`),
    as the hub has always written it.

    Its JSON data is worked out once per fulfilment (a frozen model, written in every event of its order) and a copy
    of it given each time."""
    cached = info.mode == "json" and info.include is None and info.exclude is None
    if cached:
        hit = _FULFILMENTS.get(id(value))
        if hit is not None and hit[0] is value:
            return dict(hit[1])
    data = {k: v for k, v in handler(value).items() if v is not None}
    if cached:
        if len(_FULFILMENTS) >= _FULFILMENTS_MAX:
            _FULFILMENTS.clear()
        _FULFILMENTS[id(value)] = (value, data)
        return dict(data)
    return data


_FULFILMENTS: dict[int, tuple[Any, dict[str, Any]]] = {}
"""A fulfilment's JSON data as an order writes it, by the fulfilment's identity (holding the object keeps its id from
being reused while it is a key)."""
_FULFILMENTS_MAX = 8192


ShownFulfilment = Annotated[Fulfilment, WrapSerializer(_without_nulls)]
"""The fulfilment of an `OrderView`: written without its null fields (an order submitted with an `address` of null
is stored and shown without one), while `OrderIn`'s digest form keeps them."""


class OrderSchedule(_Frame):
    """When a scheduled order is wanted, and when it went to the kitchen."""

    wanted_at: HubTime
    """The pickup's `at`, or the delivery's `due` less the rider's margin: when it must be ready."""
    fired_at: Annotated[HubTime | None, Field(exclude_if=_is_none)] = None
    """When its first ticket went to its station (left out until then)."""


class OrderView(_Frame):
    """An order with its items and station tickets, as sent to kitchen, counter and monitor devices."""

    id: str
    number: str
    key: str
    source: str
    channel: Channel
    fulfilment: ShownFulfilment
    customer: Customer | None
    priority: Priority
    note: str | None
    status: OrderStatus
    version: int
    created_at: HubTime
    updated_at: HubTime
    called_at: HubTime | None
    handed_over_at: HubTime | None
    handed_over_to: HandoverTo | None
    cancelled_at: HubTime | None
    cancel_reason: str | None
    amended_at: HubTime | None
    status_seq: int
    """The seq of the event that made the source's last `order.status` (a change of status, or a call)."""
    status_at: HubTime | None
    """When that status was reached (the `at` of that `order.status`)."""
    status_ready: list[str]
    """Stations done when the status last changed (the `ready` of that `order.status`)."""
    amend_refs: list[str]
    """`"<device>:<ref>"` of each amendment applied (the device that sent it and its `ref`; the last 50): a resent
    amendment is recognised and changes nothing."""
    schedule: Annotated[OrderSchedule | None, Field(exclude_if=_is_none)] = None
    """For an order scheduled for later (its tickets waited to be fired): when it is wanted and when it was fired.
    Left out for an order sent to the kitchen at once."""
    ready_at_estimate: Annotated[HubTime | None, Field(exclude_if=_is_none)] = None
    """When the hub expects the order to be ready (`kds.timing`: the work queued at each of its stations and the
    prep times learned there): set when it is accepted, worked out again at each change of it until it is ready,
    then kept. Left out when there is none (orders stored before hubs estimated)."""
    digest: str | None = None
    """A digest of the order as submitted (its canonical form, see `order_digest`): a resubmission with the same
    `key` and another digest is refused with `conflict`. Null for orders stored before hubs kept it."""
    # Sequences, not lists: the hub's order (`kds.domain.Order`, a subclass) holds lists of its own item and ticket
    # classes. On the wire (and in the schema) they are arrays all the same.
    items: Annotated[Sequence[ItemView], PlainSerializer(list, return_type=list[ItemView])]
    tickets: Annotated[Sequence[TicketView], PlainSerializer(list, return_type=list[TicketView])]


class EventKind(StrEnum):
    """What happened to an order (the `kind` of an `event` frame)."""

    ORDER_CREATED = "order.created"
    ORDER_AMENDED = "order.amended"
    ORDER_CANCELLED = "order.cancelled"
    TICKET_STARTED = "ticket.started"
    TICKET_BUMPED = "ticket.bumped"
    ITEM_BUMPED = "item.bumped"
    TICKET_RECALLED = "ticket.recalled"
    ORDER_CALLED = "order.called"
    ORDER_HANDED_OVER = "order.handed_over"
    ORDER_RECALLED = "order.recalled"
    ORDER_FIRED = "order.fired"
    """Protocol 3: tickets that waited went to their stations (`ticket_id` names the ticket when one went)."""
    ORDER_HELD = "order.held"
    """Protocol 3: tickets are held until fired by hand."""


class Event(_Frame):
    """A state change, sent to kitchen (orders touching its station), counter and monitor devices.

    It carries the whole order after the change, so applying it is an upsert: a client that applies every event
    it receives, in `seq` order, holds the same orders as the hub.
    """

    model_config = ConfigDict(
        json_schema_extra=lambda schema, _cls: _listed_as(
            schema, "type", "seq", "at", "kind", "order", "ticket_id", "item_id", "stations", "status_changed"
        )
    )

    type: Literal["event"]
    seq: int
    at: HubTime
    kind: EventKind
    ticket_id: str | None = None
    """The ticket the event is about, for ticket and item events."""
    item_id: str | None = None
    stations: list[str] = []
    """Stations holding a ticket of the order before or after the change (the kitchen screens that got it)."""
    status_changed: bool = False
    """True when the order's status changed (its source got an `order.status`)."""
    order: OrderView
    # Last: the hub writes the order at the end of the frame (what a restart reads first is the frame's head).


class StatusChanged(_Frame):
    """The status of one of its orders changed, or the counter called it; what a source (app, kiosk) sees.

    In a welcome's snapshot, each order's last `order.status`, with that frame's own `seq` and `at`. Clients ignore
    fields they do not know (`ready_at_estimate` came this way).
    """

    type: Literal["order.status"]
    seq: int
    """The seq of the event that made this status (the order's `status_seq`)."""
    at: HubTime
    """When the status changed (the order's `status_at`)."""
    order_id: str
    key: str
    """The order's idempotency key, as the source sent it."""
    number: str
    status: OrderStatus
    ready: list[str] = []
    """Stations whose part is done (progress for the app)."""
    reason: str | None = None
    """On a `cancelled` status only (there always, `null` when none was given): the `reason` of the `order.cancel`."""
    ready_at_estimate: Annotated[HubTime | None, Field(exclude_if=_is_none)] = None
    """When the hub expects the order to be ready, as of this status (the order's `ready_at_estimate`); written
    only when there is one."""

    @model_serializer(mode="wrap")
    def _reason_when_cancelled(self, handler: SerializerFunctionWrapHandler) -> Any:
        """`reason` is written on a cancelled status only (there always, even `null`)."""
        data = handler(self)
        if self.status is not OrderStatus.CANCELLED and isinstance(data, dict):
            data.pop("reason", None)
        return data


class StationInfo(_Frame):
    """A station, as listed in `welcome`."""

    id: str
    name: str
    name_zh: str
    warn_after_s: int
    late_after_s: int


class AllergenInfo(_Frame):
    """An allergen the store declares (`[[allergens]]`), as listed in `welcome`: the only ids an order line's
    `allergens` may hold."""

    id: str
    name: str
    name_zh: str


class MethodInfo(_Frame):
    """A cooking method, as listed in `welcome` for sources and the counter."""

    id: str
    name: str
    name_zh: str
    station: str
    fee_cents: int


class CatalogueEntry(_Frame):
    """A catalogue item, as listed in `welcome` for sources and the counter."""

    sku: str
    name: str
    name_zh: str
    category: str
    barcode: str | None
    sold_by: str
    """`each` (priced per piece) or `weight` (weighed goods: an order line needs `weight_g`)."""
    price_cents: int
    """Price per piece, or per kilogram when sold by weight: a line costs `round(price_cents * weight_g / 1000)`
    per piece then (the processing fee of its cooking method comes on top)."""
    min_weight_g: int | None
    """For goods sold by weight: the lightest `weight_g` an order line may give (null otherwise)."""
    max_weight_g: int | None
    """For goods sold by weight: the heaviest `weight_g` an order line may give (null otherwise)."""
    methods: dict[str, int]
    """Allowed cooking method ids with the processing fee for this item."""
    allergens: list[str]


class StoreView(_Frame):
    """What a device needs to know of the store."""

    id: str
    name: str
    timezone: str
    currency: str
    stations: list[StationInfo]
    counter_warn_after_s: int
    counter_late_after_s: int
    language: str = "en"
    """The store's language for screens and tickets (`en` or `zh`); a device may have its own."""
    allergens: list[AllergenInfo] = []
    """The allergens the store declares: the only ids `ItemIn.allergens` may hold (an unknown one is refused with
    `invalid_order`, its `loc` ending in the item's `allergens` index)."""
    methods: list[MethodInfo] = []
    catalogue: list[CatalogueEntry] = []


class Snapshot(_Frame):
    """The orders a device needs, as of the welcome's `seq`."""

    orders: list[OrderView] = []
    statuses: list[StatusChanged] = []
    """For sources: the last `order.status` of each of their open orders and of the last closed ones (each with its
    own `seq` and `at`, not the welcome's)."""


class Welcome(_Frame):
    """The hub's answer to a good `hello`.

    With `resumed` true, the `replay` events the client missed since `resume_from` follow; otherwise `snapshot`
    holds the whole state as of `seq` and the client drops what it had.
    """

    type: Literal["welcome"]
    protocol: int
    """The protocol version of this connection: the highest of the hello's `protocols` that the hub speaks."""
    seq: int
    device: str
    role: Role
    station: str | None
    resumed: bool
    replay: int
    pages: int = 0
    """How many `snapshot.page` frames follow with the rest of `snapshot` (0: it is whole). The client applies the
    snapshot once it has them all."""
    snapshot: Snapshot | None
    store: StoreView
    server_time: HubTime


class SnapshotPage(_Frame):
    """The rest of a large snapshot: `pages` of them follow a `welcome` (page 1 first), before any other frame."""

    type: Literal["snapshot.page"]
    seq: int
    page: int
    pages: int
    snapshot: Snapshot


class ClosedOrders(_Frame):
    """The answer to `orders.closed`: closed orders, newest first."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema, _cls: _listed_as(schema, "type", "ref", "orders", "more")
    )

    type: Literal["orders.closed.list"]
    ref: str
    more: bool
    """True when older closed orders are still in the hub's memory: ask again with `before`."""
    orders: list[OrderView]
    # Last: the hub writes the orders at the end of the frame.


class OrderAccepted(_Frame):
    """The order is durably stored. A resubmission with the same key gets the same answer, with `duplicate`."""

    type: Literal["order.accepted"]
    ref: str
    order_id: str
    number: str
    duplicate: bool = False
    ready_at_estimate: Annotated[HubTime | None, Field(exclude_if=_is_none)] = None
    """When the hub expects the order to be ready, from the kitchen's load as it accepted it (the order's
    `ready_at_estimate` then); written only when there is one (not on a duplicate of an order no longer in memory)."""


class OrderQuoted(_Frame):
    """Answer to `order.quote`: when the order would be ready if it were submitted now. Nothing was stored."""

    type: Literal["order.quoted"]
    ref: str
    ready_at_estimate: HubTime
    stations: dict[str, HubTime]
    """Each station that would make part of it → when its part would be done."""


class Ack(_Frame):
    """An action was applied (or was already in effect); `seq` is its event's, when it made one."""

    type: Literal["ack"]
    ref: str
    seq: int | None = None


class ErrorDetail(_Frame):
    """One problem: where (path into the frame) and what."""

    loc: list[str | int]
    msg: str


class Error(_Frame):
    """A frame was refused; nothing of it was applied or stored."""

    type: Literal["error"]
    ref: str | None
    code: ErrorCode
    message: str
    errors: list[ErrorDetail] = []
    retry_after_s: Annotated[Annotated[int, Field(ge=1)] | None, Field(exclude_if=_is_none)] = None
    """Seconds to wait before connecting again (`locked_out`); absent otherwise."""
    key: Annotated[str | None, Field(exclude_if=_is_none)] = None
    """(`conflict` of an `order.submit` whose `key` the source used for another order.) The key; absent otherwise."""
    order_id: Annotated[str | None, Field(exclude_if=_is_none)] = None
    """(Same.) The order the key was used for; absent otherwise."""
    number: Annotated[str | None, Field(exclude_if=_is_none)] = None
    """(Same.) That order's number; absent otherwise."""


class PrinterState(StrEnum):
    """A printer's condition."""

    OK = "ok"
    PAPER_OUT = "paper_out"
    OFFLINE = "offline"
    """Unreachable (off, unplugged, not answering) or reporting itself offline."""
    ERROR = "error"
    """Reachable but not printing for another reason (cover open, printer error)."""


class PrinterStatus(_Frame):
    """A printer got into trouble, or out of it: sent to the kitchen screens of its stations, to those of the
    stations whose printer is its backup (they print its tickets meanwhile), and to the counter.

    Also sent right after `welcome` (and its replay) for every printer whose state the hub knows, ok ones too, so a
    screen that reconnects drops an alert that no longer holds.
    """

    type: Literal["printer.status"]
    printer: str
    stations: list[str]
    """Stations whose printer this is, then the stations of its backup printers (in backup order)."""
    ok: bool
    state: PrinterState
    message: str
    """For people: what is wrong, and where the tickets go meanwhile."""
    at: HubTime


class Pong(_Frame):
    """Answer to `ping`."""

    type: Literal["pong"]
    ref: str | None = None
    seq: int


HubFrame: TypeAlias = (
    Welcome
    | SnapshotPage
    | OrderAccepted
    | OrderQuoted
    | Ack
    | Error
    | Event
    | StatusChanged
    | PrinterStatus
    | Pong
    | ClosedOrders
)
"""Any frame the hub sends, as its model."""
HubMessage = Annotated[HubFrame, Field(discriminator="type")]


# --------------------------------------------------------------------------------------------- parsing


class FrameError(Exception):
    """An incoming frame could not be parsed; carries what the `error` answer says."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        ref: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors or []
        self.ref = ref


def _ref_of(data: Any) -> str | None:
    """The `ref` an error about this frame echoes: the frame's own, exactly as sent, even when it is refused (empty,
    white space); an over-long one cut to its first `MAX_REF` characters; none when it is not a string or not valid
    text (a lone surrogate)."""
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref[:MAX_REF] if isinstance(ref, str) and _is_text(ref) else None


def _is_text(s: str) -> bool:
    """False for a string that is not valid Unicode text (a lone surrogate, which UTF-8 cannot carry)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogates(node: Any, loc: list[int | str]) -> list[int | str] | None:
    """The path of the first string (or object key) in a parsed frame that is not valid text, if any."""
    if isinstance(node, str):
        return None if _is_text(node) else loc
    if isinstance(node, dict):
        for k, v in node.items():
            if not _is_text(k):
                return [*loc, k.encode("utf-8", "backslashreplace").decode("ascii")]
            found = _surrogates(v, [*loc, k])
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _surrogates(v, [*loc, i])
            if found is not None:
                return found
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_TAGGED = {"fulfilment"}
_LONE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _frame_loc(loc: tuple[int | str, ...]) -> list[int | str]:
    """pydantic puts the discriminator's tag in the path of a tagged union; a path into the frame has no such step."""
    out: list[int | str] = []
    skip = False
    for part in loc:
        if skip:
            skip = False
            if isinstance(part, str) and part in ("delivery", "pickup", "dine_in"):
                continue
        out.append(part)
        skip = part in _TAGGED
    return out


def parse_client_frame(frame: str | bytes) -> Any:
    """Parse one frame from a client into its message model; raise FrameError naming the fields at fault."""
    import json

    try:
        data = json.loads(frame, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            raise FrameError(ErrorCode.INVALID_JSON, "frame is nested too deeply") from None
        raise FrameError(ErrorCode.INVALID_JSON, f"frame is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FrameError(
            ErrorCode.INVALID_MESSAGE,
            "a frame must be a JSON object",
            [{"loc": [], "msg": f"expected an object, got {type(data).__name__}"}],
        )
    ref = _ref_of(data)
    # A `\\uD800`-style escape decodes to a lone surrogate: valid JSON, but not text that UTF-8 (the wire, the
    # database) can carry. Cheap test first: only a frame with a \\uD8..-\\uDF.. escape can hold one.
    text = frame if isinstance(frame, str) else frame.decode("latin-1")
    if "\\u" in text and _LONE_ESCAPE.search(text):
        bad = _surrogates(data, [])
        if bad is not None:
            where = ".".join(str(p) for p in bad) or "frame"
            raise FrameError(
                ErrorCode.INVALID_MESSAGE,
                f"{where}: not valid Unicode text (a lone surrogate escape)",
                [{"loc": bad, "msg": "string contains a lone UTF-16 surrogate, which is not valid text"}],
                ref,
            )
    kind = data.get("type")
    if not isinstance(kind, str):
        raise FrameError(
            ErrorCode.INVALID_MESSAGE,
            "frame has no string 'type'",
            [{"loc": ["type"], "msg": "required"}],
            ref,
        )
    if kind not in CLIENT_TYPES:
        raise FrameError(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown message type {kind!r}",
            [{"loc": ["type"], "msg": f"expected one of {', '.join(sorted(CLIENT_TYPES))}"}],
            ref,
        )
    try:
        return CLIENT_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": _frame_loc(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise FrameError(ErrorCode.INVALID_MESSAGE, f"invalid {kind}: {where}: {first['msg']}", errors, ref) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every message, both directions, generated from these models."""
    client = TypeAdapter(ClientMessage).json_schema(ref_template="#/$defs/{model}")
    hub = TypeAdapter(HubMessage).json_schema(ref_template="#/$defs/{model}")
    client_defs, hub_defs = client.pop("$defs", {}), hub.pop("$defs", {})
    clash = {k for k in client_defs.keys() & hub_defs.keys() if client_defs[k] != hub_defs[k]}
    assert not clash, f"a model name is used differently in both directions: {clash}"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Hema KDS wire protocol",
        "description": (
            f"Protocol version {PROTOCOL_VERSION}. One websocket endpoint; every frame is one JSON object "
            f"with a 'type'. Frames over {MAX_FRAME_BYTES} bytes close the connection with code "
            f"{CloseCode.TOO_LARGE}. ClientMessage: frames a device sends; HubMessage: frames the hub sends."
        ),
        "$defs": _standard({**client_defs, **hub_defs, "ClientMessage": client, "HubMessage": hub}),
        "oneOf": [{"$ref": "#/$defs/ClientMessage"}, {"$ref": "#/$defs/HubMessage"}],
    }


def _standard(node: Any) -> Any:
    """Plain JSON Schema 2020-12, which standard validators load as is (ajv in strict mode, `jsonschema`): without
    OpenAPI's `discriminator`, which pydantic adds to tagged unions; their `oneOf` of models with a `const` type
    already tells the frames apart."""
    if isinstance(node, dict):
        tagged = "oneOf" in node and isinstance(node.get("discriminator"), dict)
        return {k: _standard(v) for k, v in node.items() if not (tagged and k == "discriminator")}
    if isinstance(node, list):
        return [_standard(v) for v in node]
    return node
