"""The published JSON Schema (`kds schema`) loads as is in standard validators and tells good frames from bad ones.

Partners validate with what they have: ajv (JavaScript; its draft 2020-12 build in strict mode, with ajv-formats,
no keyword added) and Python's jsonschema (Draft202012Validator with format checking). Both are given the schema
exactly as `kds schema` prints it and every example frame of docs/protocol.md (the hub's real frames, read as
tests/test_protocol_docs.py reads them), which must pass, and frames a hub refuses, which must not.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from kds.protocol import CLIENT_TYPES, json_schema
from kdsapp.cli import main
from tests.js import node
from tests.test_protocol_docs import BLOCKS, strip_trims

DIRECTIONS = {"client": "ClientMessage", "hub": "HubMessage"}


def doc_frames() -> list[tuple[str, str, dict[str, Any]]]:
    """(id, direction, frame) of every `json client` and `json hub` example of docs/protocol.md, trims stripped."""
    return [(b.id, b.tag, strip_trims(json.loads(b.body))) for b in BLOCKS if b.lang == "json" and b.tag in DIRECTIONS]


FRAMES = doc_frames()


def _example(kind: str) -> dict[str, Any]:
    """A copy of the document's first example frame of this type."""
    return copy.deepcopy(next(f for _, _, f in FRAMES if f.get("type") == kind))


def bad_frames() -> list[tuple[str, str, Any]]:
    """(id, direction, frame): frames the hub refuses or would never send, each a small change of a good one."""
    submit = _example("order.submit")
    no_order = {k: v for k, v in submit.items() if k != "order"}
    zero_qty = copy.deepcopy(submit)
    zero_qty["order"]["items"][0]["qty"] = 0
    no_items = copy.deepcopy(submit)
    no_items["order"]["items"] = []
    bad_fulfilment = copy.deepcopy(submit)
    bad_fulfilment["order"]["fulfilment"] = {"type": "drone"}
    naive_due = copy.deepcopy(submit)
    naive_due["order"]["due"] = "2026-11-25T12:30:00"
    event = _example("event")
    return [
        ("unknown-type", "client", {"type": "order.update", "order_id": "20261125-S001"}),
        ("no-type", "client", {"order_id": "20261125-S001"}),
        ("not-an-object", "client", ["ping"]),
        ("unknown-field", "client", {**_example("ping"), "colour": "red"}),
        ("missing-order", "client", no_order),
        ("qty-0", "client", zero_qty),
        ("no-items", "client", no_items),
        ("unknown-fulfilment", "client", bad_fulfilment),
        ("due-without-offset", "client", naive_due),
        ("before-not-a-time", "client", {"type": "orders.closed", "ref": "c-1", "before": "yesterday"}),
        ("hub-frame-from-a-client", "client", _example("pong")),
        ("client-frame-from-the-hub", "hub", _example("ping")),
        ("unknown-event-kind", "hub", {**event, "kind": "order.teleported"}),
        ("pong-without-seq", "hub", {k: v for k, v in _example("pong").items() if k != "seq"}),
    ]


BAD = bad_frames()


def test_the_doc_gives_frames_of_both_directions() -> None:
    directions = {d for _, d, _ in FRAMES}
    assert directions == {"client", "hub"}
    assert {f["type"] for _, d, f in FRAMES if d == "client"} == set(CLIENT_TYPES)


# ------------------------------------------------------------------------------------------------ Python jsonschema

