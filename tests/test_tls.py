"""The hub's own TLS (`wss://`) over real TLS on 127.0.0.1: a throwaway CA and hub certificate made by the test.

A client that trusts the store's CA connects, submits, and a kitchen screen gets the order over wss; a client without
that CA (or with another one) fails certificate verification; a plain ws:// client cannot talk to a TLS hub; the
config names the field at fault for a missing, foreign or unloadable certificate or key.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import re
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake

from kds.client import HubClient, LinkState
from kds.config import ConfigError, StoreConfig, load_config
from kds.hub import OrderHub
from kds.protocol import Event, OrderAccepted
from kds.server import HubServer
from kds.store import Store
from kds.tls import MINIMUM_VERSION, TlsError, client_context, server_context
from kdsapp import cli
from kdsapp.simulate import run_simulation
from tests.conftest import FAST, SAMPLE_CONFIG, app_order
from tests.support import until
from tests.test_simulate import quick

# --------------------------------------------------------------------------------------------- a throwaway PKI


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kds hub"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


@dataclass(frozen=True)
class Pki:
    """PEM files: the store's CA, the hub's certificate and key (signed by that CA), and a CA nobody uses."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    other_key: Path
    """A key that is not the hub certificate's."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("hema store CA")
    key, cert = _leaf(ca_key, ca_cert)
    other_key, other_cert = _ca("somebody else's CA")
    files = {
        "ca.pem": ca_cert.public_bytes(serialization.Encoding.PEM),
        "hub.pem": cert.public_bytes(serialization.Encoding.PEM),
        "hub-key.pem": _pem_key(key),
        "other-ca.pem": other_cert.public_bytes(serialization.Encoding.PEM),
        "other-key.pem": _pem_key(other_key),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
        (d / name).chmod(0o600)
    return Pki(d / "ca.pem", d / "hub.pem", d / "hub-key.pem", d / "other-ca.pem", d / "other-key.pem")


def _store_with_tls(tmp_path: Path, pki: Pki, cert: str = "tls/hub.pem", key: str = "tls/hub-key.pem") -> Path:
    """A copy of the sample store whose [tls] names files relative to the config's folder."""
    folder = tmp_path / "store"
    (folder / "tls").mkdir(parents=True)
    shutil.copy(pki.cert, folder / "tls" / "hub.pem")
    shutil.copy(pki.key, folder / "tls" / "hub-key.pem")
    path = folder / "store.toml"
    path.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8") + f'\n[tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def tls_hub(tmp_path: Path, pki: Pki) -> AsyncIterator[HubServer]:
    """A real hub on 127.0.0.1 speaking wss://, with the certificate and key its config names."""
    cfg = load_config(_store_with_tls(tmp_path, pki))
    assert cfg.tls is not None
    server = HubServer(
        OrderHub(cfg),
        Store(tmp_path / "kds.sqlite3", store_id=cfg.store.id),
        host="127.0.0.1",
        port=0,
        tls=server_context(cfg.tls.cert_file, cfg.tls.key_file),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


MONITOR_HELLO = {"type": "hello", "device": "monitor-1", "token": "dev-monitor-1-token", "role": "monitor"}


async def _client(url: str, config: StoreConfig, device_id: str, **kw: Any) -> HubClient:
    dev = config.device(device_id)
    assert dev is not None
    return HubClient.for_device(url, dev, backoff=FAST, **kw)


# --------------------------------------------------------------------------------------------- over wss


async def test_a_client_with_the_ca_submits_and_the_kitchen_gets_it_over_wss(
    tls_hub: HubServer, config: StoreConfig, pki: Pki
) -> None:
    assert tls_hub.url.startswith("wss://127.0.0.1:")
    kiosk = await _client(tls_hub.url, config, "app-backend", ca_file=pki.ca)
    wok = await _client(tls_hub.url, config, "wok-1", ca_file=pki.ca)
    events: list[Event] = []
    wok.listeners.append(lambda f: events.append(f) if isinstance(f, Event) else None)
    try:
        await kiosk.connect(timeout=10)
        await wok.connect(timeout=10)
        acc = await kiosk.request({"type": "order.submit", "order": app_order("tls-1")}, expect=OrderAccepted)
        await until(lambda: any(e.order.id == acc.order_id for e in events), what="the event over wss")
        assert acc.order_id in wok.book.orders
    finally:
        await kiosk.close()
        await wok.close()


async def test_the_connection_is_tls_1_2_or_newer(tls_hub: HubServer, config: StoreConfig, pki: Pki) -> None:
    async with ws_connect(tls_hub.url, ssl=client_context(pki.ca), open_timeout=5) as conn:
        tls = conn.transport.get_extra_info("ssl_object")
        assert tls is not None and tls.version() in ("TLSv1.2", "TLSv1.3")
        await conn.send(json.dumps(MONITOR_HELLO))
        assert json.loads(await asyncio.wait_for(conn.recv(), 5))["type"] == "welcome"
    assert server_context(pki.cert, pki.key).minimum_version == MINIMUM_VERSION == ssl.TLSVersion.TLSv1_2
    assert client_context(pki.ca).minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("trust", ["system", "other-ca"])
async def test_without_the_stores_ca_the_hub_certificate_does_not_verify(
    trust: str, tls_hub: HubServer, config: StoreConfig, pki: Pki
) -> None:
    ctx = client_context(None if trust == "system" else pki.other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        async with ws_connect(tls_hub.url, ssl=ctx, open_timeout=5):
            pass
    # The one protocol client says why it is not online, and the hub never got its hello.
    kiosk = await _client(tls_hub.url, config, "kiosk-1", ca_file=None if trust == "system" else pki.other_ca)
    try:
        await kiosk.start()
        await until(lambda: "CERTIFICATE_VERIFY_FAILED" in (kiosk.last_error or ""), what="a verification failure")
        assert kiosk.state is not LinkState.ONLINE and kiosk.connections == 0
        assert not tls_hub.sessions
    finally:
        await kiosk.close()


async def test_a_plain_ws_client_cannot_talk_to_a_tls_hub(tls_hub: HubServer, config: StoreConfig, pki: Pki) -> None:
    plain = tls_hub.url.replace("wss://", "ws://")
    with pytest.raises((InvalidHandshake, OSError, EOFError)):
        async with ws_connect(plain, open_timeout=5) as conn:
            await conn.send(json.dumps({"type": "hello", "device": "kiosk-1", "token": "dev-kiosk-1-token"}))
    assert not tls_hub.sessions
    # The hub serves TLS clients on as before.
    kiosk = await _client(tls_hub.url, config, "kiosk-1", ca_file=pki.ca)
    try:
        await kiosk.connect(timeout=10)
        assert kiosk.state is LinkState.ONLINE
    finally:
        await kiosk.close()


async def test_the_simulator_feeds_a_wss_hub_with_the_ca(tls_hub: HubServer, config: StoreConfig, pki: Pki) -> None:
    opts = quick(tls_hub, ca_file=str(pki.ca), orders=5, cancel_share=0, amend_share=0)
    report = await run_simulation(config, opts)
    assert (report.sent, report.accepted, report.errors) == (5, 5, 0)


async def test_kds_serve_takes_tls_from_the_config(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config(_store_with_tls(tmp_path, pki))
    ready = asyncio.Event()
    task = asyncio.create_task(cli.run_hub(cfg, tmp_path / "serve.sqlite3", "127.0.0.1", 0, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        m = re.search(r"on (wss://127\.0\.0\.1:\d+)", capsys.readouterr().out)
        assert m, "kds serve prints its wss:// URL"
        async with ws_connect(m.group(1), ssl=client_context(pki.ca), open_timeout=5) as conn:
            await conn.send(json.dumps(MONITOR_HELLO))
            assert json.loads(await asyncio.wait_for(conn.recv(), 5))["type"] == "welcome"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --------------------------------------------------------------------------------------------- the config


def test_tls_paths_are_read_from_the_configs_folder(tmp_path: Path, pki: Pki) -> None:
    cfg = load_config(_store_with_tls(tmp_path, pki))
    assert cfg.tls is not None
    assert cfg.tls.cert_file == tmp_path / "store" / "tls" / "hub.pem"
    assert cfg.tls.key_file == tmp_path / "store" / "tls" / "hub-key.pem"


@pytest.mark.parametrize(
    ("cert", "key", "field", "words"),
    [
        pytest.param("tls/missing.pem", "tls/hub-key.pem", "cert_file", "no such file", id="no-cert"),
        pytest.param("tls/hub.pem", "tls/missing-key.pem", "key_file", "no such file", id="no-key"),
        pytest.param("tls/hub-key.pem", "tls/hub-key.pem", "cert_file", "no PEM certificate", id="key-as-cert"),
        pytest.param("tls/hub.pem", "tls/hub.pem", "key_file", "no PEM private key", id="cert-as-key"),
        pytest.param("tls/hub.pem", "OTHER", "key_file", "not the key of the certificate", id="foreign-key"),
    ],
)
def test_a_tls_file_that_cannot_be_used_is_named(
    tmp_path: Path, pki: Pki, cert: str, key: str, field: str, words: str
) -> None:
    path = _store_with_tls(tmp_path, pki, cert, str(pki.other_key) if key == "OTHER" else key)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(p.loc, words in p.msg) for p in info.value.problems] == [(("tls", field), True)], info.value.problems
    # A terminal reading the same config does not need the hub's files.
    assert load_config(path, check_secrets=False).tls is not None


def test_server_context_refuses_an_encrypted_key(tmp_path: Path, pki: Pki) -> None:
    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    with pytest.raises(TlsError) as info:
        server_context(pki.cert, locked)
    assert info.value.field == "key_file" and "encrypted" in info.value.message


# --------------------------------------------------------------------------------------------- the command line


def test_terminals_and_the_simulator_take_a_ca_file(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    parser = cli.build_parser()
    for argv in (
        ["kitchen", "--station", "wok", "--ca-file", str(pki.ca)],
        ["counter", "--ca-file", str(pki.ca)],
        ["simulate", "--ca-file", str(pki.ca)],
    ):
        args = parser.parse_args(argv)
        assert cli._ca_file(args) == str(pki.ca)
    args = parser.parse_args(["counter"])
    monkeypatch.delenv(cli.CA_FILE_ENV, raising=False)
    assert cli._ca_file(args) is None
    monkeypatch.setenv(cli.CA_FILE_ENV, str(pki.ca))
    assert cli._ca_file(args) == str(pki.ca)


def test_an_unusable_ca_file_stops_the_command_with_the_reason(tmp_path: Path, pki: Pki) -> None:
    for path, words in ((tmp_path / "nope.pem", "no such file"), (pki.key, "no PEM certificate")):
        with pytest.raises(SystemExit) as info:
            cli._ca_file(argparse.Namespace(ca_file=str(path)))
        assert "--ca-file" in str(info.value) and words in str(info.value)
    with pytest.raises(TlsError):
        HubClient("wss://127.0.0.1:1", device="kiosk-1", token="x" * 8, role="source", ca_file=tmp_path / "nope.pem")
