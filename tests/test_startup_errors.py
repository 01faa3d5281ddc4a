"""Start-up errors are messages, not tracebacks (issue 12): what a store manager reads when `kds` cannot start.

Every test runs the real `kds` command (a subprocess) and checks the one line it prints, its exit code, that no
traceback is shown, that no password is, and that a hub that could not start left nothing behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import sqlalchemy as sa

from kds.client import BadHubUrl, HubClient
from kds.store import Store
from tests import pg
from tests.conftest import ROOT, SAMPLE_CONFIG

PASSWORD = "s3cret-pw-42"


def kds(*args: str, config: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`kds ARGS` in a subprocess (the sample config unless `config=False`), stdin closed; `env` adds variables."""
    cmd = [sys.executable, "-m", "kdsapp.cli", *args]
    if config:
        cmd += ["--config", str(SAMPLE_CONFIG)]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, **(env or {})},
    )


def no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.count("\n") <= 1, out.stderr  # one line


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on (this test's socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens (held bound, not listening, so nobody takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


# ------------------------------------------------------------------------------------------------ the hub's port


def test_serve_on_a_port_in_use_says_so_and_creates_no_database(busy_port: int, tmp_path: Path) -> None:
    db = tmp_path / "var" / "kds.sqlite3"
    out = kds("serve", "--port", str(busy_port), "--db", str(db), "--quiet")
    assert out.returncode == 2
    assert f"kds serve: port {busy_port} on 127.0.0.1 is in use (another hub running?)" in out.stderr
    assert "--port" in out.stderr  # what to do about it
    no_traceback(out)
    # The port is taken before the store is opened: no file, no folder, no lock beside it.
    assert not db.exists()
    assert list(tmp_path.iterdir()) == []


def test_serve_on_a_port_in_use_creates_no_tables_in_postgresql(busy_port: int) -> None:
    pg.need()
    with pg.empty_database() as url:
        out = kds("serve", "--port", str(busy_port), "--db", url, "--quiet")
        assert out.returncode == 2
        assert f"port {busy_port} on 127.0.0.1 is in use" in out.stderr
        no_traceback(out)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                assert sa.inspect(conn).get_table_names() == []
        finally:
            engine.dispose()


# ------------------------------------------------------------------------------------------------ the database


def test_serve_with_postgresql_not_listening_names_host_port_and_role(closed_port: int, tmp_path: Path) -> None:
    url = f"postgresql://kds_hub:{PASSWORD}@127.0.0.1:{closed_port}/kds_store"
    out = kds("serve", "--port", "0", "--db", url, "--quiet")
    assert out.returncode == 2
    assert (
        f"kds serve: cannot reach PostgreSQL at 127.0.0.1:{closed_port} (role kds_hub, database kds_store): "
        "Connection refused; check that PostgreSQL runs on 127.0.0.1" in out.stderr
    )
    assert PASSWORD not in out.stderr + out.stdout
    no_traceback(out)


def test_kds_db_with_postgresql_not_listening_says_so(closed_port: int) -> None:
    url = f"postgresql://kds_hub:{PASSWORD}@127.0.0.1:{closed_port}/kds_store"
    out = kds("db", "current", "--db", url)
    assert out.returncode == 2
    assert f"kds db: cannot reach PostgreSQL at 127.0.0.1:{closed_port} (role kds_hub" in out.stderr
    assert PASSWORD not in out.stderr + out.stdout
    no_traceback(out)


def test_printers_status_with_postgresql_not_listening_says_so(closed_port: int) -> None:
    url = f"postgresql://kds_hub:{PASSWORD}@127.0.0.1:{closed_port}/kds_store"
    out = kds("printers", "status", "--db", url)
    assert out.returncode == 2
    assert f"kds printers status: cannot reach PostgreSQL at 127.0.0.1:{closed_port} (role kds_hub" in out.stderr
    assert PASSWORD not in out.stderr + out.stdout
    no_traceback(out)


def _pg_url(*, username: str | None = None, password: str | None = None, database: str | None = None) -> str:
    """The test server's URL with another role, password or database."""
    admin = pg.admin_url()
    assert admin is not None
    return (
        sa.make_url(admin)
        .set(username=username, password=password, database=database)
        .render_as_string(hide_password=False)
    )


def test_serve_with_a_postgresql_role_that_does_not_log_in_names_the_role_not_the_password() -> None:
    pg.need()
    out = kds("serve", "--port", "0", "--db", _pg_url(username="kds_no_such_role", password=PASSWORD), "--quiet")
    assert out.returncode == 2
    assert "(role kds_no_such_role, database " in out.stderr
    assert "refused the login" in out.stderr
    assert "check the role name and password in --db" in out.stderr
    assert PASSWORD not in out.stderr + out.stdout
    no_traceback(out)


def test_serve_with_a_postgresql_database_that_does_not_exist_says_how_to_make_it() -> None:
    pg.need()
    out = kds("serve", "--port", "0", "--db", _pg_url(database="kds_no_such_database"), "--quiet")
    assert out.returncode == 2
    assert 'database "kds_no_such_database" does not exist' in out.stderr
    assert "createdb" in out.stderr
    no_traceback(out)


def test_serve_with_db_under_a_file_says_the_folder_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a folder")
    out = kds("serve", "--port", "0", "--db", str(tmp_path / "notes.txt" / "kds.sqlite3"), "--quiet")
    assert out.returncode == 2
    assert f"kds serve: cannot make the folder {tmp_path / 'notes.txt'} for the database file" in out.stderr
    assert "a file of that name is in the way" in out.stderr
    no_traceback(out)


def test_serve_with_db_naming_a_folder_says_so_and_leaves_no_lock(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    folder.mkdir()
    out = kds("serve", "--port", "0", "--db", str(folder), "--quiet")
    assert out.returncode == 2
    assert f"kds serve: --db {folder} is a folder, not a database file" in out.stderr
    no_traceback(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["var"]
    assert list(folder.iterdir()) == []


def test_serve_with_a_database_url_of_another_kind_says_what_to_give() -> None:
    out = kds("serve", "--port", "0", "--db", f"mysql://kds:{PASSWORD}@127.0.0.1/kds", "--quiet")
    assert out.returncode == 2
    assert "is not a database this hub can use" in out.stderr
    assert "give a SQLite file path or a postgresql://" in out.stderr
    assert PASSWORD not in out.stderr + out.stdout
    no_traceback(out)


def test_the_database_url_a_hub_prints_has_no_password() -> None:
    store = Store(f"postgresql://kds_hub:{PASSWORD}@127.0.0.1:5432/kds_store", store_id="s")
    try:
        assert PASSWORD not in store.shown_url
        assert store.shown_url == "postgresql+psycopg://kds_hub:***@127.0.0.1:5432/kds_store"
    finally:
        store.close()


# ------------------------------------------------------------------------------------------------ clients' --hub


@pytest.mark.parametrize(
    "command",
    [["kitchen", "--station", "wok"], ["counter"], ["simulate", "--orders", "1"]],
    ids=["kitchen", "counter", "simulate"],
)
def test_a_client_given_an_http_hub_url_is_told_to_use_ws(command: list[str]) -> None:
    out = kds(*command, "--hub", "http://127.0.0.1:8765")
    assert out.returncode == 2
    assert (
        f"kds {command[0]}: --hub http://127.0.0.1:8765 is not a hub URL: use ws:// or wss://, not http://"
        in out.stderr
    )
    assert "token" not in out.stderr + out.stdout
    no_traceback(out)


def test_a_hub_url_without_a_scheme_is_refused_by_the_client_itself() -> None:
    with pytest.raises(BadHubUrl, match="start it with ws:// or wss://"):
        HubClient("127.0.0.1:8765", device="d", token="t", role="kitchen")
    with pytest.raises(BadHubUrl, match="not https://"):
        HubClient("ws://127.0.0.1:8765,https://10.0.0.2:8765", device="d", token="t", role="kitchen")


# ------------------------------------------------------------------------------------------------ --version


def test_version_prints_the_package_version() -> None:
    out = kds("--version", config=False)
    assert out.returncode == 0
    assert out.stdout == f"kds {version('hema-kds')}\n"
    assert out.stderr == ""


# ------------------------------------------------------------------------------------------------ the printers


def test_serve_without_a_cjk_font_refuses_to_print_chinese_as_boxes(closed_port: int, tmp_path: Path) -> None:
    db = tmp_path / "kds.sqlite3"
    missing = tmp_path / "no-such-font.ttc"
    out = kds("serve", "--port", str(closed_port), "--db", str(db), "--quiet", env={"KDS_CJK_FONT": str(missing)})
    assert out.returncode == 2
    assert "the printers cannot print" in out.stderr
    assert "no GB18030 font" in out.stderr and str(missing) in out.stderr
    assert "Traceback" not in out.stderr
    assert not db.exists()
