"""The client side of the wire: a frame from the hub, parsed once into its `kds.protocol` model.

Clients (`HubClient`, and through it terminals, the simulator, the demo and the benchmarks) read the hub's frames
through `parse_hub_frame` only. The models are `extra="forbid"` for what the hub accepts; what the hub sends is read
the other way, as the published contract says (`StatusChanged`): fields a client does not know are ignored (a later
hub may add some), and a frame of a type it does not know is skipped with a log line.
"""

from __future__ import annotations

import logging
from typing import TypeAlias

from pydantic import TypeAdapter, ValidationError

from kds.protocol import Ack, ClosedOrders, Error, HubMessage, OrderAccepted, OrderQuoted, Pong
from kds.protocol import HubFrame as HubFrame  # (re-exported: clients name it from here)

log = logging.getLogger("kds.client")

Answer: TypeAlias = OrderAccepted | OrderQuoted | Ack | Error | Pong | ClosedOrders
"""A frame answering a client's `ref` (what `HubClient.request` returns)."""

_HUB_FRAMES: TypeAdapter[HubFrame] = TypeAdapter(HubMessage)
"""Built once: validating a frame is one call into pydantic-core (the JSON text straight to the model)."""
_UNKNOWN_TYPE = frozenset({"union_tag_invalid", "union_tag_not_found"})


class BadFrame(ValueError):
    """A frame from the hub of a known type that does not parse (a hub bug, or not a KDS hub)."""


def parse_hub_frame(raw: str | bytes) -> HubFrame | None:
    """The hub's frame as its model; None (logged) for a frame of a type this client does not know.

    Fields the models do not know are ignored (forward compatibility); raises BadFrame for a frame that is not JSON,
    or of a known type with a field missing or of the wrong type.
    """
    try:
        return _HUB_FRAMES.validate_json(raw, extra="ignore")
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] in _UNKNOWN_TYPE and not errors[0]["loc"]:
            tag = errors[0].get("ctx", {}).get("tag")
            log.info("ignored a frame of a type this client does not know: %s", tag if tag is not None else "none")
            return None
        first = errors[0] if errors else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise BadFrame(f"the hub sent a frame this client cannot read: {where}: {first['msg']}") from None
