"""The kitchen screen's pure parts: timers, pending actions, ordering, all-day totals, pages, big text, key maps."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.binding import Binding

from kds.protocol import Ack, Error, ErrorCode, ItemView, OrderView, TicketState, TicketView
from terminals.kitchen import bigtext, keymap
from terminals.kitchen.app import run_kitchen
from terminals.kitchen.layout import Piece, geometry, paginate, split
from terminals.kitchen.model import (
    Pending,
    StationInfo,
    StationState,
    Timing,
    all_day,
    clock,
    effective,
    mmss,
)

NOW = datetime.fromisoformat("2026-11-25T12:00:00+08:00")
WOK = StationInfo("wok", "Wok", "炒锅", warn_after_s=480, late_after_s=720)


def item(iid: str, sku: str = "WOK-KUNGPAO", station: str = "wok", **over: Any) -> ItemView:
    """An ItemView."""
    it: dict[str, Any] = {
        "id": iid,
        "sku": sku,
        "name": sku.title(),
        "name_zh": "",
        "qty": 1,
        "weight_g": None,
        "cook": None,
        "cook_name": None,
        "modifiers": [],
        "allergens": [],
        "note": None,
        "tag": None,
        "station": station,
        "unrouted": False,
        "removed": False,
        "done_at": None,
        "change": None,
        "fee_cents": 0,
    }
    it.update(over)
    return ItemView.model_validate(it)


def order(
    number: str,
    minutes_ago: float,
    items: list[ItemView],
    *,
    state: str = "new",
    priority: str = "normal",
    fulfilment: dict[str, Any] | None = None,
    **over: Any,
) -> OrderView:
    """An OrderView with one ticket per station of its items."""
    created = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    oid = f"20261125-{number}"
    stations = dict.fromkeys(i.station for i in items)
    o: dict[str, Any] = {
        "id": oid,
        "number": number,
        "channel": "kiosk",
        "fulfilment": fulfilment or {"type": "dine_in", "table": "7"},
        "customer": None,
        "priority": priority,
        "note": None,
        "status": "accepted",
        "version": 1,
        "created_at": created,
        "updated_at": created,
        "key": f"key-{number}",
        "source": "kiosk-1",
        "called_at": None,
        "handed_over_at": None,
        "handed_over_to": None,
        "cancelled_at": None,
        "amended_at": None,
        "status_seq": 1,
        "status_at": created,
        "status_ready": [],
        "amend_refs": [],
        "cancel_reason": None,
        "items": items,
        "tickets": [
            {
                "id": f"{oid}/{s}",
                "station": s,
                "state": state if s == "wok" else "new",
                "items": [i.id for i in items if i.station == s],
                "created_at": created,
                "started_at": None,
                "done_at": None,
                "recalled_at": None,
                "amended_at": None,
            }
            for s in stations
        ],
    }
    o.update(over)
    return OrderView.model_validate(o)


def wok_ticket(o: OrderView) -> TicketView:
    return next(t for t in o.tickets if t.station == "wok")


def with_wok(o: OrderView, **changes: Any) -> OrderView:
    """The order with its wok ticket changed (as the next event would carry it)."""
    tickets = [t.model_copy(update=changes) if t.station == "wok" else t for t in o.tickets]
    return o.model_copy(update={"tickets": tickets})


def test_timers_follow_the_station_thresholds_and_say_late() -> None:
    assert clock(order("K001", 5, [item("1")]), wok_ticket(order("K001", 5, [item("1")])), WOK, NOW).timing is (
        Timing.ON_TIME
    )
    o = order("K002", 9, [item("1")])
    c = clock(o, wok_ticket(o), WOK, NOW)
    assert c.timing is Timing.WARNING and c.late_in_s == 180
    o = order("K003", 12, [item("1")])
    c = clock(o, wok_ticket(o), WOK, NOW)
    assert c.timing is Timing.LATE and c.late_in_s is None and mmss(c.age_s) == "12:00"


def test_a_delivery_turns_late_against_its_due_time() -> None:
    due = {"type": "delivery", "due": (NOW + timedelta(minutes=10)).isoformat()}
    o = order("A001", 1, [item("1")], fulfilment=due)
    assert clock(o, wok_ticket(o), WOK, NOW).timing is Timing.ON_TIME
    soon = {"type": "delivery", "due": (NOW + timedelta(minutes=3)).isoformat()}
    o = order("A002", 1, [item("1")], fulfilment=soon)
    c = clock(o, wok_ticket(o), WOK, NOW)
    assert c.timing is Timing.WARNING and c.due_left_s == 180 and c.late_in_s == 180
    past = {"type": "delivery", "due": (NOW - timedelta(seconds=30)).isoformat()}
    o = order("A003", 1, [item("1")], fulfilment=past)
    assert clock(o, wok_ticket(o), WOK, NOW).timing is Timing.LATE, "due time passed: late whatever its age"


def test_pending_actions_show_at_once_and_leave_when_the_book_has_them() -> None:
    o = order("K001", 1, [item("1"), item("2")])
    t = wok_ticket(o)
    p = Pending()
    p.add({"type": "item.bump", "ref": "r1", "ticket_id": t.id, "item_id": "1"}, NOW)
    assert effective(o, t, p.for_ticket(t.id))[:2] == (TicketState.STARTED, frozenset({"1"}))
    p.add({"type": "item.bump", "ref": "r2", "ticket_id": t.id, "item_id": "2"}, NOW)
    assert effective(o, t, p.for_ticket(t.id))[0] is TicketState.DONE
    p.add({"type": "ticket.recall", "ref": "r3", "ticket_id": t.id}, NOW)
    assert effective(o, t, p.for_ticket(t.id))[:2] == (TicketState.STARTED, frozenset())
    assert p.add({"type": "order.call", "ref": "x", "order_id": "y"}, NOW) is None
    # Acked with the event already in the book: gone; acked ahead of its event: kept until the book has it.
    assert p.answered(Ack(type="ack", ref="r1", seq=5), book_seq=5) is not None
    assert p.answered(Ack(type="ack", ref="r2", seq=7), book_seq=5) is not None and len(p) == 2
    assert not p.settle(6) and p.settle(7) and [a.ref for a in p.actions] == ["r3"]
    refused = Error(type="error", ref="r3", code=ErrorCode.CONFLICT, message="conflict")
    assert p.answered(refused, book_seq=7) is not None and not p


def test_the_board_puts_cancellations_then_rush_then_the_oldest_first() -> None:
    s = StationState("wok")
    old = order("K001", 10, [item("1")])
    rush = order("A002", 2, [item("1")], priority="rush")
    new = order("K003", 1, [item("1")])
    cancelled = order("K004", 5, [item("1")], state="cancelled", status="cancelled")
    bar_only = order("K005", 5, [item("1", station="bar")])
    done = order("K006", 5, [item("1")], state="done")
    orders = [old, rush, new, cancelled, bar_only, done]
    s.observe(orders, NOW, quiet=True)
    assert [e.number for e in s.entries(orders, NOW)] == ["K004", "A002", "K001", "K003"]
    assert s.acknowledge(f"{cancelled.id}/wok") and not s.acknowledge(f"{cancelled.id}/wok")
    assert [e.number for e in s.entries(orders, NOW)] == ["A002", "K001", "K003"]


def test_observe_tells_new_amended_cancelled_and_recalled_tickets() -> None:
    s = StationState("wok")
    a = order("K001", 1, [item("1")])
    assert not s.observe([a], NOW, quiet=True).ring
    b = order("K002", 0, [item("1")])
    ch = s.observe([b], NOW)
    assert ch.arrived == [f"{b.id}/wok"] and ch.ring and s.entry(b, wok_ticket(b), NOW).fresh
    assert not s.entry(b, wok_ticket(b), NOW + timedelta(minutes=2)).fresh, "highlighted for a minute"
    a = with_wok(a, amended_at=NOW)
    assert s.observe([a], NOW).amended == [f"{a.id}/wok"]
    a = with_wok(a, state=TicketState.DONE)
    assert not s.observe([a], NOW).ring
    a = with_wok(a, state=TicketState.STARTED)
    ch = s.observe([a], NOW)
    assert ch.recalled == [f"{a.id}/wok"] and not ch.ring
    b = with_wok(b, state=TicketState.CANCELLED)
    ch = s.observe([b], NOW)
    assert ch.cancelled == [f"{b.id}/wok"] and ch.ring


def test_a_ticket_waiting_to_be_fired_is_off_the_board_and_rings_when_it_comes() -> None:
    s = StationState("wok")
    fire_at = NOW + timedelta(minutes=20)
    later = with_wok(order("K003", 0, [item("1")]), fire_at=fire_at)
    held = with_wok(order("K004", 0, [item("1")]), held=True)
    soon = with_wok(order("K005", 0, [item("1")]), fire_at=NOW + timedelta(minutes=5))
    ch = s.observe([later, held, soon], NOW)
    assert not ch.ring and ch.arrived == []
    assert s.entries([later, held, soon], NOW) == []
    assert [o.number for o, _t in s.scheduled([later, held, soon])] == ["K005", "K003", "K004"]
    # Fired 20 minutes after it was made: it arrives now, rings, and its age counts from now.
    fired = with_wok(later, fire_at=None, fired_at=fire_at)
    at = fire_at + timedelta(seconds=30)
    ch = s.observe([fired, held, soon], at)
    assert ch.arrived == [f"{fired.id}/wok"] and ch.ring
    [e] = s.entries([fired, held, soon], at)
    assert e.number == "K003" and e.fresh
    assert clock(fired, wok_ticket(fired), WOK, at).age_s == 30
    assert [o.number for o, _t in s.scheduled([fired, held, soon])] == ["K005", "K004"]


def test_all_day_totals_per_dish_and_method() -> None:
    lobster = {"sku": "LOB-AUS", "cook": "ginger_scallion", "cook_name": "Ginger and scallion"}
    orders = [
        order("K001", 3, [item("1", qty=2), item("2", "WOK-MAPO"), item("3", "BAR-TEA", station="bar")]),
        order("K002", 2, [item("1", qty=3), item("2", "WOK-MAPO", removed=True)]),
        order("S003", 1, [item("1", weight_g=800, **lobster), item("2", weight_g=700, **lobster)]),
        order("S004", 1, [item("1", "LOB-AUS", weight_g=900, cook="steamed", cook_name="Steamed")]),
        order("K005", 1, [item("1", qty=4)], state="done"),
        order("K006", 1, [item("1", qty=1, done_at=NOW.isoformat()), item("2", "WOK-MAPO")]),
    ]
    s = StationState("wok")
    totals = {(t.sku, t.cook): (t.qty, t.weight_g, t.tickets) for t in all_day(s.entries(orders, NOW))}
    assert totals == {
        ("WOK-KUNGPAO", None): (5, 0, 2),
        ("WOK-MAPO", None): (2, 0, 2),
        ("LOB-AUS", "Ginger and scallion"): (2, 1500, 1),
        ("LOB-AUS", "Steamed"): (1, 900, 1),
    }


def test_pages_fill_the_least_filled_column_and_split_a_very_tall_card() -> None:
    pages = paginate([5, 3, 4, 4, 9, 2], columns=2, rows=10)
    assert [p.indexes() for p in pages] == [[0, 1, 2, 3], [4, 5]]
    assert pages[0].columns == [[Piece(0, 0, 5), Piece(3, 0, 4)], [Piece(1, 0, 3), Piece(2, 0, 4)]]
    # A card taller than a column starts in the first empty column and goes on in the next ones; every part but
    # the last keeps a row for "continues", every part but the first starts with the card's head (2 rows here).
    tall = paginate([2, 25, 3], columns=2, rows=10, heads=[0, 2, 0])
    assert [p.indexes() for p in tall] == [[0, 1], [1], [1, 2]]
    assert tall[0].columns[1] == [Piece(1, 0, 9, 0, 4, 2)]
    assert tall[1].columns == [[Piece(1, 9, 16, 1, 4, 2)], [Piece(1, 16, 23, 2, 4, 2)]]
    assert tall[2].columns == [[Piece(1, 23, 25, 3, 4, 2)], [Piece(2, 0, 3)]]
    assert all(p.height <= 10 for page in tall for col in page.columns for p in col)
    # Cut before an item where one fits: an item is not split in two.
    assert split(25, 10, 2, breaks=[4, 7, 15, 20]) == [(0, 7), (7, 14), (14, 20), (20, 25)]
    assert tall[2].reading_order() == [1, 2]
    assert [p.indexes() for p in paginate([], 3, 10)] == [[]]
    assert geometry(80) == (2, 39) and geometry(160) == (4, 39) and geometry(20) == (1, 20)


def test_big_text_draws_every_order_and_table_character() -> None:
    rows = bigtext.big("S005")
    assert len(rows) == 3 and all(len(r) == bigtext.width("S005") for r in rows)
    assert bigtext.big("S") != bigtext.big("5") and bigtext.big("O") != bigtext.big("0")
    assert bigtext.can_draw("A12-B") and not bigtext.can_draw("桌3")


def test_a_device_key_map_is_checked_and_adds_to_the_defaults_unless_it_replaces_them() -> None:
    assert keymap.validate({"bump": "b", "start": "s"}) == []
    assert keymap.validate({"bmp": "b"})[0].startswith("unknown action 'bmp'")
    assert keymap.validate({"bump": " , "}) == ["bump: no key given"]
    keys = keymap.effective({"bump": "5", "help": "?"})
    assert keys["bump"] == ["enter", "b", "5"] and keys["help"] == ["question_mark", "f1"] and keys["pick_5"] == []
    assert keymap.effective({"bump": "b", "start": "s", "recall": "r"}) == keymap.effective({})
    only = keymap.effective({"bump": "5", "help": "?"}, replaces_defaults=True)
    assert only["bump"] == ["5"] and only["help"] == ["question_mark"] and only["start"] == []
    assert not keymap.enabled(only, "start", ()) and not keymap.enabled(only, "pick", (5,))
    assert keymap.enabled(only, "bump", ()) and keymap.enabled(only, "quit", ())
    assert keymap.keys_label(only["bump"]) == "5" and keymap.keys_label(keymap.effective({})["bump"]) == "Enter/B"
    ids = {b.id for b in keymap.bindings(keymap.BOARD) if isinstance(b, Binding)}
    assert ids >= {"bump", "start", "recall", "all_day", "help"}


def test_the_documented_key_map_is_the_default_one() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "kitchen-screen.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", doc, flags=re.MULTILINE))
    defaults = keymap.effective({})
    for a in keymap.ACTIONS:
        if a.id.startswith("pick_"):
            continue
        assert rows.get(a.id, "").strip() == keymap.keys_label(defaults[a.id]), a.id
    example = tomllib.loads(doc.split("```toml", 1)[1].split("```", 1)[0])
    assert keymap.validate(example["devices"][0]["keymap"]) == []


def test_a_bad_key_map_stops_the_screen_before_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_kitchen(hub="ws://127.0.0.1:1", device="wok-1", token="t", station="wok", keymap={"bmp": "b"})
    assert code == 2 and "keymap of wok-1: unknown action 'bmp'" in capsys.readouterr().err
