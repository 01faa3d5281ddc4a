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
from pydantic import TypeAdapter, ValidationError

from kds.config import Role
from kds.protocol import (
    CLIENT_TYPES,
    ROLE_MESSAGES,
    CloseCode,
    ErrorCode,
    EventKind,
    FrameError,
    HubMessage,
    OrderStatus,
    TicketState,
    parse_client_frame,
)

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
