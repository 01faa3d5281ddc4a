"""docs/asyncapi.json: the protocol's AsyncAPI 3.0 document is what the code generates, is valid AsyncAPI 3.0, and
every example frame of docs/protocol.md (the hub's real frames) fits its message's payload in it.

Its structure is checked in Python (the parts the official schema cannot see: references resolve, the operations use
the channel's messages, every frame type is there once, in the right direction) and, through Node, against the
official AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs, pinned in tests/js/package.json).
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from kds.asyncapi import asyncapi
from kds.protocol import CLIENT_TYPES, PROTOCOL_VERSION, HubMessage
from kdsapp.cli import main
from tests.js import node
from tests.test_schema_standard import BAD, FRAMES

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "docs" / "asyncapi.json"
REGENERATE = "regenerate it: .venv/bin/kds schema --asyncapi > docs/asyncapi.json"
HUB_TYPES = {
    typing.get_args(m.model_fields["type"].annotation)[0] for m in typing.get_args(typing.get_args(HubMessage)[0])
}


def _published() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    return document


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    node_: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node_, dict) and part in node_, f"unresolvable $ref {ref}"
        node_ = node_[part]
    return node_


# ------------------------------------------------------------------------------------------------ up to date


def test_the_published_document_is_what_the_code_generates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--asyncapi"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == asyncapi()
    assert PUBLISHED.read_text(encoding="utf-8") == printed, f"docs/asyncapi.json is out of date: {REGENERATE}"


def test_kds_schema_asyncapi_from_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kdsapp.cli", "schema", "--asyncapi", "--compact"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert json.loads(done.stdout) == asyncapi()


# ------------------------------------------------------------------------------------------------ structure


def test_the_document_has_the_shape_of_asyncapi_3() -> None:
    doc = _published()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"] == str(PROTOCOL_VERSION)
    assert doc["defaultContentType"] == "application/json"
    for server in doc["servers"].values():
        assert server["protocol"] in ("ws", "wss") and server["host"]
    assert list(doc["channels"]) == ["hub"], "one websocket endpoint"
    channel = doc["channels"]["hub"]
    assert isinstance(channel["address"], str)
    assert {op["action"] for op in doc["operations"].values()} == {"send", "receive"}
    assert len(doc["operations"]) == 2


def test_every_frame_type_is_one_message_in_its_direction() -> None:
    doc = _published()
    channel = doc["channels"]["hub"]
    sent: dict[str, list[str]] = {}
    for op in doc["operations"].values():
        assert _resolve(doc, op["channel"]["$ref"]) is channel
        names = []
        for ref in op["messages"]:
            assert ref["$ref"].startswith("#/channels/hub/messages/"), "an operation's messages are its channel's"
            message = _resolve(doc, ref["$ref"])
            if "$ref" in message:
                message = _resolve(doc, message["$ref"])
            payload = _resolve(doc, message["payload"]["$ref"])
            assert payload["properties"]["type"]["const"] == message["name"], message["name"]
            names.append(message["name"])
        sent[op["action"]] = names
    assert sorted(sent["send"]) == sorted(CLIENT_TYPES)
    assert sorted(sent["receive"]) == sorted(HUB_TYPES)
    assert len(channel["messages"]) == len(CLIENT_TYPES) + len(HUB_TYPES)


def test_every_reference_resolves() -> None:
    doc = _published()
    refs: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            if isinstance(n.get("$ref"), str):
                refs.append(n["$ref"])
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(doc)
    assert len(refs) > 2 * (len(CLIENT_TYPES) + len(HUB_TYPES))
    for ref in refs:
        _resolve(doc, ref)
    assert not [r for r in refs if r.startswith("#/$defs/")], "schema references point into components.schemas"


def test_the_payload_schemas_are_valid_draft_07() -> None:
    """AsyncAPI's default schema format is a superset of JSON Schema draft 07."""
    for name, schema in _published()["components"]["schemas"].items():
        Draft7Validator.check_schema(schema)
        assert "discriminator" not in schema or isinstance(schema["discriminator"], str), name


def test_ajv_validates_the_document_against_the_official_asyncapi_3_schema() -> None:
    answer = node.run("asyncapi", PUBLISHED)
    assert answer["valid"], f"docs/asyncapi.json is not valid AsyncAPI 3.0.0: {answer['errors'][:10]}"


def test_ajv_would_refuse_a_broken_document(tmp_path: Path) -> None:
    """The check above can fail: an AsyncAPI 2 `publish` operation and a pydantic `discriminator` are refused."""
    node.node_ready()
    doc = _published()
    doc["operations"]["send"]["action"] = "publish"
    doc["components"]["schemas"]["ClientMessage"]["discriminator"] = {"propertyName": "type"}
    broken = tmp_path / "asyncapi.json"
    broken.write_text(json.dumps(doc), encoding="utf-8")
    errors = " ".join(node.run("asyncapi", broken)["errors"])
    assert "/operations/send/action" in errors and "/components/schemas/ClientMessage/discriminator" in errors


# ------------------------------------------------------------------------------------------------ the doc's frames


def _payload_validators() -> dict[tuple[str, str], Draft7Validator]:
    """(action, frame type) → a validator of that message's payload, resolved inside the published document."""
    doc = _published()
    registry: Registry[Any] = Registry().with_resource("urn:asyncapi", DRAFT7.create_resource(doc))
    out = {}
    for op in doc["operations"].values():
        for ref in op["messages"]:
            message = _resolve(doc, ref["$ref"])
            if "$ref" in message:
                message = _resolve(doc, message["$ref"])
            schema = {"$ref": "urn:asyncapi" + message["payload"]["$ref"]}
            out[op["action"], message["name"]] = Draft7Validator(
                schema, registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER
            )
    return out


ACTION = {"client": "send", "hub": "receive"}


def test_every_example_frame_of_the_doc_fits_its_message() -> None:
    validators = _payload_validators()
    wrong = {}
    for id_, direction, frame in FRAMES:
        kind = frame.get("type")
        validator = validators.get((ACTION[direction], kind)) if isinstance(kind, str) else None
        if validator is None:
            wrong[id_] = [f"no {ACTION[direction]} message {frame.get('type')!r}"]
        elif errors := [e.message for e in validator.iter_errors(frame)]:
            wrong[id_] = errors[:3]
    assert not wrong, f"docs/protocol.md examples docs/asyncapi.json refuses: {wrong}"


@pytest.mark.parametrize(("direction", "frame"), [pytest.param(d, f, id=i) for i, d, f in BAD])
def test_a_bad_frame_fits_no_message(direction: str, frame: Any) -> None:
    validators = _payload_validators()
    kind = frame.get("type") if isinstance(frame, dict) else None
    validator = validators.get((ACTION[direction], kind)) if isinstance(kind, str) else None
    assert validator is None or not validator.is_valid(frame)


def test_payloads_check_formats() -> None:
    validators = _payload_validators()
    closed = {"type": "orders.closed", "ref": "c-1", "before": "2026-11-25T04:05:00+00:00"}
    assert validators["send", "orders.closed"].is_valid(closed)
    assert not validators["send", "orders.closed"].is_valid({**closed, "before": "2026-11-25 noon"})
