"""Per-device lockout after repeated wrong tokens: the pure `DeviceLockout`, then a real hub on 127.0.0.1.

Clients connect from different loopback addresses (127.0.0.2, .3, …: one machine, several "devices on the store
network"). Time is the hub's injected clock, moved by hand: nothing waits for a lock to run out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from kds.client import HubClient, LinkState
from kds.config import ConfigError, Limits, StoreConfig, parse_config
from kds.hub import OrderHub
from kds.limits import DeviceLockout
from kds.protocol import CloseCode, Error, ErrorCode
from kds.server import HubServer
from kds.store import Store
from tests.conftest import SAMPLE_CONFIG
from tests.support import until
from tests.test_auth import refused

# --------------------------------------------------------------------------------------------- the pure rule


def lockout(**over: Any) -> DeviceLockout:
    return DeviceLockout(**{"failures": 3, "window_s": 60.0, "lock_s": 120.0, "trust_s": 3600.0, **over})


def test_failures_within_the_window_lock_the_device_for_lock_s() -> None:
    lk = lockout()
    assert not lk.failed("kiosk-1", 0) and not lk.failed("kiosk-1", 10)
    assert lk.retry_after("kiosk-1", "10.9.9.9", 10) is None
    assert lk.failed("kiosk-1", 20), "the third wrong token within 60 s locks"
    assert lk.retry_after("kiosk-1", "10.9.9.9", 20) == 120
    assert lk.retry_after("kiosk-1", "10.9.9.9", 139.5) == 1
    assert lk.retry_after("kiosk-1", "10.9.9.9", 140) is None, "the lock ends after lock_s"
    assert lk.retry_after("kiosk-2", "10.9.9.9", 20) is None, "other devices are not locked"


def test_failures_spread_wider_than_the_window_do_not_lock() -> None:
    lk = lockout()
    for t in (0, 40, 80, 120, 160):  # never three within 60 s
        assert not lk.failed("kiosk-1", t)
    assert lk.retry_after("kiosk-1", "10.9.9.9", 160) is None


def test_wrong_tokens_during_a_lock_do_not_make_it_longer() -> None:
    lk = lockout()
    for t in (0, 1, 2):
        lk.failed("kiosk-1", t)
    assert not lk.failed("kiosk-1", 50) and not lk.failed("kiosk-1", 100)
    assert lk.retry_after("kiosk-1", "10.9.9.9", 100) == 22
    # After it, counting starts afresh: one more failure does not lock again.
    assert not lk.failed("kiosk-1", 125) and lk.retry_after("kiosk-1", "10.9.9.9", 125) is None


def test_an_address_the_device_authenticated_from_is_spared_while_it_is_trusted() -> None:
    lk = lockout()
    lk.succeeded("kiosk-1", "10.0.0.5", 0)
    for t in (10, 11, 12):
        lk.failed("kiosk-1", t)
    assert lk.retry_after("kiosk-1", "10.0.0.5", 13) is None, "its own address is spared"
    assert lk.retry_after("kiosk-1", "10.0.0.66", 13) == 119, "any other is locked out"
    lk.succeeded("kiosk-2", "10.0.0.66", 13)
    assert lk.retry_after("kiosk-1", "10.0.0.66", 13) == 119, "trust is per device"
    lk = lockout(trust_s=100)
    lk.succeeded("kiosk-1", "10.0.0.5", 0)
    for t in (150, 151, 152):
        lk.failed("kiosk-1", t)
    assert lk.retry_after("kiosk-1", "10.0.0.5", 152) == 120, "trust ends trust_s after the last success"


def test_no_address_is_spared_with_trust_zero() -> None:
    lk = lockout(trust_s=0)
    lk.succeeded("kiosk-1", "10.0.0.5", 0)
    for t in (1, 2, 3):
        lk.failed("kiosk-1", t)
    assert lk.retry_after("kiosk-1", "10.0.0.5", 3) == 120


def test_memory_stays_bounded_and_forget_drops_what_expired() -> None:
    lk = lockout(max_addresses=4)
    for k in range(100):
        lk.succeeded("kiosk-1", f"10.0.{k}.1", k)
    assert lk.size() == 4, "the oldest addresses make room"
    assert lk.trusted("kiosk-1", "10.0.99.1", 99) and not lk.trusted("kiosk-1", "10.0.0.1", 99)
    for t in range(1000):
        lk.failed("kiosk-2", float(t))  # locks, and locks again whenever a lock ends
    assert len(lk._failed.get("kiosk-2", ())) <= 3
    lk.failed("kiosk-3", 1000)
    assert lk.size() > 0
    lk.forget(1000 + 3600 + 120 + 1)
    assert lk.size() == 0


# --------------------------------------------------------------------------------------------- on a real hub


class Clock:
    """The hub's clock, moved by hand."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


