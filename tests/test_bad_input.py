"""Bad input from authenticated devices: every malformed frame gets a structured `error`, nothing is stored, and
the connection (and every other connection) keeps being served. Oversized frames close with 4009.

The corpus below is table-driven: each case names the device that sends it, the frame (built against a real order
already on the hub, for the cases that need one), and the `code`, the `loc` of the field at fault and the `ref`
echoed in the answer. Cases that show a bug in the hub carry `bug=` and run as strict xfails.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from kds.config import Role, StoreConfig
from kds.protocol import MAX_FRAME_BYTES, ROLE_MESSAGES, Ack, CloseCode, Error, ErrorCode, OrderAccepted, OrderView
from kds.server import HubServer
from kds.store import Store
from tests.conftest import app_order, shelf_order
from tests.support import status_of, until

# --------------------------------------------------------------------------------------------- helpers

STATE_FRAMES = ("event", "order.status")
"""Broadcasts a device gets besides the answers to its own frames."""


class Raw:
    """A raw websocket connection to the hub after a good hello: frames go out exactly as given."""

    def __init__(self, conn: ClientConnection, welcome: dict[str, Any]) -> None:
        self.conn = conn
        self.welcome = welcome
        self.broadcasts: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, config: StoreConfig, device_id: str) -> Raw:
        dev = config.device(device_id)
        assert dev is not None, device_id
        conn = await ws_connect(url, max_size=None, open_timeout=5, close_timeout=2)
        hello: dict[str, Any] = {"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value}
        if dev.station:
            hello["station"] = dev.station
        await conn.send(json.dumps(hello))
        async with asyncio.timeout(5):
            welcome = json.loads(await conn.recv())
        assert welcome["type"] == "welcome", welcome
        return cls(conn, welcome)

    async def send(self, frame: str | bytes | dict[str, Any]) -> None:
        await self.conn.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def reply(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame that answers something this device sent (broadcasts are kept aside)."""
        async with asyncio.timeout(timeout):
            while True:
                frame: dict[str, Any] = json.loads(await self.conn.recv())
                if frame.get("type") in STATE_FRAMES:
                    self.broadcasts.append(frame)
                    continue
                return frame

    async def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send a frame with a ref and return the answer carrying that ref."""
        await self.send(msg)
        while True:
            frame = await self.reply()
            if frame.get("ref") == msg["ref"]:
                return frame

    async def ping(self, ref: str = "ping-after") -> None:
        """Assert that the connection is still served."""
        pong = await self.request({"type": "ping", "ref": ref})
        assert pong["type"] == "pong" and pong["ref"] == ref

    async def close(self) -> None:
        await self.conn.close()


def db_state(db_path: Path, config: StoreConfig) -> tuple[int, dict[str, dict[str, Any]]]:
    """What the hub's database holds: the number of events, and every order document by id."""
    store = Store(db_path, store_id=config.store.id)
    try:
        return store.count_events(), {d["id"]: d for d in store.order_docs()}
    finally:
        store.close()


def kiosk_order(key: str, **over: Any) -> dict[str, Any]:
    """A kiosk pickup order: one wok dish."""
    order: dict[str, Any] = {
        "key": key,
        "channel": "kiosk",
        "fulfilment": {"type": "pickup"},
        "items": [{"sku": "WOK-MAPO"}],
    }
    order.update(over)
    return order


def valid_order(device: str, key: str) -> dict[str, Any]:
    """A good order on a channel this device of the sample config may use."""
    if device == "app-backend":
        return app_order(key)
    if device.startswith("kiosk"):
        return kiosk_order(key)
    return shelf_order(key)


# --------------------------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Ctx:
    """What is on the hub before a case runs: one shelf order (wok and cold tickets) from shelf-1."""

    oid: str


Frame = Callable[[Ctx], str | bytes]


@dataclass(frozen=True)
class Case:
    id: str
    frame: Frame
    code: ErrorCode
    loc: tuple[str | int, ...] | None
    """The loc of the first error; None: the frame has no field to name (every loc, if any, is [])."""
    ref: str | None = None
    """The ref the answer must echo."""
    device: str = "shelf-1"
    bug: str | None = None
    """Why this case is a strict xfail (a hub bug, see the report)."""


