"""What each role may see of the customer: one policy, applied to every order document the hub sends. No I/O.

- `counter`: everything the source sent (`customer.name`, `customer.phone`, the delivery `address`): it hands the
  order over, calls the customer and gives the rider the address.
- `source`: only `order.status` frames of its own orders, which carry no customer data (it sent that data itself).
- `kitchen` and `monitor`: the order with `customer.name` cut to a first name (`first_name`), or no customer at all;
  `customer.phone` null; the delivery `address` left out. Everything else, the delivery's `due` time included, is
  as the counter sees it.

The free texts (order and item notes, `cancel_reason`) and the source's idempotency `key` reach every role as they
are: the kitchen needs the notes, and the hub cannot tell personal data in free text from cooking instructions.

`redact_view` is the policy over an order (`OrderView`): the hub builds one redacted `event` frame per event from it
and sends those same bytes to every kitchen screen and monitor. `redact_order` is the same policy over an order
document (`OrderView` as a dict), for code that still holds documents.
"""

from __future__ import annotations

import re
from typing import Any

from kds.config import Role
from kds.jsontext import dumps, loads
from kds.protocol import Customer, Delivery, Fulfilment, OrderView

SEES_CUSTOMER = frozenset({Role.COUNTER})
"""Roles that get the customer's data as the source sent it (sources get none back: their frames carry none)."""

_UNSPACED = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)
"""Scripts whose names are written without a space between family name and given name (Chinese, Japanese, Korean)."""


def first_name(name: str | None) -> str | None:
    """The part of a customer's name a kitchen may see: the first word, or None.

    "Li Wei" → "Li"; "Smith, John" → "John" (the given names follow a comma); a name in Chinese, Japanese or Korean
    ("王芳", "山田 太郎") → None: its first characters are the family name, and where the given name starts cannot
    be told. A one-word name is kept as the source sent it.
    """
    if not name:
        return None
    for comma in (",", "，"):
        if comma in name:
            name = name.split(comma, 1)[1]
            break
    words = name.split()
    if not words or _UNSPACED.search(words[0]):
        return None
    return words[0]


def redact_customer(customer: dict[str, Any] | None) -> dict[str, Any] | None:
    """The customer as kitchen and monitor devices see it: a first name and no phone, or None."""
    name = first_name((customer or {}).get("name"))
    return None if name is None else {"name": name, "phone": None}


def redact_order(doc: dict[str, Any]) -> dict[str, Any]:
    """An order document as kitchen and monitor devices see it; `doc` itself when there is nothing to cut.

    A new dict otherwise (`doc` is not changed): `customer` by `redact_customer`, `fulfilment` without `address`.
    """
    customer = doc.get("customer")
    fulfilment = doc.get("fulfilment") or {}
    shown = redact_customer(customer)
    if shown == customer and "address" not in fulfilment:
        return doc
    return {
        **doc,
        "fulfilment": {k: v for k, v in fulfilment.items() if k != "address"},
        "customer": shown,
    }


def view_for(role: Role, order: OrderView) -> OrderView:
    """An order as a device of this role may see it (`redact_view` but for the roles that see the customer)."""
    return order if role in SEES_CUSTOMER else redact_view(order)


def redact_view(order: OrderView) -> OrderView:
    """The order as kitchen and monitor devices see it; `order` itself when there is nothing to cut.

    A copy otherwise (`order` is not changed): `customer` cut to a first name and no phone (or none at all), the
    delivery's `address` left out (null, which an order's fulfilment does not write).
    """
    customer, fulfilment = order.customer, order.fulfilment
    key = (id(customer), id(fulfilment))
    hit = _SHOWN.get(key)
    if hit is None or hit[0] is not customer or hit[1] is not fulfilment:
        hit = (customer, fulfilment, _redacted(customer, fulfilment))
        if len(_SHOWN) >= _SHOWN_MAX:
            _SHOWN.clear()
        _SHOWN[key] = hit
    update = hit[2]
    return order if update is None else order.model_copy(update=update)


def redact_text(order: OrderView, text: str) -> str:
    """`redact_view(order).model_dump_json()`, from `text`, the order's JSON as pydantic wrote it
    (`order.model_dump_json()`): `text` itself when there is nothing to cut.

    Otherwise the JSON data of `text` cut by `redact_order`, the same policy over the order's data (its customer
    and fulfilment, which pydantic wrote): the same text as writing the cut copy of the order again, at a fraction
    of the cost (the order's items and tickets, most of it, are not written a second time)."""
    if not _cuts(order.customer, order.fulfilment)[0]:
        return text
    return dumps(redact_order(loads(text)))


_SHOWN: dict[tuple[int, int], tuple[Customer | None, Fulfilment, dict[str, Any] | None]] = {}
"""(customer, fulfilment) by identity → what kitchens see instead (None: the same). An order's customer and fulfilment
are frozen models that do not change after it is submitted, and every event of the order shows them: the cut is
worked out once per order. Holding the objects keeps their ids from being reused while they are keys."""
_SHOWN_MAX = 8192


def _cuts(customer: Customer | None, fulfilment: Fulfilment) -> tuple[bool, str | None, bool, bool]:
    """(whether kitchens see the order otherwise, the customer's first name, whether the customer is cut, whether
    the delivery address is)."""
    name = first_name(customer.name if customer is not None else None)
    cut_customer = customer is not None and (name is None or name != customer.name or customer.phone is not None)
    cut_address = isinstance(fulfilment, Delivery) and fulfilment.address is not None
    return cut_customer or cut_address, name, cut_customer, cut_address


def _redacted(customer: Customer | None, fulfilment: Fulfilment) -> dict[str, Any] | None:
    """The fields of an order that kitchens see otherwise (None: nothing to cut)."""
    cut, name, cut_customer, cut_address = _cuts(customer, fulfilment)
    if not cut:
        return None
    update: dict[str, Any] = {}
    if cut_customer:
        update["customer"] = None if name is None else Customer(name=name, phone=None)
    if cut_address:
        update["fulfilment"] = fulfilment.model_copy(update={"address": None})
    return update
