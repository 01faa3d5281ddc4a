"""What the counter sends to the hub for its actions, and how the hub's answers read in words.

Counter actions (call, hand over, recall) go through `HubClient.enqueue`: they are durable and idempotent on the
hub, so an action made while offline is sent when the link is back. Print requests are not queued: a claim tag
printed an hour late is worse than an error the clerk can see and retry.
"""

from __future__ import annotations

from typing import Any

from kds.client import HubClient, NotConnected
from kds.protocol import Error, ErrorCode
from kds.wire import Answer

LAYOUTS = {
    "claim_tag": "claim tags",
    "pickup_slip": "pickup slip",
    "expo": "expo slip",
    "station": "station tickets",
}
"""Print layouts the counter asks for, with what the clerk calls them."""


def call(order_id: str) -> dict[str, Any]:
    """`order.call`: call the number of a ready order."""
    return {"type": "order.call", "order_id": order_id}


def handover(order_id: str, to: str) -> dict[str, Any]:
    """`order.handover` to `customer`, `runner` or `rider`."""
    return {"type": "order.handover", "order_id": order_id, "to": to}


def fire(order_id: str) -> dict[str, Any]:
    """`order.fire`: send the order's waiting parts to their stations now."""
    return {"type": "order.fire", "order_id": order_id}


def hold(order_id: str) -> dict[str, Any]:
    """`order.hold`: keep the order's parts not started from their stations until they are fired by hand."""
    return {"type": "order.hold", "order_id": order_id}


def recall(order_id: str) -> dict[str, Any]:
    """`order.recall`: take back an order handed over by mistake."""
    return {"type": "order.recall", "order_id": order_id}


def submit(order: dict[str, Any]) -> dict[str, Any]:
    """`order.submit` of an `OrderIn` dict."""
    return {"type": "order.submit", "order": order}


def error_words(frame: Answer) -> str:
    """The hub's `error` frame as a sentence: its message, or the first field problem (for another answer where an
    `error` was expected: what it is)."""
    if not isinstance(frame, Error):
        return f"the hub answered {frame.type}"
    if frame.code is ErrorCode.UNKNOWN_TYPE:
        return f"the hub does not handle this yet ({frame.message or 'unknown message type'})"
    return frame.message or frame.code.value or "refused"


async def request_print(client: HubClient, order_id: str, layout: str, timeout: float = 5.0) -> str | None:
    """Ask the hub to print an order in a layout; None when it took the job, else why not, in words."""
    msg = {"type": "print.request", "order_id": order_id, "layout": layout}
    try:
        answer = await client.request(msg, timeout=timeout)
    except NotConnected:
        return "offline: nothing was printed"
    except TimeoutError:
        return "the hub did not answer: nothing was printed"
    if isinstance(answer, Error):
        return error_words(answer)
    return None
