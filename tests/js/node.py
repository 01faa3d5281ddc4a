"""Run tests/js/validate.js: ajv (strict, draft 2020-12) on the published schema, the official AsyncAPI 3.0 schema on
the AsyncAPI document.

The first use runs `npm ci` into tests/js/node_modules (git-ignored), at most once per change of
package-lock.json. Where node or npm is missing or the registry cannot be reached, the tests that need it are
skipped with a reason that says what is missing; with KDS_REQUIRE_NODE=1 (set it in CI) they fail instead.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parent
NODE_MODULES = JS / "node_modules"
STAMP = NODE_MODULES / ".kds-package-lock.sha256"
REQUIRE_ENV = "KDS_REQUIRE_NODE"


@functools.cache
def _missing() -> str | None:
    """None when node and the pinned packages are ready, else what is missing (and why)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        what = "node and npm" if node is None and npm is None else ("node" if node is None else "npm")
        return f"{what} not found on PATH (install Node.js 20 or newer, with npm)"
    lock = hashlib.sha256((JS / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == lock:
        return None
    # Several test processes (pytest-xdist workers) may get here at once: one runs `npm ci`, the others wait for it.
    with open(JS / ".npm-ci.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if STAMP.exists() and STAMP.read_text() == lock:
            return None
        return _npm_ci(npm, lock)


def _npm_ci(npm: str, lock: str) -> str | None:
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
    except subprocess.TimeoutExpired:
        return "npm ci in tests/js took over 180 s (is the npm registry reachable?)"
    if done.returncode != 0:
        said = " | ".join(line for line in (done.stderr or done.stdout).splitlines()[:4] if line.strip())
        return f"npm ci in tests/js failed (is the npm registry reachable?): {said}"
    STAMP.write_text(lock)
    return None


def node_ready() -> None:
    """Skip the calling test, loudly, when node, npm or the packages are not there (fail with KDS_REQUIRE_NODE=1)."""
    missing = _missing()
    if missing is None:
        return
    why = f"NOT CHECKED WITH AJV: {missing}"
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{why} ({REQUIRE_ENV} is set)")
    pytest.skip(why)


def run(*args: str | Path) -> Any:
    """`node validate.js ARGS…`: its JSON answer."""
    node_ready()
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(JS / "validate.js"), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
