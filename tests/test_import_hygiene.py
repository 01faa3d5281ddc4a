"""The core of `kds/` imports no I/O library: not websockets, sqlmodel/SQLAlchemy, Textual nor escpos."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = ["kds.config", "kds.protocol", "kds.routing", "kds.domain", "kds.hub", "kds.view", "kds.printing"]
IO_LIBRARIES = {"websockets", "sqlmodel", "sqlalchemy", "textual", "escpos"}


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import json, sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


def test_core_imports_no_io_library() -> None:
    assert _imported_after(CORE) & IO_LIBRARIES == set()


def test_the_check_can_see_an_io_import() -> None:
    # The adapters do import them; if this ever fails, the check above is blind.
    assert {"websockets", "sqlalchemy"} <= _imported_after(["kds.server", "kds.store"])
