"""The layers of ../ARCHITECTURE.md hold: the import-linter contracts in pyproject.toml pass (and can fail), no two
top-level packages import each other, and the core of `kds/` imports no I/O library (not websockets,
sqlmodel/SQLAlchemy, Textual nor escpos) even at run time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["kds", "kdsapp", "terminals", "printers", "bench"]
CORE = ["kds.config", "kds.protocol", "kds.routing", "kds.domain", "kds.hub", "kds.view", "kds.printing"]
IO_LIBRARIES = {"websockets", "sqlmodel", "sqlalchemy", "textual", "escpos"}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    # No cache: two pytest workers would share the one under the project.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_import_contracts_are_kept() -> None:
    run = _lint_imports()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_the_import_contracts_can_fail(tmp_path: Path) -> None:
    # A contract that the code breaks (the command line does import the kitchen screen): if this ever passes, the
    # contracts above are blind (a wrong root package, a config that is not read).
    config = tmp_path / "contracts.toml"
    config.write_text(
        "[tool.importlinter]\n"
        f"root_packages = {json.dumps(PACKAGES)}\n"
        "[[tool.importlinter.contracts]]\n"
        'name = "the command line never imports a screen"\n'
        'type = "forbidden"\n'
        'source_modules = ["kdsapp.cli"]\n'
        'forbidden_modules = ["terminals"]\n',
        encoding="utf-8",
    )
    run = _lint_imports("--config", str(config))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "BROKEN" in run.stdout and "kdsapp.cli -> terminals" in run.stdout


def _package_imports() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES)
    return {
        a: {b for b in PACKAGES if b != a and graph.direct_import_exists(importer=a, imported=b, as_packages=True)}
        for a in PACKAGES
    }


def test_no_cycle_between_packages() -> None:
    edges = _package_imports()
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, "package-level import cycle: " + " -> ".join((*path, package))
        if package not in done:
            for imported in sorted(edges[package]):
                visit(imported, (*path, package))
            done.add(package)

    for package in PACKAGES:
        visit(package, ())
    # What the layers say, as it stands: nothing imports the applications, and only they import the screens.
    assert edges["kds"] == set()
    assert edges["terminals"] == edges["printers"] == {"kds"}
    assert edges["kdsapp"] == {"kds", "terminals", "printers"}


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