def _j(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def raw(text: str | bytes) -> Frame:
    return lambda _ctx: text


def msg(**fields: Any) -> Frame:
    """A frame from fields; string values may use {oid}."""

    def build(ctx: Ctx) -> str:
        return _j({k: v.format(oid=ctx.oid) if isinstance(v, str) else v for k, v in fields.items()})

    return build


def submit(ref: str, order: dict[str, Any] | None = None, **over: Any) -> Frame:
    """An order.submit of a shelf order (or `order`) with top-level order fields replaced."""
    o = dict(order if order is not None else shelf_order(f"key-{ref}"))
    o.update(over)
    return raw(_j({"type": "order.submit", "ref": ref, "order": o}))


LOBSTER = {"sku": "LOB-AUS", "weight_g": 800, "cook": "steamed", "tag": "T-2001"}


def submit_item(ref: str, base: dict[str, Any] | None = None, **over: Any) -> Frame:
    """An order.submit with one item: the lobster (or `base`) with fields replaced; None drops a field."""
    item = dict(LOBSTER if base is None else base)
    for k, v in over.items():
        if v is None:
            item.pop(k, None)
        else:
            item[k] = v
    return submit(ref, items=[item])


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


INV, ORD = ErrorCode.INVALID_MESSAGE, ErrorCode.INVALID_ORDER
ITEM0 = ("order", "items", 0)
CASES: list[Case] = [
    # --- not a JSON object
    Case("not-json", raw("this is not json"), ErrorCode.INVALID_JSON, None),
    Case("truncated-json", raw('{"type":"ping","ref":"r-trunc"'), ErrorCode.INVALID_JSON, None),
    Case("empty-frame", raw(""), ErrorCode.INVALID_JSON, None),
    Case("json-array", raw('[{"type":"ping","ref":"r-arr"}]'), INV, ()),
    Case("json-number", raw("42"), INV, ()),
    Case("json-string", raw('"ping"'), INV, ()),
    Case("json-null", raw("null"), INV, ()),
    Case("binary-invalid-utf8", raw(b'{"type":"ping","ref":"r-\xff\xfe"}'), ErrorCode.INVALID_JSON, None),
    Case("deeply-nested", raw(deep(20_000)), ErrorCode.INVALID_JSON, None),
    Case(
        "deeply-nested-with-ref",
        raw('{"type":"ping","ref":"r-deep","x":' + deep(20_000) + "}"),
        ErrorCode.INVALID_JSON,
        None,
    ),
    Case("nested-500-in-note", submit("r-nest", note=json.loads(deep(500))), INV, ("order", "note"), "r-nest"),
    # --- type
    Case("missing-type", msg(ref="r-notype"), INV, ("type",), "r-notype"),
    Case("unknown-type", msg(type="order.teleport", ref="r-tele"), ErrorCode.UNKNOWN_TYPE, ("type",), "r-tele"),
    Case("type-not-string", msg(type=7, ref="r-t7"), INV, ("type",), "r-t7"),
    Case("type-null", msg(type=None, ref="r-tnull"), INV, ("type",), "r-tnull"),
    Case(
        "hello-after-auth",
        msg(type="hello", device="shelf-1", token="dev-shelf-1-token", role="source"),
        ErrorCode.FORBIDDEN,
        ("type",),
    ),
    Case("ping-extra-field", msg(type="ping", ref="r-pe", extra=1), INV, ("extra",), "r-pe"),
    Case("ping-ref-number", msg(type="ping", ref=12), INV, ("ref",)),
    # A refused ref is still echoed as far as it can be: an over-long one cut to 64 characters, an empty one as is.
    Case("ref-too-long", msg(type="ping", ref="r" * 65), INV, ("ref",), "r" * 64),
    Case("submit-ref-empty", submit(""), INV, ("ref",), ""),
    Case("ref-lone-surrogate", raw('{"type":"ping","ref":"r-\\ud800"}'), INV, ("ref",)),
    Case("note-lone-surrogate", raw('{"type":"ping","ref":"r-sur","x":"\\udc00"}'), INV, ("x",), "r-sur"),
    # --- order.submit: shape and types
    Case("submit-missing-order", msg(type="order.submit", ref="r-noorder"), INV, ("order",), "r-noorder"),
    Case("submit-order-not-object", msg(type="order.submit", ref="r-ostr", order="LOB-AUS"), INV, ("order",), "r-ostr"),
    Case("qty-string", submit_item("r-qtys", qty="two"), INV, (*ITEM0, "qty"), "r-qtys"),
    Case("weight-string", submit_item("r-wstr", weight_g="800"), INV, (*ITEM0, "weight_g"), "r-wstr"),
    Case("qty-bool", submit_item("r-qtyb", qty=True), INV, (*ITEM0, "qty"), "r-qtyb"),
    Case("qty-fraction", submit_item("r-qtyf", qty=1.5), INV, (*ITEM0, "qty"), "r-qtyf"),
    Case("items-not-list", submit("r-itemsobj", items={"sku": "LOB-AUS"}), INV, ("order", "items"), "r-itemsobj"),
    Case("item-not-object", submit("r-itemstr", items=["LOB-AUS"]), INV, (*ITEM0,), "r-itemstr"),
    Case("fulfilment-not-object", submit("r-fstr", fulfilment="dine_in"), INV, ("order", "fulfilment"), "r-fstr"),
    Case("modifiers-not-list", submit_item("r-mods", modifiers="no garlic"), INV, (*ITEM0, "modifiers"), "r-mods"),
    Case("missing-sku", submit_item("r-nosku", sku=None), INV, (*ITEM0, "sku"), "r-nosku"),
    # --- order.submit: values
    Case("qty-zero", submit_item("r-q0", qty=0), INV, (*ITEM0, "qty"), "r-q0"),
    Case("qty-negative", submit_item("r-qneg", qty=-3), INV, (*ITEM0, "qty"), "r-qneg"),
    Case("qty-1000", submit_item("r-q1000", qty=1000), INV, (*ITEM0, "qty"), "r-q1000"),
    Case("weight-zero", submit_item("r-w0", weight_g=0), INV, (*ITEM0, "weight_g"), "r-w0"),
    Case("weight-negative", submit_item("r-wneg", weight_g=-800), INV, (*ITEM0, "weight_g"), "r-wneg"),
    Case("lobster-50g", submit_item("r-w50g", weight_g=50), ORD, (*ITEM0, "weight_g"), "r-w50g"),
    Case("lobster-50kg", submit_item("r-w50kg", weight_g=50_000), ORD, (*ITEM0, "weight_g"), "r-w50kg"),
    Case(
        "weight-on-each-item",
        submit_item("r-wkp", {"sku": "WOK-KUNGPAO"}, weight_g=300),
        ORD,
        (*ITEM0, "weight_g"),
        "r-wkp",
    ),
    Case("weighed-without-weight", submit_item("r-now", weight_g=None), ORD, (*ITEM0, "weight_g"), "r-now"),
    Case("unknown-sku", submit_item("r-sku", {"sku": "UNICORN-STEAK"}), ORD, (*ITEM0, "sku"), "r-sku"),
    # --- allergens: only the store's declared ones ([[allergens]]); free text and typos are refused
    Case("allergen-typo", submit_item("r-alg1", allergens=["peanutt"]), ORD, (*ITEM0, "allergens", 0), "r-alg1"),
    Case("allergen-chinese", submit_item("r-alg2", allergens=["花生"]), ORD, (*ITEM0, "allergens", 0), "r-alg2"),
    Case(
        "allergen-free-text",
        submit_item("r-alg3", allergens=["shellfish", "cut_in_half"]),
        ORD,
        (*ITEM0, "allergens", 1),
        "r-alg3",
    ),
    Case(
        "allergen-on-second-item",
        submit("r-alg4", items=[LOBSTER, {**LOBSTER, "allergens": ["Peanut"]}]),
        ORD,
        ("order", "items", 1, "allergens", 0),
        "r-alg4",
    ),
    Case("unknown-cook", submit_item("r-cook", cook="deep_fried_twice"), ORD, (*ITEM0, "cook"), "r-cook"),
    Case("cook-not-for-sku", submit_item("r-cookno", cook="grilled"), ORD, (*ITEM0, "cook"), "r-cookno"),
    Case("cook-missing", submit_item("r-nocook", {"sku": "CRAB-HAIRY"}), ORD, (*ITEM0, "cook"), "r-nocook"),
    Case(
        "second-item-bad",
        submit("r-2nd", items=[LOBSTER, {**LOBSTER, "weight_g": 9000}]),
        ORD,
        ("order", "items", 1, "weight_g"),
        "r-2nd",
    ),
    Case("items-empty", submit("r-empty", items=[]), INV, ("order", "items"), "r-empty"),
    Case("items-101", submit("r-101", items=[{"sku": "WOK-MAPO"}] * 101), INV, ("order", "items"), "r-101"),
    Case(
        "fulfilment-unknown-type",
        submit("r-ftele", fulfilment={"type": "teleport"}),
        INV,
        ("order", "fulfilment"),
        "r-ftele",
    ),
    Case("fulfilment-no-type", submit("r-fnot", fulfilment={"table": "12"}), INV, ("order", "fulfilment"), "r-fnot"),
    Case(
        "delivery-without-due",
        submit("r-nodue", app_order("k-nodue"), fulfilment={"type": "delivery"}),
        INV,
        ("order", "fulfilment", "due"),
        "r-nodue",
        device="app-backend",
    ),
    Case(
        "delivery-due-naive",
        submit("r-naive", app_order("k-naive"), fulfilment={"type": "delivery", "due": "2026-11-25T12:30:00"}),
        INV,
        ("order", "fulfilment", "due"),
        "r-naive",
        device="app-backend",
    ),
    Case(
        "delivery-due-garbage",
        submit("r-dueg", app_order("k-dueg"), fulfilment={"type": "delivery", "due": "half past noon"}),
        INV,
        ("order", "fulfilment", "due"),
        "r-dueg",
        device="app-backend",
    ),
    # --- times: exactly RFC 3339 with an offset, within the hub's window (docs/protocol.md, times)
    *[
        Case(
            f"due-{name}",
            submit(f"r-due-{name}", app_order(f"k-due-{name}"), fulfilment={"type": "delivery", "due": due}),
            code,
            ("order", "fulfilment", "due"),
            f"r-due-{name}",
            device="app-backend",
        )
        for name, due, code in [
            ("unix-number", 1764000000, INV),
            ("unix-string", "1764000000", INV),
            ("offset-without-colon", "2026-11-25T12:40:00+0800", INV),
            ("date-only", "2026-11-25", INV),
            ("space-separator", "2026-11-25 12:40:00+08:00", INV),
            ("hour-24", "2026-11-25T24:00:00Z", INV),
            ("year-1", "0001-01-01T00:00:00Z", ORD),
            ("year-9999", "9999-12-31T00:00:00Z", ORD),
        ]
    ],
    Case(
        "pickup-at-year-9999",
        submit("r-at9999", kiosk_order("k-at9999", fulfilment={"type": "pickup", "at": "9999-01-01T00:00:00Z"})),
        ORD,
        ("order", "fulfilment", "at"),
        "r-at9999",
        device="kiosk-1",
    ),
    # --- strings the hub strips to nothing: the schema's `pattern` refuses them too
    Case("sku-ideographic-space", submit_item("r-sku3000", sku="\u3000"), INV, (*ITEM0, "sku"), "r-sku3000"),
    Case(
        "table-nbsp",
        submit("r-tnbsp", fulfilment={"type": "dine_in", "table": "\u00a0"}),
        INV,
        ("order", "fulfilment", "table"),
        "r-tnbsp",
    ),
    Case("key-blank", submit("r-kblank", key=" \t"), INV, ("order", "key"), "r-kblank"),
    Case(
        "dine-in-without-table",
        submit("r-notable", fulfilment={"type": "dine_in"}),
        INV,
        ("order", "fulfilment", "table"),
        "r-notable",
    ),
    Case("unknown-channel", submit("r-chan", channel="drone"), INV, ("order", "channel"), "r-chan"),
    Case(
        "channel-not-allowed",
        submit("r-kapp", app_order("k-kapp")),
        ErrorCode.FORBIDDEN,
        ("order", "channel"),
        "r-kapp",
        device="kiosk-1",
    ),
    Case(
        "counter-channel-not-allowed",
        submit("r-capp", app_order("k-capp")),
        ErrorCode.FORBIDDEN,
        ("order", "channel"),
        "r-capp",
        device="counter-1",
    ),
    Case("order-extra-field", submit("r-extra", surprise="yes"), INV, ("order", "surprise"), "r-extra"),
    Case("item-extra-field", submit_item("r-iextra", price_cents=1), INV, (*ITEM0, "price_cents"), "r-iextra"),
    Case("key-empty", submit("r-key", key=""), INV, ("order", "key"), "r-key"),
    Case(
        "key-missing",
        submit("r-nokey", {k: v for k, v in shelf_order("x").items() if k != "key"}),
        INV,
        ("order", "key"),
        "r-nokey",
    ),
    Case("note-501", submit("r-note", note="鱼" * 501), INV, ("order", "note"), "r-note"),
    Case("item-note-501", submit_item("r-inote", note="x" * 501), INV, (*ITEM0, "note"), "r-inote"),
    Case("priority-unknown", submit("r-prio", priority="yesterday"), INV, ("order", "priority"), "r-prio"),
    Case(
        "customer-name-too-long",
        submit("r-cust", customer={"name": "n" * 81}),
        INV,
        ("order", "customer", "name"),
        "r-cust",
    ),
    # --- cancel / amend
    Case(
        "cancel-unknown-order",
        msg(type="order.cancel", ref="r-cx", order_id="20991231-S999"),
        ErrorCode.NOT_FOUND,
        ("order_id",),
        "r-cx",
    ),
    Case("cancel-missing-order-id", msg(type="order.cancel", ref="r-cnoid"), INV, ("order_id",), "r-cnoid"),
    Case(
        "cancel-order-id-too-long",
        msg(type="order.cancel", ref="r-clong", order_id="9" * 65),
        INV,
        ("order_id",),
        "r-clong",
    ),
    Case(
        "amend-unknown-order",
        msg(type="order.amend", ref="r-ax", order_id="20991231-S999", note="hi"),
        ErrorCode.NOT_FOUND,
        ("order_id",),
        "r-ax",
    ),
    Case("amend-nothing", msg(type="order.amend", ref="r-anil", order_id="{oid}"), ORD, (), "r-anil"),
    Case(
        "amend-remove-unknown-item",
        msg(type="order.amend", ref="r-arm", order_id="{oid}", remove=["99"]),
        ORD,
        ("remove", 0),
        "r-arm",
    ),
    Case(
        "amend-remove-all",
        msg(type="order.amend", ref="r-aall", order_id="{oid}", remove=["1", "2"]),
        ORD,
        ("remove",),
        "r-aall",
    ),
    Case(
        "amend-add-bad-item",
        msg(type="order.amend", ref="r-aadd", order_id="{oid}", add=[{"sku": "LOB-AUS", "cook": "steamed"}]),
        ORD,
        ("add", 0, "weight_g"),
        "r-aadd",
    ),
    Case(
        "amend-note-unknown-item",
        msg(type="order.amend", ref="r-anote", order_id="{oid}", item_notes={"42": "no chilli"}),
        ORD,
        ("item_notes", "42"),
        "r-anote",
    ),
    Case(
        "amend-remove-not-list",
        msg(type="order.amend", ref="r-arml", order_id="{oid}", remove="1"),
        INV,
        ("remove",),
        "r-arml",
    ),
    # --- kitchen
    Case(
        "bump-unknown-ticket",
        msg(type="ticket.bump", ref="r-bx", ticket_id="20991231-S999/wok"),
        ErrorCode.NOT_FOUND,
        ("ticket_id",),
        "r-bx",
        device="wok-1",
    ),
    Case(
        "bump-unknown-station",
        msg(type="ticket.bump", ref="r-bst", ticket_id="{oid}/bakery"),
        ErrorCode.NOT_FOUND,
        ("ticket_id",),
        "r-bst",
        device="wok-1",
    ),
    Case(
        "bump-malformed-ticket-id",
        msg(type="ticket.bump", ref="r-bmal", ticket_id="not a ticket"),
        ErrorCode.NOT_FOUND,
        ("ticket_id",),
        "r-bmal",
        device="wok-1",
    ),
    Case(
        "bump-empty-ticket-id",
        msg(type="ticket.bump", ref="r-bemp", ticket_id=""),
        INV,
        ("ticket_id",),
        "r-bemp",
        device="wok-1",
    ),
    Case(
        "bump-ticket-id-number",
        msg(type="ticket.bump", ref="r-bnum", ticket_id=17),
        INV,
        ("ticket_id",),
        "r-bnum",
        device="wok-1",
    ),
    Case(
        "start-missing-ticket-id", msg(type="ticket.start", ref="r-snot"), INV, ("ticket_id",), "r-snot", device="wok-1"
    ),
    Case(
        "item-bump-unknown-item",
        msg(type="item.bump", ref="r-ibx", ticket_id="{oid}/wok", item_id="99"),
        ErrorCode.NOT_FOUND,
        ("item_id",),
        "r-ibx",
        device="wok-1",
    ),
    Case(
        "item-bump-other-stations-item",
        msg(type="item.bump", ref="r-ibo", ticket_id="{oid}/wok", item_id="2"),
        ErrorCode.NOT_FOUND,
        ("item_id",),
        "r-ibo",
        device="wok-1",
    ),
    Case(
        "item-bump-missing-item-id",
        msg(type="item.bump", ref="r-ibn", ticket_id="{oid}/wok"),
        INV,
        ("item_id",),
        "r-ibn",
        device="wok-1",
    ),
    # --- counter
    Case(
        "handover-not-ready",
        msg(type="order.handover", ref="r-ho", order_id="{oid}"),
        ErrorCode.CONFLICT,
        ("order_id",),
        "r-ho",
        device="counter-1",
    ),
    Case(
        "handover-unknown-to",
        msg(type="order.handover", ref="r-hoto", order_id="{oid}", to="drone"),
        INV,
        ("to",),
        "r-hoto",
        device="counter-1",
    ),
    Case(
        "call-unknown-order",
        msg(type="order.call", ref="r-callx", order_id="20991231-S999"),
        ErrorCode.NOT_FOUND,
        ("order_id",),
        "r-callx",
        device="counter-1",
    ),
]

assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"
assert len(CASES) >= 30


def _params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else []) for c in cases
    ]