KEYWORDS_2020_12 = {
    # core
    *("$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary", "$comment", "$defs"),
    # applicators
    *("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "prefixItems", "items"),
    *("contains", "properties", "patternProperties", "additionalProperties", "propertyNames"),
    *("unevaluatedItems", "unevaluatedProperties"),
    # validation
    *("type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
    *("maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxContains", "minContains"),
    *("maxProperties", "minProperties", "required", "dependentRequired"),
    # format, content, meta-data
    *("format", "contentEncoding", "contentMediaType", "contentSchema"),
    *("title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples"),
}
SCHEMA_MAPS = ("$defs", "properties", "patternProperties", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
SCHEMA_ONE_MORE = ("unevaluatedItems", "unevaluatedProperties", "contentSchema")


def unknown_keywords(schema: Any, where: str = "#") -> list[str]:
    """Where a schema uses a keyword that is not JSON Schema 2020-12 (what ajv's strict mode refuses to load)."""
    if isinstance(schema, bool):
        return []
    assert isinstance(schema, dict), f"{where}: a schema is an object or a boolean"
    found = [f"{where}/{k}" for k in schema if k not in KEYWORDS_2020_12]
    for k in SCHEMA_MAPS:
        for name, sub in schema.get(k, {}).items():
            found += unknown_keywords(sub, f"{where}/{k}/{name}")
    for k in SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(k, [])):
            found += unknown_keywords(sub, f"{where}/{k}/{i}")
    for k in SCHEMA_ONE + SCHEMA_ONE_MORE:
        if k in schema:
            found += unknown_keywords(schema[k], f"{where}/{k}")
    return found


def _published(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The schema as `kds schema` prints it."""
    assert main(["schema"]) == 0
    schema: dict[str, Any] = json.loads(capsys.readouterr().out)
    return schema


def _validators(schema: dict[str, Any]) -> dict[str, Draft202012Validator]:
    """Draft 2020-12 validators with format checking: the whole schema, and each direction's union."""
    registry: Registry[Any] = Registry().with_resource("urn:kds", Resource.from_contents(schema))
    checker = Draft202012Validator.FORMAT_CHECKER
    out = {"all": Draft202012Validator(schema, format_checker=checker)}
    for direction, union in DIRECTIONS.items():
        ref = {"$ref": f"urn:kds#/$defs/{union}"}
        out[direction] = Draft202012Validator(ref, registry=registry, format_checker=checker)
    return out


def test_the_schema_uses_only_json_schema_2020_12_keywords(capsys: pytest.CaptureFixture[str]) -> None:
    schema = _published(capsys)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    unknown = unknown_keywords(schema)
    # `ge`, `le`…: pydantic's own names, written when a Field(ge=…) comes after a BeforeValidator in an Annotated
    # (put the Field first). Validators ignore such keywords, or refuse to load the schema (ajv, strict).
    assert not unknown, f"keywords that are not JSON Schema 2020-12: {unknown}"


def test_the_keyword_check_sees_an_openapi_discriminator() -> None:
    schema = json_schema()
    schema["$defs"]["ClientMessage"]["discriminator"] = {"propertyName": "type", "mapping": {}}
    assert unknown_keywords(schema) == ["#/$defs/ClientMessage/discriminator"]


def test_jsonschema_checks_date_times() -> None:
    """jsonschema checks `date-time` only with rfc3339-validator installed; without it, any string would pass."""
    assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers
    assert not Draft202012Validator.FORMAT_CHECKER.conforms("yesterday", "date-time")


def test_jsonschema_accepts_every_example_frame_of_the_doc(capsys: pytest.CaptureFixture[str]) -> None:
    validators = _validators(_published(capsys))
    wrong = {}
    for id_, direction, frame in FRAMES:
        errors = [e.message for v in (validators[direction], validators["all"]) for e in v.iter_errors(frame)]
        if errors:
            wrong[id_] = errors[:3]
    assert not wrong, f"docs/protocol.md examples the published schema refuses: {wrong}"


@pytest.mark.parametrize(("direction", "frame"), [pytest.param(d, f, id=i) for i, d, f in BAD])
def test_jsonschema_refuses_a_bad_frame(capsys: pytest.CaptureFixture[str], direction: str, frame: Any) -> None:
    validators = _validators(_published(capsys))
    with pytest.raises(jsonschema.ValidationError):
        validators[direction].validate(frame)
    if not (isinstance(frame, dict) and frame.get("type") in ("ping", "pong")):  # (a good frame the other way)
        with pytest.raises(jsonschema.ValidationError):
            validators["all"].validate(frame)


# ------------------------------------------------------------------------------------------------ ajv through Node


def test_ajv_strict_2020_loads_the_schema_and_judges_the_frames(tmp_path: Path) -> None:
    node.node_ready()
    schema_file, frames_file = tmp_path / "schema.json", tmp_path / "frames.json"
    schema_file.write_text(json.dumps(json_schema()), encoding="utf-8")
    frames = [{"id": i, "direction": d, "frame": f} for i, d, f in FRAMES]
    frames += [{"id": f"bad-{i}", "direction": d, "frame": f} for i, d, f in BAD]
    frames_file.write_text(json.dumps(frames, ensure_ascii=False), encoding="utf-8")
    answer = node.run("schema", schema_file, frames_file)
    assert answer["loaded"], f"ajv (strict, draft 2020-12) refuses the published schema: {answer['error']}"
    verdicts = {r["id"]: r for r in answer["results"]}
    assert len(verdicts) == len(frames)
    refused = {i: verdicts[i]["errors"][:3] for i, _, _ in FRAMES if not verdicts[i]["valid"]}
    assert not refused, f"docs/protocol.md examples ajv refuses: {refused}"
    accepted = [i for i, _, _ in BAD if verdicts[f"bad-{i}"]["valid"]]
    assert not accepted, f"bad frames ajv accepts: {accepted}"


def test_ajv_refuses_an_openapi_discriminator(tmp_path: Path) -> None:
    """The check above can fail: strict mode refuses the schema pydantic writes (`discriminator` with `mapping`)."""
    node.node_ready()
    schema = json_schema()
    schema["$defs"]["HubMessage"]["discriminator"] = {"propertyName": "type", "mapping": {}}
    (tmp_path / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    (tmp_path / "frames.json").write_text("[]", encoding="utf-8")
    answer = node.run("schema", tmp_path / "schema.json", tmp_path / "frames.json")
    assert not answer["loaded"]
    assert "unknown keyword" in answer["error"] and "discriminator" in answer["error"]
