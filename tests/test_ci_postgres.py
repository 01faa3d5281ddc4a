"""CI needs the PostgreSQL half of the suite: where KDS_REQUIRE_POSTGRES=1 (`.ci/run`), no server fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg

ROOT = Path(__file__).resolve().parent.parent
ONE_PG_TEST = "tests/test_migrations.py::test_an_empty_database_is_migrated_to_the_newest_schema[postgresql]"


def _pytest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in (pg.ENV, pg.REQUIRE)} | env
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", ONE_PG_TEST],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "env",
    [
        {pg.REQUIRE: "1"},  # no server named at all
        {pg.REQUIRE: "1", pg.ENV: "postgresql://kds_ci:kds_ci@127.0.0.1:9/postgres"},  # a server that does not answer
    ],
    ids=["no-url", "no-answer"],
)
def test_required_postgres_missing_fails_the_run(env: dict[str, str]) -> None:
    run = _pytest(env)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "PostgreSQL cannot be used" in run.stdout + run.stderr


def test_without_the_requirement_a_missing_server_skips() -> None:
    run = _pytest({})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "skipped" in run.stdout and "need a server" in run.stdout
