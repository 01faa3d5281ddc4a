"""The wire protocol as an AsyncAPI 3.0 document, generated from the same models as `kds.protocol.json_schema()`.

`kds schema --asyncapi` prints it; docs/asyncapi.json is its published copy (tests/test_asyncapi.py keeps it up to
date). The document describes a device's side of the one websocket endpoint: it sends the client → hub messages and
receives the hub → client messages. Every frame type is one message, whose payload is that model's schema from
`json_schema()`; the schemas live in `components.schemas` (AsyncAPI's default schema format, a superset of JSON
Schema draft 07, which these schemas keep to: no keyword of theirs changes meaning between draft 07 and 2020-12).
"""

from __future__ import annotations

from typing import Any

from kds.protocol import MAX_FRAME_BYTES, PROTOCOL_VERSION, CloseCode, json_schema

ASYNCAPI_VERSION = "3.0.0"
CHANNEL = "hub"
SCHEMAS = "#/components/schemas/"


def _refs_to_components(node: Any) -> Any:
    """The schema with its `#/$defs/X` references pointing at `#/components/schemas/X`."""
    if isinstance(node, dict):
        out = {k: _refs_to_components(v) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = SCHEMAS + ref.removeprefix("#/$defs/")
        return out
    if isinstance(node, list):
        return [_refs_to_components(v) for v in node]
    return node


def _summary(schema: dict[str, Any]) -> str:
    """The first paragraph of a model's docstring, on one line."""
    text = str(schema.get("description", "")).split("\n\n", 1)[0]
    return " ".join(text.split())


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the protocol: one channel, two operations, one message per frame type."""
    schema = json_schema()
    defs: dict[str, Any] = _refs_to_components(schema["$defs"])
    messages: dict[str, Any] = {}
    directions: dict[str, list[str]] = {}
    for union in ("ClientMessage", "HubMessage"):
        keys = directions[union] = []
        for member in defs[union]["oneOf"]:
            model = member["$ref"].removeprefix(SCHEMAS)
            kind = defs[model]["properties"]["type"]["const"]
            assert kind not in messages, f"frame type {kind} is in both directions"
            message: dict[str, Any] = {"name": kind, "title": model}
            if summary := _summary(defs[model]):
                message["summary"] = summary
            message["payload"] = {"$ref": SCHEMAS + model}
            messages[kind] = message
            keys.append(kind)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Hema KDS wire protocol",
            "version": str(PROTOCOL_VERSION),
            "description": (
                "The contract between a store's order hub (`kds serve`) and the devices that talk to it: app "
                "backends, kiosks, counter terminals, kitchen screens, monitors. This document describes a device: it "
                "sends the client → hub messages and receives the hub → client messages. Every frame is one JSON "
                f"object in one text frame, with a string `type` that names its message; a frame over "
                f"{MAX_FRAME_BYTES} bytes closes the connection with code {CloseCode.TOO_LARGE}. The first frame of "
                "a connection is `hello`. Generated from the hub's pydantic models (kds/protocol.py) by "
                "`kds schema --asyncapi`; docs/protocol.md tells the rest (roles, ordering, resuming, limits)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "hub": {
                "host": "{host}:{port}",
                "protocol": "ws",
                "description": "A store's hub without TLS (`kds serve`; the path is not significant).",
                "variables": {"host": {"default": "127.0.0.1"}, "port": {"default": "8765"}},
            },
            "hub-tls": {
                "host": "{host}:{port}",
                "protocol": "wss",
                "description": "A store's hub whose config has a [tls] table: wss only, TLS 1.2 or newer.",
                "variables": {"host": {"default": "127.0.0.1"}, "port": {"default": "8765"}},
            },
        },
        "channels": {
            CHANNEL: {
                "address": "/",
                "title": "The hub's websocket endpoint",
                "description": "One websocket endpoint per store hub; every message of both directions goes "
                "through it. The path is not significant.",
                "messages": {kind: {"$ref": f"#/components/messages/{kind}"} for kind in messages},
            }
        },
        "operations": {
            "send": {
                "action": "send",
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "title": "Client → hub",
                "summary": "Frames a device sends to the hub (`hello` first).",
                "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{k}"} for k in directions["ClientMessage"]],
            },
            "receive": {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "title": "Hub → client",
                "summary": "Frames the hub sends to a device: answers, events and status.",
                "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{k}"} for k in directions["HubMessage"]],
            },
        },
        "components": {"schemas": defs, "messages": messages},
    }
