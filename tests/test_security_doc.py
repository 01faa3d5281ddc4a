"""docs/security.md: every claim names a test, and every test it names exists (so the page cannot promise what
nothing checks, and a renamed or removed test shows up here)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
UNCHECKED = ("Advice", "What the hub does not do")
"""Sections that are advice or stated limits, not claims."""


def _claims() -> list[tuple[str, str]]:
    """(section, bullet text) of every bullet in the sections that make claims."""
    section, bullets, current = "", [], None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:]
        if line.startswith("- "):
            current = [section, line]
            bullets.append(current)
        elif current is not None and line.startswith("  "):
            current[1] += " " + line.strip()
        else:
            current = None
    return [(s, b) for s, b in bullets if not s.startswith(UNCHECKED)]


def test_every_claim_names_a_test() -> None:
    claims = _claims()
    assert len(claims) >= 15, "the page's claims were found"
    bare = [b[:90] for _, b in claims if not REF.search(b)]
    assert not bare, f"claims without a test: {bare}"


def test_every_test_named_exists() -> None:
    refs = REF.findall(DOC.read_text(encoding="utf-8"))
    assert len(refs) >= 30
    missing = []
    for path, name in refs:
        source = ROOT / path
        text = source.read_text(encoding="utf-8") if source.exists() else ""
        if not re.search(rf"^(async )?def {name}\(", text, re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
