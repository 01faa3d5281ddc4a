"""Device tokens kept as salted hashes (`kds token`), checked in constant time, on a real hub."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kds.config import Device, StoreConfig, hash_token
from kds.hub import OrderHub
from kds.server import HubServer
from kds.store import Store
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
        [sys.executable, "-m", "kds.cli", "token"], cwd=ROOT, capture_output=True, text=True, check=True
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
    assert hashed.device("wok-1").token is None  # type: ignore[union-attr]
    server = HubServer(OrderHub(hashed), Store(tmp_path / "t.sqlite3", store_id=config.store.id), port=0)
    await server.start()
    try:
        hello = {"type": "hello", "device": "wok-1", "role": "kitchen", "station": "wok"}
        conn = await open_ws_url(server.url)
        await conn.send(json.dumps({**hello, "token": "wok-secret-token-0001"}))
        assert json.loads(await conn.recv())["type"] == "welcome"
        await conn.close()
        conn = await open_ws_url(server.url)
        await conn.send(json.dumps({**hello, "token": hashed.device("wok-1").token_hash}))  # type: ignore[union-attr]
        err, closed = await refused(conn)
        assert err["code"] == "unauthorized" and closed.rcvd is not None and closed.rcvd.code == 4001
    finally:
        await server.stop()
