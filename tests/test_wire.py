"""Frames from the hub, as a client reads them (`kds.wire`): parsed once into the protocol's models; fields a client
does not know are ignored, and so is a frame of a type it does not know (with a log line)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from kds.protocol import Event, EventKind, ItemView, OrderStatus, OrderView, Pong, StatusChanged, TicketState
from kds.wire import BadFrame, parse_hub_frame
from tests.support import AT, order_json


def event_json(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "type": "event",
        "seq": 7,
        "at": AT,
        "kind": "order.created",
        "order": order_json(),
        "stations": ["wok"],
        "status_changed": True,
    }
    e.update(over)
    return e


def test_an_event_is_parsed_into_its_model_with_enums_and_times() -> None:
    frame = parse_hub_frame(json.dumps(event_json()))
    assert isinstance(frame, Event) and frame.kind is EventKind.ORDER_CREATED and frame.seq == 7
    assert isinstance(frame.order, OrderView) and frame.order.status is OrderStatus.ACCEPTED
    assert frame.order.tickets[0].state is TicketState.NEW and frame.order.created_at.isoformat() == AT
    assert isinstance(frame.order.items[0], ItemView) and frame.order.items[0].allergens == ["soy"]


def test_fields_a_client_does_not_know_are_ignored_at_every_level() -> None:
    later = event_json(order=order_json(eta_s=300, items=[{**order_json()["items"][0], "glaze": "x"}]), shard=3)
    frame = parse_hub_frame(json.dumps(later).encode())
    assert isinstance(frame, Event) and frame.order.number == "K001" and frame.order.items[0].qty == 2
    status = {
        "type": "order.status",
        "seq": 9,
        "at": AT,
        "order_id": "20261125-K001",
        "key": "k-1",
        "number": "K001",
        "status": "ready",
        "ready": ["wok"],
        "ready_at_estimate": AT,  # reserved by the contract: a later version adds it
    }
    parsed = parse_hub_frame(json.dumps(status))
    assert isinstance(parsed, StatusChanged) and parsed.status is OrderStatus.READY and parsed.ready == ["wok"]


def test_a_frame_of_an_unknown_type_is_ignored_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kds.client"):
        assert parse_hub_frame('{"type": "order.eta", "seq": 3}') is None
        assert parse_hub_frame('{"seq": 3}') is None
    assert any("order.eta" in m for m in caplog.messages), caplog.messages
    assert parse_hub_frame('{"type": "pong", "seq": 3}') == Pong(type="pong", seq=3)


def test_a_broken_frame_of_a_known_type_is_an_error() -> None:
    with pytest.raises(BadFrame, match="order"):
        parse_hub_frame(json.dumps(event_json(order={"id": "x"})))
    with pytest.raises(BadFrame):
        parse_hub_frame("not json")
