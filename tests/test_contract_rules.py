"""The rules of the contract a partner builds on (issue 16): what the schema says and what the hub accepts agree,
and every rule the schema cannot say is in docs/protocol.md ("Rules the schema cannot say").

- whole numbers written as floats (`2.0`) are integers, as JSON Schema's `"type": "integer"` says;
- strings are stripped of Unicode white space, and a string that must not be empty carries a schema `pattern`
  refusing white space only;
- times a client sends are exactly RFC 3339 with an offset (a leap second taken as :59.999999), within a window of
  the hub's clock, and come back in UTC;
- `ref` comes back exactly as sent; a refused one as far as it can be;
- the same idempotency key with a different order is `conflict`; with the same order, a duplicate answer; across a
  restart and for keys older than the hub's memory too.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kds.config import StoreConfig
from kds.protocol import (
    NOT_BLANK,
    TIME_FUTURE_MAX,
    TIME_PAST_MAX,
    WHITE_SPACE,
    Error,
    ErrorCode,
    FrameError,
    OrderAccepted,
    json_schema,
    parse_client_frame,
)
from kds.server import HubServer
from kds.store import Store
from tests.conftest import fixed_app_order, shelf_order
from tests.test_bad_input import Raw
from tests.test_hub_core import T0, Clock, Core
from tests.test_old_keys import _submit

DOC = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")


def delivery(key: str, due: Any, **over: Any) -> dict[str, Any]:
    return fixed_app_order(key, fulfilment={"type": "delivery", "due": due}, **over)


@pytest.fixture
def core(config: StoreConfig) -> Core:
    return Core(config)


# --------------------------------------------------------------------------------------------- schema and hub agree

SCHEMA = json_schema()
CLIENT = jsonschema.Draft202012Validator({**SCHEMA, "oneOf": [{"$ref": "#/$defs/ClientMessage"}]})


def schema_accepts(frame: dict[str, Any]) -> bool:
    return CLIENT.is_valid(frame)


def hub_parses(frame: dict[str, Any]) -> bool:
    try:
        parse_client_frame(json.dumps(frame, ensure_ascii=False))
    except FrameError:
        return False
    return True


def _submit_frame(order: dict[str, Any]) -> dict[str, Any]:
    return {"type": "order.submit", "ref": "r-1", "order": order}


AGREE: list[tuple[str, dict[str, Any], bool]] = [
    ("qty-2.0", _submit_frame(shelf_order("k", items=[{"sku": "WOK-MAPO", "qty": 2.0}])), True),
    ("qty-1e1", _submit_frame(shelf_order("k", items=[{"sku": "WOK-MAPO", "qty": 1e1}])), True),
    ("qty-2.5", _submit_frame(shelf_order("k", items=[{"sku": "WOK-MAPO", "qty": 2.5}])), False),
    ("qty-true", _submit_frame(shelf_order("k", items=[{"sku": "WOK-MAPO", "qty": True}])), False),
    ("qty-string", _submit_frame(shelf_order("k", items=[{"sku": "WOK-MAPO", "qty": "2"}])), False),
    ("weight-800.0", _submit_frame(shelf_order("k", items=[{"sku": "LOB-AUS", "weight_g": 800.0}])), True),
    ("resume-from-3.0", {"type": "hello", "device": "d", "token": "t", "role": "kitchen", "resume_from": 3.0}, True),
    ("limit-5.0", {"type": "orders.closed", "ref": "r", "limit": 5.0}, True),
    ("limit-string", {"type": "orders.closed", "ref": "r", "limit": "5"}, False),
    ("sku-u3000", _submit_frame(shelf_order("k", items=[{"sku": "\u3000"}])), False),
    ("sku-nbsp-padded", _submit_frame(shelf_order("k", items=[{"sku": "\u00a0WOK-MAPO\u00a0"}])), True),
    ("table-tab", _submit_frame(shelf_order("k", fulfilment={"type": "dine_in", "table": "\t"})), False),
    ("key-u2028", _submit_frame(shelf_order("\u2028")), False),
    ("token-blank", {"type": "hello", "device": "d", "token": "\u205f", "role": "kitchen"}, False),
    ("device-blank", {"type": "hello", "device": "\x1c", "token": "t", "role": "kitchen"}, False),
    ("ref-blank", {"type": "ping", "ref": "   "}, True),
    ("ref-padded", {"type": "ping", "ref": "  spaced  "}, True),
    ("due-unix-number", _submit_frame(delivery("k", 1764000000)), False),
    ("due-unix-string", _submit_frame(delivery("k", "1764000000")), False),
    ("due-offset-0800", _submit_frame(delivery("k", "2026-11-25T12:40:00+0800")), False),
    ("due-naive", _submit_frame(delivery("k", "2026-11-25T12:40:00")), False),
    ("due-leap-second", _submit_frame(delivery("k", "2026-12-31T23:59:60Z")), True),
    ("due-lowercase", _submit_frame(delivery("k", "2026-11-25t04:40:00.5z")), True),
    ("due-minus", _submit_frame(delivery("k", "2026-11-24T23:40:00-05:00")), True),
    ("before-unix", {"type": "orders.closed", "ref": "r", "before": 1764000000}, False),
    ("before-rfc3339", {"type": "orders.closed", "ref": "r", "before": "2026-11-25T04:40:00Z"}, True),
]


@pytest.mark.parametrize(("frame", "ok"), [pytest.param(f, ok, id=name) for name, f, ok in AGREE])
def test_the_schema_and_the_hub_agree(frame: dict[str, Any], ok: bool) -> None:
    assert schema_accepts(frame) is ok, "the schema"
    assert hub_parses(frame) is ok, "the hub"


def test_the_blank_pattern_is_exactly_the_white_space_the_hub_strips() -> None:
    pattern = re.compile(NOT_BLANK)
    assert WHITE_SPACE.strip() == ""
    assert all(pattern.search(ch) is None for ch in WHITE_SPACE)
    # Characters next to white space (and a zero-width space, which Python does not strip) are not blank.
    for ch in "\u200b\ufeff\x1b\x21\u00a1\u3001a0":
        assert ch.strip() == ch and pattern.search(ch) is not None, hex(ord(ch))
    sku = SCHEMA["$defs"]["ItemIn"]["properties"]["sku"]
    assert sku["pattern"] == NOT_BLANK and sku["minLength"] == 1


def test_time_fields_say_rfc3339_with_an_offset_in_the_schema() -> None:
    due = SCHEMA["$defs"]["Delivery"]["properties"]["due"]
    assert due["format"] == "date-time"
    shape = re.compile(due["pattern"])
    assert shape.search("2026-11-25T12:40:00+08:00") and shape.search("2026-12-31T23:59:60Z")
    assert not shape.search("2026-11-25T12:40:00+0800") and not shape.search("1764000000")


def test_lone_surrogates_are_refused_and_documented() -> None:
    with pytest.raises(FrameError) as exc:
        parse_client_frame('{"type":"order.submit","ref":"r-s","order":{"key":"k\\ud800"}}')
    assert exc.value.errors[0]["loc"] == ["order", "key"] and exc.value.ref == "r-s"
    assert "lone surrogate" in DOC


def test_the_docs_list_the_rules_the_schema_cannot_say() -> None:
    at = DOC.index("## Rules the schema cannot say")
    rules = DOC[at : DOC.index("\n## ", at + 5)]
    for needle in ("white space", "lone surrogate", "`2.0`", "leap second", "UTC", "`ref`", "`conflict`", "366", "60"):
        assert needle in rules, needle
    assert "## Changelog" in DOC


# --------------------------------------------------------------------------------------------- numbers and strings


def test_a_whole_number_written_as_a_float_is_that_integer(core: Core) -> None:
    order = shelf_order("floats")
    order["items"][0]["weight_g"] = 800.0
    order["items"].append({"sku": "BAK-EGGTART", "qty": 2.0})
    r = core.submit("shelf-1", order)
    items = core.order(r["order_id"])["items"]
    assert items[0]["weight_g"] == 800 and isinstance(items[0]["weight_g"], int)
    assert items[2]["qty"] == 2 and isinstance(items[2]["qty"], int)
    frac = core.ask(
        "shelf-1", {"type": "order.submit", "order": shelf_order("frac", items=[{"sku": "BAK-EGGTART", "qty": 2.5}])}
    )
    assert frac["code"] == "invalid_message" and frac["errors"][0]["loc"] == ["order", "items", 0, "qty"]


def test_strings_are_stripped_of_unicode_white_space(core: Core) -> None:
    r = core.submit(
        "shelf-1",
        shelf_order("\u3000ws\u00a0", fulfilment={"type": "dine_in", "table": "\u200a12\u3000"}, note="\u2028note "),
    )
    doc = core.order(r["order_id"])
    assert (doc["key"], doc["fulfilment"]["table"], doc["note"]) == ("ws", "12", "note")
    blank = core.ask("shelf-1", {"type": "order.submit", "order": shelf_order("\u3000\u00a0")})
    assert blank["code"] == "invalid_message" and blank["errors"][0]["loc"] == ["order", "key"]


# --------------------------------------------------------------------------------------------- times


def test_times_are_exactly_rfc3339_with_an_offset(core: Core) -> None:
    for k, due in enumerate([1764000000, "1764000000", "2026-11-25T12:40:00+0800", "2026-11-25", "2026-11-25T12:40Z"]):
        r = core.ask("app-backend", {"type": "order.submit", "order": delivery(f"bad-{k}", due)})
        assert r["type"] == "error" and r["code"] == "invalid_message", (due, r)
        assert r["errors"][0]["loc"] == ["order", "fulfilment", "due"], r
    assert core.hub.orders == {}


def test_the_quick_reading_of_a_usual_time_is_the_general_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    # `_client_time` reads the usual shape with `datetime.fromisoformat`: on every combination of edge cases (dates
    # that do not exist, hour 24, minute and second 60, fractions of 1-7 digits, offsets at and past a day, years 1
    # and 9999 where the offset overflows) it gives the same time, or the same error, as the general rules.
    import kds.protocol as protocol

    def read(value: str) -> object:
        try:
            return protocol._client_time(value)
        except Exception as exc:
            return (type(exc).__name__, getattr(exc, "type", None))

    values = [
        f"{y}-{mo}-{d}{t}{h}:{mi}:{s}{fr}{off}"
        for y in ("0001", "2026", "2024", "9999")
        for mo, d in (("01", "01"), ("02", "29"), ("02", "30"), ("12", "31"), ("13", "01"))
        for t in ("T", "t")
        for h, mi, s in (
            ("00", "00", "00"),
            ("23", "59", "59"),
            ("24", "00", "00"),
            ("12", "60", "00"),
            ("12", "30", "60"),
        )
        for fr in ("", ".5", ".123456", ".1234567")
        for off in ("Z", "z", "+08:00", "-00:00", "-05:30", "+23:59", "+24:00", "+08:60")
    ]
    quick = [read(v) for v in values]
    monkeypatch.setattr(protocol, "_PLAIN_TIME", re.compile(r"(?!)"))  # never matches: the general rules only
    assert [read(v) for v in values] == quick
    assert sum(isinstance(q, datetime) for q in quick) > 1000  # (and most of them are times)


def test_due_is_kept_and_echoed_in_utc_and_a_leap_second_is_accepted(core: Core) -> None:
    r = core.submit("app-backend", delivery("utc", "2026-11-25T12:40:00+08:00"))
    assert core.order(r["order_id"])["fulfilment"]["due"] == "2026-11-25T04:40:00+00:00"
    event = json.loads(core.last_event().frame)
    assert event["order"]["fulfilment"]["due"] == "2026-11-25T04:40:00+00:00"
    leap = core.submit("app-backend", delivery("leap", "2026-11-25T12:59:60+08:00"))
    assert core.order(leap["order_id"])["fulfilment"]["due"] == "2026-11-25T04:59:59.999999+00:00"
    pickup = core.submit(
        "kiosk-1",
        {
            **fixed_app_order("at", channel="kiosk"),
            "fulfilment": {"type": "pickup", "at": "2026-11-25T13:00:00.25+08:00"},
        },
    )
    assert core.order(pickup["order_id"])["fulfilment"]["at"] == "2026-11-25T05:00:00.250000+00:00"


def test_due_and_at_must_be_within_the_window_of_the_hubs_clock(core: Core) -> None:
    def text(t: datetime) -> str:
        return t.isoformat()

    edge = timedelta(minutes=1)
    cases = [
        (T0 - TIME_PAST_MAX - edge, False),
        (T0 - TIME_PAST_MAX + edge, True),
        (T0 + TIME_FUTURE_MAX - edge, True),
        (T0 + TIME_FUTURE_MAX + edge, False),
        (datetime(1, 1, 1, tzinfo=UTC), False),
        (datetime(9999, 12, 31, tzinfo=UTC), False),
    ]
    for k, (due, ok) in enumerate(cases):
        r = core.ask("app-backend", {"type": "order.submit", "order": delivery(f"w-{k}", text(due))})
        if ok:
            assert r["type"] == "order.accepted", r
            continue
        assert r["code"] == "invalid_order", r
        assert r["errors"][0]["loc"] == ["order", "fulfilment", "due"] and "hub's clock" in r["errors"][0]["msg"], r
    far = {"type": "pickup", "at": text(T0 + TIME_FUTURE_MAX + edge)}
    r = core.ask(
        "kiosk-1", {"type": "order.submit", "order": {**fixed_app_order("far", channel="kiosk"), "fulfilment": far}}
    )
    assert r["code"] == "invalid_order" and r["errors"][0]["loc"] == ["order", "fulfilment", "at"], r


# --------------------------------------------------------------------------------------------- refs


def test_ref_is_echoed_exactly_as_sent(core: Core) -> None:
    for ref in ["  spaced  ", "   ", "\u3000id\u00a0", "\ttab"]:
        r = core.ask(
            "shelf-1", {"type": "order.submit", "ref": ref, "order": shelf_order(f"ref-{len(ref)}-{ord(ref[0])}")}
        )
        assert r["type"] == "order.accepted" and r["ref"] == ref, r
        pong = core.ask("shelf-1", {"type": "ping", "ref": ref})
        assert pong == {"type": "pong", "ref": ref, "seq": core.hub.seq}
    # Errors the hub decides echo it too.
    r = core.ask("shelf-1", {"type": "order.cancel", "ref": "  x  ", "order_id": "20991231-S999"})
    assert r["code"] == "not_found" and r["ref"] == "  x  "


def test_a_refused_ref_is_echoed_as_far_as_it_can_be(core: Core) -> None:
    session = core.session("shelf-1")
    for ref, echoed in [("r" * 65, "r" * 64), ("é" * 200, "é" * 64), ("", ""), (17, None), ([], None)]:
        d = core.hub.handle_frame(session, json.dumps({"type": "ping", "ref": ref}))
        err = json.loads(d.replies[0][1])
        Error.model_validate(err)
        assert err["code"] == "invalid_message" and err["errors"][0]["loc"] == ["ref"], err
        assert err["ref"] == echoed, err


# --------------------------------------------------------------------------------------------- idempotency keys


def test_same_key_different_order_is_a_conflict_naming_the_order(core: Core) -> None:
    first = core.submit("app-backend", fixed_app_order("k-1"))
    seq = core.hub.seq
    r = core.ask(
        "app-backend", {"type": "order.submit", "ref": "again", "order": fixed_app_order("k-1", note="more chili")}
    )
    Error.model_validate(r)
    assert r["code"] == "conflict" and r["ref"] == "again"
    assert (r["key"], r["order_id"], r["number"]) == ("k-1", first["order_id"], first["number"])
    assert r["errors"][0]["loc"] == ["order", "key"] and first["number"] in r["message"]
    assert core.hub.seq == seq and len(core.hub.orders) == 1
    assert core.decisions[-1].refused and core.decisions[-1].events == []


def test_same_key_same_order_in_another_spelling_is_a_duplicate(core: Core) -> None:
    first = core.submit("app-backend", delivery("k-2", "2026-11-25T12:40:00+08:00"))
    same = delivery("k-2", "2026-11-25T04:40:00.000Z", priority="normal")
    same["items"][1].pop("qty")  # 1 is the default
    same["items"][0]["qty"] = 2.0
    same["note"] = None
    r = core.ask("app-backend", {"type": "order.submit", "order": same})
    assert r["type"] == "order.accepted" and r["duplicate"] is True and r["order_id"] == first["order_id"], r


def test_a_conflict_survives_a_restart(config: StoreConfig, tmp_path: Path) -> None:
    core = Core(config)
    first = core.submit("app-backend", fixed_app_order("k-3"))
    store = Store(tmp_path / "keys.sqlite3", store_id=config.store.id)
    store.create_schema()
    for d in core.decisions:
        store.commit(d.events)
    docs, events, seq, keys = store.load(now=core.clock.t, replay_window=20_000)
    store.close()
    again = Core(config, clock=Clock(core.clock.t))
    again.hub.restore(docs, events, seq, keys)
    r = again.ask("app-backend", {"type": "order.submit", "order": fixed_app_order("k-3", priority="rush")})
    assert (r["code"], r["order_id"], r["number"]) == ("conflict", first["order_id"], first["number"]), r
    dup = again.ask("app-backend", {"type": "order.submit", "order": fixed_app_order("k-3")})
    assert dup["type"] == "order.accepted" and dup["duplicate"] is True


def test_an_order_stored_without_a_digest_answers_a_duplicate(config: StoreConfig, tmp_path: Path) -> None:
    # Orders stored before hubs kept the digest: the key is all there is to compare.
    core = Core(config)
    first = core.submit("app-backend", fixed_app_order("k-old"))
    doc = core.order(first["order_id"])
    doc["digest"] = None
    again = Core(config, clock=Clock(core.clock.t))
    again.hub.restore([json.dumps(doc)], [], core.hub.seq, [])
    r = again.ask("app-backend", {"type": "order.submit", "order": fixed_app_order("k-old", note="other")})
    assert r["type"] == "order.accepted" and r["duplicate"] is True, r


# --------------------------------------------------------------------------------------------- a real hub


async def test_a_key_older_than_the_hubs_memory_used_for_another_order_is_a_conflict(
    config: StoreConfig, db_path: Path
) -> None:
    long_ago = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    first, ids = await _submit(config, db_path, long_ago, fixed_app_order("old-key"))
    assert isinstance(first, OrderAccepted) and ids == [first.order_id], first
    later = long_ago + timedelta(days=20)  # the database answers for this key, not the hub's memory
    other, ids = await _submit(config, db_path, later, fixed_app_order("old-key", note="another order"))
    assert isinstance(other, Error) and other.code is ErrorCode.CONFLICT, other
    assert (other.key, other.order_id, other.number) == ("old-key", first.order_id, first.number)
    assert ids == [first.order_id], "nothing new is stored"
    same, ids = await _submit(config, db_path, later, fixed_app_order("old-key"))
    assert isinstance(same, OrderAccepted) and same.duplicate is True and same.order_id == first.order_id, same
    assert ids == [first.order_id]


async def test_the_rules_over_a_real_websocket(hub: HubServer, config: StoreConfig) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    src = await Raw.open(hub.url, config, "app-backend")
    try:
        # `ref` byte for byte, `2.0` as 2, `due` with an offset and a leap second, echoed in UTC.
        due = (now + timedelta(minutes=30)).astimezone(UTC).replace(second=0)
        leap = due.strftime("%Y-%m-%dT%H:%M:60Z")
        order = fixed_app_order("ws-1", fulfilment={"type": "delivery", "due": leap})
        order["items"][0]["qty"] = 2.0
        await src.send(json.dumps({"type": "order.submit", "ref": "  spaced  ", "order": order}))
        ok = await src.reply()
        assert ok["type"] == "order.accepted" and ok["ref"] == "  spaced  ", ok
        await src.ping()
        created = next(b for b in src.broadcasts if b["type"] == "order.status")
        assert created["order_id"] == ok["order_id"]
        view = hub.hub.orders[ok["order_id"]].model_dump(mode="json")
        assert view["fulfilment"]["due"] == due.replace(second=59, microsecond=999_999).isoformat()
        assert view["items"][0]["qty"] == 2
        # The same key with another order: conflict; with the same order: a duplicate.
        other = await src.request({"type": "order.submit", "ref": "r-other", "order": {**order, "priority": "rush"}})
        assert (other["code"], other["order_id"], other["number"]) == ("conflict", ok["order_id"], ok["number"])
        dup = await src.request({"type": "order.submit", "ref": "r-dup", "order": order})
        assert dup["type"] == "order.accepted" and dup["duplicate"] is True and dup["order_id"] == ok["order_id"]
        # Unix time and an over-long ref are refused; the ref comes back cut to 64 characters.
        unix = await src.request(
            {
                "type": "order.submit",
                "ref": "r-unix",
                "order": fixed_app_order("ws-2", fulfilment={"type": "delivery", "due": "1764000000"}),
            }
        )
        assert unix["code"] == "invalid_message" and unix["errors"][0]["loc"] == ["order", "fulfilment", "due"]
        await src.send(json.dumps({"type": "ping", "ref": "L" * 100}))
        long = await src.reply()
        assert long["code"] == "invalid_message" and long["ref"] == "L" * 64
        await src.ping()
    finally:
        await src.close()


def test_the_order_digest_is_sha256_of_the_canonical_json_the_docs_describe() -> None:
    """Stored digests must keep matching: the digest is the standard library's sorted, compact, UTF-8 JSON of the
    parsed order, whatever encoder makes it (orjson, for speed)."""
    import hashlib

    from kds.protocol import OrderIn, order_digest
    from tests.conftest import fixed_app_order

    order = OrderIn.model_validate(
        fixed_app_order(
            "digest-1",
            note="不要辣 ☃ \u00e9",
            items=[{"sku": "WOK-KUNGPAO", "qty": 2, "modifiers": ["少辣", "x"], "allergens": ["peanut"]}],
        )
    )
    canonical = json.dumps(order.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert order_digest(order) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