def assert_error_frame(err: dict[str, Any], case: Case) -> None:
    """The answer is a well-formed `error` with the case's code and ref (the loc is checked by assert_loc)."""
    assert err.get("type") == "error", err
    Error.model_validate(err)  # conforms to the protocol's own model
    assert err["code"] == case.code.value, err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    assert isinstance(err["errors"], list)
    for e in err["errors"]:
        assert isinstance(e["loc"], list) and isinstance(e["msg"], str) and e["msg"], e
    assert err["ref"] == case.ref, err


def assert_loc(err: dict[str, Any], case: Case) -> None:
    locs = [e["loc"] for e in err["errors"]]
    if case.loc is None:
        assert all(loc == [] for loc in locs), locs
    else:
        assert locs, err
        assert locs[0] == list(case.loc), locs


def role_of(config: StoreConfig, device: str) -> Role:
    dev = config.device(device)
    assert dev is not None
    return dev.role


# --------------------------------------------------------------------------------------------- one case at a time


@pytest.mark.parametrize("case", _params(CASES))
async def test_malformed_frame_gets_structured_error_and_nothing_is_stored(
    case: Case, hub: HubServer, connect: Any, config: StoreConfig, db_path: Path
) -> None:
    monitor = await connect("monitor-1")
    src = await connect("shelf-1")
    base = await src.request({"type": "order.submit", "order": shelf_order("base")}, expect=OrderAccepted)
    ctx = Ctx(oid=base.order_id)
    await until(lambda: ctx.oid in monitor.book.orders)
    events_before, docs_before = db_state(db_path, config)
    seq_before = hub.hub.seq

    bad = await Raw.open(hub.url, config, case.device)
    follow_ups: set[str] = set()
    try:
        await bad.send(case.frame(ctx))
        err = await bad.reply()
        assert_error_frame(err, case)
        assert hub.hub.seq == seq_before, "a refused frame made an event"

        # The connection stays usable: a ping, and a good order where the role may submit.
        await bad.ping()
        if "order.submit" in ROLE_MESSAGES[role_of(config, case.device)]:
            ok = await bad.request(
                {"type": "order.submit", "ref": "after-ok", "order": valid_order(case.device, f"ok-{case.id}")}
            )
            assert ok["type"] == "order.accepted" and ok["duplicate"] is False, ok
            follow_ups.add(ok["order_id"])
    finally:
        await bad.close()

    # Nothing of the bad frame reached the database or the monitor. A last order from another device is the
    # marker: events arrive in seq order, so once the monitor has it, it has everything before it.
    sync = await src.request({"type": "order.submit", "order": shelf_order("sync")}, expect=OrderAccepted)
    await until(lambda: sync.order_id in monitor.book.orders)
    events_after, docs_after = db_state(db_path, config)
    new = follow_ups | {sync.order_id}
    assert set(docs_after) == set(docs_before) | new
    for oid, doc in docs_before.items():
        assert docs_after[oid] == doc, f"{oid} changed"
    assert events_after == events_before + len(new)
    assert set(monitor.book.orders) == set(docs_after)
    assert monitor.book.orders[ctx.oid] == OrderView.model_validate(docs_before[ctx.oid])

    assert_loc(err, case)  # last, so a loc bug does not hide the checks above


