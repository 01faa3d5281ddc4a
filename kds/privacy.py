"""What each role may see of the customer: one policy, applied to every order document the hub sends. No I/O.

- `counter`: everything the source sent (`customer.name`, `customer.phone`, the delivery `address`): it hands the
  order over, calls the customer and gives the rider the address.
- `source`: only `order.status` frames of its own orders, which carry no customer data (it sent that data itself).
- `kitchen` and `monitor`: the order with `customer.name` cut to a first name (`first_name`), or no customer at all;
  `customer.phone` null; the delivery `address` left out. Everything else, the delivery's `due` time included, is
  as the counter sees it.

The free texts (order and item notes, `cancel_reason`) and the source's idempotency `key` reach every role as they
are: the kitchen needs the notes, and the hub cannot tell personal data in free text from cooking instructions.

`redact_order` is the policy over an order document (`OrderView` as a dict); `redact_json` gives the same result
for the JSON text of an order or of an event frame, without serialising the order again (the hub builds one
redacted frame per event and sends those same bytes to every kitchen screen and monitor).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kds.config import Role
from kds.jsontext import dumps
from kds.protocol import Delivery, OrderView

SEES_CUSTOMER = frozenset({Role.COUNTER})
"""Roles that get the customer's data as the source sent it (sources get none back: their frames carry none)."""

_UNSPACED = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)
"""Scripts whose names are written without a space between family name and given name (Chinese, Japanese, Korean)."""


_dumps = dumps
"""The hub's serialisation (what `kds.hub._dumps` writes): the splice in `redact_json` relies on the same text."""

_SPLICES: dict[str, tuple[str, str]] = {}
"""Order id → (the JSON of the order's fulfilment and customer, what kitchens see instead).

An order's fulfilment and customer do not change after it is submitted and every event of the order carries them,
so the splice is worked out once per order. The id is only a hint: a splice is used only where its first part is
found in the text, and then it is right whatever order it was made from (the second part is a function of the
first), so another hub's order of the same id (tests run several) cannot get a wrong one."""
_SPLICES_MAX = 4096


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


def order_for(role: Role, doc: dict[str, Any]) -> dict[str, Any]:
    """An order document as a device of this role may see it."""
    return doc if role in SEES_CUSTOMER else redact_order(doc)


def _private_part(doc: dict[str, Any]) -> str:
    return f'"fulfilment":{_dumps(doc.get("fulfilment"))},"customer":{_dumps(doc.get("customer"))}'


def redact_json(doc: dict[str, Any], text: str, *, rebuild: Callable[[dict[str, Any]], str] = _dumps) -> str:
    """`text`, JSON that carries the order `doc` as the hub writes it (the order, or an event frame holding it),
    as kitchen and monitor devices see it: `text` itself when there is nothing to cut.

    The order's `fulfilment` and `customer` are replaced in the text (`_dumps` writes them next to each other, and
    the quoted key cannot occur inside a JSON string, where every quote is escaped), so the order is not serialised
    again. When `text` was not written that way, `rebuild(redact_order(doc))` is returned instead.
    """
    hint = str(doc.get("id"))
    splice = _SPLICES.get(hint)
    if splice is not None and (at := text.find(splice[0])) >= 0:
        return text[:at] + splice[1] + text[at + len(splice[0]) :]
    shown = redact_order(doc)
    if shown is doc:
        return text
    old = _private_part(doc)
    at = text.find(old)
    if at < 0:
        return rebuild(shown)
    if len(_SPLICES) >= _SPLICES_MAX:
        _SPLICES.clear()
    new = _private_part(shown)
    _SPLICES[hint] = (old, new)
    return text[:at] + new + text[at + len(old) :]


def redact_view(order: OrderView) -> OrderView:
    """`redact_order` for a typed order: the order as kitchen and monitor devices see it; `order` itself when there
    is nothing to cut.

    A copy otherwise (`model_copy`, `order` is not changed): `customer` cut to its `first_name` with `phone` None,
    or None; a delivery without its `address` (None).
    """
    customer = order.customer
    name = first_name(customer.name if customer is not None else None)
    shown = customer
    if customer is not None and (name is None or customer.name != name or customer.phone is not None):
        shown = None if name is None else customer.model_copy(update={"name": name, "phone": None})
    fulfilment = order.fulfilment
    hides_address = isinstance(fulfilment, Delivery) and fulfilment.address is not None
    if shown is customer and not hides_address:
        return order
    update: dict[str, object] = {"customer": shown}
    if hides_address:
        update["fulfilment"] = fulfilment.model_copy(update={"address": None})
    return order.model_copy(update=update)
