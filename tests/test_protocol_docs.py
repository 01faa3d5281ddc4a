"""docs/protocol.md tells the truth: its examples parse and validate, are what the hub sends, and it names everything.

Each example block's fence says what it is (see docs/gen_examples.py): `json client` must parse with
`parse_client_frame`, `client-bad` must be refused by it, `json hub` must validate against `HubMessage` after
the trim marks ("…" entries of lists) are stripped. A JSON block without one of these tags fails the test, so no
example escapes checking.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from kds.client import HubClient
from kds.config import Role, StoreConfig
from kds.protocol import (
    CLIENT_TYPES,
    ROLE_MESSAGES,
    ClientMessage,
    CloseCode,
    Customer,
    Delivery,
    DineIn,
    ErrorCode,
    EventKind,
    FrameError,
    Hello,
    HubMessage,
    ItemIn,
    OrderAmend,
    OrderCancel,
    OrderIn,
    OrderStatus,
    TicketState,
    parse_client_frame,
)
from tests.support import event_frame, order_view, welcome_frame

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "protocol.md"
DOC = DOC_PATH.read_text(encoding="utf-8")
TRIM = "…"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
HUB = TypeAdapter(HubMessage)
HUB_TYPES = sorted(
    typing.get_args(m.model_fields["type"].annotation)[0] for m in typing.get_args(typing.get_args(HubMessage)[0])
)


@dataclass(frozen=True)
class Block:
    """A fenced block of the document."""

    line: int
    lang: str
    tag: str
    body: str

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.tag or self.lang}"


def blocks() -> list[Block]:
    """Every fenced block of the document."""
    out = []
    for m in FENCE.finditer(DOC):
        info = m.group(1).split()
        out.append(Block(DOC.count("\n", 0, m.start()) + 1, info[0] if info else "", " ".join(info[1:]), m.group(2)))
    return out


BLOCKS = blocks()


def strip_trims(value: Any) -> Any:
    """Drop the trim marks ("…" entries of lists) that stand for left-out entries."""
    if isinstance(value, dict):
        return {k: strip_trims(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_trims(v) for v in value if v != TRIM]
    return value


def examples(tag: str) -> list[Any]:
    """pytest params for the blocks with this tag; hub events are expected to fail while Event lacks their fields."""
    params = []
    for b in BLOCKS:
        if b.tag != tag:
            continue
        marks: list[Any] = []
        params.append(pytest.param(b, id=b.id, marks=marks))
    return params


# ------------------------------------------------------------------------------------------------ examples


def test_the_doc_has_examples_of_each_kind() -> None:
    tags = [b.tag for b in BLOCKS]
    assert tags.count("client") >= len(CLIENT_TYPES)
    assert tags.count("hub") >= len(HUB_TYPES)
    assert "client-bad" in tags


def test_every_json_block_says_which_way_it_goes() -> None:
    untagged = [b.id for b in BLOCKS if b.lang == "json" and b.tag not in ("client", "client-bad", "hub")]
    assert not untagged, f"JSON blocks without a `client`, `client-bad` or `hub` tag (not checked): {untagged}"
    unknown = [b.id for b in BLOCKS if b.tag and b.tag not in ("client", "hub", "client-bad", "close")]
    assert not unknown, f"blocks with an unknown tag: {unknown}"


@pytest.mark.parametrize("block", examples("client"))
def test_client_example_parses(block: Block) -> None:
    msg = parse_client_frame(block.body)
    assert msg.type == json.loads(block.body)["type"]


@pytest.mark.parametrize("block", examples("client-bad"))
def test_bad_client_example_is_refused(block: Block) -> None:
    with pytest.raises(FrameError):
        parse_client_frame(block.body)


@pytest.mark.parametrize("block", examples("hub"))
def test_hub_example_validates(block: Block) -> None:
    frame = strip_trims(json.loads(block.body))
    try:
        HUB.validate_json(json.dumps(frame), strict=True)
    except ValidationError as exc:
        pytest.fail(f"hub example at docs/protocol.md:{block.line} does not fit kds.protocol.HubMessage:\n{exc}")


def test_client_examples_cover_every_client_message() -> None:
    seen = {json.loads(b.body)["type"] for b in BLOCKS if b.tag == "client"}
    assert set(CLIENT_TYPES) <= seen, f"no example of {sorted(set(CLIENT_TYPES) - seen)}"


def test_hub_examples_cover_every_hub_message() -> None:
    seen = {json.loads(b.body)["type"] for b in BLOCKS if b.tag == "hub"}
    assert set(HUB_TYPES) <= seen, f"no example of {sorted(set(HUB_TYPES) - seen)}"


def test_close_examples_name_real_close_codes() -> None:
    codes = {v for k, v in vars(CloseCode).items() if k.isupper()}
    for b in BLOCKS:
        if b.tag == "close":
            m = re.fullmatch(r"close (\d+) .+\n", b.body)
            assert m and int(m.group(1)) in codes, b.id


# ------------------------------------------------------------------------------------------------ naming everything


@pytest.mark.parametrize("name", sorted(CLIENT_TYPES))
def test_doc_names_client_message(name: str) -> None:
    assert f"### `{name}`" in DOC, f"docs/protocol.md has no section for the client message {name}"


@pytest.mark.parametrize("name", HUB_TYPES)
def test_doc_names_hub_message(name: str) -> None:
    assert f"### `{name}`" in DOC, f"docs/protocol.md has no section for the hub message {name}"


@pytest.mark.parametrize(
    "word",
    [e.value for e in ErrorCode]
    + [e.value for e in EventKind]
    + [e.value for e in OrderStatus]
    + [e.value for e in TicketState]
    + [e.value for e in Role],
)
def test_doc_names_every_code_kind_and_state(word: str) -> None:
    assert f"`{word}`" in DOC


@pytest.mark.parametrize("code", sorted(v for k, v in vars(CloseCode).items() if k.isupper()))
def test_doc_names_every_close_code(code: int) -> None:
    assert re.search(rf"^\| `{code}` \|", DOC, re.MULTILINE), f"close code {code} is not in the close codes table"


def test_error_codes_table_lists_every_code() -> None:
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", DOC.split("## Error codes", 1)[1].split("\n## ", 1)[0], re.M))
    assert listed == {e.value for e in ErrorCode}


def test_roles_table_matches_the_hub() -> None:
    table = DOC.split("<!-- roles -->", 1)[1].split("<!-- /roles -->", 1)[0]
    documented: dict[str, set[str]] = {}
    for row in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        documented[cells[0].strip("`")] = set(re.findall(r"`([a-z_.]+)`", cells[2]))
    assert documented == {role.value: set(msgs) for role, msgs in ROLE_MESSAGES.items()}


# ------------------------------------------------------------------------------------------------ up to date


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_examples", ROOT / "docs" / "gen_examples.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_examples", mod)
    spec.loader.exec_module(mod)
    return mod


async def test_examples_are_what_a_real_hub_sends() -> None:
    gen = _generator()
    generated = await gen.generate()
    marked = gen.doc_blocks(DOC)
    markers = re.findall(r"^<!-- example: ", DOC, re.MULTILINE)
    assert len(marked) == len(markers), "an example marker is not followed by a fenced block"
    unknown = sorted(set(marked) - set(generated))
    assert not unknown, f"docs/protocol.md marks examples the generator does not make: {unknown}"
    stale = sorted(name for name, block in marked.items() if block != generated[name].render())
    assert not stale, (
        f"examples no longer match what the hub sends: {stale}; "
        "run `.venv/bin/python docs/gen_examples.py --write` and read the diff"
    )


# ------------------------------------------------------------------------------------------------ fields and limits


def _models() -> list[type[BaseModel]]:
    """Every model of the protocol, both directions, with the models they use."""
    seen: dict[str, type[BaseModel]] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in seen:
                return
            seen[tp.__name__] = tp
            for f in tp.model_fields.values():
                visit(f.annotation)
        for arg in typing.get_args(tp):
            visit(arg)

    visit(ClientMessage)
    visit(HubMessage)
    return list(seen.values())


@pytest.mark.parametrize(
    ("model", "field"), [pytest.param(m, f, id=f"{m.__name__}.{f}") for m in _models() for f in m.model_fields]
)
def test_doc_names_every_field_of_every_model(model: type[BaseModel], field: str) -> None:
    assert f"`{field}`" in DOC, f"docs/protocol.md never names {model.__name__}.{field}"


def _section(heading: str) -> str:
    start = DOC.index(heading + "\n")
    rest = DOC[start + len(heading) + 1 :]
    ends = [i for i in (rest.find("\n## "), rest.find("\n### ")) if i >= 0]
    return rest[: min(ends)] if ends else rest


def _tables(heading: str) -> list[dict[str, str]]:
    """The tables of a section: one dict per table, field name → its row."""
    tables: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in _section(heading).splitlines():
        m = re.match(r"^\| `([a-z_]+)` \|", line)
        if line.startswith("|"):
            if current is None:
                current = {}
                tables.append(current)
            if m:
                current[m.group(1)] = line
        else:
            current = None
    return tables


def _prop(model: type[BaseModel], field: str) -> dict[str, Any]:
    """A field's JSON Schema, without the `null` of an optional one."""
    prop: dict[str, Any] = model.model_json_schema()["properties"][field]
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    return {**prop, **options[0]}