# --------------------------------------------------------------------------------------------- all at once


async def test_other_clients_are_served_while_one_sends_the_whole_corpus(
    hub: HubServer, connect: Any, config: StoreConfig, db_path: Path
) -> None:
    """A kitchen screen and a kiosk keep working while misbehaving devices send every bad frame, three times."""
    shelf = await connect("shelf-1")
    base = await shelf.request({"type": "order.submit", "order": shelf_order("base")}, expect=OrderAccepted)
    ctx = Ctx(oid=base.order_id)
    wok = await connect("wok-2")
    kiosk = await connect("kiosk-2")
    await until(lambda: ctx.oid in wok.book.orders)

    # Known hub bugs change the answer (or kill the connection): they are covered above, as xfails.
    corpus = [c for c in CASES if c.bug is None]
    rounds = 3
    by_device: dict[str, list[Case]] = {}
    for c in corpus:
        by_device.setdefault(c.device, []).append(c)
    bad = {d: await Raw.open(hub.url, config, d) for d in by_device}

    async def misbehave(device: str) -> list[dict[str, Any]]:
        conn = bad[device]
        cases = by_device[device] * rounds
        for c in cases:
            await conn.send(c.frame(ctx))
        return [await conn.reply() for _ in cases]

    n_good = 20

    async def good_kiosk() -> list[str]:
        answers = await asyncio.gather(
            *(
                kiosk.request({"type": "order.submit", "order": kiosk_order(f"good-{k}")}, expect=OrderAccepted)
                for k in range(n_good)
            )
        )
        ids = [a.order_id for a in answers]
        await until(lambda: all(i in wok.book.orders for i in ids))
        for i in ids:
            ack = await wok.request({"type": "ticket.bump", "ticket_id": f"{i}/wok"}, expect=Ack)
            assert ack.seq is not None, ack
        await until(lambda: all(status_of(kiosk, i) == "ready" for i in ids))
        return ids

    results = await asyncio.gather(good_kiosk(), *(misbehave(d) for d in by_device))
    good_ids: list[str] = results[0]

    for device, answers in zip(by_device, results[1:], strict=True):
        expected = by_device[device] * rounds
        assert len(answers) == len(expected)
        for case, err in zip(expected, answers, strict=True):
            assert_error_frame(err, case)
            assert_loc(err, case)
        await bad[device].ping()
        await bad[device].close()

    events, docs = db_state(db_path, config)
    assert set(docs) == {ctx.oid, *good_ids}
    assert events == 1 + 2 * n_good
    assert all(docs[i]["status"] == "ready" for i in good_ids)
    assert docs[ctx.oid]["version"] == 1


