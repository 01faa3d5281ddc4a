"""The hub's JSON text: compact, non-ASCII characters as they are (what pydantic's `model_dump_json` writes too).

The hub's frames are its protocol models (`kds.protocol`), written by pydantic. `frame_text` puts a frame together
from its model's JSON data (`model_dump(mode="json")`) and the JSON texts pydantic already wrote for its largest
parts (an event's order, a snapshot's orders: `written`), so an order written once for the database is not written
again for the screens, and a welcome sends the text of each unchanged order as it was written. orjson embeds those
texts as they are (`orjson.Fragment`): nothing is spliced into a string. `loads` reads what the hub stored.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any) -> str:
    """`json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`, faster."""
    return orjson.dumps(obj).decode("utf-8")


def written(text: str | bytes) -> orjson.Fragment:
    """A JSON text already written (by a model's `model_dump_json`, or a serializer's `to_json`: UTF-8 bytes), to
    stand as a value in `frame_text`'s data."""
    return orjson.Fragment(text)


def frame_text(data: Any) -> str:
    """A frame's JSON text from its model's JSON data, with `written` texts as they are."""
    return orjson.dumps(data).decode("utf-8")


def frame_utf8(data: Any) -> bytes:
    """`frame_text`, as UTF-8 bytes: a part to embed (`written`) in more than one frame is best kept so (a text with
    non-ASCII characters in it is encoded to UTF-8 again each time it is embedded)."""
    return orjson.dumps(data)


def dumps_sorted(obj: Any) -> bytes:
    """`json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))` as UTF-8 bytes, faster (the
    canonical text an order's digest is made from)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def loads(text: str | bytes) -> Any:
    """Parse JSON the hub wrote itself (stored events, order documents)."""
    return orjson.loads(text)