def _len(model: type[BaseModel], field: str) -> str:
    p = _prop(model, field)
    return f"{p['minLength']}–{p['maxLength']}" if p.get("minLength", 0) > 1 else f"≤ {p['maxLength']}"


def _note_len() -> int:
    """The longest note of `order.amend`'s `item_notes`."""
    p = _prop(OrderAmend, "item_notes")
    values = p.get("additionalProperties") or next(iter(p.get("patternProperties", {}).values()))
    return int(values["maxLength"])


def _limits() -> list[Any]:
    hello = _tables("### `hello`")[0]
    order, item = _tables("## The order model")[:2]
    amend = _tables("### `order.amend`")[0]
    p = _prop
    return [
        (hello["token"], f"≤ {p(Hello, 'token')['maxLength']}"),
        (hello["client"], f"≤ {p(Hello, 'client')['maxLength']}"),
        (hello["protocols"], f"≥ {p(Hello, 'protocols')['items']['minimum']}"),
        (hello["protocols"], f"{p(Hello, 'protocols')['minItems']}–{p(Hello, 'protocols')['maxItems']} of them"),
        (order["key"], f"{p(OrderIn, 'key')['minLength']}–{p(OrderIn, 'key')['maxLength']}"),
        (order["note"], _len(OrderIn, "note")),
        (order["items"], f"{p(OrderIn, 'items')['minItems']}–{p(OrderIn, 'items')['maxItems']}"),
        (order["fulfilment"], f'"address"?: string {_len(Delivery, "address")}'),
        (order["fulfilment"], f"string {p(DineIn, 'table')['minLength']}–{p(DineIn, 'table')['maxLength']}"),
        (order["customer"], f"`name` ({_len(Customer, 'name')})"),
        (order["customer"], f"`phone` ({_len(Customer, 'phone')})"),
        (item["sku"], _len(ItemIn, "sku")),
        (item["name"], _len(ItemIn, "name")),
        (item["qty"], f"{p(ItemIn, 'qty')['minimum']}–{p(ItemIn, 'qty')['maximum']}"),
        (item["cook"], _len(ItemIn, "cook")),
        (item["modifiers"], f"≤ {p(ItemIn, 'modifiers')['maxItems']} × {p(ItemIn, 'modifiers')['items']['maxLength']}"),
        (item["allergens"], f"≤ {p(ItemIn, 'allergens')['maxItems']} × {p(ItemIn, 'allergens')['items']['maxLength']}"),
        (item["note"], _len(ItemIn, "note")),
        (item["tag"], _len(ItemIn, "tag")),
        (amend["add"], f"≤ {p(OrderAmend, 'add')['maxItems']}"),
        (amend["remove"], f"≤ {p(OrderAmend, 'remove')['maxItems']}"),
        (amend["note"], _len(OrderAmend, "note")),
        (
            amend["item_notes"],
            f"string ≤ {_note_len()}",
        ),
        (amend["item_notes"], f"at most {p(OrderAmend, 'item_notes')['maxProperties']} entries"),
        (_section("### `order.cancel`"), f"`reason` ({_len(OrderCancel, 'reason')} characters)"),
    ]


