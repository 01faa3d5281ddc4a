"""Device tokens kept as salted hashes (`kds token`), or read from the environment or a file, checked in constant
time, never logged; on a real hub."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from websockets.asyncio.client import connect as ws_connect

from kds.client import HubClient, Refused
from kds.config import ConfigError, Device, StoreConfig, exposures, hash_token, load_config
from kds.hub import OrderHub
from kds.server import HubServer
from kds.store import Store
from kds.tls import websockets_log
from tests.conftest import SAMPLE_CONFIG as SAMPLE
from tests.test_auth import open_ws_url, refused

ROOT = Path(__file__).resolve().parent.parent


def test_a_device_has_a_token_or_its_hash_and_the_hash_checks_it() -> None:
    h = hash_token("a-long-device-token")
    dev = Device(id="wok-9", token_hash=h, role="kitchen", station="wok")
    assert dev.verify("a-long-device-token")
    assert not dev.verify("a-long-device-tokeN") and not dev.verify("")
    assert h != hash_token("a-long-device-token"), "salted: the same token hashes differently each time"
    for bad in ({}, {"token": "a-long-device-token", "token_hash": h}, {"token_hash": "md5$x$y"}):
        with pytest.raises(ValidationError):
            Device(id="wok-9", role="kitchen", station="wok", **bad)


def test_kds_token_prints_a_token_and_the_line_that_checks_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kdsapp.cli", "token"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    token = re.search(r"^token: (\S+)$", out, re.MULTILINE)
    line = re.search(r'^token_hash = "(\S+)"$', out, re.MULTILINE)
    assert token and line, out
    assert len(token.group(1)) >= 32
    assert Device(id="k-1", token_hash=line.group(1), role="monitor").verify(token.group(1))


async def test_a_hub_welcomes_a_device_by_the_hash_of_its_token(config: StoreConfig, tmp_path: Path) -> None:
    doc = config.model_dump(mode="json", exclude_none=True)
    for d in doc["devices"]:
        if d["id"] == "wok-1":
            del d["token"]
            d["token_hash"] = hash_token("wok-secret-token-0001")
    hashed = StoreConfig.model_validate(doc)  # validated afresh (the config's indexes are built from it)
    wok = hashed.device("wok-1")
    assert wok is not None and wok.token is None and wok.token_hash is not None
    await assert_wok_welcomed(hashed, tmp_path, good="wok-secret-token-0001", bad=wok.token_hash)


async def assert_wok_welcomed(cfg: StoreConfig, tmp_path: Path, *, good: str, bad: str) -> None:
    """A real hub of `cfg` welcomes wok-1 with the token `good` and refuses it with `bad` (4001)."""
    server = HubServer(OrderHub(cfg), Store(tmp_path / "t.sqlite3", store_id=cfg.store.id), port=0)
    await server.start()
    try:
        hello = {"type": "hello", "device": "wok-1", "role": "kitchen", "station": "wok"}
        conn = await open_ws_url(server.url)
        await conn.send(json.dumps({**hello, "token": good}))
        assert json.loads(await conn.recv())["type"] == "welcome"
        await conn.close()
        conn = await open_ws_url(server.url)
        await conn.send(json.dumps({**hello, "token": bad}))
        err, closed = await refused(conn)
        assert err["code"] == "unauthorized" and closed.rcvd is not None and closed.rcvd.code == 4001
    finally:
        await server.stop()


# --------------------------------------------------------------------------------------------- from env or file

WOK_LINE = 'token = "dev-wok-1-token"'


def _store(tmp_path: Path, line: str) -> Path:
    """A copy of the sample store in its own folder, with wok-1's token line replaced by `line`."""
    folder = tmp_path / "store"
    folder.mkdir(exist_ok=True)
    text = SAMPLE.read_text(encoding="utf-8")
    assert text.count(WOK_LINE) == 1
    path = folder / "store.toml"
    path.write_text(text.replace(WOK_LINE, line), encoding="utf-8")
    return path


def _wok_problems(path: Path) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [(p.loc, p.msg) for p in info.value.problems]


