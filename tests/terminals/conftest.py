"""The screens talk to the hub, never to its database: one database engine is enough for them (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file for the hub behind the screens."""
    return tmp_path / "kds.sqlite3"