@pytest.mark.parametrize(("row", "expected"), [pytest.param(r, e, id=e) for r, e in _limits()])
def test_documented_limits_are_the_models(row: str, expected: str) -> None:
    assert expected in row, f"docs/protocol.md should say {expected!r} in: {row}"


# ------------------------------------------------------------------------------------------------ resume point


RESUME_CODE = """\
on welcome:       if resumed: left = welcome.replay; target = welcome.seq
                                if left == 0: last = target
                  else:         replace state by welcome.snapshot; last = welcome.seq
on event/status:  apply it (upsert by order id, keep the highest version)
                  if left > 0:  left -= 1; if left == 0: last = target
                  else:         last = max(last, frame.seq)
on reconnect:     hello with resume_from = last
"""


async def test_the_documented_resume_point_is_the_clients() -> None:
    section = _section("## Resuming after a disconnect")
    assert RESUME_CODE in section, "the resume pseudo-code changed: check it against HubClient, then this test"
    assert "resume again from the same `resume_from`" in section
    client = HubClient("ws://127.0.0.1:1", device="d", token="t", role="kitchen")
    client._on_welcome(welcome_frame(5))
    assert client.seq == 5
    client._on_welcome(welcome_frame(9, resumed=True, replay=2))
    order = order_view(id="o", version=1)
    seen = []
    for seq in (7, 8, 11):  # two replayed frames (the device's own: not up to the welcome's seq), then a live one
        await client._on_frame(event_frame(seq, order))
        seen.append(client.seq)
    # The prose and the pseudo-code: `resume_from` until the replay is applied, then welcome.seq, then live seqs.
    assert seen == [5, 9, 11]