# --------------------------------------------------------------------------------------------- oversized frames


async def _assert_closed_too_large(conn: Raw) -> None:
    with pytest.raises(ConnectionClosed) as info:
        await conn.reply()
    assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.TOO_LARGE
    assert conn.conn.close_code == CloseCode.TOO_LARGE


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param("x" * (MAX_FRAME_BYTES + 1), id="text-one-byte-over"),
        pytest.param(_j({"type": "ping", "ref": "big", "pad": "x" * MAX_FRAME_BYTES}), id="json-over"),
        pytest.param(b"{" * (MAX_FRAME_BYTES + 1), id="binary-over"),
        pytest.param("鱼" * (MAX_FRAME_BYTES // 3 + 1), id="utf8-bytes-over-chars-under"),
        pytest.param("x" * (4 * MAX_FRAME_BYTES), id="four-times-over"),
    ],
)
async def test_oversized_frame_closes_4009_and_hub_keeps_serving(
    frame: str | bytes, hub: HubServer, connect: Any, config: StoreConfig, db_path: Path
) -> None:
    wok = await connect("wok-1")
    kiosk = await connect("kiosk-1")
    assert len(frame.encode() if isinstance(frame, str) else frame) > MAX_FRAME_BYTES
    big = await Raw.open(hub.url, config, "shelf-1")
    await big.send(frame)
    await _assert_closed_too_large(big)

    # Everyone else is still served.
    acc = await kiosk.request({"type": "order.submit", "order": kiosk_order("after-big")}, expect=OrderAccepted)
    await until(lambda: acc.order_id in wok.book.orders)
    await wok.request({"type": "ticket.bump", "ticket_id": f"{acc.order_id}/wok"}, expect=Ack)
    await until(lambda: status_of(kiosk, acc.order_id) == "ready")
    # And the device that sent it may come back.
    again = await Raw.open(hub.url, config, "shelf-1")
    await again.ping()
    await again.close()
    events, docs = db_state(db_path, config)
    assert set(docs) == {acc.order_id} and events == 2