FAILURES = 3
LOCK_S = 90


@pytest.fixture
async def locking_hub(config: StoreConfig, tmp_path: Path) -> AsyncIterator[tuple[HubServer, Clock]]:
    """A hub of the sample store locking a device out after 3 wrong tokens within 60 s, for 90 s (per-address
    limits wide open: they are not what is tested here)."""
    limits = Limits.model_validate(
        {
            **config.limits.model_dump(),
            "device_lockout_failures": FAILURES,
            "device_lockout_window_s": 60,
            "device_lockout_s": LOCK_S,
            "auth_failure_burst": 1000,
        }
    )
    clock = Clock()
    cfg = config.model_copy(update={"limits": limits})
    server = HubServer(
        OrderHub(cfg, clock=clock), Store(tmp_path / "kds.sqlite3", store_id=cfg.store.id), host="127.0.0.1", port=0
    )
    await server.start()
    try:
        yield server, clock
    finally:
        await server.stop()


async def say_hello(server: HubServer, config: StoreConfig, device: str, token: str | None, src: str) -> Any:
    """Open a connection from loopback address `src`, send the hello: (first frame, close code or None)."""
    dev = config.device(device)
    assert dev is not None
    msg: dict[str, Any] = {"type": "hello", "device": device, "token": token or dev.token, "role": dev.role.value}
    conn = await ws_connect(server.url, open_timeout=5, close_timeout=2, local_addr=(src, 0))
    await conn.send(json.dumps(msg))
    async with asyncio.timeout(5):
        first = json.loads(await conn.recv())
        if first["type"] == "welcome":
            await conn.close()
            return first, None
        with pytest.raises(ConnectionClosed) as info:
            await conn.recv()
    rcvd = info.value.rcvd
    return first, rcvd.code if rcvd is not None else None


async def lock_out(server: HubServer, config: StoreConfig, device: str, src: str) -> None:
    for _ in range(FAILURES):
        err, code = await say_hello(server, config, device, "not-the-token", src)
        assert err["code"] == ErrorCode.UNAUTHORIZED.value and code == CloseCode.UNAUTHORIZED, err


def assert_locked_out(err: dict[str, Any], code: int | None, device: str, retry_after: int) -> None:
    Error.model_validate(err)
    assert err["code"] == ErrorCode.LOCKED_OUT.value and err["ref"] is None, err
    assert err["retry_after_s"] == retry_after, err
    assert f"in {retry_after} s" in err["message"] and device in err["message"]
    assert err["errors"] == [{"loc": ["device"], "msg": "locked out"}]
    assert code == CloseCode.RATE_LIMITED


async def test_wrong_tokens_lock_the_device_out_and_the_error_says_when_to_retry(
    locking_hub: tuple[HubServer, Clock], config: StoreConfig, caplog: pytest.LogCaptureFixture
) -> None:
    server, clock = locking_hub
    caplog.set_level(logging.INFO, logger="kds.server")
    await lock_out(server, config, "shelf-1", "127.0.0.3")
    # Now the right token is refused too, from the rogue's address and from another one, and it is not checked.
    err, code = await say_hello(server, config, "shelf-1", None, "127.0.0.3")
    assert_locked_out(err, code, "shelf-1", LOCK_S)
    clock.advance(30)
    err, code = await say_hello(server, config, "shelf-1", None, "127.0.0.4")
    assert_locked_out(err, code, "shelf-1", LOCK_S - 30)
    assert "shelf-1" not in {s.device.id for s in server.sessions}
    # Other devices, from the same addresses, are not affected.
    for device, src in (("kiosk-2", "127.0.0.3"), ("wok-1", "127.0.0.4")):
        first, code = await say_hello(server, config, device, None, src)
        assert first["type"] == "welcome" and code is None, first
    # The lockout is logged once, naming the device and the address; refusals during it are throttled lines.
    locks = [r for r in caplog.records if "locked out for" in r.getMessage() and "wrong tokens" in r.getMessage()]
    assert len(locks) == 1 and locks[0].levelno == logging.WARNING, [r.getMessage() for r in locks]
    assert "shelf-1" in locks[0].getMessage() and "127.0.0.3" in locks[0].getMessage()
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused a hello of shelf-1")]
    assert len(refusals) == 1, "the second refusal within log_interval_s is held back"