# ------------------------------------------------------------------------------------------------ the largest frame


def test_the_largest_frame_the_hub_sends_is_within_the_documented_bound(config: StoreConfig) -> None:
    from tests.test_hub_core import Core

    text = _section("## Limits")
    bound = float(re.search(r"an order is at\s+most \*\*([\d.]+) MiB\*\*", text).group(1))  # type: ignore[union-attr]
    lim = config.limits
    largest = 0
    for ch in ("\x01", "\U0001f600"):  # the widest in JSON: a 6-byte escape, a 4-byte character
        core = Core(config)

        def line(ch: str = ch) -> dict[str, Any]:
            allergens = [a.id for a in config.allergens][:20]
            return {
                "sku": "WOK-KUNGPAO",
                "qty": 99,
                "name": ch * 120,
                "note": ch * 500,
                "modifiers": [ch * 80] * 20,
                "allergens": allergens,
            }

        order = {
            "key": "k" * 64,
            "channel": "app",
            "fulfilment": {"type": "delivery", "due": "2026-11-25T12:30:00+08:00", "address": ch * 500},
            "customer": {"name": ch * 80, "phone": ch * 32},
            "note": ch * 500,
            "items": [line()],
        }
        r = core.ask("app-backend", {"type": "order.submit", "order": order})
        if r["type"] != "order.accepted":
            continue  # the hub refuses this character: not part of the worst case
        while len(core.order(r["order_id"])["items"]) < lim.max_items_per_order:
            frame = {
                "type": "order.amend",
                "order_id": r["order_id"],
                "add": [line(), line()][: lim.max_items_per_order - len(core.order(r["order_id"])["items"])],
            }
            assert len(json.dumps(frame, ensure_ascii=False).encode()) <= lim.max_frame_bytes
            answer = core.ask("app-backend", frame)
            assert answer["type"] == "ack", answer
        largest = max(largest, len(core.last_event().frame.encode("utf-8")))
    assert largest > 0
    assert largest <= bound * 1024 * 1024, f"an event of {largest} bytes, the doc says at most {bound} MiB"