def _token_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "secrets" / "wok-1.token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_a_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_TEST_WOK_TOKEN", "  wok-token-from-env \n")
    wok = load_config(_store(tmp_path, 'token_env = "KDS_TEST_WOK_TOKEN"')).device("wok-1")
    assert wok is not None and wok.token is None and wok.token_env == "KDS_TEST_WOK_TOKEN"
    assert wok.verify("wok-token-from-env") and not wok.verify("dev-wok-1-token")
    assert wok.secret == "wok-token-from-env"


def test_a_token_from_a_file_next_to_the_config(tmp_path: Path) -> None:
    path = _store(tmp_path, 'token_file = "secrets/wok-1.token"')
    _token_file(path.parent, "wok-token-from-a-file\n")
    wok = load_config(path).device("wok-1")
    assert wok is not None and wok.token_file == path.parent / "secrets" / "wok-1.token"
    assert wok.verify("wok-token-from-a-file") and not wok.verify("wok-token-from-a-file\n")


@pytest.mark.parametrize(
    ("line", "env", "field", "words"),
    [
        pytest.param('token_env = "KDS_TEST_UNSET"', None, "token_env", "KDS_TEST_UNSET is not set", id="unset"),
        pytest.param('token_env = "KDS_TEST_WOK_TOKEN"', "short", "token_env", "shorter than 8", id="too-short"),
        pytest.param('token_env = "KDS_TEST_WOK_TOKEN"', "   ", "token_env", "shorter than 8", id="blank"),
        pytest.param('token_file = "secrets/none.token"', None, "token_file", "no such file", id="no-file"),
    ],
)
def test_a_token_that_cannot_be_had_is_refused_naming_the_device_and_field(
    line: str, env: str | None, field: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KDS_TEST_UNSET", raising=False)
    if env is not None:
        monkeypatch.setenv("KDS_TEST_WOK_TOKEN", env)
    problems = _wok_problems(_store(tmp_path, line))
    assert len(problems) == 1, problems
    loc, msg = problems[0]
    assert loc == ("devices", "0(wok-1)", field) and words in msg, problems


def test_a_token_file_others_can_read_is_refused_and_a_group_readable_one_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _store(tmp_path, 'token_file = "secrets/wok-1.token"')
    secret = _token_file(path.parent, "wok-token-from-a-file", 0o644)
    problems = _wok_problems(path)
    assert [loc for loc, _ in problems] == [("devices", "0(wok-1)", "token_file")]
    assert "chmod 600" in problems[0][1] and "0644" in problems[0][1]
    secret.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="kds.config"):
        wok = load_config(path).device("wok-1")
    assert wok is not None and wok.verify("wok-token-from-a-file")
    assert any("can be read by its group" in r.getMessage() and str(secret) in r.getMessage() for r in caplog.records)
    assert "wok-token-from-a-file" not in caplog.text


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param('token_env = "KDS_TEST_WOK_TOKEN"\ntoken = "dev-wok-1-token"', id="env-and-token"),
        pytest.param('token_env = "KDS_TEST_WOK_TOKEN"\ntoken_file = "secrets/wok-1.token"', id="env-and-file"),
        pytest.param("", id="none"),
    ],
)
def test_a_device_has_exactly_one_of_the_four(lines: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDS_TEST_WOK_TOKEN", "wok-token-from-env")
    path = _store(tmp_path, lines)
    _token_file(path.parent, "wok-token-from-a-file")
    problems = _wok_problems(path)
    assert len(problems) == 1 and problems[0][0][:2] == ("devices", "0(wok-1)"), problems
    assert "exactly one of token, token_hash, token_env or token_file" in problems[0][1]


def test_a_terminal_reads_a_config_whose_tokens_live_on_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KDS_TEST_UNSET", raising=False)
    path = _store(tmp_path, 'token_env = "KDS_TEST_UNSET"')
    wok = load_config(path, check_secrets=False).device("wok-1")
    assert wok is not None and wok.secret is None and not wok.verify("")
    with pytest.raises(ValueError, match="give the token"):
        HubClient.for_device("ws://127.0.0.1:1", wok)


async def test_a_hub_welcomes_a_device_by_a_token_from_a_file(tmp_path: Path) -> None:
    path = _store(tmp_path, 'token_file = "secrets/wok-1.token"')
    _token_file(path.parent, "wok-token-from-a-file\n")
    await assert_wok_welcomed(load_config(path), tmp_path, good="wok-token-from-a-file", bad="dev-wok-1-token")


# --------------------------------------------------------------------------------------------- never logged


async def test_a_refused_hello_never_writes_the_token_to_the_log(
    tmp_path: Path, config: StoreConfig, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-token-0xC0FFEE-never-logged"
    right = "dev-kiosk-1-token"
    caplog.set_level(logging.DEBUG)
    # Every refusal logged (none held back by the log throttle), so that each one is looked at.
    cfg = config.model_copy(update={"limits": config.limits.model_copy(update={"log_interval_s": 1e-9})})
    server = HubServer(OrderHub(cfg), Store(tmp_path / "t.sqlite3", store_id=config.store.id), port=0)
    await server.start()
    try:
        # The canary: websockets does write frames at DEBUG (this client's own logger is left as it is).
        conn = await ws_connect(server.url, open_timeout=5, close_timeout=2)
        await conn.send(json.dumps(hello_of("kiosk-1", "canary-token-in-the-frame")))
        await refused(conn)
        assert any(
            "canary-token-in-the-frame" in r.getMessage() for r in caplog.records if r.name == "websockets.client"
        )
        caplog.clear()
        for token in (wrong, right):
            conn = await ws_connect(
                server.url, open_timeout=5, close_timeout=2, logger=websockets_log("websockets.client")
            )
            await conn.send(json.dumps(hello_of("kiosk-1", token)))
            if token == wrong:
                err, _ = await refused(conn)
                assert err["code"] == "unauthorized"
            else:
                assert json.loads(await conn.recv())["type"] == "welcome"
                await conn.close()
        # The same through the one protocol client, and a hello with a bad field next to the token.
        client = HubClient(server.url, device="kiosk-1", token=wrong, role="source")
        with pytest.raises(Refused):
            await client.connect(timeout=5)
        await client.close()
        conn = await ws_connect(server.url, open_timeout=5, close_timeout=2, logger=websockets_log("websockets.client"))
        await conn.send(json.dumps({**hello_of("kiosk-1", wrong), "role": "chef"}))
        err, _ = await refused(conn)
        assert err["code"] == "bad_hello"
    finally:
        await server.stop()
    refusals = [r for r in caplog.records if r.name == "kds.server" and "refused connection" in r.getMessage()]
    assert len(refusals) == 3, "each refusal was logged (the check below looks at real log lines)"
    assert any(r.name == "websockets.server" for r in caplog.records), "websockets' own records were captured"
    for secret in (wrong, right):
        assert secret not in caplog.text
        assert not [r for r in caplog.records if secret in r.getMessage() or secret in str(r.args)]


def hello_of(device: str, token: str) -> dict[str, str]:
    """A source's hello with the token first: websockets' DEBUG lines show a frame's first 75 characters."""
    return {"token": token, "type": "hello", "device": device, "role": "source"}


def test_the_hub_warns_at_start_of_what_its_config_leaves_open(config: StoreConfig, tmp_path: Path) -> None:
    """The sample store keeps its tokens in plain text (for the demo): `kds serve` says so, and says when it listens
    beyond loopback without TLS; a config with hashed tokens and TLS gets no warning."""
    notes = exposures(config, "127.0.0.1")
    assert len(notes) == 1 and "plain text" in notes[0] and "kds token" in notes[0]
    assert len(exposures(config, "0.0.0.0")) == 2 and "no [tls]" in exposures(config, "0.0.0.0")[1]
    hashed = config.model_copy(
        update={
            "devices": tuple(
                d.model_copy(update={"token": None, "token_hash": hash_token(d.secret or "")}) for d in config.devices
            )
        }
    )
    assert exposures(hashed, "127.0.0.1") == []


@pytest.mark.parametrize("kept", ["token", "token_hash"])
def test_tokens_are_compared_in_constant_time(kept: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check of a token, plain or hashed, right or wrong, goes through hmac.compare_digest (whose time does
    not depend on where the strings differ), and nothing else decides."""
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    secret = "a-long-device-token"
    given = {"token": secret} if kept == "token" else {"token_hash": hash_token(secret)}
    dev = Device(id="wok-9", role="kitchen", station="wok", **given)
    assert dev.verify(secret) and not dev.verify("a-long-device-tokeX") and not dev.verify("x")
    assert len(calls) == 3
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: True)
    assert dev.verify("anything at all"), "the comparison is compare_digest's alone"