async def test_the_lock_ends_after_device_lockout_s(locking_hub: tuple[HubServer, Clock], config: StoreConfig) -> None:
    server, clock = locking_hub
    await lock_out(server, config, "kiosk-1", "127.0.0.3")
    clock.advance(LOCK_S - 1)
    err, code = await say_hello(server, config, "kiosk-1", None, "127.0.0.4")
    assert_locked_out(err, code, "kiosk-1", 1)
    clock.advance(1)
    first, code = await say_hello(server, config, "kiosk-1", None, "127.0.0.4")
    assert first["type"] == "welcome" and code is None, first


async def test_the_address_the_device_works_from_is_not_locked_out(
    locking_hub: tuple[HubServer, Clock], config: StoreConfig
) -> None:
    server, _clock = locking_hub
    first, _ = await say_hello(server, config, "shelf-1", None, "127.0.0.2")  # the real terminal, earlier today
    assert first["type"] == "welcome"
    await lock_out(server, config, "shelf-1", "127.0.0.3")  # a rogue device on the store network
    first, code = await say_hello(server, config, "shelf-1", None, "127.0.0.2")
    assert first["type"] == "welcome" and code is None, "the real terminal reconnects from its address"
    err, code = await say_hello(server, config, "shelf-1", "still-not-the-token", "127.0.0.2")
    assert err["code"] == ErrorCode.UNAUTHORIZED.value, "its hellos are still checked"
    err, code = await say_hello(server, config, "shelf-1", None, "127.0.0.5")
    assert_locked_out(err, code, "shelf-1", LOCK_S)


async def test_unknown_devices_are_not_tracked_and_housekeeping_forgets_ended_locks(
    locking_hub: tuple[HubServer, Clock], config: StoreConfig
) -> None:
    server, clock = locking_hub
    for k in range(20):
        err, _ = await say_hello_raw(server, f"ghost-{k}", "127.0.0.3")
        assert err["code"] == ErrorCode.UNAUTHORIZED.value
    assert server.lockout.size() == 0, "made-up device ids take no memory"
    await lock_out(server, config, "kiosk-1", "127.0.0.3")
    first, _ = await say_hello(server, config, "wok-1", None, "127.0.0.4")
    assert first["type"] == "welcome"
    assert server.lockout.size() == 2  # kiosk-1's lock, wok-1's address
    clock.advance(server.limits.device_trust_h * 3600 + 1)
    await server._evict(time.monotonic())
    assert server.lockout.size() == 0


async def say_hello_raw(server: HubServer, device: str, src: str) -> tuple[dict[str, Any], int | None]:
    conn = await ws_connect(server.url, open_timeout=5, close_timeout=2, local_addr=(src, 0))
    await conn.send(json.dumps({"type": "hello", "device": device, "token": "guess-guess", "role": "source"}))
    err, closed = await refused(conn)
    return err, closed.rcvd.code if closed.rcvd is not None else None


async def test_the_protocol_client_waits_out_a_lockout_instead_of_giving_up(
    locking_hub: tuple[HubServer, Clock], config: StoreConfig
) -> None:
    server, _clock = locking_hub
    await lock_out(server, config, "kiosk-1", "127.0.0.3")
    dev = config.device("kiosk-1")
    assert dev is not None
    client = HubClient.for_device(server.url, dev)  # from 127.0.0.1, where kiosk-1 never authenticated
    try:
        await client.start()
        await until(lambda: "locked out" in (client.last_error or ""), what="the lockout reaches the client")
        assert client.state is LinkState.OFFLINE, "a lockout passes: the client connects again after retry_after_s"
        assert f"in {LOCK_S} s" in (client.last_error or "")
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device_lockout_failures", 0),
        ("device_lockout_window_s", 0),
        ("device_lockout_s", -1),
        ("device_trust_h", -1),
        ("device_lockout_s", 10**9),
    ],
)
def test_lockout_limits_out_of_range_are_refused_naming_the_field(field: str, value: float) -> None:
    text = SAMPLE_CONFIG.read_text(encoding="utf-8") + f"\n[limits]\n{field} = {value}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert [p.loc for p in info.value.problems] == [("limits", field)]