def _padded(size: int, text: str = "x") -> str:
    """A ping with an unknown `pad` field of `text` repeated: the longest such frame of at most `size` bytes."""
    head = len(_j({"type": "ping", "ref": "near-limit", "pad": ""}).encode())
    frame = _j({"type": "ping", "ref": "near-limit", "pad": text * ((size - head) // len(text.encode()))})
    assert size - len(text.encode()) < len(frame.encode()) <= size
    return frame


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(_padded(MAX_FRAME_BYTES), id="exactly-the-limit"),
        pytest.param(_padded(MAX_FRAME_BYTES - 1), id="one-byte-under"),
        pytest.param(_padded(MAX_FRAME_BYTES, "鱼"), id="utf8-under"),
    ],
)
async def test_frame_just_under_the_limit_gets_a_normal_error(frame: str, hub: HubServer, config: StoreConfig) -> None:
    assert len(frame.encode()) <= MAX_FRAME_BYTES
    conn = await Raw.open(hub.url, config, "shelf-1")
    await conn.send(frame)
    err = await conn.reply()
    assert_error_frame(err, Case("near-limit", raw(frame), INV, ("pad",), "near-limit"))
    assert [e["loc"] for e in err["errors"]] == [["pad"]]
    assert len(json.dumps(err).encode()) < 4096, "the error does not echo the frame back"
    await conn.ping()
    await conn.close()


async def test_invalid_order_just_under_the_limit_gets_invalid_order(
    hub: HubServer, config: StoreConfig, db_path: Path
) -> None:
    """A big but legal-sized order (100 items with long names) that fails the catalogue check on its last item."""
    items: list[dict[str, Any]] = [{"sku": "WOK-MAPO", "name": "豆" * 120, "note": "n" * 200} for _ in range(99)]
    items.append({"sku": "WOK-MAPO", "weight_g": 5})
    order = kiosk_order("big-bad", items=items)
    frame = _j({"type": "order.submit", "ref": "big-bad", "order": order})
    assert MAX_FRAME_BYTES // 2 < len(frame.encode()) <= MAX_FRAME_BYTES
    conn = await Raw.open(hub.url, config, "kiosk-1")
    await conn.send(frame)
    err = await conn.reply()
    assert_error_frame(err, Case("big", raw(frame), ORD, None, "big-bad"))
    assert [e["loc"] for e in err["errors"]] == [["order", "items", 99, "weight_g"]]
    await conn.ping()
    await conn.close()
    events, docs = db_state(db_path, config)
    assert events == 0 and docs == {}
